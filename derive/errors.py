"""Errors raised on bad input: one class per kind, each message one line that says what to fix.

Every error derive raises for a user's mistake is a `DeriveError` (a `ValueError`), so callers and the
command line catch one type; the command line prints its message and exits with status 2 (3 for an `OutputError`).
"""

from __future__ import annotations

import difflib
import importlib
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType


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


class MissingExtraError(DeriveError):
    """An optional package (torch, hypothesis) that a command needs is not installed: the message names the
    extra of ``derive-grads`` that installs it."""


#: The optional packages, the extra of ``derive-grads`` that installs each, and what to run first.
EXTRAS = {
    "torch": ("torch", (" (its CPU build first, to avoid a multi-GB CUDA download: "
                        "pip install torch --index-url https://download.pytorch.org/whl/cpu)")),
    "hypothesis": ("check", ""),
}


def install_hint(package: str) -> str:
    """How to install an optional package: the extra that brings it.

    >>> install_hint("hypothesis")
    "pip install 'derive-grads[check]'"
    """
    extra, first = EXTRAS[package]
    return f"pip install 'derive-grads[{extra}]'{first}"


def require(package: str, needed_for: str) -> ModuleType:
    """The optional ``package`` (a key of `EXTRAS`), imported; a `MissingExtraError` naming its extra if it is
    not installed. ``needed_for`` says what needs it ("derive verify", "reading a torch model").

    >>> require("json", "nothing").__name__
    'json'
    """
    try:
        return importlib.import_module(package)
    except ImportError as err:
        why = "is not installed" if getattr(err, "name", None) == package else f"cannot be imported ({err})"
        raise MissingExtraError(f"{needed_for} needs {package}, which {why}: {install_hint(package)}") from None


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


def read_text_file(path: Path, what: str) -> str:
    """The UTF-8 text of a regular file; a `DeriveError` in one line for anything else.

    A FIFO or a device is refused before it is opened (reading one would wait for a writer, or never end);
    a file that is not UTF-8 names the first bad byte.
    """
    import stat

    try:
        mode = path.stat().st_mode
        if not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
            kind = "a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "not a regular file"
            raise SpecError(f"{path}: {kind}; a {what} is read from a regular file (standard input: '-')")
        data = path.read_bytes()
    except OSError as err:
        raise SpecError(f"{path}: cannot read {what}: {err.strerror or err}") from None
    return decode_utf8(data, f"{path}")


def decode_utf8(data: bytes, where: str) -> str:
    """``data`` as UTF-8 text, else a `DeriveError` naming the first byte that is not.

    >>> decode_utf8(b"lr = 1 # caf\\xe9", "net.toml")
    Traceback (most recent call last):
    ...
    derive.errors.SpecError: net.toml: not UTF-8 text (byte 0xe9 at offset 12); save the file as UTF-8
    """
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise SpecError(f"{where}: not UTF-8 text (byte {data[err.start]:#04x} at offset {err.start}); "
                        "save the file as UTF-8") from None
