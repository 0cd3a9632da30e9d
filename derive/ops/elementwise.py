r"""Element-wise tensor ops: arithmetic with broadcasting, elementary functions, clamp, every activation,
comparisons and ``where``.

Each gives one element's definition and its local partials in textbook form, over the output ``v`` where
that is shorter (``exp``: ∂v/∂a = v; ``sqrt``: 1/(2v)). Comparisons give 0 or 1 and have no gradient, as in
torch; ``where`` with a condition known when the model is read (a mask) passes the chosen element through.

>>> import sympy as sp
>>> a, b, v = sp.symbols("a b v")
>>> Div().scalar(v, a, b)
(a/b, ((a, 1/b), (b, -v/b)))
>>> Activate("tanh").scalar(v, a)
(tanh(a), ((a, 1 - v**2),))
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp

from derive.ops.activations import Step, activation
from derive.ops.code import ElementaryCode
from derive.ops.tensor import Elementwise, Partials, Sample, TensorOp, as_torch, exact, register, torch_module


def _uniform(seed: int, shape: tuple[int, ...], low: float = -1.5, high: float = 1.5) -> np.ndarray:
    return np.random.default_rng(seed).uniform(low, high, shape)


def _binary_samples(op: TensorOp, low: float = -1.5, high: float = 1.5) -> list[Sample]:
    """Two tensors broadcast against each other, and a tensor with a number."""
    return [Sample(op, (_uniform(1, (2, 3), low, high), _uniform(2, (3,), low, high))),
            Sample(op, (_uniform(3, (2, 1, 2), low, high), 0.75))]


@dataclass(frozen=True)
class _Unary(Elementwise):
    """An element-wise function of one tensor (ATen argument ``self``), sampled on (``low``, ``high``)."""

    @classmethod
    def read(cls, call: Any) -> Any:
        return call.op(cls.key, call.input("self"))

    @classmethod
    def samples(cls) -> Iterable[Sample]:
        low, high = cls.domain
        return [Sample(cls(), (_uniform(4, (2, 3), low, high),))]

    def proof_domains(self, count: int) -> list[tuple[float, float]]:
        return [self.domain]

    domain = (-1.5, 1.5)


def _scaled(call: Any, name: str) -> Any:
    """The argument ``name`` times ``alpha`` (add and sub's ``alpha``): a number scaled, a tensor through ``mul``."""
    other, alpha = call.input(name), call.arg("alpha", 1)
    if alpha == 1:
        return other
    if isinstance(other, (int, float)):
        return other * alpha
    return call.op("mul", other, alpha, name=f"{call.node.name}_alpha")


@register
@dataclass(frozen=True)
class Add(Elementwise):
    """``a + b`` (``add``, with torch's ``alpha``: a + αb), broadcasting as torch; ∂/∂a = ∂/∂b = 1."""

    key = "add"
    formula = "{0} + {1}"
    aten = ("add.Tensor", "add.Scalar")

    @classmethod
    def read(cls, call: Any) -> Any:
        return call.op("add", call.input("self"), _scaled(call, "other"))

    @classmethod
    def samples(cls) -> Iterable[Sample]:
        return _binary_samples(cls())

    def scalar(self, out: sp.Symbol, a: sp.Expr, b: sp.Expr) -> tuple[sp.Expr, Partials]:
        return a + b, ((a, sp.S.One), (b, sp.S.One))


@register
@dataclass(frozen=True)
class Sub(Elementwise):
    """``a - b`` (``sub``, ``rsub``, with ``alpha``); ∂/∂a = 1, ∂/∂b = −1."""

    key = "sub"
    formula = "{0} - {1}"
    aten = ("sub.Tensor", "sub.Scalar", "rsub.Scalar", "rsub.Tensor")

    @classmethod
    def read(cls, call: Any) -> Any:
        if call.name.startswith("rsub"):  # other − alpha·self
            scaled = call.input("self") if call.arg("alpha", 1) == 1 else call.op(
                "mul", call.input("self"), call.arg("alpha"), name=f"{call.node.name}_alpha")
            return call.op("sub", call.input("other"), scaled)
        return call.op("sub", call.input("self"), _scaled(call, "other"))

    @classmethod
    def samples(cls) -> Iterable[Sample]:
        return _binary_samples(cls())

    def scalar(self, out: sp.Symbol, a: sp.Expr, b: sp.Expr) -> tuple[sp.Expr, Partials]:
        return a - b, ((a, sp.S.One), (b, sp.S.NegativeOne))


@register
@dataclass(frozen=True)
class Mul(Elementwise):
    """``a * b`` element by element (⊙); ∂/∂a = b, ∂/∂b = a."""

    key = "mul"
    formula = r"{0} \odot {1}"
    aten = ("mul.Tensor", "mul.Scalar")

    @classmethod
    def read(cls, call: Any) -> Any:
        return call.op("mul", call.input("self"), call.input("other"))

    @classmethod
    def samples(cls) -> Iterable[Sample]:
        return _binary_samples(cls())

    def scalar(self, out: sp.Symbol, a: sp.Expr, b: sp.Expr) -> tuple[sp.Expr, Partials]:
        return a * b, ((a, b), (b, a))


@register
@dataclass(frozen=True)
class Div(Elementwise):
    """``a / b`` (true division); ∂/∂a = 1/b, ∂/∂b = −v/b."""

    key = "div"
    formula = r"{0} \oslash {1}"
    aten = ("div.Tensor", "div.Scalar", "div.Tensor_mode", "div.Scalar_mode")

    @classmethod
    def read(cls, call: Any) -> Any:
        if call.arg("rounding_mode") is not None:
            call.refuse(f"rounding_mode={call.arg('rounding_mode')!r} (it has no gradient)")
        return call.op("div", call.input("self"), call.input("other"))

    @classmethod
    def samples(cls) -> Iterable[Sample]:
        return _binary_samples(cls(), 0.5, 2.0)

    def proof_domains(self, count: int) -> list[tuple[float, float]]:
        return [(-1.5, 1.5), (0.5, 2.0)]

    def scalar(self, out: sp.Symbol, a: sp.Expr, b: sp.Expr) -> tuple[sp.Expr, Partials]:
        return a / b, ((a, 1 / b), (b, -out / b))


@register
@dataclass(frozen=True)
class Neg(_Unary):
    """``-a``; ∂/∂a = −1."""

    key = "neg"
    formula = "-{0}"
    aten = ("neg.default",)

    def scalar(self, out: sp.Symbol, a: sp.Expr) -> tuple[sp.Expr, Partials]:
        return -a, ((a, sp.S.NegativeOne),)


@register
@dataclass(frozen=True)
class Pow(Elementwise):
    """``a ** c`` for a constant exponent ``c`` (``x**2``, ``torch.pow(x, 0.5)``)."""

    exponent: float = 2.0
    key = "pow"
    aten = ("pow.Tensor_Scalar",)

    @classmethod
    def read(cls, call: Any) -> Any:
        return call.op("pow", call.input("self"), exponent=float(call.arg("exponent")))

    @classmethod
    def samples(cls) -> Iterable[Sample]:
        x = _uniform(5, (2, 3), 0.5, 2.0)
        return [Sample(cls(2.0), (x - 1,)), Sample(cls(0.5), (x,)), Sample(cls(-1.5), (x,)), Sample(cls(3.0), (x - 1,))]

    def proof_domains(self, count: int) -> list[tuple[float, float]]:
        return [(0.5, 2.0) if not float(self.exponent).is_integer() or self.exponent < 0 else (-1.5, 1.5)]

    def scalar(self, out: sp.Symbol, a: sp.Expr) -> tuple[sp.Expr, Partials]:
        c = exact(self.exponent)
        return a**c, ((a, c * a ** (c - 1)),)

    def describe(self, *inputs: str) -> str:
        c = self.exponent
        return f"{{{inputs[0]}}}^{{{int(c) if float(c).is_integer() else c}}}"


@register
@dataclass(frozen=True)
class PowTensor(Elementwise):
    """``a ** b`` with a tensor exponent (``torch.pow(x, t)``, ``2 ** x``): ∂/∂a = b a^(b−1), ∂/∂b = v log a."""

    key = "pow_tensor"
    formula = "{{{0}}}^{{{1}}}"
    aten = ("pow.Tensor_Tensor", "pow.Scalar")

    @classmethod
    def read(cls, call: Any) -> Any:
        return call.op("pow_tensor", call.input("self"), call.input("exponent"))

    @classmethod
    def samples(cls) -> Iterable[Sample]:
        return [Sample(cls(), (_uniform(6, (2, 3), 0.5, 2.0), _uniform(7, (3,)))),
                Sample(cls(), (2.0, _uniform(8, (2, 2))))]

    def proof_domains(self, count: int) -> list[tuple[float, float]]:
        return [(0.5, 2.0), (-1.5, 1.5)]

    def scalar(self, out: sp.Symbol, a: sp.Expr, b: sp.Expr) -> tuple[sp.Expr, Partials]:
        return a**b, ((a, b * a ** (b - 1)), (b, out * sp.log(a)))


@register
@dataclass(frozen=True)
class Exp(_Unary):
    """e^a; ∂/∂a = v."""

    key = "exp"
    formula = r"e^{{{0}}}"
    aten = ("exp.default",)

    def scalar(self, out: sp.Symbol, a: sp.Expr) -> tuple[sp.Expr, Partials]:
        return sp.exp(a), ((a, out),)


@register
@dataclass(frozen=True)
class Expm1(_Unary):
    """e^a − 1 (``torch.expm1``); ∂/∂a = v + 1."""

    key = "expm1"
    formula = r"e^{{{0}}} - 1"
    aten = ("expm1.default",)

    def scalar(self, out: sp.Symbol, a: sp.Expr) -> tuple[sp.Expr, Partials]:
        return sp.exp(a) - 1, ((a, out + 1),)


@register
@dataclass(frozen=True)
class Log(_Unary):
    """log a; ∂/∂a = 1/a."""

    key = "log"
    formula = r"\log {0}"
    aten = ("log.default",)
    domain = (0.2, 2.0)

    def scalar(self, out: sp.Symbol, a: sp.Expr) -> tuple[sp.Expr, Partials]:
        return sp.log(a), ((a, 1 / a),)


@register
@dataclass(frozen=True)
class Log1p(_Unary):
    """log(1 + a) (``torch.log1p``); ∂/∂a = 1/(1 + a)."""

    key = "log1p"
    formula = r"\log\left(1 + {0}\right)"
    aten = ("log1p.default",)
    domain = (-0.5, 2.0)

    def scalar(self, out: sp.Symbol, a: sp.Expr) -> tuple[sp.Expr, Partials]:
        return sp.log(1 + a), ((a, 1 / (1 + a)),)


@register
@dataclass(frozen=True)
class Log2(_Unary):
    """log₂ a; ∂/∂a = 1/(a log 2)."""

    key = "log2"
    formula = r"\log_2 {0}"
    aten = ("log2.default",)
    domain = (0.2, 2.0)

    def scalar(self, out: sp.Symbol, a: sp.Expr) -> tuple[sp.Expr, Partials]:
        return sp.log(a) / sp.log(2), ((a, 1 / (a * sp.log(2))),)


@register
@dataclass(frozen=True)
class Sqrt(_Unary):
    """√a; ∂/∂a = 1/(2v)."""

    key = "sqrt"
    formula = r"\sqrt{{{0}}}"
    aten = ("sqrt.default",)
    domain = (0.2, 2.0)

    def scalar(self, out: sp.Symbol, a: sp.Expr) -> tuple[sp.Expr, Partials]:
        return sp.sqrt(a), ((a, 1 / (2 * out)),)


@register
@dataclass(frozen=True)
class Rsqrt(_Unary):
    """1/√a (``torch.rsqrt``, RMSNorm's); ∂/∂a = −v³/2."""

    key = "rsqrt"
    formula = r"\frac{{1}}{{\sqrt{{{0}}}}}"
    aten = ("rsqrt.default",)
    domain = (0.2, 2.0)

    def scalar(self, out: sp.Symbol, a: sp.Expr) -> tuple[sp.Expr, Partials]:
        return 1 / sp.sqrt(a), ((a, -out**3 / 2),)


@register
@dataclass(frozen=True)
class Reciprocal(_Unary):
    """1/a; ∂/∂a = −v²."""

    key = "reciprocal"
    formula = r"\frac{{1}}{{{0}}}"
    aten = ("reciprocal.default",)
    domain = (0.5, 2.0)

    def scalar(self, out: sp.Symbol, a: sp.Expr) -> tuple[sp.Expr, Partials]:
        return 1 / a, ((a, -out**2),)


@register
@dataclass(frozen=True)
class Abs(_Unary):
    """``|a|``, with derivative sign(a): 0 at 0, as torch."""

    key = "abs"
    formula = r"\left|{0}\right|"
    aten = ("abs.default",)

    def scalar(self, out: sp.Symbol, a: sp.Expr) -> tuple[sp.Expr, Partials]:
        return sp.Abs(a), ((a, sp.sign(a)),)


@register
@dataclass(frozen=True)
class Sin(_Unary):
    """sin a; ∂/∂a = cos a."""

    key = "sin"
    formula = r"\sin {0}"
    aten = ("sin.default",)

    def scalar(self, out: sp.Symbol, a: sp.Expr) -> tuple[sp.Expr, Partials]:
        return sp.sin(a), ((a, sp.cos(a)),)


@register
@dataclass(frozen=True)
class Cos(_Unary):
    """cos a; ∂/∂a = −sin a."""

    key = "cos"
    formula = r"\cos {0}"
    aten = ("cos.default",)

    def scalar(self, out: sp.Symbol, a: sp.Expr) -> tuple[sp.Expr, Partials]:
        return sp.cos(a), ((a, -sp.sin(a)),)


@register
@dataclass(frozen=True)
class Sinh(_Unary):
    """sinh a; ∂/∂a = cosh a."""

    key = "sinh"
    formula = r"\sinh {0}"
    aten = ("sinh.default",)

    def scalar(self, out: sp.Symbol, a: sp.Expr) -> tuple[sp.Expr, Partials]:
        return sp.sinh(a), ((a, sp.cosh(a)),)


@register
@dataclass(frozen=True)
class Atan(_Unary):
    """arctan a; ∂/∂a = 1/(1 + a²)."""

    key = "atan"
    formula = r"\arctan {0}"
    aten = ("atan.default",)

    def scalar(self, out: sp.Symbol, a: sp.Expr) -> tuple[sp.Expr, Partials]:
        return sp.atan(a), ((a, 1 / (1 + a**2)),)


@register
@dataclass(frozen=True)
class Erf(_Unary):
    """erf a; ∂/∂a = 2e^(−a²)/√π."""

    key = "erf"
    formula = r"\operatorname{{erf}} {0}"
    aten = ("erf.default",)

    def scalar(self, out: sp.Symbol, a: sp.Expr) -> tuple[sp.Expr, Partials]:
        return sp.erf(a), ((a, 2 * sp.exp(-(a**2)) / sp.sqrt(sp.pi)),)


@register
@dataclass(frozen=True)
class Sign(_Unary):
    """sign(a): −1, 0 or 1, with no gradient (torch's is 0)."""

    key = "sign"
    formula = r"\operatorname{{sign}} {0}"
    aten = ("sign.default", "sgn.default")

    def scalar(self, out: sp.Symbol, a: sp.Expr) -> tuple[sp.Expr, Partials]:
        return sp.sign(a), ()


class Clamp(ElementaryCode, sp.Function):
    r"""$\min(\max(z, lo), hi)$; ``None`` bounds are given as ``-oo``/``oo``."""

    nargs = 3

    @staticmethod
    def numeric(z: float, lo: float, hi: float) -> float:
        return min(max(z, lo), hi)

    def _sympystr(self, printer: sp.printing.str.StrPrinter) -> str:
        return f"clamp({', '.join(printer._print(a) for a in self.args)})"

    def _latex(self, printer: sp.printing.latex.LatexPrinter, exp: str | None = None) -> str:
        power = f"^{{{exp}}}" if exp is not None else ""
        args = ", ".join(printer._print(a) for a in self.args)
        return rf"\operatorname{{clamp}}{power}\left({args}\right)"

    def _eval_rewrite_as_elementary(self, z: sp.Expr, lo: sp.Expr, hi: sp.Expr, **kwargs: object) -> sp.Expr:
        return sp.Min(sp.Max(z, lo), hi)

    def _torchcode(self, printer: sp.printing.pytorch.TorchPrinter) -> str:
        z, lo, hi = self.args
        bounds = [None if b.is_infinite else float(b) for b in (lo, hi)]
        return f"{printer._module_format('torch.clamp')}({printer._print(z)}, {bounds[0]!r}, {bounds[1]!r})"

    def _numpycode(self, printer: sp.printing.numpy.NumPyPrinter) -> str:
        z, lo, hi = self.args
        bounds = [None if b.is_infinite else float(b) for b in (lo, hi)]
        return f"{printer._module_format('numpy.clip')}({printer._print(z)}, {bounds[0]!r}, {bounds[1]!r})"


@register
@dataclass(frozen=True)
class ClampOp(Elementwise):
    """``torch.clamp(a, min, max)``: the gradient is 1 where min ≤ a ≤ max (bounds included, as torch)."""

    low: float | None = None
    high: float | None = None
    key = "clamp"
    aten = ("clamp.default", "clamp_min.default", "clamp_max.default", "hardtanh.default", "clamp.Tensor",
            "clamp_min.Tensor", "clamp_max.Tensor")

    @classmethod
    def read(cls, call: Any) -> Any:
        x = call.input("self")
        if call.name == "hardtanh.default":
            low, high = float(call.arg("min_val")), float(call.arg("max_val"))
            if (low, high) == (-1.0, 1.0):
                return call.op("activate", x, activation="hardtanh")
            return call.op("clamp", x, low=low, high=high)
        names = {"clamp_min": ("min", None), "clamp_max": (None, "max")}.get(call.name.partition(".")[0], ("min", "max"))
        bounds = [call.arguments.get(n) if n else None for n in names]
        if call.name.endswith(".Tensor"):  # tensor bounds: maximum with the lower, minimum with the upper
            if bounds[0] is not None:
                x = call.op("maximum", x, call.node_of(bounds[0]), name=f"{call.node.name}_min")
            if bounds[1] is not None:
                x = call.op("minimum", x, call.node_of(bounds[1]))
            return x
        low, high = (None if b is None else float(b) for b in bounds)
        return call.op("clamp", x, low=low, high=high)

    @classmethod
    def samples(cls) -> Iterable[Sample]:
        x = np.array([[-2.0, -0.5, 0.25], [1.0, 0.5, 3.0]])  # 0.5: exactly on a bound (its gradient is 1)
        return [Sample(cls(-0.5, 1.0), (x,)), Sample(cls(None, 0.5), (x,)), Sample(cls(0.0, None), (x,))]

    def scalar(self, out: sp.Symbol, a: sp.Expr) -> tuple[sp.Expr, Partials]:
        lo = sp.S.NegativeInfinity if self.low is None else exact(self.low)
        hi = sp.S.Infinity if self.high is None else exact(self.high)
        inside = sp.S.One
        if self.low is not None:
            inside *= 1 - Step(lo - a)
        if self.high is not None:
            inside *= 1 - Step(a - hi)
        return Clamp(a, lo, hi), ((a, inside),)

    def forward(self, x: Any) -> Any:
        return torch_module().clamp(x, self.low, self.high)

    def describe(self, *inputs: str) -> str:
        bounds = ", ".join("" if v is None else f"{v:g}" for v in (self.low, self.high))
        return rf"\operatorname{{clamp}}\left({inputs[0]}, {bounds}\right)"


@dataclass(frozen=True)
class _Extremum(Elementwise):
    """max or min of two tensors; at a tie each gets half the gradient, as torch."""

    @classmethod
    def read(cls, call: Any) -> Any:
        return call.op(cls.key, call.input("self"), call.input("other"))

    @classmethod
    def samples(cls) -> Iterable[Sample]:
        a = np.array([[0.5, -1.0, 2.0], [0.25, 1.5, -0.5]])
        return [Sample(cls(), (a, np.array([0.5, 0.0, 2.0]))), *_binary_samples(cls())]


@register
@dataclass(frozen=True)
class Maximum(_Extremum):
    """``torch.maximum(a, b)``: the larger, element by element; at a tie each gets half the gradient, as torch."""

    key = "maximum"
    formula = r"\max\left({0}, {1}\right)"
    aten = ("maximum.default", "fmax.default")

    def scalar(self, out: sp.Symbol, a: sp.Expr, b: sp.Expr) -> tuple[sp.Expr, Partials]:
        return sp.Max(a, b), ((a, (1 + sp.sign(a - b)) / 2), (b, (1 - sp.sign(a - b)) / 2))

    def forward(self, a: Any, b: Any) -> Any:
        return torch_module().maximum(a, as_torch(b, a))


@register
@dataclass(frozen=True)
class Minimum(_Extremum):
    """``torch.minimum(a, b)``: the smaller, element by element; at a tie each gets half the gradient, as torch."""

    key = "minimum"
    formula = r"\min\left({0}, {1}\right)"
    aten = ("minimum.default", "fmin.default")

    def scalar(self, out: sp.Symbol, a: sp.Expr, b: sp.Expr) -> tuple[sp.Expr, Partials]:
        return sp.Min(a, b), ((a, (1 - sp.sign(a - b)) / 2), (b, (1 + sp.sign(a - b)) / 2))

    def forward(self, a: Any, b: Any) -> Any:
        return torch_module().minimum(a, as_torch(b, a))


@register
@dataclass(frozen=True)
class Activate(Elementwise):
    """Any element-wise activation of the registry, anywhere in the graph (``activation`` is its key)."""

    activation: str = "identity"
    key = "activate"
    aten = ("sigmoid.default", "tanh.default", "relu.default", "gelu.default", "elu.default",
            "leaky_relu.default", "silu.default", "softplus.default")

    @classmethod
    def read(cls, call: Any) -> Any:
        x = call.input("self")
        kind = call.name.partition(".")[0]
        if kind == "gelu":
            return call.op("activate", x, activation="gelu_tanh" if call.arg("approximate") == "tanh" else "gelu")
        if kind == "leaky_relu":
            slope = float(call.arg("negative_slope"))
            return call.op("activate", x, activation=activation(f"leaky_relu({slope!r})").key)
        if kind == "elu":
            alpha, scale, input_scale = (float(call.arg(n)) for n in ("alpha", "scale", "input_scale"))
            if (alpha, scale, input_scale) == (1.0, 1.0, 1.0):
                return call.op("activate", x, activation="elu")
            return _scaled_elu(call, x, alpha, scale, input_scale)
        if kind == "softplus":
            beta, threshold = float(call.arg("beta")), float(call.arg("threshold"))
            if (beta, threshold) != (1.0, 20.0):
                return _scaled_softplus(call, x, beta, threshold)
        return call.op("activate", x, activation=kind)

    @classmethod
    def samples(cls) -> Iterable[Sample]:
        from derive.ops.activations import ACTIVATIONS

        x = np.array([[-2.0, -0.75, 0.0], [0.5, 1.25, 3.0]])
        return [Sample(cls(key), (x if not ACTIVATIONS[key].vector else x[:, :2],)) for key in sorted(ACTIVATIONS)
                if not ACTIVATIONS[key].vector]

    def scalar(self, out: sp.Symbol, a: sp.Expr) -> tuple[sp.Expr, Partials]:
        act = activation(self.activation)
        return act(a), ((a, act.derivative(a, out)),)

    def reads(self) -> tuple[bool, bool]:
        fused = activation(self.activation).torch_backward
        return (True, True) if fused is None else (fused[1] == "z", fused[1] == "a")

    def backward(self, g: Any, inputs: Sequence[Any], out: Any, wanted: Sequence[bool], saved: Any = None) -> list:
        fused = activation(self.activation).torch_backward
        if fused is not None:  # the same partial (1 − a², a(1 − a), Step(z)) times g, in one pass over memory
            kernel, reads, *extra = fused
            return [getattr(torch_module().ops.aten, kernel)(g, inputs[0] if reads == "z" else out, *extra)]
        return super().backward(g, inputs, out, wanted, saved)

    def describe(self, *inputs: str) -> str:
        return rf"{activation(self.activation).latex_symbol}\left({inputs[0]}\right)"


def _scaled_elu(call: Any, x: Any, alpha: float, scale: float, input_scale: float) -> Any:
    """torch's elu with options (SELU, CELU's form): scale·(x if x > 0 else α(e^{x·input_scale} − 1))."""
    name = call.node.name
    positive = call.op("compare", x, 0.0, name=f"{name}_positive", kind="gt")
    inner = x if input_scale == 1 else call.op("mul", x, input_scale, name=f"{name}_input_scale")
    negative = call.op("mul", call.op("expm1", inner, name=f"{name}_expm1"), alpha, name=f"{name}_alpha")
    chosen = call.op("where", positive, x, negative, name=f"{name}_where" if scale != 1 else None)
    return chosen if scale == 1 else call.op("mul", chosen, scale)


def _scaled_softplus(call: Any, x: Any, beta: float, threshold: float) -> Any:
    """torch's softplus with options: x where βx > threshold, else softplus(βx)/β."""
    name = call.node.name
    scaled = x if beta == 1 else call.op("mul", x, beta, name=f"{name}_beta")
    smooth = call.op("activate", scaled, name=f"{name}_smooth", activation="softplus")
    smooth = smooth if beta == 1 else call.op("div", smooth, beta, name=f"{name}_divided")
    above = call.op("compare", scaled, threshold, name=f"{name}_above", kind="gt")
    return call.op("where", above, x, smooth)


class Select(sp.Function):
    """``where(c, a, b)`` for a condition ``c`` of 0 or 1 known only at a point: a if c else b.

    >>> a, b = sp.symbols("a b")
    >>> Select(1, a, b), Select(0, a, b)
    (a, b)
    """

    nargs = 3

    @classmethod
    def eval(cls, c: sp.Expr, a: sp.Expr, b: sp.Expr) -> sp.Expr | None:
        if c.is_Number:
            return a if c != 0 else b
        if a == b:
            return a
        return None

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        c = self.args[0]
        return {1: sp.S.Zero, 2: Select(c, 1, 0), 3: Select(c, 0, 1)}[argindex]

    @staticmethod
    def numeric(c: float, a: float, b: float) -> float:
        return a if c else b

    def _eval_rewrite_as_elementary(self, c: sp.Expr, a: sp.Expr, b: sp.Expr, **kwargs: object) -> sp.Expr:
        return sp.Piecewise((a, sp.Ne(c, 0)), (b, True))

    def _sympystr(self, printer: sp.printing.str.StrPrinter) -> str:
        return f"where({', '.join(printer._print(a) for a in self.args)})"

    def _latex(self, printer: sp.printing.latex.LatexPrinter, exp: str | None = None) -> str:
        c, a, b = (printer._print(arg) for arg in self.args)
        power = f"^{{{exp}}}" if exp is not None else ""
        return rf"\begin{{cases}} {a} & \text{{if }} {c} \\ {b} & \text{{otherwise}} \end{{cases}}{power}"

    def _pythoncode(self, printer: sp.printing.pycode.PythonCodePrinter) -> str:
        c, a, b = (printer._print(arg) for arg in self.args)
        return f"(({a}) if ({c}) else ({b}))"

    _mpmathcode = _pythoncode

    def _numpycode(self, printer: sp.printing.numpy.NumPyPrinter) -> str:
        c, a, b = (printer._print(arg) for arg in self.args)
        return f"{printer._module_format('numpy.where')}(({c}) != 0, {a}, {b})"

    def _torchcode(self, printer: sp.printing.pytorch.TorchPrinter) -> str:
        condition, first, second = self.args
        c, a, b = (printer._print(arg) for arg in self.args)
        if first.is_Number and second.is_Number and first.is_finite and second.is_finite:
            return f"(({a} - {b})*({c}) + {b})"  # two numbers: torch.where would make float32; c keeps the dtype
        as_tensor = printer._module_format("torch.as_tensor")
        return f"{printer._module_format('torch.where')}({as_tensor}({c}) != 0, {a}, {b})"


@register
@dataclass(frozen=True)
class Where(Elementwise):
    """``torch.where(c, a, b)`` (and ``masked_fill``): a where c, else b; the gradient goes to the chosen one.

    A condition known when the model is read (a mask) passes the chosen element through, so a masked score
    is the number −∞ itself; a condition that depends on a parameter is `Select`.
    """

    key = "where"
    aten = ("where.self", "where.ScalarSelf", "where.ScalarOther", "where.Scalar")

    @classmethod
    def read(cls, call: Any) -> Any:
        return call.op("where", call.input("condition"), call.input("self"), call.input("other"))

    @classmethod
    def samples(cls) -> Iterable[Sample]:
        mask = np.array([[True, False, True], [False, False, True]])
        return [Sample(cls(), (mask, _uniform(9, (2, 3)), _uniform(10, (3,)))),
                Sample(cls(), (mask, _uniform(11, (2, 3)), -0.5))]

    def proof_instance(self, shapes, data) -> tuple[Any, list, list]:
        """The condition as 0s and 1s (it is a comparison's result): data of the instance."""
        op, shapes, data = super().proof_instance(shapes, [None, *data[1:]])
        if data[0] is None and shapes[0] is not None:
            data[0] = (np.arange(int(np.prod(shapes[0]))).reshape(shapes[0]) % 3 == 1)
        return op, shapes, data

    def lower(self, lowering: Any, c: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        from derive.ops.tensor import broadcast, symbols_only

        cs, as_, bs = broadcast(c, a, b, where=self.key)
        out = lowering.new(cs.shape)
        for index in np.ndindex(out.shape):
            condition = cs[index]
            if condition.is_Number:  # known now: the chosen element itself
                out[index] = as_[index] if condition != 0 else bs[index]
                continue
            expr, partials = self.scalar(out[index], condition, as_[index], bs[index])
            lowering.define(out[index], expr, symbols_only(partials))
        return out

    def scalar(self, out: sp.Symbol, c: sp.Expr, a: sp.Expr, b: sp.Expr) -> tuple[sp.Expr, Partials]:
        return Select(c, a, b), ((a, Select(c, 1, 0)), (b, Select(c, 0, 1)))

    def forward(self, c: Any, a: Any, b: Any) -> Any:
        torch = torch_module()
        like = a if hasattr(a, "dim") else b
        return torch.where(c.bool() if hasattr(c, "dim") else torch.as_tensor(bool(c)), as_torch(a, like),
                           as_torch(b, like))

    def backward(self, g: Any, inputs: Sequence[Any], out: Any, wanted: Sequence[bool], saved: Any = None) -> list:
        from derive.ops.tensor import unbroadcast

        c, a, b = inputs
        torch = torch_module()
        chosen = c.bool() if hasattr(c, "dim") else torch.as_tensor(bool(c))
        zero = torch.zeros((), dtype=g.dtype, device=g.device)
        return [None, unbroadcast(torch.where(chosen, g, zero), tuple(a.shape)) if hasattr(a, "dim") else None,
                unbroadcast(torch.where(chosen, zero, g), tuple(b.shape)) if hasattr(b, "dim") else None]

    def describe(self, *inputs: str) -> str:
        return rf"\operatorname{{where}}\left({', '.join(inputs)}\right)"


#: each comparison as 0/1 over the elements, with torch's result at equality
_COMPARE = {
    "gt": lambda a, b: Step(a - b), "lt": lambda a, b: Step(b - a),
    "ge": lambda a, b: 1 - Step(b - a), "le": lambda a, b: 1 - Step(a - b),
    "eq": lambda a, b: (1 - Step(a - b)) * (1 - Step(b - a)),
    "ne": lambda a, b: 1 - (1 - Step(a - b)) * (1 - Step(b - a)),
}
_COMPARE_LATEX = {"gt": ">", "lt": "<", "ge": r"\ge", "le": r"\le", "eq": "=", "ne": r"\ne"}


@register
@dataclass(frozen=True)
class Compare(Elementwise):
    """``a > b`` and the other comparisons: 1 or 0, with no gradient (as torch's booleans)."""

    kind: str = "gt"
    key = "compare"
    differentiable = False
    aten = tuple(f"{k}.{o}" for k in _COMPARE for o in ("Tensor", "Scalar"))

    @classmethod
    def read(cls, call: Any) -> Any:
        return call.op("compare", call.input("self"), call.input("other"), kind=call.name.partition(".")[0])

    @classmethod
    def samples(cls) -> Iterable[Sample]:
        a = np.array([[0.5, -1.0, 2.0], [0.25, 1.5, -0.5]])
        return [Sample(cls(kind), (a, np.array([0.5, 0.0, 2.0]))) for kind in _COMPARE]

    def scalar(self, out: sp.Symbol, a: sp.Expr, b: sp.Expr) -> tuple[sp.Expr, Partials]:
        return _COMPARE[self.kind](a, b), ()

    def forward(self, a: Any, b: Any) -> Any:
        return getattr(torch_module(), self.kind)(a, b)

    def backward(self, g: Any, inputs: Sequence[Any], out: Any, wanted: Sequence[bool], saved: Any = None) -> list:
        return [None, None]

    def describe(self, *inputs: str) -> str:
        return rf"\left[{inputs[0]} {_COMPARE_LATEX[self.kind]} {inputs[1]}\right]"


_LOGICAL = {"not": lambda a, b=None: 1 - a, "and": lambda a, b: a * b, "or": lambda a, b: a + b - a * b,
            "xor": lambda a, b: a + b - 2 * a * b}


@register
@dataclass(frozen=True)
class Logical(Elementwise):
    """``~c``, ``c & d``, ``c | d``, ``c ^ d`` of conditions (0 or 1), with no gradient."""

    kind: str = "not"
    key = "logical"
    differentiable = False
    aten = ("logical_not.default", "logical_and.default", "logical_or.default", "logical_xor.default",
            "bitwise_not.default", "bitwise_and.Tensor", "bitwise_or.Tensor", "bitwise_xor.Tensor")

    @classmethod
    def read(cls, call: Any) -> Any:
        kind = call.name.partition(".")[0].split("_")[1]
        if kind == "not":
            return call.op("logical", call.input("self"), kind="not")
        return call.op("logical", call.input("self"), call.input("other"), kind=kind)

    @classmethod
    def samples(cls) -> Iterable[Sample]:
        a = np.array([[True, False], [True, True]])
        return [Sample(cls("not"), (a,)), *(Sample(cls(k), (a, np.array([False, True]))) for k in ("and", "or", "xor"))]

    def scalar(self, out: sp.Symbol, *args: sp.Expr) -> tuple[sp.Expr, Partials]:
        return _LOGICAL[self.kind](*args), ()

    def forward(self, *inputs: Any) -> Any:
        return getattr(torch_module(), f"logical_{self.kind}")(*(a.bool() for a in inputs))

    def backward(self, g: Any, inputs: Sequence[Any], out: Any, wanted: Sequence[bool], saved: Any = None) -> list:
        return [None] * len(inputs)
