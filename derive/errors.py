"""Errors raised on bad input: one class per kind, each message one line that says what to fix.

Every error derive raises for a user's mistake is a `DeriveError` (a `ValueError`), so callers and the
command line catch one type; the command line prints its message and exits with status 2.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class DeriveError(ValueError):
    """Base class: bad input that derive refuses, with a one-line message saying what and how to fix."""


class UnknownOpError(DeriveError, KeyError):
    """An activation or loss name that is not in the registry."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class SpecError(DeriveError):
    """A spec file (TOML or JSON) that is malformed or has the wrong structure."""


class ShapeError(DeriveError):
    """Tensors whose shapes do not chain (layer to layer, data to network)."""


class ValueDomainError(DeriveError):
    """A value outside its allowed domain: NaN or inf, or a target a loss cannot take."""


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """Return ``" Did you mean 'x'?"`` for the closest known name, or ``""`` when none is close.

    >>> did_you_mean("tanhh", ["tanh", "relu"])
    " Did you mean 'tanh'?"
    """
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" Did you mean {close[0]!r}?" if close else ""
