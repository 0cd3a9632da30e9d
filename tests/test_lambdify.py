"""lambdify of every activation and its derivative, with the math, mpmath, NumPy and torch modules, gives
torch autograd's float64 values (the activation's torch module and its backward)."""

import math

import pytest
import sympy as sp

from derive.ops import ACTIVATIONS, LogSumExp
from derive.ops.elementwise import Clamp

torch = pytest.importorskip("torch")

MODULES = ("math", "mpmath", "numpy", "torch")
POINTS = (-3.7, -0.25, 0.3, 2.9)  # off every kink
z, other = sp.symbols("z z2")


def _reference(act, point: float) -> tuple[float, float]:
    """torch's a(z) and da/dz in float64 (softmax: output 1 of softmax(z, −0.7), its derivative by z)."""
    x = torch.tensor(point, dtype=torch.float64, requires_grad=True)
    if act.vector:
        a = torch.softmax(torch.stack([x, torch.tensor(-0.7, dtype=torch.float64)]), 0)[0]
    else:
        a = getattr(torch.nn, act.torch_module)(**act.torch_kwargs())(x)
    a.backward()
    return float(a.detach()), float(x.grad)


def _call(expr: sp.Expr, args: tuple, module: str, values: tuple) -> float:
    f = sp.lambdify(args, expr, modules=module)
    if module == "torch":
        values = tuple(torch.tensor(v, dtype=torch.float64) for v in values)
    return float(f(*values))


@pytest.mark.parametrize("module", MODULES)
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_and_derivative_lambdify_to_torchs_values(name, module):
    act = ACTIVATIONS[name]
    expr, args, rest = (act(1, z, other), (z, other), (-0.7,)) if act.vector else (act(z), (z,), ())
    derivative = sp.diff(expr, z)
    for point in POINTS:
        value, slope = _reference(act, point)
        assert _call(expr, args, module, (point, *rest)) == pytest.approx(value, rel=1e-13, abs=1e-15), point
        assert _call(derivative, args, module, (point, *rest)) == pytest.approx(slope, rel=1e-12, abs=1e-15), point


@pytest.mark.parametrize("module", MODULES)
def test_relu_derivative_at_the_kink_is_torchs_zero_in_every_module(module):
    assert _call(sp.diff(ACTIVATIONS["relu"](z), z), (z,), module, (0.0,)) == 0.0


@pytest.mark.parametrize("module", MODULES)
def test_logsumexp_lambdifies(module):
    assert _call(LogSumExp(z, other), (z, other), module, (0.5, -1.0)) == pytest.approx(
        math.log(math.exp(0.5) + math.exp(-1.0)), rel=1e-14
    )


@pytest.mark.parametrize("module", ["math", "mpmath"])
def test_clamp_lambdifies(module):
    clamp = Clamp(z, -1, sp.Rational(1, 2))
    assert [_call(clamp, (z,), module, (v,)) for v in (-3.0, 0.25, 2.0)] == [-1.0, 0.25, 0.5]
