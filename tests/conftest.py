"""Shared test set-up: hypothesis profiles, the cuda marker's skip, helpers to run the CLI."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

# CI sets CI=true, and hypothesis then loads its own derandomized "ci" profile. HYPOTHESIS_PROFILE picks
# "dev" (quick) or "thorough" (a long run) instead.
settings.register_profile("dev", max_examples=20, deadline=None)
settings.register_profile(
    "thorough", max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
if os.environ.get("HYPOTHESIS_PROFILE"):
    settings.load_profile(os.environ["HYPOTHESIS_PROFILE"])


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
