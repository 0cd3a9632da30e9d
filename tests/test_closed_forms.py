"""Closed forms equal sympy.diff of the fully written-out loss, on several architectures and losses."""

import random

import pytest
import sympy as sp

import derive
from derive.printing import elementary
from tests.reference import random_point, reference_loss, value

CASES = [
    ((1, 1), ("sigmoid",), "bce", "mean", 1),
    ((2, 2, 1), ("tanh", "sigmoid"), "bce", "sum", 2),
    ((2, 3, 2), ("relu", "identity"), "mse", "mean", 1),
    ((3, 2, 2), ("sigmoid", "tanh"), "mse", "sum", 2),
    ((2, 2, 2), ("sigmoid", "sigmoid"), "half_sse", "mean", 1),
    ((1, 2, 2, 1), ("tanh", "relu", "identity"), "half_sse", "mean", 3),
]


def _network(sizes, activations, loss, reduction, batch, rng):
    layers = [
        derive.Linear(
            [[rng.uniform(-1, 1) for _ in range(n_in)] for _ in range(n_out)],
            [rng.uniform(-1, 1) for _ in range(n_out)],
            act,
        )
        for n_in, n_out, act in zip(sizes, sizes[1:], activations)
    ]
    x = [[rng.uniform(-2, 2) for _ in range(sizes[0])] for _ in range(batch)]
    lo = 0 if loss == "bce" else -2
    y = [[rng.uniform(lo, 1) for _ in range(sizes[-1])] for _ in range(batch)]
    return derive.Network(layers, x, y, loss=loss, reduction=reduction)


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{'-'.join(map(str, c[0]))}-{'-'.join(c[1])}-{c[2]}")
def test_closed_forms_equal_sympy_diff_of_the_expanded_loss(case):
    sizes, activations, loss, reduction, batch = case
    rng = random.Random(hash(case) % 1000)
    net = _network(*case, rng)
    d = derive.derive(net)
    L, symbols = reference_loss(*case)
    points = [{str(s): v for s, v in d.point.items()}]
    points += [random_point(symbols, rng, loss) for _ in range(3)]
    assert value(elementary(d.backprop.closed_loss()), points[0]) == pytest.approx(d.loss, rel=1e-12)
    for p in d.parameters:
        closed = elementary(d.closed(p.name))
        assert {s.name for s in closed.free_symbols} <= set(symbols)
        expected = sp.diff(L, symbols[p.name])
        for point in points:
            assert value(closed, point) == pytest.approx(value(expected, point), rel=1e-10, abs=1e-13)
        assert value(closed, points[0]) == pytest.approx(p.gradient, rel=1e-10, abs=1e-13)


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{'-'.join(map(str, c[0]))}-{c[2]}-batch{c[4]}")
def test_values_match_torch_autograd(case):
    from verify.reference import autograd_gradients

    net = _network(*case, random.Random(3))
    d = derive.derive(net)
    reference = autograd_gradients(net)
    assert d.loss == pytest.approx(reference.loss, rel=1e-12)
    for p in d.parameters:
        assert p.gradient == pytest.approx(reference[p.name], rel=1e-10, abs=1e-14)


def test_compact_forms_use_intermediates_and_the_textbook_simplifications():
    d = derive.derive(derive.examples.seed())
    # BCE after a sigmoid: dL/dz = ŷ − y; sigmoid' = σ(1 − σ)
    assert str(d.compact("b3")) == "a3 - y"
    assert str(d.compact("W5")) == "a1*(a3 - y)"
    assert str(d.compact("W1")) == "W5*a1*x1*(1 - a1)*(a3 - y)"


def test_chain_lists_local_factors_and_sums_over_paths():
    d = derive.derive(derive.examples.seed())
    (path,) = d.chain("W5")
    assert [(str(f.numerator), str(f.denominator)) for f in path] == [("L", "a3"), ("a3", "z3"), ("z3", "W5")]
    two = derive.derive(derive.examples.classic_2_2_2())
    paths = two.chain("W1")
    assert len(paths) == 2  # through both outputs
    assert {str(path[0].denominator) for path in paths} == {"a3", "a4"}
