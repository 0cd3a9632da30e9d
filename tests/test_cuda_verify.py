"""The verification properties on the GPU: lambdified torch on CUDA tensors vs autograd on CUDA.

Every test here is marked ``cuda``; conftest.py skips them with a reason where torch sees no GPU.
"""

import pytest
from hypothesis import given, settings

import derive
import verify
from verify.compare import kinked_parameters
from verify.strategies import networks

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.cuda


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_seed_and_2_2_2_verify_on_cuda(dtype):
    for net in (derive.examples.seed(), derive.examples.classic_2_2_2()):
        report = verify.check(net, device="cuda", dtype=dtype)
        assert report.ok and report.device == "cuda", str(report)


def test_compiled_torch_gradients_stay_on_the_gpu_and_match_cpu():
    net = derive.examples.classic_2_2_2().replace(x=[[0.05, 0.1], [1, -1], [0.5, 2]], y=[[0.01, 0.99]] * 3)
    fn = verify.compile(net, backend="torch")
    on_gpu = fn(*verify.arguments(net, "torch", device="cuda"))
    on_cpu = fn(*verify.arguments(net, "torch"))
    assert all(g.device.type == "cuda" and g.dtype == torch.float64 for g in on_gpu)
    for g, c in zip(on_gpu, on_cpu):
        torch.testing.assert_close(g.cpu(), c, rtol=1e-12, atol=1e-15)


@settings(deadline=None)
@given(networks())
def test_all_opinions_agree_on_cuda_in_float64(net):
    report = verify.check(net, device="cuda", dtype="float64")
    assert report.ok, str(report)


@settings(deadline=None)
@given(networks(bound=1.0))
def test_float32_on_cuda_agrees_within_the_float32_tolerance(net):
    report = verify.check(net, device="cuda", dtype="float32", finite_differences_check=False)
    assert report.ok_except(kinked_parameters(derive.derive(net), "float32")), str(report)


def test_cuda_and_cpu_autograd_agree():
    net = derive.examples.seed()
    cpu = verify.autograd_gradients(net, device="cpu")
    gpu = verify.autograd_gradients(net, device="cuda")
    for name, value in cpu.gradients.items():
        assert gpu[name] == pytest.approx(value, rel=1e-12, abs=1e-15)
