"""Tensor ops of graph models: the base class, the registry, and the element-wise template.

A tensor op is a frozen dataclass (its attributes: ``dim``, ``keepdim``, an exponent …) that *lowers* tensors
of scalar SymPy atoms to the tensor of its outputs. Tensors are NumPy object arrays of symbols and numbers,
with torch's shapes. An op either passes elements through (shape ops: ``view``, ``transpose``, indexing), or
defines new scalars through the `Lowering` it is given: ``out = lowering.new(shape)``, then
``lowering.define(out[i], expr, partials)`` with the local partial ∂expr/∂s of every symbol ``s`` it uses,
from the op's own rule (never ``diff`` of a sum). Adding an op means adding one class and `register`-ing it.

>>> import numpy as np, sympy as sp
>>> from derive.model.lower import Lowering
>>> a, b = sp.symbols("a b")
>>> low = Lowering()
>>> out = OPS["mul"]().lower(low, np.array([a, b], dtype=object), np.array(sp.Integer(3), dtype=object))
>>> [(str(n.symbol), str(n.expr), n.partials) for n in low.nodes]
[('v_1', '3*a', ((a, 3),)), ('v_2', '3*b', ((b, 3),))]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import sympy as sp

from derive.errors import ShapeError

if TYPE_CHECKING:
    from derive.model.lower import Lowering

#: every tensor op class by key
OPS: dict[str, type[TensorOp]] = {}

Partials = Sequence[tuple[sp.Expr, sp.Expr]]


def register(cls: type[TensorOp]) -> type[TensorOp]:
    """Add a tensor op class to the registry under its ``key``."""
    OPS[cls.key] = cls
    return cls


@dataclass(frozen=True)
class TensorOp:
    """One tensor operation; subclasses set ``key`` and ``formula`` and implement `lower`."""

    key: ClassVar[str]
    #: the op in the report, over its inputs' LaTeX (``{0} + {1}``)
    formula: ClassVar[str] = ""

    def lower(self, lowering: Lowering, *inputs: np.ndarray) -> np.ndarray:
        """The output tensor of this op, defining new scalars through ``lowering``."""
        raise NotImplementedError

    def describe(self, *inputs: str) -> str:
        """LaTeX of the op applied to its inputs' LaTeX names."""
        if self.formula:
            return self.formula.format(*inputs)
        return rf"\operatorname{{{self.key}}}\left({', '.join(inputs)}\right)"


def symbols_only(partials: Partials) -> tuple[tuple[sp.Symbol, sp.Expr], ...]:
    """Drop the partials with respect to numbers (constants have no adjoint)."""
    return tuple((s, d) for s, d in partials if s.is_Symbol)


def broadcast(*tensors: np.ndarray, where: str = "") -> list[np.ndarray]:
    """Tensors broadcast to one shape, as torch does, or a `ShapeError` naming both shapes."""
    try:
        return list(np.broadcast_arrays(*tensors))
    except ValueError:
        shapes = " and ".join(str(tuple(t.shape)) for t in tensors)
        raise ShapeError(f"{where or 'an element-wise op'}: shapes {shapes} do not broadcast") from None


@dataclass(frozen=True)
class Elementwise(TensorOp):
    """An op applied element by element (with broadcasting): subclasses give one element's rule."""

    def scalar(self, out: sp.Symbol, *args: sp.Expr) -> tuple[sp.Expr, Partials]:
        """``out``'s definition over the elements ``args``, and ∂/∂ each arg (may use ``out`` itself)."""
        raise NotImplementedError

    def lower(self, lowering: Lowering, *inputs: np.ndarray) -> np.ndarray:
        arrays = broadcast(*inputs, where=self.key)
        out = lowering.new(arrays[0].shape)
        for index in np.ndindex(out.shape):
            args = [a[index] for a in arrays]
            expr, partials = self.scalar(out[index], *args)
            lowering.define(out[index], expr, symbols_only(partials))
        return out


def as_tensor(value: object) -> np.ndarray:
    """A tensor (object array) of SymPy atoms from a tensor or a Python number.

    >>> as_tensor(0.5).shape, as_tensor(0.5)[()]
    ((), 1/2)
    """
    if isinstance(value, np.ndarray) and value.dtype == object:
        return value
    return np.array(exact(value), dtype=object)


def exact(value: object) -> sp.Expr:
    """A Python number as an exact SymPy number: 2 as 2, 0.1 as 1/10 (its shortest repr, same float64)."""
    if isinstance(value, sp.Basic):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"not a number: {value!r}")
    return sp.Integer(value) if isinstance(value, int) else sp.Rational(repr(float(value)))
