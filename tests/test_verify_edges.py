"""Edge cases of verification, each checked against hand-computed or independently computed numbers."""

import math

import numpy as np
import pytest

import derive
import verify
from derive.network import Linear, Network

torch = pytest.importorskip("torch")


def _sigmoid(z):
    return 1 / (1 + math.exp(-z))


def test_saturated_sigmoids_agree():
    # |z| > 30 in both layers: σ' = σ(1 − σ) underflows towards 1e-14 and below; both sides must agree there.
    net = Network(
        (
            Linear([[40.0, 0.0], [0.0, -35.0]], [0.0, 0.0], "sigmoid"),
            Linear([[31.0, 33.0]], [0.5], "sigmoid"),
        ),
        x=[[1.0, 1.0]], y=[[0.3]], loss="mse",
    )
    report = verify.check(net)
    assert report.ok and report.agree
    # hand value: ∂L/∂b3 = 2(ŷ − y) σ'(z3) with z3 = 31 σ(40) + 33 σ(−35) + 0.5
    z3 = 31 * _sigmoid(40) + 33 * _sigmoid(-35) + 0.5
    expected = 2 * (_sigmoid(z3) - 0.3) * _sigmoid(z3) * (1 - _sigmoid(z3))
    assert report.rows[-1].symbolic == pytest.approx(expected, rel=1e-9)


def _bce_net(b3, y):
    return derive.examples.seed().replace(y=[[y]]).with_parameters({"b3": b3})


def test_bce_near_1_torchs_backward_clamp_is_named_and_the_exact_gradient_is_checked():
    net = _bce_net(30.0, 0.0)
    z3 = -0.1725 * _sigmoid(0.4352 + 0.3545 - 0.1419) + 0.1129 * _sigmoid(0.1951 + 0.4835 + 0.0439) + 30.0
    # BCE after a sigmoid: ∂L/∂b3 = ŷ − y exactly
    assert derive.derive(net).gradient("b3") == pytest.approx(_sigmoid(z3), rel=1e-15)
    # torch's BCELoss divides by max(ŷ(1 − ŷ), 1e-12) in its backward: here it shrinks ∂L/∂b3 tenfold
    clamped = verify.autograd_gradients(net, exact_bce=False)["b3"]
    assert clamped == pytest.approx(_sigmoid(z3) * math.exp(-z3) / 1e-12, rel=1e-3)
    report = verify.check(net)
    assert report.ok and report.rows[-1].autograd == pytest.approx(_sigmoid(z3), rel=1e-15)
    assert "BCELoss clamps here" in str(report) and "BCEWithLogitsLoss" in str(report)


def test_bce_near_0_torchs_log_clamp_at_minus_100_is_not_copied():
    net = _bce_net(-120.0, 1.0)
    z3 = -0.1725 * _sigmoid(0.4352 + 0.3545 - 0.1419) + 0.1129 * _sigmoid(0.1951 + 0.4835 + 0.0439) - 120.0
    exact = math.log1p(math.exp(z3)) - z3  # −log σ(z3) = log(1 + e^{−z3})
    assert verify.autograd_gradients(net, exact_bce=False).loss == 100.0  # torch: log clamped at −100
    report = verify.check(net)
    assert report.loss_symbolic == pytest.approx(exact, rel=1e-14)  # derive: the exact BCE
    assert report.ok and report.loss_autograd == pytest.approx(exact, rel=1e-14)
    assert "a log below −100" in str(report)


def test_bce_with_a_prediction_that_rounds_to_1_has_a_finite_exact_loss():
    # z3 > 36.7: ŷ = σ(z3) rounds to 1.0 in float64, yet −log(1 − σ(z3)) = softplus(z3) is finite
    net = _bce_net(40.0, 0.0)
    z3 = -0.1725 * _sigmoid(0.4352 + 0.3545 - 0.1419) + 0.1129 * _sigmoid(0.1951 + 0.4835 + 0.0439) + 40.0
    d = derive.derive(net)
    assert d.loss == pytest.approx(z3 + math.log1p(math.exp(-z3)), rel=1e-15)
    assert d.gradient("b3") == 1.0  # ŷ − y, with ŷ rounded to 1
    report = verify.check(net)
    assert report.ok and report.loss_autograd == pytest.approx(d.loss, rel=1e-14)


def test_relu_exactly_at_its_kink_has_torchs_zero_slope():
    # unit 1 has z = 0 exactly (zero weights, zero bias); ReLU'(0) = 0 in derive and torch alike
    net = Network(
        (Linear([[0.0, 0.0], [0.5, -0.25]], [0.0, 0.125], "relu"), Linear([[1.5, -2.0]], [0.25], "identity")),
        x=[[1.0, 2.0]], y=[[0.5]], loss="mse",
    )
    d = derive.derive(net)
    assert [d.gradient(n) for n in ("W1", "W2", "b1")] == [0.0, 0.0, 0.0]
    report = verify.check(net)
    assert report.ok and report.agree
    fd = verify.finite_differences(net)
    assert set(fd.kinked) == {"W1", "W2", "b1"}  # a difference quotient across the kink means nothing
    assert "kink" in next(line for line in str(report).splitlines() if line.startswith("W1 "))


@pytest.mark.parametrize("scale", [1e-150, 1e-8, 1e3])
def test_very_small_and_very_large_weights(scale):
    layers = (
        Linear([[0.3 * scale, -0.7 * scale], [0.9 * scale, 0.2 * scale]], [0.1 * scale, -0.2 * scale],
               "tanh"),
        Linear([[0.5 * scale, -1.1 * scale]], [0.05 * scale], "identity"),
    )
    net = Network(layers, x=[[0.25, -1.0]], y=[[0.5]], loss="half_sse")
    report = verify.check(net)
    assert report.ok and report.agree
    if scale == 1e-150:  # tanh is linear there: ∂L/∂b3 = ŷ − y = −0.5 to first order
        assert report.rows[-1].symbolic == pytest.approx(-0.5, rel=1e-12)


def test_a_batch_of_one_and_the_same_sample_repeated():
    one = derive.examples.classic_2_2_2()
    many = one.replace(x=np.tile(one.x, (5, 1)), y=np.tile(one.y, (5, 1)))
    a, b = verify.check(one), verify.check(many)
    assert a.ok and b.ok and many.batch == 5
    for r, s in zip(a.rows, b.rows):  # mean reduction: the same gradients
        assert s.autograd == pytest.approx(r.autograd, rel=1e-13)
        assert s.symbolic == pytest.approx(r.symbolic, rel=1e-13)
    summed = verify.check(many.replace(reduction="sum"))
    assert summed.ok and summed.rows[0].symbolic == pytest.approx(5 * a.rows[0].symbolic, rel=1e-13)


def _relu_at(z: float) -> Network:
    # unit 1: z1 = 0.5·x1 + b1 = b1 (x1 = 0), so b1 and W2 (x2 = 1) move z1 by their own step h = 1e-3
    return Network(
        (Linear([[0.5, 0.0]], [z], "relu"), Linear([[1.5]], [0.25], "identity")),
        x=[[0.0, 1.0]], y=[[0.5]], loss="mse",
    )


@pytest.mark.parametrize("steps", [0.5, -0.5, 1.5, -1.5])
def test_a_stencil_that_crosses_the_kink_on_one_side_only_is_marked(steps):
    h = verify.finite_diff.STEP
    net = _relu_at(steps * h)  # the stencil p − 2h … p + 2h crosses z = 0 below p (z > 0) or above it (z < 0)
    fd = verify.finite_differences(net)
    assert fd.kinked == ("W2", "b1") and fd.gradients["b1"] is None
    report = verify.check(net)
    assert report.ok and report.agree
    assert next(line for line in str(report).splitlines() if line.startswith("b1 ")).split()[5:] == ["ok", "ok", "kink"]


@pytest.mark.parametrize("steps", [2.5, -2.5])
def test_a_stencil_that_stays_on_one_side_is_used(steps):
    net = _relu_at(steps * verify.finite_diff.STEP)
    fd = verify.finite_differences(net)
    d = derive.derive(net)
    assert fd.kinked == ()
    for name in ("W2", "b1"):
        assert fd.gradients[name] == pytest.approx(d.gradient(name), rel=1e-9, abs=1e-12)


def test_tolerance_allows_exactly_its_bound_and_nothing_beyond():
    from verify.tolerances import Tolerance

    tol = Tolerance(rtol=0.5, atol=0.25)  # bound = 0.25·4 + 0.5·|2| = 2, every step exact in binary
    assert tol.bound(2.0, 4.0) == 2.0 and tol.bound(-2.0, 4.0) == 2.0
    assert tol.allows(4.0, 2.0, 4.0) and tol.allows(0.0, 2.0, 4.0)
    assert not tol.allows(math.nextafter(4.0, math.inf), 2.0, 4.0)
    assert not tol.allows(-(2.0**-51), 2.0, 4.0)  # |value − 2| = 2 + 2⁻⁵¹, the next float above 2
    assert tol.allows(2.0, 2.0, 4.0) and not tol.allows(math.nan, 2.0, 4.0) and not tol.allows(2.0, math.nan, 4.0)
    assert not tol.allows(math.inf, 2.0, 4.0)
    assert (tol | Tolerance(rtol=0.1, atol=1.0)) == Tolerance(rtol=0.5, atol=1.0)


def test_a_unit_on_the_other_side_of_a_kink_in_torch_is_explained_not_a_mismatch():
    """torch's GELU far left rounds to 0 (1 + erf cancels) where derive's is about -1e-197: the next leaky
    ReLU's z is then exactly 0 in torch (slope 0.01) and tiny positive in derive (slope 1)."""
    spec = (
        '{"loss":"bce_with_logits","reduction":"mean","lr":1.0,"data":{"x":[[-2.0,-2.0,-2.0,-2.0]],'
        '"y":[[0.0,0.0,0.0,0.0]]},"layers":[{"weight":[[0.0,0.0,0.0,0.0],[-2.0,-2.0,-2.0,-2.0]],'
        '"bias":[0.0,-2.0],"activation":"elu"},{"weight":[[-2.0,-2.0],[-2.0,-2.0],[-2.0,-2.0]],'
        '"bias":[-2.0,-2.0,-2.0],"activation":"gelu"},{"weight":[[0.0,0.0,0.0],[0.0,0.0,0.0],[0.0,0.0,0.0],'
        '[-2.0,-2.0,-2.0]],"bias":[0.0,0.0,0.0,0.0],"activation":"leaky_relu"}]}'
    )
    report = verify.check(derive.loads_spec(spec, format="json"))
    assert report.ok and report.agree
    b9 = next(r for r in report.rows if r.name == "b9")
    assert b9.symbolic == pytest.approx(0.125) and b9.autograd == pytest.approx(0.00125)
    assert b9.verdict.startswith("at a kink")
    assert any("z9" in n and "other side of the kink" in n for n in report.notes)
