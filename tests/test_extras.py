"""Without torch or hypothesis (the demo's .venv has neither): each command that needs one says which extra
of derive-grads installs it, in one line with status 2; everything else works (`derive verify` needs no
hypothesis, `derive check` no torch, `import verify` neither).

Each test runs one process in which the packages are hidden from the import system (tests/without.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

RUN = """
import contextlib, io, json
from derive.cli import main
results = []
for argv in ARGV:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(argv)
    results.append([status, out.getvalue(), err.getvalue()])
print(json.dumps(results))
"""


def without(packages: str, *argvs: list[str]) -> list[tuple[int, str, str]]:
    """``derive ARGV`` for each argv, in one process where ``packages`` are not installed."""
    code = RUN.replace("ARGV", repr([list(a) for a in argvs]))
    done = subprocess.run([sys.executable, str(ROOT / "tests" / "without.py"), packages, code], capture_output=True,
                          text=True, cwd=ROOT, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return [tuple(r) for r in json.loads(done.stdout.splitlines()[-1])]


CHECK = ["check", "tests/backprops/student.py:correct", "--sizes", "2,3,1", "--activations", "sigmoid,sigmoid",
         "--loss", "bce", "--examples", "5", "--seed", "1"]
TORCH_HINT = "pip install 'derive-grads[torch]'"


def test_without_torch_each_command_that_needs_it_names_the_extra():
    verify, random, model, data, check, report = without(
        "torch",
        ["verify", "--example", "seed"],
        ["verify", "--random", "1"],
        ["grads", "--torch", "examples/seed_model.py:CustomModel", "--x", "1,1", "--y", "0", "--loss", "bce"],
        ["grads", "--example", "seed", "--x", "tests/models/no_such.pt"],
        CHECK,
        ["report", "--example", "seed", "--format", "md"],
    )
    for status, out, err in (verify, random, model):
        assert status == 2 and out == "" and len(err.strip().splitlines()) == 1, err
        assert err.startswith("derive: error: ") and TORCH_HINT in err and "download.pytorch.org/whl/cpu" in err
        assert "Traceback" not in err and "ModuleNotFoundError" not in err
    assert "derive verify" in verify[2] and "reading a torch model" in model[2]
    assert data[0] == 2 and "no such file" in data[2]  # a .pt file is refused for what it is first
    assert check[0] == 0 and "agrees" in check[1]  # derive check needs no torch
    assert report[0] == 0 and report[1].startswith("# ")  # deriving and reporting need no torch


def test_without_hypothesis_check_names_the_extra_and_verify_works():
    verify, random, check = without(
        "hypothesis", ["verify", "--example", "seed"], ["verify", "--random", "1"], CHECK
    )
    assert verify[0] == 0 and "W5" in verify[1]  # verify draws nothing for a given network
    assert random[0] == 0 and "1 of 1 networks agree" in random[1]
    status, out, err = check
    assert status == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert "derive check" in err and "hypothesis" in err and "pip install 'derive-grads[check]'" in err


def test_import_verify_needs_no_hypothesis_and_check_backprop_says_what_it_needs():
    code = """
import derive, verify
print(verify.check(derive.examples.seed()).ok)
try:
    verify.check_backprop(lambda *a: a, sizes=(1, 1), activations=("sigmoid",), loss="bce")
except derive.DeriveError as err:
    print(type(err).__name__, err)
"""
    done = subprocess.run([sys.executable, str(ROOT / "tests" / "without.py"), "hypothesis", code],
                          capture_output=True, text=True, cwd=ROOT, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    ok, refusal = done.stdout.strip().splitlines()
    assert ok == "True"
    assert refusal.startswith("MissingExtraError ") and "derive-grads[check]" in refusal


def test_a_file_that_imports_torch_without_it_names_the_extra(tmp_path):
    script = tmp_path / "student.py"
    script.write_text("import torch\n\ndef backprop(x, y, W1, b1):\n    return W1, b1\n")
    [(status, _, err)] = without("torch", ["check", f"{script}:backprop", "--sizes", "1,1", "--activations",
                                           "sigmoid", "--loss", "bce"])
    assert status == 2 and "student.py imports torch, which is not installed" in err and TORCH_HINT in err
