r"""Ops over dims: ``sum`` and ``mean`` (any dims, ``keepdim``), ``logsumexp``, ``softmax`` and ``log_softmax``.

Partials from structure: ∂(Σ a)/∂a_k = 1, ∂ mean/∂a_k = 1/n, ∂ LSE/∂a_k = e^{a_k − v}, and for the outputs
v_i of log-softmax ∂v_i/∂a_j = δ_ij − e^{v_j}; softmax's are a_i(δ_ij − a_j) over its outputs.

>>> import numpy as np, sympy as sp
>>> from derive.model.lower import Lowering
>>> low = Lowering()
>>> x = np.array([sp.symbols("a b"), sp.symbols("c d")], dtype=object)
>>> Mean(dims=(1,), keepdim=True).lower(low, x).shape, str(low.nodes[0].expr)
((2, 1), 'a/2 + b/2')
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import sympy as sp

from derive.errors import ShapeError
from derive.ops.softmax import LogSumExp as LSE, Softmax as SoftmaxFunction
from derive.ops.tensor import TensorOp, register, symbols_only
from derive.terms import total


def _groups(x: np.ndarray, dims: tuple[int, ...] | None, keepdim: bool, what: str):
    """The output shape, and for each output index the elements it reduces (in row-major order)."""
    if dims is None or dims == ():
        dims = tuple(range(x.ndim))
    try:
        axes = sorted({d % x.ndim for d in dims}) if x.ndim else []
    except ZeroDivisionError:
        axes = []
    for d in dims:
        if x.ndim and not -x.ndim <= d < x.ndim:
            raise ShapeError(f"{what}: dim {d} is out of range for a tensor of shape {x.shape}")
    moved = np.moveaxis(x, axes, list(range(x.ndim - len(axes), x.ndim))) if axes else x
    outer = moved.shape[: x.ndim - len(axes)]
    shape = tuple(1 if i in axes else s for i, s in enumerate(x.shape)) if keepdim else outer

    def groups() -> Iterator[tuple[tuple[int, ...], list[sp.Expr]]]:
        for index in np.ndindex(outer):
            yield index, list(np.asarray(moved[index]).ravel())

    return shape, outer, groups()


def average(elements: list[sp.Expr], count: int) -> tuple[sp.Expr, list]:
    """Σ e / count (``count`` may exceed the elements: average pooling counts padded zeros), ∂/∂e = 1/count."""
    share = sp.Rational(1, count)
    return total([share * e for e in elements]), [(e, share) for e in elements]


@dataclass(frozen=True)
class _Reduction(TensorOp):
    dims: tuple[int, ...] | None = None
    keepdim: bool = False

    def lower(self, lowering, x: np.ndarray) -> np.ndarray:
        shape, outer, groups = _groups(x, self.dims, self.keepdim, self.key)
        out = lowering.new(shape)
        flat = out.reshape(outer)
        for index, elements in groups:
            expr, partials = self.element(flat[index], elements)
            lowering.define(flat[index], expr, symbols_only(partials))
        return out

    def element(self, out: sp.Symbol, elements: list[sp.Expr]) -> tuple[sp.Expr, list]:
        raise NotImplementedError


@register
@dataclass(frozen=True)
class Sum(_Reduction):
    key = "sum"

    def element(self, out: sp.Symbol, elements: list[sp.Expr]) -> tuple[sp.Expr, list]:
        return total(elements), [(e, sp.S.One) for e in elements]

    def describe(self, *inputs: str) -> str:
        return rf"\textstyle\sum {inputs[0]}"


@register
@dataclass(frozen=True)
class Mean(_Reduction):
    key = "mean"

    def element(self, out: sp.Symbol, elements: list[sp.Expr]) -> tuple[sp.Expr, list]:
        if not elements:
            raise ShapeError("mean of an empty tensor")
        return average(elements, len(elements))

    def describe(self, *inputs: str) -> str:
        return rf"\operatorname{{mean}}\left({inputs[0]}\right)"


@register
@dataclass(frozen=True)
class LogSumExp(_Reduction):
    key = "logsumexp"

    def element(self, out: sp.Symbol, elements: list[sp.Expr]) -> tuple[sp.Expr, list]:
        return LSE(*elements), [(e, sp.exp(e - out)) for e in elements]

    def describe(self, *inputs: str) -> str:
        return rf"\operatorname{{LSE}}\left({inputs[0]}\right)"


@dataclass(frozen=True)
class _AlongDim(TensorOp):
    """An op mapping each vector along ``dim`` to a vector of the same length."""

    dim: int = -1

    def lower(self, lowering, x: np.ndarray) -> np.ndarray:
        if x.ndim == 0:
            raise ShapeError(f"{self.key}: needs a tensor of at least one dimension")
        if not -x.ndim <= self.dim < x.ndim:
            raise ShapeError(f"{self.key}: dim {self.dim} is out of range for a tensor of shape {x.shape}")
        out = lowering.new(x.shape)
        vectors, outs = np.moveaxis(x, self.dim, -1), np.moveaxis(out, self.dim, -1)
        for index in np.ndindex(vectors.shape[:-1]):
            self.vector(lowering, list(vectors[index]), list(outs[index]))
        return out

    def vector(self, lowering, xs: list[sp.Expr], outs: list[sp.Symbol]) -> None:
        raise NotImplementedError


@register
@dataclass(frozen=True)
class Softmax(_AlongDim):
    key = "softmax"

    def vector(self, lowering, xs: list[sp.Expr], outs: list[sp.Symbol]) -> None:
        for i, out in enumerate(outs):
            partials = [(x, out * ((1 if i == j else 0) - outs[j])) for j, x in enumerate(xs)]
            lowering.define(out, SoftmaxFunction(i + 1, *xs), symbols_only(partials))

    def describe(self, *inputs: str) -> str:
        return rf"\operatorname{{softmax}}\left({inputs[0]}\right)"


@register
@dataclass(frozen=True)
class LogSoftmax(_AlongDim):
    key = "log_softmax"

    def vector(self, lowering, xs: list[sp.Expr], outs: list[sp.Symbol]) -> None:
        lse = LSE(*xs)
        for i, out in enumerate(outs):
            partials = [(x, (1 if i == j else 0) - sp.exp(outs[j])) for j, x in enumerate(xs)]
            lowering.define(out, xs[i] - lse, symbols_only(partials))

    def describe(self, *inputs: str) -> str:
        return rf"\log\operatorname{{softmax}}\left({inputs[0]}\right)"
