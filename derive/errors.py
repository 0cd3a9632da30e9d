"""Errors raised on bad input: one class per kind, each message one line that says what to fix.

Every error derive raises for a user's mistake is a `DeriveError` (a `ValueError`), so callers and the
command line catch one type; the command line prints its message and exits with status 2 (3 for an `OutputError`).
"""

from __future__ import annotations

import difflib
import unicodedata
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


class OutputError(DeriveError):
    """An output file that cannot be written (a full disk, a missing folder): the command line exits 3."""

    exit_status = 3


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """Return ``" Did you mean 'x'?"`` for the closest known name, or ``""`` when none is close.

    >>> did_you_mean("tanhh", ["tanh", "relu"])
    " Did you mean 'tanh'?"
    """
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def printable(name: str) -> str:
    r"""Text with its control characters escaped, so that printing it cannot move a terminal's cursor
    or break a one-line message (names from files, paths, the messages that quote them).

    >>> printable("net\x1b[2J\tv2")
    'net\\x1b[2J\\tv2'
    """
    return "".join(ch.encode("unicode_escape").decode("ascii") if unicodedata.category(ch) == "Cc" else ch for ch in name)
