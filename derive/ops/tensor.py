"""Tensor ops of graph models: the base class, the registry, and the element-wise template.

One op, one class. A tensor op is a frozen dataclass (its attributes: ``dim``, ``keepdim``, an exponent …)
holding side by side everything derive knows of it:

- ``aten`` and `TensorOp.read`: the ATen overloads it reads from a program torch exported, with torch's
  semantics (`derive.sources.torch_export` walks the program and asks each op's class);
- `TensorOp.lower`: the scalar lowering. It *lowers* tensors of scalar SymPy atoms to the tensor of its
  outputs (NumPy object arrays of symbols and numbers, with torch's shapes). An op either passes elements
  through (shape ops: ``view``, ``transpose``, indexing), or defines new scalars through the `Lowering` it is
  given: ``out = lowering.new(shape)``, then ``lowering.define(out[i], expr, partials)`` with the local partial
  ∂expr/∂s of every symbol ``s`` it uses, from the op's own rule (never ``diff`` of a sum);
- `TensorOp.forward` and `TensorOp.backward`: the tensor forward and the tensor backward rule (torch tensors),
  and `TensorOp.reads`, which forward values the rule reads (compiled gradients keep only those);
- `TensorOp.describe`: the op's LaTeX; its docstring's first line is its docs/ops.md row;
- `TensorOp.samples`: small instances, on which the tests check the tensor rule entry by entry against the
  scalar derivation and against autograd (tests/test_registry.py): registering an op tests it.

Adding an op means adding one class and `register`-ing it.

>>> import numpy as np, sympy as sp
>>> from derive.model.lower import Lowering
>>> a, b = sp.symbols("a b")
>>> low = Lowering()
>>> out = OPS["mul"]().lower(low, np.array([a, b], dtype=object), np.array(sp.Integer(3), dtype=object))
>>> [(str(n.symbol), str(n.expr), n.partials) for n in low.nodes]
[('v_1', '3*a', ((a, 3),)), ('v_2', '3*b', ((b, 3),))]
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import sympy as sp

from derive.errors import ShapeError

if TYPE_CHECKING:
    from derive.model.lower import Lowering

#: every tensor op class by key
OPS: dict[str, type[TensorOp]] = {}
#: the op class that reads each ATen overload (``"add.Tensor"``; the ``aten.`` prefix left out)
ATEN: dict[str, type[TensorOp]] = {}

Partials = Sequence[tuple[sp.Expr, sp.Expr]]


def register(cls: type[TensorOp]) -> type[TensorOp]:
    """Add a tensor op class to the registry under its ``key`` and its ATen overloads."""
    OPS[cls.key] = cls
    for name in cls.aten:
        if name in ATEN and ATEN[name] is not cls:
            raise RuntimeError(f"ATen op {name} is read by both {ATEN[name].__name__} and {cls.__name__}")
        ATEN[name] = cls
    return cls


def torch_module() -> Any:
    """torch, imported on first use: tensor rules run only where torch is the point."""
    import torch

    return torch


@dataclass(frozen=True)
class Sample:
    """A small instance of an op for the registry's tests: the op and its inputs.

    Inputs are float64 arrays (differentiated, unless their position is in ``data``), integer or boolean
    arrays (data: indices, masks), Python numbers, or None (an absent optional input).
    """

    op: TensorOp
    inputs: tuple[Any, ...]
    #: positions of float inputs that are data (running statistics, an additive mask), not differentiated
    data: tuple[int, ...] = ()


@dataclass(frozen=True)
class TensorOp:
    """One tensor operation; subclasses set ``key`` and ``formula`` and implement `lower`."""

    key: ClassVar[str]
    #: the op in the report, over its inputs' LaTeX (``{0} + {1}``)
    formula: ClassVar[str] = ""
    #: the ATen overloads `read` takes (``"add.Tensor"``)
    aten: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def read(cls, call: Any) -> Any:
        """The model-graph node of one ATen call (an `AtenCall` of `derive.sources.torch_export`)."""
        raise NotImplementedError(f"{cls.__name__} reads no ATen op")

    def lower(self, lowering: Lowering, *inputs: np.ndarray) -> np.ndarray:
        """The output tensor of this op, defining new scalars through ``lowering``."""
        raise NotImplementedError

    def reads(self) -> tuple[bool, bool]:
        """Whether the backward rule reads the op's inputs, and its output (compiled gradients keep only those)."""
        return True, True

    def forward(self, *inputs: Any) -> Any:
        """The op on torch tensors (absent optional inputs are None)."""
        raise NotImplementedError(f"{type(self).__name__} has no tensor forward")

    def forward_saving(self, *inputs: Any) -> tuple[Any, Any]:
        """The forward value, and what the backward rule keeps of the forward pass (max pooling's winners)."""
        return self.forward(*inputs), None

    def backward(self, g: Any, inputs: Sequence[Any], out: Any, wanted: Sequence[bool], saved: Any = None) -> list:
        """The gradient of each input (None where not ``wanted`` or not differentiable) from the output's ``g``."""
        raise NotImplementedError(f"{type(self).__name__} has no tensor backward rule")

    @classmethod
    def samples(cls) -> Iterable[Sample]:
        """Small instances for the registry's tests (`Sample`)."""
        return ()

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


def unbroadcast(g: Any, shape: tuple[int, ...]) -> Any:
    """Sum the torch tensor ``g`` down to ``shape`` over the dims broadcasting added or stretched."""
    while g.dim() > len(shape):
        g = g.sum(0)
    for i, size in enumerate(shape):
        if size == 1 and g.shape[i] != 1:
            g = g.sum(i, keepdim=True)
    return g


def as_torch(value: Any, like: Any) -> Any:
    """A tensor input as it is, a Python number as a 0-d tensor of ``like``'s dtype and device."""
    if hasattr(value, "dim"):
        return value
    return torch_module().as_tensor(value, dtype=like.dtype, device=like.device)


@dataclass(frozen=True)
class Elementwise(TensorOp):
    """An op applied element by element (with broadcasting): subclasses give one element's rule.

    Its tensor forward and backward rule are its own scalar rule, lambdified once and applied to whole
    tensors (the partials times g, summed back over broadcast dims): the same expressions the scalar
    program uses.
    """

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

    def forward(self, *inputs: Any) -> Any:
        like = next(a for a in inputs if hasattr(a, "dim"))
        return _values(self, len(inputs))(*(as_torch(a, like) for a in inputs))

    def backward(self, g: Any, inputs: Sequence[Any], out: Any, wanted: Sequence[bool], saved: Any = None) -> list:
        tensors = [as_torch(a, out) for a in inputs]
        partials = _partials(self, len(inputs))(out, *tensors)
        return [unbroadcast(g * p, tuple(a.shape)) if hasattr(a, "dim") and want else None
                for a, p, want in zip(inputs, partials, wanted)]


@functools.lru_cache(maxsize=256)
def _values(op: Elementwise, arity: int) -> Callable:
    """The op's scalar definition lambdified over its arguments: tensors in, a tensor out."""
    from derive.lambdify import lambdify

    out, *args = sp.symbols(f"v a0:{arity}")
    expr, _ = op.scalar(out, *args)
    return lambdify(args, expr, "torch")


@functools.lru_cache(maxsize=256)
def _partials(op: Elementwise, arity: int) -> Callable:
    """The op's local partials lambdified over (out, *args): tensors in, one tensor per argument out."""
    from derive.lambdify import lambdify

    out, *args = sp.symbols(f"v a0:{arity}")
    _, partials = op.scalar(out, *args)
    by_arg = {a: sp.S.Zero for a in args}
    for symbol, partial in partials:
        by_arg[symbol] = by_arg[symbol] + partial
    return lambdify([out, *args], [by_arg[a] for a in args], "torch")


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
    if isinstance(value, int):
        return sp.Integer(value)
    if math.isinf(value):  # a mask's −∞ (masked_fill): it never wins a softmax
        return sp.S.Infinity if value > 0 else sp.S.NegativeInfinity
    if math.isnan(value):
        raise TypeError("not a number: nan")
    return sp.Rational(repr(float(value)))
