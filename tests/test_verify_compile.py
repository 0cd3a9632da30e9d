"""verify.compile: lambdified gradients, vectorised over a batch, keeping dtype, device and autograd."""

import numpy as np
import pytest
import sympy as sp

import derive
import verify
from derive.errors import DeriveError
from derive.ops import ACTIVATIONS, Step

torch = pytest.importorskip("torch")

BATCH = derive.examples.seed().replace(x=[[1, 0], [0.5, -2], [3, 1]], y=[[1], [0], [0.25]])


def _autograd_tensors(net):
    """∂L/∂W1, ∂L/∂b1, … from torch autograd of the reference model (float64)."""
    model = verify.torch_model(net)
    x, y = torch.tensor(net.x, dtype=torch.float64), torch.tensor(net.y, dtype=torch.float64)
    verify.reference.torch_loss(net)(model(x), y).backward()
    return [t.grad for m in model if isinstance(m, torch.nn.Linear) for t in (m.weight, m.bias)]


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("net", [derive.examples.seed(), derive.examples.classic_2_2_2(), BATCH])
def test_compiled_gradients_equal_autograd_tensor_by_tensor(backend, net):
    grads = verify.compile(net, backend=backend)(*verify.arguments(net, backend))
    expected = _autograd_tensors(net)
    assert [tuple(g.shape) for g in grads] == verify.tensor_shapes(net)
    for g, e in zip(grads, expected):
        np.testing.assert_allclose(np.asarray(g), e.numpy(), rtol=1e-12, atol=1e-15)


def test_one_compiled_function_serves_every_batch_size_and_reduction():
    from verify.compile import _kernel

    fn = verify.compile(BATCH, backend="numpy")
    hits = _kernel.cache_info().hits
    verify.compile(BATCH.replace(x=[[1, 2]], y=[[0]], reduction="sum"), backend="numpy")
    assert _kernel.cache_info().hits == hits + 1  # one kernel per architecture, whatever the batch
    x, y, *tensors = verify.arguments(BATCH, "numpy")
    whole = fn(x, y, *tensors)
    singles = [fn(x[i : i + 1], y[i : i + 1], *tensors) for i in range(3)]
    for k, g in enumerate(whole):  # mean reduction: the mean of the per-sample gradients
        np.testing.assert_allclose(g, sum(s[k] for s in singles) / 3, rtol=1e-13)
    summed = verify.compile(BATCH.replace(reduction="sum"), backend="numpy")(x, y, *tensors)
    np.testing.assert_allclose(summed[0], 3 * whole[0], rtol=1e-13)


def test_torch_backend_keeps_dtype_and_autograd():
    net = derive.examples.seed()
    x, y, *tensors = verify.arguments(net, "torch", dtype="float32")
    tensors = [t.requires_grad_() for t in tensors]
    grads = verify.compile(net, backend="torch")(x, y, *tensors)
    assert all(g.dtype == torch.float32 and g.requires_grad for g in grads)
    # a second derivative through the compiled gradient equals torch's double backward
    x64, y64, *params = verify.arguments(net, "torch")
    params = [p.requires_grad_() for p in params]
    (d2_ours,) = torch.autograd.grad(verify.compile(net, "torch")(x64, y64, *params)[3].sum(), params[3])
    linear = torch.nn.functional.linear
    hidden = torch.sigmoid(linear(x64, params[0], params[1]))
    loss = torch.nn.BCELoss()(torch.sigmoid(linear(hidden, params[2], params[3])), y64)
    (g,) = torch.autograd.grad(loss, params[3], create_graph=True)
    (d2_torch,) = torch.autograd.grad(g.sum(), params[3])
    assert torch.allclose(d2_ours, d2_torch, rtol=1e-12)


def test_numpy_backend_keeps_float32():
    net = derive.examples.classic_2_2_2()
    grads = verify.compile(net)(*verify.arguments(net, "numpy", dtype="float32"))
    assert all(g.dtype == np.float32 for g in grads)


def test_sympy_matrix_printing_is_what_the_scalar_form_avoids():
    # SymPy's torch printer builds torch.tensor([[…]]) from a Matrix: it fails on a batch.
    z = sp.Symbol("z")
    matrix = sp.lambdify([z], sp.Matrix([[z, 2 * z]]), "torch")
    with pytest.raises((ValueError, RuntimeError, TypeError)):
        matrix(torch.tensor([1.0, 2.0], dtype=torch.float64))


Z = [-800.0, -40.0, -1.5, -1e-3, 0.0, 1e-3, 0.7, 40.0, 800.0]


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_every_activation_prints_to_numpy_and_torch_like_its_torch_module(name):
    act = ACTIVATIONS[name]
    if getattr(act, "vector", False):
        pytest.skip("a vector activation is checked through whole networks (property tests)")
    z = sp.Symbol("z")
    module = getattr(torch.nn, act.torch_module)(**act.torch_kwargs())
    points = torch.tensor(Z, dtype=torch.float64, requires_grad=True)
    expected = module(points)
    (slope,) = torch.autograd.grad(expected.sum(), points)
    for backend in ("numpy", "torch"):
        value, derivative = verify.compile_expressions([act(z), sp.diff(act(z), z)], ["z"], backend)(
            {"z": np.array(Z) if backend == "numpy" else points.detach()}
        )
        value = np.asarray(value, dtype=float)
        derivative = np.broadcast_to(np.asarray(derivative, dtype=float), (len(Z),))
        np.testing.assert_allclose(value, expected.detach().numpy(), rtol=1e-12, atol=1e-300)
        np.testing.assert_allclose(derivative, slope.numpy(), rtol=1e-12, atol=1e-300)


def test_the_relu_step_prints_with_torchs_convention_at_zero():
    z = sp.Symbol("z")
    for backend, zeros in (("numpy", np.zeros(3)), ("torch", torch.zeros(3, dtype=torch.float64))):
        (value,) = verify.compile_expressions([Step(z)], ["z"], backend)({"z": zeros + 0.0})
        assert np.asarray(value).tolist() == [0.0, 0.0, 0.0]


def test_compile_expressions_matches_symbols_by_name():
    x = sp.Symbol("x", real=True)
    assert verify.compile_expressions([x * 3], ["x"])({"x": 2.0}) == [6.0]
    with pytest.raises(DeriveError, match="not in the network: q"):
        verify.compile_expressions([sp.Symbol("q")], ["x"])


def test_unknown_backend_and_form_are_bad_input():
    net = derive.examples.seed()
    with pytest.raises(DeriveError, match="unknown backend 'jax'"):
        verify.compile(net, backend="jax")
    with pytest.raises(DeriveError, match="form 'vector' is not available; use one of scalar, matrix"):
        verify.compile(net, form="vector")
