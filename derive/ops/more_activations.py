r"""More element-wise activations: ELU, SiLU, Hardtanh (torch's defaults) and GELU's tanh form, registered like the others.

Each is usable after a Linear layer in a chain and anywhere in a graph model. Derivatives follow torch at
the kinks: ELU' is $e^{z}$ for $z \le 0$ (so 1 at 0), Hardtanh' is 0 at $z = \pm 1$.

>>> import sympy as sp
>>> z = sp.Symbol("z")
>>> sp.diff(SiLU(z), z)
(1 - sigmoid(z))*silu(z) + sigmoid(z)
"""

from __future__ import annotations

import math

import sympy as sp

from derive.ops.activations import Activation, Sigmoid, Step, register
from derive.ops.code import ElementaryCode


class ExpLeft(ElementaryCode, sp.Function):
    r"""$e^{\min(z, 0)}$: ELU's slope left of 0, without overflow for large $z$ where it is not used.

    >>> ExpLeft(sp.Symbol("z")).diff()
    (1 - step(z))*exp_left(z)
    """

    nargs = 1

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return (1 - Step(self.args[0])) * self

    @staticmethod
    def numeric(z: float) -> float:
        return math.exp(min(z, 0.0))

    def _eval_rewrite_as_elementary(self, z: sp.Expr, **kwargs: object) -> sp.Expr:
        return sp.exp(sp.Min(z, 0))

    def _sympystr(self, printer: sp.printing.str.StrPrinter) -> str:
        return f"exp_left({printer._print(self.args[0])})"

    def _latex(self, printer: sp.printing.latex.LatexPrinter, exp: str | None = None) -> str:
        power = f"^{{{exp}}}" if exp is not None else ""
        return rf"\left(e^{{\min\left({printer._print(self.args[0])}, 0\right)}}\right){power}"

    def _numpycode(self, printer: sp.printing.numpy.NumPyPrinter) -> str:
        z = printer._print(self.args[0])
        return f"{printer._module_format('numpy.exp')}({printer._module_format('numpy.minimum')}({z}, 0))"

    def _torchcode(self, printer: sp.printing.pytorch.TorchPrinter) -> str:
        z = printer._print(self.args[0])
        return f"{printer._module_format('torch.exp')}({printer._module_format('torch.clamp')}({z}, max=0))"


@register
class ELU(Activation):
    r"""Exponential linear unit ($\alpha = 1$): $z$ for $z > 0$, else $e^{z} - 1$; $f' = 1$ or $e^{z}$."""

    key = "elu"
    latex_symbol = r"\operatorname{ELU}"
    torch_module = "ELU"
    torch_function = "torch.nn.functional.elu"
    output_range = (-1.0, math.inf)
    kinks = (0.0,)

    @classmethod
    def definition(cls, z: sp.Expr) -> sp.Expr:
        return sp.Max(0, z) + sp.Min(0, sp.exp(z) - 1)

    @classmethod
    def derivative(cls, z: sp.Expr, a: sp.Expr) -> sp.Expr:
        return Step(z) + (1 - Step(z)) * ExpLeft(z)  # not a + 1: no cancellation far left

    @staticmethod
    def numeric(z: float) -> float:
        return z if z > 0 else math.expm1(z)

    def _numpycode(self, printer: sp.printing.numpy.NumPyPrinter) -> str:
        z = printer._print(self.args[0])
        expm1 = printer._module_format("numpy.expm1")
        minimum = printer._module_format("numpy.minimum")
        return f"{printer._module_format('numpy.where')}(({z}) > 0, {z}, {expm1}({minimum}({z}, 0)))"


@register
class SiLU(Activation):
    r"""Sigmoid linear unit (swish), $z\,\sigma(z)$, with $f' = \sigma(z) + a\,(1 - \sigma(z))$."""

    key = "silu"
    latex_symbol = r"\operatorname{SiLU}"
    torch_module = "SiLU"
    torch_function = "torch.nn.functional.silu"
    output_range = (-0.28, math.inf)  # the minimum, at z ≈ −1.2785, is −0.27846

    @classmethod
    def definition(cls, z: sp.Expr) -> sp.Expr:
        return z / (1 + sp.exp(-z))

    @classmethod
    def derivative(cls, z: sp.Expr, a: sp.Expr) -> sp.Expr:
        return Sigmoid(z) + a * (1 - Sigmoid(z))

    @staticmethod
    def numeric(z: float) -> float:
        return z * Sigmoid.numeric(z)

    def _numpycode(self, printer: sp.printing.numpy.NumPyPrinter) -> str:
        z = self.args[0]
        return printer._print(z * Sigmoid(z))


@register
class Hardtanh(Activation):
    r"""Hardtanh, $\max(-1, \min(1, z))$, with $f' = \mathbb{1}[-1 < z < 1]$ (0 at the kinks, as torch)."""

    key = "hardtanh"
    latex_symbol = r"\operatorname{hardtanh}"
    torch_module = "Hardtanh"
    torch_function = "torch.nn.functional.hardtanh"
    output_range = (-1.0, 1.0)
    kinks = (-1.0, 1.0)

    @classmethod
    def definition(cls, z: sp.Expr) -> sp.Expr:
        return sp.Min(1, sp.Max(-1, z))

    @classmethod
    def derivative(cls, z: sp.Expr, a: sp.Expr) -> sp.Expr:
        return Step(z + 1) * Step(1 - z)

    @staticmethod
    def numeric(z: float) -> float:
        return min(1.0, max(-1.0, z))

    def _numpycode(self, printer: sp.printing.numpy.NumPyPrinter) -> str:
        return f"{printer._module_format('numpy.clip')}({printer._print(self.args[0])}, -1, 1)"


#: GELU's tanh approximation: √(2/π) (a float, as torch computes it) and the cubic's coefficient
_GELU_TANH_C = sp.Float(math.sqrt(2 / math.pi), 17)
_GELU_TANH_K = sp.Rational("0.044715")


@register
class GELUTanh(Activation):
    r"""GELU's tanh form (``GELU(approximate="tanh")``): $\tfrac{1}{2} z (1 + \tanh u)$ with
    $u = \sqrt{2/\pi}\,(z + 0.044715 z^3)$; $f' = \tfrac{1}{2}(1 + \tanh u) + \tfrac{1}{2} z (1 - \tanh^2 u)\,u'$."""

    key = "gelu_tanh"
    latex_symbol = r"\operatorname{GELU}_{\tanh}"
    torch_module = "GELU"
    torch_function = ""
    output_range = (-0.18, math.inf)

    @classmethod
    def torch_kwargs(cls) -> dict[str, float | int | str]:
        return {"approximate": "tanh"}

    @classmethod
    def definition(cls, z: sp.Expr) -> sp.Expr:
        return z * (1 + sp.tanh(_GELU_TANH_C * (z + _GELU_TANH_K * z**3))) / 2

    @classmethod
    def derivative(cls, z: sp.Expr, a: sp.Expr) -> sp.Expr:
        t = sp.tanh(_GELU_TANH_C * (z + _GELU_TANH_K * z**3))
        return (1 + t) / 2 + z * (1 - t**2) * _GELU_TANH_C * (1 + 3 * _GELU_TANH_K * z**2) / 2

    @staticmethod
    def numeric(z: float) -> float:
        u = math.sqrt(2 / math.pi) * (z + 0.044715 * z**3)
        if u >= 0:  # ½z(1 + tanh u) = z σ(2u), without the cancellation of 1 + tanh u far left
            return z / (1.0 + math.exp(-2 * u))
        e = math.exp(2 * u)
        return z * e / (1.0 + e)

    def _torchcode(self, printer: sp.printing.pytorch.TorchPrinter) -> str:
        gelu = printer._module_format("torch.nn.functional.gelu")
        return f"{gelu}({printer._print(self.args[0])}, approximate='tanh')"
