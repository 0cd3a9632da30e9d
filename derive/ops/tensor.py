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

import dataclasses
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

    def stops_gradient(self, arg: int) -> bool | Callable[[tuple[int, ...]], bool]:
        """Where this op's gradient is defined as zero though its output depends on input ``arg``: nowhere
        (False), everywhere (True: a stop-gradient), or at the entries ``index`` of it for which the function
        returns True (an embedding's padding row). There the loss's slope is not the gradient, and finite
        differences do not judge the parameters it comes from."""
        return False

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

    # --- the tensor program (derive.tensor) ---------------------------------------------------------------

    def options(self) -> dict[str, Any]:
        """The op's attributes, as a tensor expression's options."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def tensor_forward(self, inputs: list[Any]) -> Any:
        """The op's output as a tensor expression over its inputs' (``key(inputs; options)``); or a list of
        (part, expression) whose last is the output (``[("z", …), ("", …)]``: named intermediates)."""
        from derive.tensor.expr import call

        return call(self.key, *inputs, **self.options())

    def tensor_rule(self, g: Any, inputs: list[Any], parts: dict[str, Any], wanted: Sequence[bool],
                    shapes: Sequence[tuple[int, ...] | None], shape: tuple[int, ...]) -> list[Any]:
        """Each wanted input's contribution to its adjoint, as a tensor expression over the output's adjoint
        ``g``, the inputs, and the op's outputs ``parts`` (``parts[""]`` is its output). By default the
        op's own backward rule as one function, ``key.grad(g, inputs…, out; input=k, …)``."""
        from derive.tensor.expr import call

        out = parts[""]
        return [call(f"{self.key}.grad", g, *inputs, out, input=k, **self.options()) if want else None
                for k, want in enumerate(wanted)]

    def tensor_adjoint_parts(self, g: Any, inputs: list[Any], parts: dict[str, Any],
                             shapes: Sequence[tuple[int, ...] | None], shape: tuple[int, ...]) -> list[tuple[str, Any]]:
        """The adjoints of the op's named intermediates its rule reads, as (part, expression), in order: the
        program defines each (``dL_dZ_1``) and gives it to `tensor_rule` as ``parts["d" + part]``; a later one
        reads an earlier one as ``Ref("@d" + part)``."""
        return []

    def tensor_outputs(self, value: Any) -> list[Any]:
        """An op that stands for a group of nodes (`derive.model.graph.OpGroup`: a recurrent layer call): the
        expressions of the group's outputs over the op's value."""
        raise NotImplementedError(f"{type(self).__name__} stands for no group of nodes")

    def tensor_scatter(self, value: Any, adjoints: list[Any]) -> Any:
        """An op that stands for a group of nodes: its value's adjoint from its outputs' (``none``: unused)."""
        raise NotImplementedError(f"{type(self).__name__} stands for no group of nodes")

    @classmethod
    def tensor_function(cls, rule: str, args: list[Any], options: dict[str, Any], backend: str) -> Any:
        """Evaluate the op (``rule`` "") or one of its rule functions (``grad``: input ``options["input"]``'s
        contribution), on NumPy arrays or torch tensors."""
        options = dict(options)
        k = options.pop("input", None)
        op = cls(**options)
        args = [None if a is None else a for a in args]
        if rule == "":  # NumPy arrays, or a proof's object arrays of exact numbers
            return op.forward(*args) if backend == "torch" else op.numpy_forward(*args)
        if rule == "grad":
            g, *inputs, out = args
            while inputs and inputs[-1] is None:
                inputs.pop()
            wanted = [i == k for i in range(len(inputs))]
            if backend != "torch":
                g, inputs, out = to_torch(g), to_torch(list(inputs)), to_torch(out)
                return from_torch(op.backward(g, inputs, out, wanted)[k])
            return op.backward(g, inputs, out, wanted)[k]
        raise NotImplementedError(f"{cls.__name__} has no rule function {rule!r}")

    @classmethod
    def tensor_callable(cls, rule: str, options: dict[str, Any], backend: str) -> Callable[..., Any]:
        """`tensor_function` with its rule and options fixed (a compiled program calls it once per run)."""
        return lambda *args: cls.tensor_function(rule, list(args), options, backend)

    def numpy_forward(self, *inputs: Any) -> Any:
        """The op on NumPy arrays (float64): by default its torch forward, on tensors made of the arrays."""
        return from_torch(self.forward(*to_torch(list(inputs))))

    #: whether a proof's instance may map each size > 1 to a small size of its own (no option names a size)
    proof_shrinks: ClassVar[bool] = False
    #: False for ops through which no gradient flows (comparisons, logic, ``detach``): the program stops there
    differentiable: ClassVar[bool] = True

    def proof_instance(self, shapes: Sequence[tuple[int, ...] | None], data: Sequence[Any]) -> tuple[Any, list, list]:
        """The op, input shapes and data inputs of a small instance with the same options, for a proof: every
        size > 1 mapped to a small one of its own (sizes that are equal stay equal), where the op allows it
        (`proof_shrinks`) and no input is data of more than one element; else the instance itself."""
        if not self.proof_shrinks or any(d is not None and np.ndim(d) for d in data):
            return self, list(shapes), list(data)
        sizes = sorted({s for shape in shapes if shape for s in shape if s > 1})
        mapping = {s: 2 + k for k, s in enumerate(sizes)}
        return self, [None if shape is None else tuple(mapping.get(s, s) for s in shape) for shape in shapes], list(data)

    def proof_domains(self, count: int) -> list[tuple[float, float]]:
        """The interval a proof draws each input's values from (the op's domain: log takes positives)."""
        return [(-1.5, 1.5)] * count

    def proof_output_shape(self, shapes: Sequence[tuple[int, ...] | None]) -> tuple[int, ...]:
        """The output's shape for inputs of these shapes."""
        values = [None if s is None else np.full(s, 0.5) for s in shapes]  # in every op's domain
        while values and values[-1] is None:
            values.pop()
        with np.errstate(all="ignore"):
            return tuple(np.shape(self.numpy_forward(*values)))

    @classmethod
    def tensor_latex(cls, rule: str, args: list[str], options: dict[str, Any]) -> str:
        """LaTeX of the op (``rule`` "") or of one of its rule functions, over its arguments' LaTeX."""
        k = options.pop("input", None)
        if rule == "":
            present = [a for a in args if a != r"\mathrm{none}"]
            return cls(**options).describe(*present)
        name = cls.key.replace("_", r"\_")
        if rule == "grad":  # (g, inputs…, out): the op's rule for input k, applied to g
            return rf"\operatorname{{{name}}}'_{{{k + 1}}}\left({args[0]}\right)"
        return rf"\operatorname{{{name}.{rule}}}\left({', '.join(args)}\right)"

    def describe(self, *inputs: str) -> str:
        """LaTeX of the op applied to its inputs' LaTeX names."""
        if self.formula:
            return self.formula.format(*inputs)
        name = self.key.replace("_", r"\_")
        return rf"\operatorname{{{name}}}\left({', '.join(inputs)}\right)"


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


def to_torch(values: Any) -> Any:
    """NumPy arrays (nested in lists) as torch tensors; other values as they are."""
    if isinstance(values, list):
        return [to_torch(v) for v in values]
    if isinstance(values, np.ndarray):
        array = np.ascontiguousarray(values)
        return torch_module().from_numpy(array if array.flags.writeable else array.copy())
    return values


def from_torch(value: Any) -> Any:
    """A torch tensor as a NumPy array."""
    return value.detach().cpu().numpy() if hasattr(value, "detach") else value


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

    proof_shrinks = True

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

    def numpy_forward(self, *inputs: Any) -> Any:
        return _values(self, len(inputs), "numpy")(*inputs)

    def _symbols(self, inputs: list[Any]) -> tuple[sp.Symbol, list[sp.Expr], dict[sp.Symbol, Any]]:
        """The scalar rule's symbols standing for the inputs (numbers as themselves) and the output."""
        from derive.tensor.expr import Num

        out = sp.Symbol("v")
        args = [exact(e.value) if isinstance(e, Num) else sp.Symbol(f"a{k}") for k, e in enumerate(inputs)]
        tensors = {a: e for a, e in zip(args, inputs) if isinstance(a, sp.Symbol)}
        return out, args, tensors

    def tensor_forward(self, inputs: list[Any]) -> Any:
        from derive.tensor.elementwise import NotTensorExpression, from_sympy

        out, args, tensors = self._symbols(inputs)
        try:
            return from_sympy(self.scalar(out, *args)[0], tensors)
        except NotTensorExpression:
            return super().tensor_forward(inputs)

    def tensor_rule(self, g: Any, inputs: list[Any], parts: dict[str, Any], wanted: Sequence[bool],
                    shapes: Sequence[tuple[int, ...] | None], shape: tuple[int, ...]) -> list[Any]:
        """g ⊙ ∂v/∂a for each input a (its scalar rule's partial, on whole tensors), summed back to a's shape
        where broadcasting stretched it."""
        from derive.tensor.elementwise import NotTensorExpression, from_sympy
        from derive.tensor.expr import call

        out, args, tensors = self._symbols(inputs)
        tensors[out] = parts[""]
        partials: dict[sp.Symbol, sp.Expr] = {}
        for symbol, partial in self.scalar(out, *args)[1]:
            partials[symbol] = partials.get(symbol, sp.S.Zero) + partial
        try:
            rules = []
            for k, (arg, want) in enumerate(zip(args, wanted)):
                partial = partials.get(arg, sp.S.Zero) if isinstance(arg, sp.Symbol) else sp.S.Zero
                if not want or partial == 0:
                    rules.append(None)
                    continue
                term = g if partial == 1 else call("neg", g) if partial == -1 else call("mul", g, from_sympy(partial, tensors))
                rules.append(term if tuple(shapes[k]) == tuple(shape) else call("sum_to", term, shape=shapes[k]))
            return rules
        except NotTensorExpression:
            return super().tensor_rule(g, inputs, parts, wanted, shapes, shape)

    def reads(self) -> tuple[bool, bool]:
        """Nothing where every partial is a constant (an addition's, a subtraction's): the rule then needs the
        inputs' shapes only, which `forward_saving` keeps. Otherwise the inputs and the output."""
        arity = _arity(type(self))
        return (True, True) if arity is None or _constant_partials(self, arity) is None else (False, False)

    def forward_saving(self, *inputs: Any) -> tuple[Any, Any]:
        return self.forward(*inputs), tuple(tuple(a.shape) if hasattr(a, "dim") else None for a in inputs)

    def backward(self, g: Any, inputs: Sequence[Any], out: Any, wanted: Sequence[bool], saved: Any = None) -> list:
        constants = _constant_partials(self, len(inputs))
        if constants is not None:  # g times each constant partial, summed back to its input's shape
            shapes = saved if saved is not None else [tuple(a.shape) if hasattr(a, "dim") else None for a in inputs]
            return [unbroadcast(g if c == 1 else g * c, shape) if shape is not None and want else None
                    for c, shape, want in zip(constants, shapes, wanted)]
        tensors = [as_torch(a, out) for a in inputs]
        partials = _partials(self, len(inputs))(out, *tensors)
        return [unbroadcast(g if isinstance(p, (int, float)) and p == 1 else g * p, tuple(a.shape))
                if hasattr(a, "dim") and want else None for a, p, want in zip(inputs, partials, wanted)]


@functools.lru_cache(maxsize=256)
def _values(op: Elementwise, arity: int, backend: str = "torch") -> Callable:
    """The op's scalar definition lambdified over its arguments: tensors in, a tensor out."""
    from derive.lambdify import lambdify

    out, *args = sp.symbols(f"v a0:{arity}")
    expr, _ = op.scalar(out, *args)
    return lambdify(args, expr, backend)


@functools.lru_cache(maxsize=256)
def _constant_partials(op: Elementwise, arity: int) -> tuple[float, ...] | None:
    """Each argument's partial where all of them are numbers (1 and 1 for an addition); else None."""
    out, *args = sp.symbols(f"v a0:{arity}")
    _, partials = op.scalar(out, *args)
    by_arg = {a: sp.S.Zero for a in args}
    for symbol, partial in partials:
        by_arg[symbol] = by_arg[symbol] + partial
    return tuple(float(p) for p in by_arg.values()) if all(p.is_Number for p in by_arg.values()) else None


@functools.lru_cache(maxsize=64)
def _arity(cls: type) -> int | None:
    """How many arguments an element-wise op's scalar rule takes (None: any number)."""
    import inspect

    parameters = list(inspect.signature(cls.scalar).parameters.values())[2:]  # after self and out
    return None if any(p.kind == p.VAR_POSITIONAL for p in parameters) else len(parameters)


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
    if math.isnan(value):  # torch's own NaN in a branch a where never takes (xlogy's), checked where it is used
        return sp.S.NaN
    return sp.Rational(repr(float(value)))
