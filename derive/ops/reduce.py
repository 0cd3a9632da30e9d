r"""Ops over dims: ``sum``, ``mean``, ``logsumexp``, ``amax``/``amin``, ``max(dim)``, ``var``, the vector
norm, ``prod``, ``cumsum`` (any dims, ``keepdim``), and ``softmax``/``log_softmax`` along a dim.

Partials from structure: ∂(Σ a)/∂a_k = 1, ∂ mean/∂a_k = 1/n, ∂ LSE/∂a_k = e^{a_k − v}, ∂ var/∂a_k =
2(a_k − μ)/(n − c), ∂‖a‖/∂a_k = a_k/v, and for the outputs v_i of log-softmax ∂v_i/∂a_j = δ_ij − e^{v_j};
softmax's are a_i(δ_ij − a_j) over its outputs. A −∞ element (a masked score) takes no part in a softmax.

>>> import numpy as np, sympy as sp
>>> from derive.model.lower import Lowering
>>> low = Lowering()
>>> x = np.array([sp.symbols("a b"), sp.symbols("c d")], dtype=object)
>>> Mean(dims=(1,), keepdim=True).lower(low, x).shape, str(low.nodes[0].expr)
((2, 1), 'a/2 + b/2')
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import sympy as sp

from derive.errors import ShapeError
from derive.ops.extrema import MaxOf, TieShare, Winner
from derive.ops.softmax import LogSumExp as LSE, Softmax as SoftmaxFunction
from derive.ops.tensor import Sample, TensorOp, register, symbols_only, torch_module
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


def _random(seed: int, *shape: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.5, 1.5, shape)


def _dims_of(call: Any) -> tuple[int, ...] | None:
    """The ``dim`` argument of a reduction as a tuple (None or empty: every dim)."""
    dim = call.arg("dim")
    if dim is None:
        return None
    return tuple(int(d) for d in (dim if isinstance(dim, (tuple, list)) else (dim,))) or None


@dataclass(frozen=True)
class _Reduction(TensorOp):

    proof_shrinks = True
    dims: tuple[int, ...] | None = None
    keepdim: bool = False

    @classmethod
    def read(cls, call: Any) -> Any:
        if call.arg("dtype") is not None and str(call.arg("dtype")) != "torch.float64":
            call.refuse(f"dtype={call.arg('dtype')}")
        return call.op(cls.key, call.input("self"), dims=_dims_of(call), keepdim=bool(call.arg("keepdim", False)))

    @classmethod
    def samples(cls) -> Iterable[Sample]:
        x = _random(1, 2, 3, 2)
        return [Sample(cls(), (x,)), Sample(cls((1,), True), (x,)), Sample(cls((0, 2)), (x,))]

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

    def _axes(self, x: Any) -> list[int]:
        return sorted(d % max(x.dim(), 1) for d in (self.dims or range(x.dim())))

    def _expanded(self, x: Any, *tensors: Any) -> list[Any]:
        """Reduced tensors with the reduced dims put back (size 1), to broadcast against ``x``."""
        if self.keepdim:
            return list(tensors)
        result = []
        for t in tensors:
            for d in self._axes(x):
                t = t.unsqueeze(d)
            result.append(t)
        return result

    def _count(self, x: Any) -> int:
        return int(np.prod([x.shape[d] for d in self._axes(x)])) if x.dim() else 1

    def _axes_of(self, ndim: int) -> list[int]:
        return sorted(d % max(ndim, 1) for d in (self.dims or range(ndim)))


@register
@dataclass(frozen=True)
class Sum(_Reduction):
    """``sum`` over dims (all by default, ``keepdim``); ∂/∂a_k = 1."""

    key = "sum"
    aten = ("sum.dim_IntList", "sum.default")

    def element(self, out: sp.Symbol, elements: list[sp.Expr]) -> tuple[sp.Expr, list]:
        return total(elements), [(e, sp.S.One) for e in elements]

    def reads(self) -> tuple[bool, bool]:
        return True, False

    def forward(self, x: Any) -> Any:
        return torch_module().sum(x, dim=tuple(self._axes(x)), keepdim=self.keepdim)

    def numpy_forward(self, x: Any) -> Any:
        return np.sum(x, axis=tuple(self._axes_of(x.ndim)), keepdims=self.keepdim)

    def tensor_forward(self, inputs: list[Any]) -> Any:
        from derive.tensor.expr import call

        return call("sum", inputs[0], dims=self.dims or (), keepdim=self.keepdim)

    def tensor_rule(self, g, inputs, parts, wanted, shapes, shape) -> list[Any]:
        """Every element gets g of its sum: g broadcast back over the summed dims."""
        return [_spread(g, shapes[0], self._axes_of(len(shapes[0])), self.keepdim)]

    def backward(self, g: Any, inputs: Sequence[Any], out: Any, wanted: Sequence[bool], saved: Any = None) -> list:
        x = inputs[0]
        return [self._expanded(x, g)[0].expand_as(x)]

    def describe(self, *inputs: str) -> str:
        return rf"\textstyle\sum {inputs[0]}"


@register
@dataclass(frozen=True)
class Mean(_Reduction):
    """``mean`` over dims (all by default, ``keepdim``); ∂/∂a_k = 1/n."""

    key = "mean"
    aten = ("mean.dim", "mean.default")

    def element(self, out: sp.Symbol, elements: list[sp.Expr]) -> tuple[sp.Expr, list]:
        if not elements:
            raise ShapeError("mean of an empty tensor")
        return average(elements, len(elements))

    def reads(self) -> tuple[bool, bool]:
        return True, False

    def forward(self, x: Any) -> Any:
        return torch_module().mean(x, dim=tuple(self._axes(x)), keepdim=self.keepdim)

    def numpy_forward(self, x: Any) -> Any:
        return np.mean(x, axis=tuple(self._axes_of(x.ndim)), keepdims=self.keepdim)

    def tensor_rule(self, g, inputs, parts, wanted, shapes, shape) -> list[Any]:
        """Every element gets g/n of its mean, broadcast back over the averaged dims."""
        axes = self._axes_of(len(shapes[0]))
        count = int(np.prod([shapes[0][d] for d in axes])) if shapes[0] else 1
        return [_spread(g, shapes[0], axes, self.keepdim) / float(count)]

    def backward(self, g: Any, inputs: Sequence[Any], out: Any, wanted: Sequence[bool], saved: Any = None) -> list:
        x = inputs[0]
        return [self._expanded(x, g)[0].expand_as(x) / self._count(x)]

    def describe(self, *inputs: str) -> str:
        return rf"\operatorname{{mean}}\left({inputs[0]}\right)"


@register
@dataclass(frozen=True)
class LogSumExp(_Reduction):
    """``logsumexp`` over dims: log Σ e^a; ∂/∂a_k = e^(a_k − v)."""

    key = "logsumexp"
    aten = ("logsumexp.default",)

    def element(self, out: sp.Symbol, elements: list[sp.Expr]) -> tuple[sp.Expr, list]:
        return LSE(*elements), [(e, sp.exp(e - out)) for e in elements]

    def forward(self, x: Any) -> Any:
        return torch_module().logsumexp(x, dim=tuple(self._axes(x)), keepdim=self.keepdim)

    def backward(self, g: Any, inputs: Sequence[Any], out: Any, wanted: Sequence[bool], saved: Any = None) -> list:
        x = inputs[0]
        g, full = self._expanded(x, g, out)
        return [g * torch_module().exp(x - full)]

    def describe(self, *inputs: str) -> str:
        return rf"\operatorname{{LSE}}\left({inputs[0]}\right)"


@register
@dataclass(frozen=True)
class Amax(_Reduction):
    """``amax``/``amin`` and ``max()``/``min()`` of a whole tensor: tied extremes share the gradient equally,
    as torch's do. ``largest=False``: the minimum, as −max(−a)."""

    largest: bool = True
    key = "amax"
    aten = ("amax.default", "amin.default", "max.default", "min.default")

    @classmethod
    def read(cls, call: Any) -> Any:
        largest = call.name.startswith(("amax", "max"))
        dims = _dims_of(call) if call.name.startswith("am") else None
        return call.op("amax", call.input("self"), dims=dims, keepdim=bool(call.arg("keepdim", False)),
                       largest=largest)

    @classmethod
    def samples(cls) -> Iterable[Sample]:
        x = np.array([[0.5, 2.0, 2.0], [-1.0, -1.0, 0.25]])
        return [Sample(cls((1,)), (x,)), Sample(cls((0, 1), True, False), (x,)), Sample(cls(), (_random(2, 2, 3),))]

    def element(self, out: sp.Symbol, elements: list[sp.Expr]) -> tuple[sp.Expr, list]:
        sign = 1 if self.largest else -1
        signed = [sign * e for e in elements]
        return sign * MaxOf(*signed), [(e, TieShare(k + 1, *signed)) for k, e in enumerate(elements)]

    def forward(self, x: Any) -> Any:
        torch = torch_module()
        return (torch.amax if self.largest else torch.amin)(x, dim=tuple(self._axes(x)), keepdim=self.keepdim)

    def backward(self, g: Any, inputs: Sequence[Any], out: Any, wanted: Sequence[bool], saved: Any = None) -> list:
        x = inputs[0]
        g, full = self._expanded(x, g, out)
        hits = (x == full).to(x.dtype)
        return [g * hits / hits.sum(dim=tuple(self._axes(x)), keepdim=True)]

    def describe(self, *inputs: str) -> str:
        return rf"\{'max' if self.largest else 'min'}\left({inputs[0]}\right)"


@register
@dataclass(frozen=True)
class MaxAlong(TensorOp):
    """``max(dim)``/``min(dim)``: the values (the indices are data derive does not model); the first extreme
    of a tie takes the gradient, as torch's kernels pick it."""

    dim: int = -1
    keepdim: bool = False
    largest: bool = True
    key = "max_along"
    aten = ("max.dim", "min.dim")

    @classmethod
    def read(cls, call: Any) -> Any:
        values = call.op("max_along", call.input("self"), dim=int(call.arg("dim")),
                         keepdim=bool(call.arg("keepdim", False)), largest=call.name.startswith("max"))
        return values, None

    @classmethod
    def samples(cls) -> Iterable[Sample]:
        x = np.array([[0.5, 2.0, 2.0], [-1.0, -1.0, 0.25]])
        return [Sample(cls(1), (x,)), Sample(cls(0, True, False), (x,))]

    def lower(self, lowering, x: np.ndarray) -> np.ndarray:
        shape, outer, groups = _groups(x, (self.dim,), self.keepdim, self.key)
        out = lowering.new(shape)
        flat = out.reshape(outer)
        sign = 1 if self.largest else -1
        for index, elements in groups:
            signed = [sign * e for e in elements]
            partials = [(e, Winner(k + 1, *signed)) for k, e in enumerate(elements)]
            lowering.define(flat[index], sign * MaxOf(*signed), symbols_only(partials))
        return out

    def forward_saving(self, x: Any) -> tuple[Any, Any]:
        torch = torch_module()
        values, indices = (torch.max if self.largest else torch.min)(x, dim=self.dim, keepdim=self.keepdim)
        return values, indices

    def forward(self, x: Any) -> Any:
        return self.forward_saving(x)[0]

    def backward(self, g: Any, inputs: Sequence[Any], out: Any, wanted: Sequence[bool], saved: Any = None) -> list:
        x = inputs[0]
        indices = saved if saved is not None else self.forward_saving(x)[1]
        if not self.keepdim:
            g, indices = g.unsqueeze(self.dim), indices.unsqueeze(self.dim)
        return [torch_module().zeros_like(x).scatter_(self.dim, indices, g)]

    def describe(self, *inputs: str) -> str:
        return rf"\{'max' if self.largest else 'min'}_{{{self.dim}}}\left({inputs[0]}\right)"


@register
@dataclass(frozen=True)
class Var(_Reduction):
    """``var(dims, correction)`` (``std`` is its square root): Σ(a − μ)²/(n − c), ∂/∂a_k = 2(a_k − μ)/(n − c).
    ``var_mean`` (``torch.std_mean``, ``var_mean``) is read as this and a `Mean` over the same dims."""

    correction: float = 1.0
    key = "var"
    aten = ("var.correction", "var.dim", "var_mean.correction")

    @classmethod
    def read(cls, call: Any) -> Any:
        correction = call.arg("correction")
        if call.name == "var.dim":
            correction = 1.0 if call.arg("unbiased", True) else 0.0
        dims, keepdim = _dims_of(call), bool(call.arg("keepdim", False))
        var = call.op("var", call.input("self"), dims=dims, keepdim=keepdim,
                      correction=1.0 if correction is None else float(correction))
        if call.name.startswith("var_mean"):
            return var, call.op("mean", call.input("self"), dims=dims, keepdim=keepdim)
        return var

    @classmethod
    def samples(cls) -> Iterable[Sample]:
        x = _random(3, 2, 3, 2)
        return [Sample(cls((1,), False, 1.0), (x,)), Sample(cls((0, 2), True, 0.0), (x,))]

    def element(self, out: sp.Symbol, elements: list[sp.Expr]) -> tuple[sp.Expr, list]:
        n = len(elements)
        divisor = sp.nsimplify(n - self.correction)
        mean = total([e / n for e in elements])
        return total([(e - mean) ** 2 for e in elements]) / divisor, [(e, 2 * (e - mean) / divisor) for e in elements]

    def forward(self, x: Any) -> Any:
        return torch_module().var(x, dim=tuple(self._axes(x)), correction=self.correction, keepdim=self.keepdim)

    def backward(self, g: Any, inputs: Sequence[Any], out: Any, wanted: Sequence[bool], saved: Any = None) -> list:
        x = inputs[0]
        (g,) = self._expanded(x, g)
        mean = x.mean(dim=tuple(self._axes(x)), keepdim=True)
        return [g * 2 * (x - mean) / (self._count(x) - self.correction)]

    def describe(self, *inputs: str) -> str:
        return rf"\operatorname{{var}}\left({inputs[0]}\right)"


@register
@dataclass(frozen=True)
class Norm(_Reduction):
    """The vector 2-norm ``‖a‖ = √Σ a²`` over dims (``x.norm(dim=…)``, ``F.normalize``); ∂/∂a_k = a_k/v."""

    key = "norm"
    aten = ("linalg_vector_norm.default",)

    @classmethod
    def read(cls, call: Any) -> Any:
        if float(call.arg("ord", 2)) != 2.0:
            call.refuse(f"ord={call.arg('ord')} (the 2-norm only)")
        return call.op("norm", call.input("self"), dims=_dims_of(call), keepdim=bool(call.arg("keepdim", False)))

    @classmethod
    def samples(cls) -> Iterable[Sample]:
        x = _random(4, 2, 3)
        return [Sample(cls((1,)), (x,)), Sample(cls(None, True), (x,))]

    def element(self, out: sp.Symbol, elements: list[sp.Expr]) -> tuple[sp.Expr, list]:
        return sp.sqrt(total([e**2 for e in elements])), [(e, e / out) for e in elements]

    def forward(self, x: Any) -> Any:
        return torch_module().linalg.vector_norm(x, dim=tuple(self._axes(x)), keepdim=self.keepdim)

    def backward(self, g: Any, inputs: Sequence[Any], out: Any, wanted: Sequence[bool], saved: Any = None) -> list:
        x = inputs[0]
        g, full = self._expanded(x, g, out)
        return [g * x / full]

    def describe(self, *inputs: str) -> str:
        return rf"\left\lVert {inputs[0]} \right\rVert"


@register
@dataclass(frozen=True)
class Prod(_Reduction):
    """The product over dims: ∂/∂a_k = Π_{j≠k} a_j."""

    key = "prod"
    aten = ("prod.dim_int", "prod.default")

    @classmethod
    def samples(cls) -> Iterable[Sample]:
        x = _random(5, 2, 3)
        return [Sample(cls((1,)), (x,)), Sample(cls(None, False), (x,))]

    def element(self, out: sp.Symbol, elements: list[sp.Expr]) -> tuple[sp.Expr, list]:
        return sp.Mul(*elements), [(e, sp.Mul(*(elements[:k] + elements[k + 1:]))) for k, e in enumerate(elements)]

    def forward(self, x: Any) -> Any:
        torch = torch_module()
        out = x
        for d in reversed(self._axes(x)):
            out = torch.prod(out, dim=d, keepdim=self.keepdim)
        return out

    def backward(self, g: Any, inputs: Sequence[Any], out: Any, wanted: Sequence[bool], saved: Any = None) -> list:
        torch = torch_module()
        x = inputs[0]
        (g,) = self._expanded(x, g)
        moved = x.movedim(self._axes(x), list(range(x.dim() - len(self._axes(x)), x.dim())))
        flat = moved.reshape(*moved.shape[: x.dim() - len(self._axes(x))], -1)
        ones = torch.ones_like(flat[..., :1])
        before = torch.cumprod(torch.cat([ones, flat[..., :-1]], -1), -1)
        after = torch.cumprod(torch.cat([ones, flat.flip(-1)[..., :-1]], -1), -1).flip(-1)
        others = (before * after).reshape(moved.shape).movedim(
            list(range(x.dim() - len(self._axes(x)), x.dim())), self._axes(x))
        return [g * others]


@dataclass(frozen=True)
class _Scan(TensorOp):
    """A cumulative op along ``dim``: output i of each vector is `prefix` of its elements 0 … i."""

    dim: int = 0

    @classmethod
    def read(cls, call: Any) -> Any:
        return call.op(cls.key, call.input("self"), dim=int(call.arg("dim")))

    def prefix(self, taken: list[sp.Expr]) -> tuple[sp.Expr, list]:
        raise NotImplementedError

    def lower(self, lowering, x: np.ndarray) -> np.ndarray:
        out = lowering.new(x.shape)
        vectors, outs = np.moveaxis(x, self.dim, -1), np.moveaxis(out, self.dim, -1)
        for index in np.ndindex(vectors.shape[:-1]):
            elements = list(vectors[index])
            for i, symbol in enumerate(outs[index]):
                expr, partials = self.prefix(elements[: i + 1])
                lowering.define(symbol, expr, symbols_only(partials))
        return out


@register
@dataclass(frozen=True)
class Cumsum(_Scan):
    """``cumsum(dim)``: v_i = Σ_{j ≤ i} a_j; the gradient is the reversed cumulative sum of g."""

    key = "cumsum"
    aten = ("cumsum.default",)

    @classmethod
    def samples(cls) -> Iterable[Sample]:
        return [Sample(cls(1), (_random(6, 2, 3),))]

    def prefix(self, taken: list[sp.Expr]) -> tuple[sp.Expr, list]:
        return total(taken), [(e, sp.S.One) for e in taken]

    def reads(self) -> tuple[bool, bool]:
        return False, False

    def forward(self, x: Any) -> Any:
        return torch_module().cumsum(x, self.dim)

    def backward(self, g: Any, inputs: Sequence[Any], out: Any, wanted: Sequence[bool], saved: Any = None) -> list:
        return [g.flip(self.dim).cumsum(self.dim).flip(self.dim)]


@register
@dataclass(frozen=True)
class Cumprod(_Scan):
    """``cumprod(dim)``: v_i = Π_{j ≤ i} a_j; ∂v_i/∂a_j = Π_{k ≤ i, k ≠ j} a_k (no division: exact at a zero)."""

    key = "cumprod"
    aten = ("cumprod.default",)

    @classmethod
    def samples(cls) -> Iterable[Sample]:
        x = _random(9, 2, 3)
        x[1, 1] = 0.0  # a zero: the products past it are 0, their partials not
        return [Sample(cls(1), (x,)), Sample(cls(0), (_random(10, 3, 2),))]

    def prefix(self, taken: list[sp.Expr]) -> tuple[sp.Expr, list]:
        return sp.Mul(*taken), [(e, sp.Mul(*(taken[:j] + taken[j + 1:]))) for j, e in enumerate(taken)]

    def reads(self) -> tuple[bool, bool]:
        return True, False

    def forward(self, x: Any) -> Any:
        return torch_module().cumprod(x, self.dim)

    def backward(self, g: Any, inputs: Sequence[Any], out: Any, wanted: Sequence[bool], saved: Any = None) -> list:
        """∂a_j = Σ_{i ≥ j} g_i Π_{k ≤ i, k ≠ j} a_k, the products without a_j taken as prefix × middle."""
        torch = torch_module()
        x = inputs[0].movedim(self.dim, -1)
        gx = g.movedim(self.dim, -1)
        n = x.shape[-1]
        ones = torch.ones_like(x[..., :1])
        before = torch.cumprod(torch.cat([ones, x[..., :-1]], -1), -1)  # Π_{k < j} a_k
        dx = torch.zeros_like(x)
        for j in range(n):  # Π_{j < k ≤ i} a_k for every i ≥ j, then Σ_i g_i · that · Π_{k < j}
            after = torch.cumprod(torch.cat([ones, x[..., j + 1:]], -1), -1)
            dx[..., j] = (gx[..., j:] * after).sum(-1) * before[..., j]
        return [dx.movedim(-1, self.dim)]


@register
@dataclass(frozen=True)
class Truth(_Reduction):
    """``any``/``all`` over dims of conditions (0 or 1): 1 − Π(1 − c) and Π c, with no gradient (as torch's
    booleans); a condition of the data alone is folded before it gets here."""

    kind: str = "any"
    key = "truth"
    differentiable = False
    aten = ("any.dim", "any.dims", "any.default", "all.dim", "all.dims", "all.default")

    @classmethod
    def read(cls, call: Any) -> Any:
        return call.op("truth", call.input("self"), dims=_dims_of(call), keepdim=bool(call.arg("keepdim", False)),
                       kind=call.name.partition(".")[0])

    @classmethod
    def samples(cls) -> Iterable[Sample]:
        c = np.array([[[1.0, 0.0], [0.0, 0.0], [1.0, 1.0]], [[0.0, 1.0], [1.0, 1.0], [0.0, 0.0]]])
        return [Sample(cls((1,), False, "any"), (c,)), Sample(cls((2,), True, "all"), (c,)), Sample(cls(), (c,))]

    def element(self, out: sp.Symbol, elements: list[sp.Expr]) -> tuple[sp.Expr, list]:
        if self.kind == "all":
            return sp.Mul(*elements), []
        return 1 - sp.Mul(*(1 - e for e in elements)), []

    def forward(self, x: Any) -> Any:
        torch = torch_module()
        out = x.bool()
        for d in reversed(self._axes(x)):
            out = getattr(torch, self.kind)(out, dim=d, keepdim=self.keepdim)
        return out

    def backward(self, g: Any, inputs: Sequence[Any], out: Any, wanted: Sequence[bool], saved: Any = None) -> list:
        return [None]

    def describe(self, *inputs: str) -> str:
        return rf"\operatorname{{{self.kind}}}\left({inputs[0]}\right)"


@dataclass(frozen=True)
class _AlongDim(TensorOp):
    """An op mapping each vector along ``dim`` to a vector of the same length."""

    proof_shrinks = True

    dim: int = -1

    @classmethod
    def read(cls, call: Any) -> Any:
        return call.op(cls.key, call.input("self"), dim=int(call.arg("dim")))

    @classmethod
    def samples(cls) -> Iterable[Sample]:
        return [Sample(cls(1), (_random(7, 2, 3),)), Sample(cls(0), (_random(8, 2, 2, 2),))]

    def lower(self, lowering, x: np.ndarray) -> np.ndarray:
        if x.ndim == 0:
            raise ShapeError(f"{self.key}: needs a tensor of at least one dimension")
        if not -x.ndim <= self.dim < x.ndim:
            raise ShapeError(f"{self.key}: dim {self.dim} is out of range for a tensor of shape {x.shape}")
        out = lowering.new(x.shape)
        vectors, outs = np.moveaxis(x, self.dim, -1), np.moveaxis(out, self.dim, -1)
        for index in np.ndindex(vectors.shape[:-1]):
            elements, symbols = list(vectors[index]), list(outs[index])
            kept = [k for k, e in enumerate(elements) if e is not sp.S.NegativeInfinity]
            if not kept:
                raise ShapeError(f"{self.key}: every element of a row is −∞ (fully masked): torch gives NaN there")
            self.vector(lowering, [elements[k] for k in kept], [symbols[k] for k in kept])
            for k, symbol in enumerate(symbols):  # a masked element: no part in the row
                if k not in kept:
                    outs[index + (k,)] = self.masked
        return out

    #: the output of a −∞ element
    masked: ClassVar[sp.Expr] = sp.S.Zero

    def vector(self, lowering, xs: list[sp.Expr], outs: list[sp.Symbol]) -> None:
        raise NotImplementedError


@register
@dataclass(frozen=True)
class Softmax(_AlongDim):
    """``softmax`` along ``dim``: a_i = e^(z_i)/Σ_j e^(z_j), ∂a_i/∂z_j = a_i(δ_ij − a_j); a −∞ element (a masked score) takes no part and gets 0."""

    key = "softmax"
    aten = ("_softmax.default", "softmax.int")

    def vector(self, lowering, xs: list[sp.Expr], outs: list[sp.Symbol]) -> None:
        for i, out in enumerate(outs):
            partials = [(x, out * ((1 if i == j else 0) - outs[j])) for j, x in enumerate(xs)]
            lowering.define(out, SoftmaxFunction(i + 1, *xs), symbols_only(partials))

    def reads(self) -> tuple[bool, bool]:
        return False, True

    def forward(self, x: Any) -> Any:
        return torch_module().softmax(x, dim=self.dim)

    def numpy_forward(self, x: Any) -> Any:
        shifted = np.exp(x - np.max(x, axis=self.dim, keepdims=True))
        return shifted / np.sum(shifted, axis=self.dim, keepdims=True)

    def tensor_rule(self, g, inputs, parts, wanted, shapes, shape) -> list[Any]:
        """A ⊙ (G − Σ_dim G ⊙ A): the Jacobian a_i(δ_ij − a_j) applied to G, row by row."""
        from derive.tensor.expr import call

        a = parts[""]
        return [a * (g - call("sum", g * a, dims=(self.dim,), keepdim=True))]

    def backward(self, g: Any, inputs: Sequence[Any], out: Any, wanted: Sequence[bool], saved: Any = None) -> list:
        return [out * (g - (g * out).sum(self.dim, keepdim=True))]

    def describe(self, *inputs: str) -> str:
        return rf"\operatorname{{softmax}}\left({inputs[0]}\right)"


@register
@dataclass(frozen=True)
class LogSoftmax(_AlongDim):
    """``log_softmax`` along ``dim``: v_i = z_i − log Σ_j e^(z_j), ∂v_i/∂z_j = δ_ij − e^(v_j)."""

    key = "log_softmax"
    aten = ("_log_softmax.default", "log_softmax.int")
    masked = sp.S.NegativeInfinity

    def vector(self, lowering, xs: list[sp.Expr], outs: list[sp.Symbol]) -> None:
        lse = LSE(*xs)
        for i, out in enumerate(outs):
            partials = [(x, (1 if i == j else 0) - sp.exp(outs[j])) for j, x in enumerate(xs)]
            lowering.define(out, xs[i] - lse, symbols_only(partials))

    def reads(self) -> tuple[bool, bool]:
        return False, True

    def forward(self, x: Any) -> Any:
        return torch_module().log_softmax(x, dim=self.dim)

    def numpy_forward(self, x: Any) -> Any:
        shifted = x - np.max(x, axis=self.dim, keepdims=True)
        return shifted - np.log(np.sum(np.exp(shifted), axis=self.dim, keepdims=True))

    def tensor_rule(self, g, inputs, parts, wanted, shapes, shape) -> list[Any]:
        """G − e^V ⊙ Σ_dim G (V the log-softmax)."""
        from derive.tensor.expr import call

        return [g - call("exp", parts[""]) * call("sum", g, dims=(self.dim,), keepdim=True)]

    def backward(self, g: Any, inputs: Sequence[Any], out: Any, wanted: Sequence[bool], saved: Any = None) -> list:
        return [g - torch_module().exp(out) * g.sum(self.dim, keepdim=True)]

    def describe(self, *inputs: str) -> str:
        return rf"\log\operatorname{{softmax}}\left({inputs[0]}\right)"


def _spread(g: Any, shape: tuple[int, ...], axes: list[int], keepdim: bool) -> Any:
    """g of a reduction broadcast back to its input's ``shape`` (the reduced dims put back first)."""
    from derive.tensor.expr import call

    if not keepdim and axes:
        g = call("unsqueeze", g, dims=tuple(axes))
    return call("expand", g, shape=tuple(shape)) if tuple(shape) else g
