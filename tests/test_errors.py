"""Bad input: a clear one-line error and exit status 2 from the CLI, never a traceback."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import derive

ROOT = Path(__file__).resolve().parent.parent
SEED = json.loads((ROOT / "examples" / "seed.json").read_text())


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "derive", *args], capture_output=True, text=True, cwd=ROOT, timeout=60
    )


def _spec(tmp_path, change, suffix=".json"):
    doc = json.loads(json.dumps(SEED))
    change(doc)
    path = tmp_path / f"bad{suffix}"
    path.write_text(json.dumps(doc))
    return str(path)


def _set(path, value):
    def change(doc):
        target = doc
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


BAD_SPECS = {
    "unknown activation": (_set(("layers", 0, "activation"), "sigmod"), r"unknown activation 'sigmod'.*'sigmoid'"),
    "unknown loss": (_set(("loss",), "crossentropy"), r"unknown loss 'crossentropy'"),
    "shapes do not chain": (_set(("layers", 1, "weight"), [[0.1, 0.2, 0.3]]), r"layers 1 and 2 do not chain"),
    "bias length": (_set(("layers", 0, "bias"), [0.1]), r"bias has 1 values but weight has 2 rows"),
    "x width": (_set(("data", "x"), [[1, 1, 1]]), r"x has 3 values per sample; layer 1 takes 2"),
    "missing data": (lambda doc: doc.pop("data"), r"no x data"),
    "missing y": (lambda doc: doc["data"].pop("y"), r"no y data"),
    "string weight": (_set(("layers", 0, "weight"), [["0.1", 0.2], [0.3, 0.4]]), r"must be a number"),
    "bce target": (_set(("data", "y"), [[2]]), r"loss 'bce' needs targets in \[0, 1\]"),
    "bce after tanh": (_set(("layers", 1, "activation"), "tanh"), r"loss 'bce' needs predictions in \[0, 1\]"),
    "unknown key": (_set(("scheduler",), "cosine"), r"unknown key 'scheduler'"),
    "ragged": (_set(("layers", 0, "weight"), [[0.1, 0.2], [0.3]]), r"ragged"),
}


@pytest.mark.parametrize("case", sorted(BAD_SPECS))
def test_bad_spec_is_one_line_and_exit_2(tmp_path, case):
    change, message = BAD_SPECS[case]
    result = _run("grads", "--spec", _spec(tmp_path, change))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("derive: error: ")
    assert re.search(message, result.stderr), result.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--x", "nan,1"], r"x\[0\]\[0\] is nan"),
        (["--x", "1,inf"], r"x\[0\]\[1\] is inf"),
        (["--y", "0;1"], r"x has 1 samples but y has 2"),
        (["--x", "1,a"], r"--x '1,a': expected numbers"),
        (["--loss", "bcx"], r"Did you mean 'bce'"),
        (["--lr", "-1"], r"lr must be positive"),
    ],
)
def test_bad_data_options_are_one_line_and_exit_2(args, message):
    result = _run("grads", "--example", "seed", *args)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert re.search(message, result.stderr), result.stderr


def test_nan_weight_in_spec_is_refused(tmp_path):
    path = tmp_path / "nan.toml"
    text = (ROOT / "examples" / "classic_2_2_2.toml").read_text().replace("0.15", "nan", 1)
    path.write_text(text)
    result = _run("grads", "--spec", str(path))
    assert result.returncode == 2 and "is nan; every value must be finite" in result.stderr


def test_malformed_toml_is_one_line_and_exit_2(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text('loss = "bce"\n[[layers]\nweight = [[1]]\n')
    result = _run("grads", "--spec", str(path))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "malformed TOML" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_missing_spec_file_and_wrong_suffix(tmp_path):
    result = _run("grads", "--spec", str(tmp_path / "none.toml"))
    assert result.returncode == 2 and "cannot read spec file" in result.stderr
    result = _run("grads", "--spec", str(tmp_path / "net.yaml"))
    assert result.returncode == 2 and "end in .toml or .json" in result.stderr


def test_python_api_raises_derive_errors():
    with pytest.raises(derive.ShapeError, match="do not chain"):
        derive.Network([derive.Linear([[1, 2]], [0]), derive.Linear([[1, 2]], [0])], x=[1, 2], y=0)
    with pytest.raises(derive.ValueDomainError, match="is inf"):
        derive.Linear([[float("inf")]], [0])
    with pytest.raises(derive.UnknownOpError, match="Did you mean 'relu'"):
        derive.Linear([[1.0]], [0], "rellu")


def test_spec_strings_are_never_evaluated(tmp_path):
    marker = tmp_path / "PWNED"
    payload = f"__import__('pathlib').Path({str(marker)!r}).write_text('x')"
    result = _run("grads", "--spec", _spec(tmp_path, _set(("layers", 0, "activation"), payload)))
    assert result.returncode == 2 and not marker.exists()
    result = _run("grads", "--example", "seed", "--x", payload)
    assert result.returncode == 2 and not marker.exists()


def test_softmax_is_refused_before_the_last_layer():
    with pytest.raises(derive.DeriveError, match="layer 1: 'softmax' is supported on the last layer only"):
        derive.Network(
            [derive.Linear([[1, 2], [3, 4]], [0, 0], "softmax"), derive.Linear([[1, 2]], [0], "sigmoid")],
            x=[1, 1], y=0, loss="bce",
        )  # fmt: skip
