"""Data from the command line: ``--x``/``--y`` as the ``"1,2;3,4"`` text form or a file of any rank.

A value that ends in ``.npy`` (NumPy, no pickles), ``.pt`` (one tensor, read with
``torch.load(weights_only=True)``) or ``.json`` (nested lists of numbers) is read from that file; any other
value is the text form: numbers separated by ``,``, samples by ``;``. Nothing is evaluated: the text form is
read with ``float`` only. Integer arrays stay integers (class indices); the text form gives floats, as it
always has. Every value must be finite.

>>> load_data("-1,2;3,4.5")
array([[-1. ,  2. ],
       [ 3. ,  4.5]])
>>> load_data("0.5").shape
(1, 1)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from derive.errors import DeriveError, ShapeError, ValueDomainError, require

#: File suffixes read as data, and what each holds.
SUFFIXES = {".npy": "a NumPy array", ".pt": "one torch tensor", ".json": "nested lists of numbers"}


class DataError(DeriveError):
    """Data given on the command line (text or file) that cannot be read as finite numbers."""


def load_data(value: str, option: str = "--x") -> np.ndarray:
    """The array named by ``value``: a data file (`SUFFIXES`) or the ``"1,2;3,4"`` text form (2-D, float64).

    ``option`` names the command-line option in error messages.
    """
    path = Path(value)
    if path.suffix.lower() in SUFFIXES:
        if not path.exists():
            raise DataError(f"{option} {value}: no such file")
        if not path.is_file():
            raise DataError(f"{option} {value}: not a file")
        array = _read(path, option)
    elif _names_a_file(path):
        known = ", ".join(f"{s} ({what})" for s, what in SUFFIXES.items())
        raise DataError(f"{option} {value}: data files end in {known}, got {path.suffix or 'no suffix'!r}")
    else:
        array = _text(value, option)
    return _checked(array, f"{option} {value}")


def check_rank(array: np.ndarray, option: str, max_rank: int = 2) -> np.ndarray:
    """Refuse arrays of more than ``max_rank`` dimensions (a chain of Linear layers takes rows of features).

    >>> check_rank(np.zeros((2, 3, 4)), "--x")
    Traceback (most recent call last):
    ...
    derive.errors.ShapeError: --x has shape (2, 3, 4) (rank 3); a chain of Linear layers takes one row of features per sample (rank 1 or 2): flatten the trailing dimensions, e.g. numpy's x.reshape(len(x), -1)
    """
    if array.ndim > max_rank:
        raise ShapeError(
            f"{option} has shape {tuple(array.shape)} (rank {array.ndim}); a chain of Linear layers takes one "
            f"row of features per sample (rank 1 or {max_rank}): flatten the trailing dimensions, e.g. "
            "numpy's x.reshape(len(x), -1)"
        )
    return array


def _names_a_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:  # a name too long for the file system: text, not a path
        return False


def _text(text: str, option: str) -> np.ndarray:
    """``"1,2;3,4"`` as a float64 matrix; no ``eval``, only ``float``."""
    try:
        rows = [[float(v) for v in row.split(",")] for row in text.split(";")]
    except ValueError:
        raise DataError(
            f"{option} {text!r}: expected numbers separated by ',' (samples by ';'), "
            f"or a file ending in {', '.join(SUFFIXES)}"
        ) from None
    widths = {len(row) for row in rows}
    if len(widths) > 1:
        raise ShapeError(f"{option} {text!r}: every sample needs the same number of values, got {sorted(widths)}")
    return np.array(rows, dtype=np.float64)


def _read(path: Path, option: str) -> np.ndarray:
    where = f"{option} {path}"
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            try:
                return np.load(path, allow_pickle=False)
            except ValueError as err:  # object arrays need pickles; a bad header
                raise DataError(f"{where}: not a plain numeric .npy array ({_first(err)})") from None
        if suffix == ".json":
            try:
                document = json.loads(path.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError) as err:
                raise DataError(f"{where}: malformed JSON: {_first(err)}") from None
            return _nested(document, where)
        return _tensor(path, where)
    except OSError as err:
        raise DataError(f"{where}: cannot read: {err.strerror or err}") from None


def _nested(document: Any, where: str) -> np.ndarray:
    """Nested lists of numbers as an array; refuse ragged lists, strings, booleans and nulls."""
    shape: list[int] = []
    value = document
    while isinstance(value, list):
        if not value:
            raise ShapeError(f"{where}: an empty list")
        shape.append(len(value))
        value = value[0]
    flat: list[Any] = []

    def walk(item: Any, depth: int, at: str) -> None:
        if depth == len(shape):
            if isinstance(item, bool) or not isinstance(item, (int, float)):
                raise DataError(f"{where}: {at} is {json.dumps(item)}, not a number")
            flat.append(item)
            return
        if not isinstance(item, list) or len(item) != shape[depth]:
            got = f"{len(item)} entries" if isinstance(item, list) else json.dumps(item)
            raise ShapeError(f"{where}: ragged lists: {at} has {got}, expected {shape[depth]} entries")
        for i, sub in enumerate(item):
            walk(sub, depth + 1, f"{at}[{i}]")

    walk(document, 0, "value" if not shape else "")
    integers = all(isinstance(v, int) for v in flat)
    return np.array(flat, dtype=np.int64 if integers else np.float64).reshape(shape)


def _tensor(path: Path, where: str) -> np.ndarray:
    torch = require("torch", f"{where}: reading a .pt file")
    try:
        value = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as err:  # noqa: BLE001 - torch's unpickler raises many kinds
        raise DataError(f"{where}: not a tensor file torch.load(weights_only=True) can read ({_first(err)})") from None
    if not isinstance(value, torch.Tensor):
        raise DataError(f"{where}: expected one tensor, got {type(value).__name__} (save it with torch.save(tensor, ...))")
    value = value.detach()
    if value.is_floating_point():
        return value.to(torch.float64).numpy()
    return value.numpy()


def _checked(array: np.ndarray, where: str) -> np.ndarray:
    """Numbers only (integers or reals, no complex numbers; booleans for ``--input``'s masks), all finite, at
    least one."""
    if array.dtype.kind == "b" and where.startswith("--input"):
        return array
    if array.dtype.kind not in "iuf":
        raise DataError(f"{where}: expected integers or real numbers, got dtype {array.dtype}")
    if array.size == 0:
        raise ShapeError(f"{where}: no values (shape {tuple(array.shape)})")
    if array.dtype.kind == "f":
        bad = np.argwhere(~np.isfinite(array))
        if len(bad):
            index = tuple(int(i) for i in bad[0])
            at = where.split()[0].lstrip("-") + "".join(f"[{i}]" for i in index)
            raise ValueDomainError(f"{where}: {at} is {array[index]}; values must be finite")
        if array.dtype != np.float64:
            array = array.astype(np.float64)  # float32 and half are exact in float64
    elif array.dtype.kind == "u":
        array = array.astype(np.int64)
    return array


def _first(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


__all__ = ["SUFFIXES", "DataError", "check_rank", "load_data"]
