"""verify.check: agreement is ok, a planted error is caught and named, the report says what it checked."""

import ast

import pytest

import derive
import verify
from derive.errors import DeriveError

SEED_NAMES = ["W1", "W2", "W3", "W4", "W5", "W6", "b1", "b2", "b3"]


def test_seed_checks_ok_and_names_every_parameter():
    report = verify.check(derive.examples.seed(), device="cpu")
    assert report.ok and report.agree
    text = str(report)
    for name in SEED_NAMES:
        assert f"\n{name} " in text
    # the study note's value of ∂L/∂W5, computed by hand: a1 · (a3 − y)
    assert "0.2727379197567" in text
    assert "on cpu, float64: ok" in text and "rtol 1e-09" in text


@pytest.mark.parametrize("name", ["W1", "W6", "b3"])
def test_a_relative_error_of_1e_6_fails_and_names_the_parameter(name):
    net = derive.examples.seed()
    g = derive.gradients(net)
    g[name] = g[name] * (1 + 1e-6)
    report = verify.check(net, gradients=g)
    assert not report.ok
    assert [r.name for r in report.failures] == [name]
    row = report.failures[0]
    assert row.rel_error == pytest.approx(1e-6, rel=1e-6)
    # all three symbolic evaluations carry the planted error; autograd and finite differences arbitrate
    assert "symbolic disagrees (autograd and finite differences agree)" in row.verdict
    text = str(report)
    line = next(line for line in text.splitlines() if line.startswith(name + " "))
    assert "mismatch" in line and "off   off   ok" in line
    detail = next(line for line in text.splitlines() if line.startswith(f"mismatch: {name} "))
    assert "on cpu, float64" in detail and "allowed" in detail
    assert "reproduce: verify.check(derive.loads_spec(" in text


def test_the_reproducer_of_a_custom_network_is_a_spec_that_loads_back():
    net = derive.examples.seed().with_parameters({"W1": 0.1})
    line = verify.reproducer(net, "cpu", "float64")
    assert line.startswith("derive verify --spec net.json --device cpu --dtype float64")
    assert derive.loads_spec(line.split("# net.json: ")[1], format="json") == net
    assert verify.reproducer(derive.examples.seed(), "cpu", "float32") == (
        "derive verify --example seed --device cpu --dtype float32"
    )


def test_float32_agrees_within_its_tolerance():
    report = verify.check(derive.examples.classic_2_2_2(), dtype="float32")
    assert report.ok and report.agree
    assert report.tolerance == verify.policy("float32")
    # float32 really is coarser: the errors are far above float64's but far inside float32's tolerance
    assert 1e-9 < max(r.rel_error for r in report.rows) < 1e-5


def test_finite_differences_match_hand_computed_gradients_of_the_seed():
    fd = verify.finite_differences(derive.examples.seed())
    # ∂L/∂b3 = ŷ − y = σ(z3), from the study note
    assert fd.gradients["b3"] == pytest.approx(0.4154331834389303, rel=1e-10)
    assert fd.gradients["W5"] == pytest.approx(0.2727379197567001, rel=1e-10)
    assert fd.kinked == ()


def test_an_error_in_autograd_is_blamed_on_autograd(monkeypatch):
    import verify.compare as compare

    real = compare.autograd_gradients

    def wrong(network, **kwargs):
        result = real(network, **kwargs)
        result.gradients["W3"] *= 1.001
        return result

    monkeypatch.setattr(compare, "autograd_gradients", wrong)
    report = verify.check(derive.examples.seed())
    assert [r.name for r in report.failures] == ["W3"]
    assert "autograd disagrees (symbolic and finite differences agree)" in report.failures[0].verdict


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dtype": "float16"}, "unknown dtype 'float16'; use one of float64, float32"),
        ({"device": "tpu"}, "unknown device 'tpu'; use one of cpu, cuda"),
        ({"gradients": {"W9": 0}}, "no parameter 'W9'"),
    ],
)
def test_bad_arguments_raise_one_line_errors(kwargs, message):
    with pytest.raises((DeriveError, ValueError), match=message):
        verify.check(derive.examples.seed(), **kwargs)


def test_cuda_without_a_gpu_is_bad_input():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(DeriveError, match="device 'cuda' is not available"):
        verify.check(derive.examples.seed(), device="cuda")


def _shifted(monkeypatch, where: str, relative: float) -> None:
    """Plant a relative error in derive's loss ("derived") or in autograd's ("autograd") as check sees it."""
    import dataclasses

    import verify.compare as compare

    if where == "derived":
        real_derivation = compare.Derivation

        def derivation(network):
            d = real_derivation(network)
            d.loss *= 1 + relative
            return d

        monkeypatch.setattr(compare, "Derivation", derivation)
    else:
        real_autograd = compare.autograd_gradients

        def autograd(network, **kwargs):
            result = real_autograd(network, **kwargs)
            return dataclasses.replace(result, loss=result.loss * (1 + relative))

        monkeypatch.setattr(compare, "autograd_gradients", autograd)


@pytest.mark.parametrize("where", ["derived", "autograd"])
def test_a_wrong_loss_on_either_side_fails_the_check(monkeypatch, where):
    # each side's loss is compared with the other's, not with itself: a planted error of 1e-6 fails the loss
    net = derive.examples.seed()
    right = verify.check(net)
    _shifted(monkeypatch, where, 1e-6)
    report = verify.check(net)
    assert right.loss_ok and not report.loss_ok and not report.ok
    assert report.failures == []  # the gradients are right: only the loss is wrong
    assert report.loss_symbolic == pytest.approx(right.loss_symbolic * (1 + (where == "derived") * 1e-6), rel=1e-15)
    assert report.loss_autograd == pytest.approx(right.loss_autograd * (1 + (where == "autograd") * 1e-6), rel=1e-15)
    assert next(line for line in str(report).splitlines() if line.startswith("loss ")).endswith("<-- mismatch")


def test_the_losses_compared_are_derives_and_torchs_own():
    net = derive.examples.classic_2_2_2()
    report = verify.check(net)
    assert report.loss_symbolic == derive.derive(net).loss
    assert report.loss_autograd == verify.autograd_gradients(net).loss
    assert report.loss_symbolic == pytest.approx(0.298371109, abs=5e-10)  # the worked example's E_total


@pytest.mark.parametrize(
    "value",
    [0.123456789, 1 / 3, 0.1 + 0.2, -2.718281828459045, 1e-300, 5e-324, 1.7976931348623157e308, 123456.7890123],
)
def test_the_reproducers_spec_keeps_every_float_exactly(value):
    net = derive.examples.seed().with_parameters({"W1": value, "b3": -value}).replace(x=[[value, 1.0]], freeze=("W2",))
    line = verify.reproducer(net, "cpu", "float64")
    again = derive.loads_spec(line.split("# net.json: ")[1], format="json")
    assert again == net and again.layers[0].weight[0][0] == value  # bit for bit, frozen parameters too
    custom = verify.reproducer(net, "cpu", "float64", custom=True)
    text = ast.literal_eval(custom.split("loads_spec(")[1].split(", format=")[0])
    assert derive.loads_spec(text, format="json") == net
