"""A failing property test is reported by name under the project's pytest settings (warnings as errors).

Run in a child pytest: a hypothesis failure report that raised (e.g. a warning turned into an error) would
show as INTERNALERROR instead of naming the test. Warnings are errors for derive's, verify's and the tests' own
code; deprecation warnings of other modules are not (pyproject.toml): hypothesis imports optional third-party
modules while it reports a failure (`hypothesis.extra._patching` imports libcst), and one that warns there
(libcst through mypy_extensions did) must not turn the report into an internal error.
"""

import os
import subprocess
import sys
import warnings
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


#: a third-party package that hypothesis imports while it reports a failure, warning as it is imported
THIRD_PARTY = '''
import warnings

warnings.warn("a third-party module's own deprecation", DeprecationWarning, stacklevel=2)
raise ImportError("a stand-in: hypothesis goes on without it")
'''


def test_a_failing_property_is_reported_by_name_not_as_an_internal_error(tmp_path):
    pytest.importorskip("torch")
    (tmp_path / "test_planted.py").write_text(PLANTED, encoding="utf-8")
    (tmp_path / "site" / "libcst").mkdir(parents=True)
    (tmp_path / "site" / "libcst" / "__init__.py").write_text(THIRD_PARTY, encoding="utf-8")
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-c", str(ROOT / "pyproject.toml"),
               "--rootdir", str(tmp_path), "-q", "test_planted.py"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(tmp_path / "site")])}
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    out = result.stdout + result.stderr
    assert "INTERNALERROR" not in out, out
    assert result.returncode == 1, out
    assert "FAILED test_planted.py::test_planted_property" in out, out
    assert "mismatch: b1 on cpu, float64" in out, out  # hypothesis' report of the failing example


@pytest.mark.parametrize("module", ["derive.report.build", "verify.compare", "tests.test_failure_reports", "derive"])
def test_deprecation_warnings_of_derive_verify_and_the_tests_are_errors(module):
    with pytest.raises(DeprecationWarning):
        warnings.warn_explicit("planted", DeprecationWarning, "planted.py", 1, module=module)


@pytest.mark.parametrize("module", ["libcst", "importlib._bootstrap", "derive_other"])
def test_deprecation_warnings_of_other_modules_are_not(module):
    with warnings.catch_warnings(record=True) as caught:
        warnings.warn_explicit("planted", DeprecationWarning, "planted.py", 1, module=module)
    assert [w.category for w in caught] in ([], [DeprecationWarning])  # ignored, or recorded: never raised
