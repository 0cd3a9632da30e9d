"""derive check at its edges: a function with the wrong signature is a usage error (status 2) naming the
expected one; every returned array of the wrong shape is named; the counterexample is written only where
``--counterexample FILE`` asks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import derive
import verify
from derive.cli import main

ROOT = Path(__file__).resolve().parent.parent
STUDENT = ROOT / "tests" / "backprops" / "student.py"
NET = ["--sizes", "2,3,1", "--activations", "sigmoid,sigmoid", "--loss", "bce", "--seed", "0"]

FUNCTIONS = '''
import numpy as np

def two_arguments(x, y):
    return x, y

def keywords_only(x, y, *, W1, b1, W2, b2):
    return W1, b1, W2, b2

def every_shape_wrong(x, y, W1, b1, W2, b2):
    return np.zeros_like(W1.T), np.zeros((1, len(b1))), np.zeros_like(W2.T), np.zeros((1, 1))

def any_arguments(*arrays):
    return [np.zeros_like(a) for a in arrays[2:]]
'''


@pytest.fixture
def functions(tmp_path):
    path = tmp_path / "functions.py"
    path.write_text(FUNCTIONS)
    return path


@pytest.mark.parametrize("name, signature", [("two_arguments", "two_arguments(x, y)"),
                                             ("keywords_only", "keywords_only(x, y, *, W1, b1, W2, b2)")])
def test_a_wrong_signature_is_a_usage_error_naming_the_expected_one(functions, capsys, monkeypatch, tmp_path, name,
                                                                      signature):
    monkeypatch.chdir(tmp_path)
    assert main(["check", f"{functions}:{name}", *NET]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "Traceback" not in captured.err
    [line] = captured.err.strip().splitlines()
    assert line.startswith(f"derive: error: {signature} cannot be called as {name}(x, y, W1, b1, W2, b2)")
    assert "returns dW1, db1, dW2, db2" in line and "wrong" not in line


def test_the_signature_is_checked_before_any_network_is_drawn():
    calls = []

    def one(x):
        calls.append(x)

    with pytest.raises(verify.backprop_check.SignatureError, match=r"one\(x\) cannot be called as one\(x, y, W1, b1\)"):
        verify.check_backprop(one, sizes=(2, 1), activations=("sigmoid",), loss="bce")
    assert calls == [] and issubclass(verify.backprop_check.SignatureError, derive.DeriveError)


def test_a_function_taking_any_arguments_is_graded(functions, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert main(["check", f"{functions}:any_arguments", *NET, "--examples", "5"]) == 1
    assert "wrong: W of layer 1, b of layer 1, W of layer 2, b of layer 2" in capsys.readouterr().out


def test_every_array_of_a_wrong_shape_is_named(functions, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert main(["check", f"{functions}:every_shape_wrong", *NET, "--examples", "5"]) == 1
    out = capsys.readouterr().out
    for expected in ("layer 1 weight: expected an array of shape (3, 2), got shape (2, 3)",
                     "layer 1 bias: expected an array of shape (3,), got shape (1, 3)",
                     "layer 2 weight: expected an array of shape (1, 3), got shape (3, 1)",
                     "layer 2 bias: expected an array of shape (1,), got shape (1, 1)"):
        assert expected in out
    assert "wrong: W of layer 1, b of layer 1, W of layer 2, b of layer 2" in out
    assert "torch's layout" in out


def test_the_counterexample_is_written_only_where_asked(capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    wrong = f"{STUDENT}:wrong_sigmoid_derivative"
    assert main(["check", wrong, *NET, "--examples", "40"]) == 1
    assert list(tmp_path.iterdir()) == []  # nothing written unasked, in the current folder or elsewhere
    assert "--counterexample FILE.json writes this network" in capsys.readouterr().out
    target = tmp_path / "out" / "ce.json"
    target.parent.mkdir()
    assert main(["check", wrong, *NET, "--examples", "40", "--counterexample", str(target)]) == 1
    assert f"the counterexample is in {target}" in capsys.readouterr().out
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    net = derive.load_spec(target)  # a spec file derive reads back: the network the pass is wrong on
    assert net.batch == 1 and json.loads(target.read_text())["loss"] == "bce"


def test_the_counterexample_option_is_in_the_help_and_checked(capsys, tmp_path):
    assert main(["check", "--help"]) == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--counterexample FILE.json" in help_text and "without it nothing is written" in help_text
    wrong = f"{STUDENT}:wrong_sigmoid_derivative"
    assert main(["check", wrong, *NET, "--counterexample", str(tmp_path / "ce.txt")]) == 2
    assert "name it FILE.json" in capsys.readouterr().err
    assert main(["check", wrong, *NET, "--examples", "40", "--counterexample", str(tmp_path / "no" / "ce.json")]) == 3
    assert f"cannot write {tmp_path / 'no' / 'ce.json'}" in capsys.readouterr().err
