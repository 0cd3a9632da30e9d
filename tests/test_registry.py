"""Every op of the registry, on its own small instances: the tensor forward equals the scalar lowering's
value, and the tensor backward rule equals, entry by entry, both the scalar derivation's gradient and
autograd of the tensor forward. A new op is tested by being registered."""

import numpy as np
import pytest
import torch

from derive.ops import ATEN, OPS
from derive.ops.tensor import TensorOp
from derive.proofs import differentiated, scalar_reference

PRIMITIVES = sorted(key for key, cls in OPS.items() if not getattr(cls, "composite", False))
CASES = [(key, n) for key in PRIMITIVES for n in range(len(list(OPS[key].samples())))]


def test_every_primitive_has_samples_and_reads_aten():
    assert not [key for key in PRIMITIVES if not list(OPS[key].samples())]
    assert len(ATEN) > 100
    for name, cls in ATEN.items():
        assert issubclass(cls, TensorOp) and cls.read is not TensorOp.read, name


def _torch_inputs(sample, wanted):
    tensors = []
    for value, want in zip(sample.inputs, wanted):
        if isinstance(value, np.ndarray):
            t = torch.tensor(value)
            tensors.append(t.requires_grad_(True) if want else t)
        else:
            tensors.append(value)
    return tensors


def _close(actual, expected, what):
    actual = np.asarray(actual, dtype=np.float64)
    assert actual.shape == expected.shape, (what, actual.shape, expected.shape)
    scale = max(1.0, float(np.max(np.abs(expected[np.isfinite(expected)]), initial=0.0)))
    finite = np.isfinite(expected)
    assert (np.isfinite(actual) == finite).all() and (actual[~finite] == expected[~finite]).all(), what
    assert np.max(np.abs(actual[finite] - expected[finite]), initial=0.0) <= 1e-11 * scale, (what, actual, expected)


@pytest.mark.parametrize("key, n", CASES)
def test_tensor_rule_equals_the_scalar_derivation_and_autograd(key, n):
    sample = list(OPS[key].samples())[n]
    wanted = differentiated(sample)
    inputs = _torch_inputs(sample, wanted)
    plain = [t.detach() if isinstance(t, torch.Tensor) else t for t in inputs]
    out, saved = sample.op.forward_saving(*plain)
    g = np.random.default_rng(n + 7).uniform(-1, 1, tuple(out.shape))
    value, scalar_grads = scalar_reference(sample, g)
    _close(out.numpy(), value, f"{key} forward (kept for the rule)")
    reference = sample.op.forward(*inputs)  # autograd of the op's own forward: torch's kernels
    _close(reference.detach().numpy(), value, f"{key} forward")
    rule = sample.op.backward(torch.tensor(g), plain, out, wanted, saved)
    differentiable = [t for t, want in zip(inputs, wanted) if want]
    auto = iter(torch.autograd.grad((reference * torch.tensor(g)).sum(), differentiable, allow_unused=True)
                if differentiable and reference.requires_grad else [None] * len(differentiable))
    for k, want in enumerate(wanted):
        if not want:
            continue
        expected = scalar_grads[k]
        _close(np.zeros_like(expected) if rule[k] is None else rule[k].detach().numpy(), expected,
               f"{key} rule, input {k}")
        a = next(auto)
        _close(np.zeros_like(expected) if a is None else a.numpy(), expected, f"{key} autograd, input {k}")
