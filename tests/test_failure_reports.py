"""A failing property test is reported by name under the project's pytest settings (warnings as errors).

Run in a child pytest: a hypothesis failure report that raised (e.g. a warning turned into an error) would
show as INTERNALERROR instead of naming the test.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PLANTED = '''
from hypothesis import given, settings, strategies as st
import derive
import verify


@settings(max_examples=5, deadline=None, database=None)
@given(st.sampled_from([1e-3, 1e-2]))
def test_planted_property(error):
    net = derive.examples.seed()
    g = derive.gradients(net)
    g["b1"] = g["b1"] * (1 + error)  # a planted error: every example fails
    report = verify.check(net, gradients=g)
    assert report.ok, str(report)
'''


def test_a_failing_property_is_reported_by_name_not_as_an_internal_error(tmp_path):
    pytest.importorskip("torch")
    (tmp_path / "test_planted.py").write_text(PLANTED, encoding="utf-8")
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-c", str(ROOT / "pyproject.toml"),
               "--rootdir", str(tmp_path), "-q", "test_planted.py"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    out = result.stdout + result.stderr
    assert "INTERNALERROR" not in out, out
    assert result.returncode == 1, out
    assert "FAILED test_planted.py::test_planted_property" in out, out
    assert "mismatch: b1 on cpu, float64" in out, out  # hypothesis' report of the failing example
