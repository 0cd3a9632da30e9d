"""The op registry: every activation's and loss's textbook derivative equals SymPy's diff of its definition."""

import math

import pytest
import sympy as sp

from derive.errors import UnknownOpError
from derive.ops import ACTIVATIONS, LOSSES, Step, activation, loss

z, a = sp.symbols("z a", real=True)
POINTS = [-3.7, -1.0, -0.25, 0.3, 1.0, 2.9, 35.0, -40.0]


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_derivative_matches_diff_of_definition(name):
    act = ACTIVATIONS[name]
    derivative = act.derivative(z, act.definition(z)).rewrite("elementary")
    expected = sp.diff(act.definition(z), z)
    for point in POINTS:
        if point in act.kinks:
            continue
        assert float(derivative.subs(z, point)) == pytest.approx(float(expected.subs(z, point)), rel=1e-12)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_numeric_matches_definition(name):
    act = ACTIVATIONS[name]
    for point in POINTS:
        exact = float(act.definition(sp.Float(point, 40)).evalf(40))
        assert act.numeric(point) == pytest.approx(exact, rel=1e-15, abs=1e-300)


def test_relu_derivative_is_zero_at_the_kink_like_torch():
    assert Step(0) == 0 and Step(sp.Rational(1, 10)) == 1 and Step(-1) == 0
    assert Step.numeric(0.0) == 0.0
    # SymPy's own Heaviside is 1/2 at 0; the elementary form keeps torch's convention.
    assert Step(z).rewrite("elementary").subs(z, 0) == 0


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_derivative_matches_diff_of_terms(name):
    spec = loss(name)
    p = sp.symbols("p1 p2", real=True)
    t = sp.symbols("t1 t2", real=True)
    total = sp.Add(*spec.terms(p, t))
    for k, derivative in enumerate(spec.derivative(p, t)):
        point = {p[0]: 0.3, p[1]: 0.8, t[0]: 0.2, t[1]: 1.0}
        expected = sp.diff(total, p[k]).subs(point)
        assert float(derivative.subs(point)) == pytest.approx(float(expected), rel=1e-12)


def test_unknown_names_suggest_the_closest():
    with pytest.raises(UnknownOpError, match=r"unknown activation 'tanhh'.*Did you mean 'tanh'\?"):
        activation("tanhh")
    with pytest.raises(UnknownOpError, match=r"unknown loss 'mes'.*Did you mean 'mse'\?"):
        loss("mes")
    assert math.isfinite(ACTIVATIONS["sigmoid"].numeric(-800.0))
