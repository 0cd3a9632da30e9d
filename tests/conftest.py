"""Shared test set-up: hypothesis profiles, the cuda marker's skip, helpers to run the CLI."""

from __future__ import annotations

import os
import tempfile

import pytest
from hypothesis import HealthCheck, settings

# Proofs of tensor rules proved while testing go to a cache of the session's own, not the user's
os.environ.setdefault("DERIVE_CACHE", tempfile.mkdtemp(prefix="derive-test-cache-"))

# Hypothesis profiles, chosen by HYPOTHESIS_PROFILE:
# - "dev" (the default): 25 random examples per property, with the local example database (.hypothesis/);
# - "fast": the same 25 examples every run (derandomized, no database), for CI and for timing the suite;
# - "ci": hypothesis's own profile (derandomized, no database, loaded when CI is set), with fast's count;
# - "thorough": 1000 examples per property, for a long run before a release.
# Property tests leave example counts to the profile and set deadline=None (SymPy compiles are slow once).
settings.register_profile("dev", max_examples=25, deadline=None)
settings.register_profile(
    "fast", max_examples=25, deadline=None, derandomize=True, database=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("ci", parent=settings.get_profile("ci"), max_examples=25)
settings.register_profile(
    "thorough", max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))


def _cuda_available() -> tuple[bool, str]:
    try:
        import torch
    except ImportError:
        return False, "torch is not installed"
    if not torch.cuda.is_available():
        return False, "CUDA is not available (torch.cuda.is_available() is false)"
    return True, ""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not any("cuda" in item.keywords for item in items):
        return
    available, reason = _cuda_available()
    if available:
        return
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=reason))
