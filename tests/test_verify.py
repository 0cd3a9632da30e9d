"""verify.check: agreement is ok, a planted error is caught and named."""

import pytest

import derive
import verify


def test_seed_checks_ok_and_names_every_parameter():
    report = verify.check(derive.examples.seed(), device="cpu")
    assert report.ok
    text = str(report)
    for name in ["W1", "W2", "W3", "W4", "W5", "W6", "b1", "b2", "b3"]:
        assert f"\n{name} " in text
    assert "0.2727379197567" in text


@pytest.mark.parametrize("name", ["W1", "W6", "b3"])
def test_a_relative_error_of_1e_6_fails_and_names_the_parameter(name):
    net = derive.examples.seed()
    g = derive.gradients(net)
    g[name] = g[name] * (1 + 1e-6)
    report = verify.check(net, gradients=g)
    assert not report.ok
    assert [r.name for r in report.failures] == [name]
    assert "mismatch" in next(line for line in str(report).splitlines() if line.startswith(name + " "))


def test_float32_agrees_within_its_tolerance():
    assert verify.check(derive.examples.classic_2_2_2(), dtype="float32").ok
