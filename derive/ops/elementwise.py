r"""Element-wise tensor ops: arithmetic with broadcasting, elementary functions, clamp, every activation.

Each gives one element's definition and its local partials in textbook form, over the output ``v`` where
that is shorter (``exp``: ∂v/∂a = v; ``sqrt``: 1/(2v)).

>>> import sympy as sp
>>> a, b, v = sp.symbols("a b v")
>>> Div().scalar(v, a, b)
(a/b, ((a, 1/b), (b, -v/b)))
>>> Activate("tanh").scalar(v, a)
(tanh(a), ((a, 1 - v**2),))
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from derive.ops.activations import Step, activation
from derive.ops.code import ElementaryCode
from derive.ops.tensor import Elementwise, Partials, exact, register


@register
@dataclass(frozen=True)
class Add(Elementwise):
    key = "add"
    formula = "{0} + {1}"

    def scalar(self, out: sp.Symbol, a: sp.Expr, b: sp.Expr) -> tuple[sp.Expr, Partials]:
        return a + b, ((a, sp.S.One), (b, sp.S.One))


@register
@dataclass(frozen=True)
class Sub(Elementwise):
    key = "sub"
    formula = "{0} - {1}"

    def scalar(self, out: sp.Symbol, a: sp.Expr, b: sp.Expr) -> tuple[sp.Expr, Partials]:
        return a - b, ((a, sp.S.One), (b, sp.S.NegativeOne))


@register
@dataclass(frozen=True)
class Mul(Elementwise):
    key = "mul"
    formula = r"{0} \odot {1}"

    def scalar(self, out: sp.Symbol, a: sp.Expr, b: sp.Expr) -> tuple[sp.Expr, Partials]:
        return a * b, ((a, b), (b, a))


@register
@dataclass(frozen=True)
class Div(Elementwise):
    key = "div"
    formula = r"{0} \oslash {1}"

    def scalar(self, out: sp.Symbol, a: sp.Expr, b: sp.Expr) -> tuple[sp.Expr, Partials]:
        return a / b, ((a, 1 / b), (b, -out / b))


@register
@dataclass(frozen=True)
class Neg(Elementwise):
    key = "neg"
    formula = "-{0}"

    def scalar(self, out: sp.Symbol, a: sp.Expr) -> tuple[sp.Expr, Partials]:
        return -a, ((a, sp.S.NegativeOne),)


@register
@dataclass(frozen=True)
class Pow(Elementwise):
    """``a ** c`` for a constant exponent ``c`` (``x**2``, ``torch.pow(x, 0.5)``)."""

    exponent: float = 2.0
    key = "pow"

    def scalar(self, out: sp.Symbol, a: sp.Expr) -> tuple[sp.Expr, Partials]:
        c = exact(self.exponent)
        return a**c, ((a, c * a ** (c - 1)),)

    def describe(self, *inputs: str) -> str:
        c = self.exponent
        return f"{{{inputs[0]}}}^{{{int(c) if float(c).is_integer() else c}}}"


@register
@dataclass(frozen=True)
class Exp(Elementwise):
    key = "exp"
    formula = r"e^{{{0}}}"

    def scalar(self, out: sp.Symbol, a: sp.Expr) -> tuple[sp.Expr, Partials]:
        return sp.exp(a), ((a, out),)


@register
@dataclass(frozen=True)
class Log(Elementwise):
    key = "log"
    formula = r"\log {0}"

    def scalar(self, out: sp.Symbol, a: sp.Expr) -> tuple[sp.Expr, Partials]:
        return sp.log(a), ((a, 1 / a),)


@register
@dataclass(frozen=True)
class Sqrt(Elementwise):
    key = "sqrt"
    formula = r"\sqrt{{{0}}}"

    def scalar(self, out: sp.Symbol, a: sp.Expr) -> tuple[sp.Expr, Partials]:
        return sp.sqrt(a), ((a, 1 / (2 * out)),)


@register
@dataclass(frozen=True)
class Abs(Elementwise):
    """``|a|``, with derivative sign(a): 0 at 0, as torch."""

    key = "abs"
    formula = r"\left|{0}\right|"

    def scalar(self, out: sp.Symbol, a: sp.Expr) -> tuple[sp.Expr, Partials]:
        return sp.Abs(a), ((a, sp.sign(a)),)


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

    def scalar(self, out: sp.Symbol, a: sp.Expr) -> tuple[sp.Expr, Partials]:
        lo = sp.S.NegativeInfinity if self.low is None else exact(self.low)
        hi = sp.S.Infinity if self.high is None else exact(self.high)
        inside = sp.S.One
        if self.low is not None:
            inside *= 1 - Step(lo - a)
        if self.high is not None:
            inside *= 1 - Step(a - hi)
        return Clamp(a, lo, hi), ((a, inside),)

    def describe(self, *inputs: str) -> str:
        bounds = ", ".join("" if v is None else f"{v:g}" for v in (self.low, self.high))
        return rf"\operatorname{{clamp}}\left({inputs[0]}, {bounds}\right)"


@register
@dataclass(frozen=True)
class Activate(Elementwise):
    """Any element-wise activation of the registry, anywhere in the graph (``activation`` is its key)."""

    activation: str = "identity"
    key = "activate"

    def scalar(self, out: sp.Symbol, a: sp.Expr) -> tuple[sp.Expr, Partials]:
        act = activation(self.activation)
        return act(a), ((a, act.derivative(a, out)),)

    def describe(self, *inputs: str) -> str:
        return rf"{activation(self.activation).latex_symbol}\left({inputs[0]}\right)"

