"""Properties: for drawn networks, derive's gradients, their lambdified code, torch autograd and finite
differences agree (CPU; float64 and float32). Example counts come from the hypothesis profile (conftest.py).
"""

import math

import numpy as np
import pytest
from hypothesis import assume, find, given, note, settings
from hypothesis import strategies as st

import derive
import verify
from verify.compare import kinked_parameters
from verify.strategies import architectures, networks, saturated_networks, targets, values

torch = pytest.importorskip("torch")


def _exact_bce(net):
    """Assume BCE predictions after a softmax do not round to 0 or 1 in float64 (log 0: no finite loss).

    After a sigmoid, derive takes log σ(z) = −softplus(−z), finite everywhere (see test_verify_edges).
    """
    if net.loss == "bce" and net.layers[-1].activation != "sigmoid":
        p = verify.torch_model(net)(torch.tensor(net.x, dtype=torch.float64))
        assume(bool(((p > 0) & (p < 1)).all()))


@settings(deadline=None)
@given(networks())
def test_all_three_opinions_agree_in_float64(net):
    _exact_bce(net)
    report = verify.check(net, dtype="float64")
    note(str(report))
    assert report.ok, str(report)
    assert report.agree, str(report)  # finite differences too, wherever no kink is crossed


@settings(deadline=None)
@given(networks(bound=1.0))
def test_float32_autograd_agrees_within_the_float32_tolerance(net):
    # weights and inputs in [-1, 1]: no prediction saturates in float32 (see docs/verification.md)
    report = verify.check(net, dtype="float32", finite_differences_check=False)
    note(str(report))
    # a unit within float32 rounding of a kink may fall on either side: not a property of the formulas, for
    # the parameters whose paths pass through that unit, and only those
    assert report.ok_except(kinked_parameters(derive.derive(net), "float32")), str(report)


@settings(deadline=None)
@given(networks(architectures(max_batch=6), resolution=None, kinks=False))
def test_arbitrary_floats_and_batches_agree_in_float64(net):
    _exact_bce(net)
    report = verify.check(net, finite_differences_check=False)
    assert report.ok_except(kinked_parameters(derive.derive(net))), str(report)


@settings(deadline=None)
@given(saturated_networks())
def test_saturated_softmax_with_large_adjoints_agrees_in_float64(net):
    # rounding in torch's softmax backward scales with the adjoints (1e5 and more), not with the gradients:
    # the tolerance's scale takes the largest adjoint (verify.tolerances); without it these fail
    _exact_bce(net)
    report = verify.check(net, finite_differences_check=False)
    note(str(report))
    assert report.ok_except(kinked_parameters(derive.derive(net))), str(report)


def test_saturated_networks_have_adjoints_far_above_their_gradients():
    def large(net):
        p = verify.torch_model(net)(torch.tensor(net.x, dtype=torch.float64))
        if not bool(((p > 0) & (p < 1)).all()):
            return False
        reference = verify.autograd_gradients(net)
        return reference.adjoint_scale > 1e6 * max(1.0, *map(abs, reference.gradients.values()))

    assert find(saturated_networks(), large, settings=settings(database=None, max_examples=500))


@settings(deadline=None)
@given(networks(), st.integers(1, 5))
def test_batch_of_one_repeated_gives_the_gradient_of_one_sample(net, copies):
    one = net.replace(x=net.x[:1], y=net.y[:1], reduction="mean")
    many = one.replace(x=one.x * copies, y=one.y * copies)
    fn = verify.compile(one, backend="numpy")
    a = fn(*verify.arguments(one))
    b = fn(*verify.arguments(many))
    for g, h in zip(a, b):
        np.testing.assert_allclose(h, g, rtol=1e-12, atol=1e-15)


@settings(deadline=None)
@given(architectures())
def test_architectures_are_valid_for_their_loss(arch):
    from derive.ops import ACTIVATIONS, loss

    spec = loss(arch.loss)
    assert 1 <= len(arch.activations) == len(arch.sizes) - 1 <= 3
    if spec.prediction_range is not None:
        lo, hi = spec.prediction_range
        out = ACTIVATIONS[arch.activations[-1]].output_range
        assert lo <= out[0] and out[1] <= hi


@given(values())
def test_values_are_finite_and_on_the_grid(v):
    assert math.isfinite(v) and -2 <= v <= 2 and (v * 64).is_integer()


@given(st.sampled_from(["bce", "mse", "cross_entropy"]), st.integers(1, 3), st.integers(2, 3), st.data())
def test_targets_are_valid_for_their_loss(name, batch, outputs, data):
    y = data.draw(targets(name, batch, outputs))
    assert len(y) == batch and all(len(row) == outputs for row in y)
    if name == "bce":
        assert all(0 <= t <= 1 for row in y for t in row)
    if name == "cross_entropy":
        assert all(sorted(row) == [0.0] * (outputs - 1) + [1.0] for row in y)


def test_strategies_draw_kinks_zeros_and_target_ends_on_purpose():
    at_kink = find(
        networks(architectures(losses=["mse"], activations=["relu"])),
        lambda net: any(
            all(w == 0 for w in row) and b == 0 for row, b in zip(net.layers[0].weight, net.layers[0].bias)
        ),
        settings=settings(database=None, max_examples=500),
    )
    d = derive.derive(at_kink)
    first = [d.values[n.symbol] for n in d.graph.nodes if n.kind == "z" and n.layer == 1]
    assert 0.0 in first, first  # a ReLU unit with z = 0 exactly
    # find raises NoSuchExample when no draw within max_examples satisfies the condition
    find(targets("bce", 2, 1), lambda y: {0.0, 1.0} <= {t for row in y for t in row},
         settings=settings(database=None, max_examples=500))
