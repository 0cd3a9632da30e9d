"""verify.check_backprop grades hand-written backward passes: right ones pass; wrong ones name the tensors and
shrink to the smallest batch that shows the mistake."""

import subprocess
import sys
from pathlib import Path

import pytest

import verify
from tests.backprops import student

ROOT = Path(__file__).resolve().parents[1]
NET = {"sizes": (2, 3, 1), "activations": ("sigmoid", "sigmoid"), "loss": "bce"}


def test_a_correct_backprop_passes():
    report = verify.check_backprop(student.correct, **NET, examples=60, seed=0)
    assert report.ok and not report.wrong, str(report)


def test_a_wrong_sigma_prime_names_layer_1_weight_and_bias_on_one_sample():
    report = verify.check_backprop(student.wrong_sigmoid_derivative, **NET, examples=60, seed=0)
    assert not report.ok
    assert report.wrong == [(1, "weight"), (1, "bias")]
    assert report.network.batch == 1
    text = str(report)
    assert "wrong: W of layer 1, b of layer 1" in text and "derive's derivation of ∂L/∂W1" in text


def test_forgetting_the_mean_in_the_output_bias_names_only_it_on_two_samples():
    report = verify.check_backprop(student.forgot_the_mean_in_the_bias, **NET, examples=60, seed=0)
    assert not report.ok
    assert report.wrong == [(2, "bias")]
    assert report.network.batch == 2


def test_a_wrong_shape_is_named_not_a_traceback():
    report = verify.check_backprop(student.wrong_shape, **NET, examples=10, seed=0)
    assert not report.ok and "layer 1 weight: expected an array of shape (3, 2), got shape (2, 3)" in str(report)


def test_the_assertion_helper_raises_with_the_report():
    verify.assert_backprop(student.correct, **NET, examples=10, seed=1)
    with pytest.raises(AssertionError, match="wrong: b of layer 2"):
        verify.assert_backprop(student.forgot_the_mean_in_the_bias, **NET, examples=60, seed=1)


@pytest.mark.parametrize("function, status", [("correct", 0), ("wrong_sigmoid_derivative", 1)])
def test_derive_check_exits_0_and_1(function, status, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "derive", "check", f"{ROOT / 'tests' / 'backprops' / 'student.py'}:{function}",
         "--sizes", "2,3,1", "--activations", "sigmoid,sigmoid", "--loss", "bce", "--examples", "40", "--seed", "0"],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )
    assert result.returncode == status, result.stderr
    if status:
        assert "wrong: W of layer 1, b of layer 1" in result.stdout
        assert not list(tmp_path.iterdir())  # written only where asked (--counterexample FILE)
