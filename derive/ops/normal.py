r"""The standard normal distribution's CDF Φ and density φ, as SymPy functions (GELU's parts).

Each evaluates stably in float64 and prints as Φ and φ, so GELU' reads $\Phi(z) + z\,\varphi(z)$.

>>> import sympy as sp
>>> z = sp.Symbol("z")
>>> sp.diff(Phi(z), z), sp.diff(NormalPDF(z), z)
(phi(z), -z*phi(z))
"""

from __future__ import annotations

import math

import sympy as sp

from derive.ops.code import ElementaryCode


class Phi(ElementaryCode, sp.Function):
    r"""The standard normal CDF, $\Phi(z) = \operatorname{erfc}(-z/\sqrt2)/2$, with $\Phi' = \varphi$."""

    nargs = 1

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return NormalPDF(self.args[0])

    @staticmethod
    def numeric(z: float) -> float:
        return 0.5 * math.erfc(-z / math.sqrt(2.0))  # no cancellation for negative z

    def _eval_rewrite_as_elementary(self, z: sp.Expr, **kwargs: object) -> sp.Expr:
        return sp.erfc(-z / sp.sqrt(2)) / 2

    def _sympystr(self, printer: sp.printing.str.StrPrinter) -> str:
        return f"Phi({printer._print(self.args[0])})"

    def _eval_evalf(self, prec: int) -> sp.Expr:
        return self.rewrite("elementary")._eval_evalf(prec)

    def _latex(self, printer: sp.printing.latex.LatexPrinter, exp: str | None = None) -> str:
        power = f"^{{{exp}}}" if exp is not None else ""
        return rf"\Phi{power}\left({printer._print(self.args[0])}\right)"

    def _numpycode(self, printer: sp.printing.numpy.NumPyPrinter) -> str:
        erfc = f"{printer._module_format('numpy.vectorize')}({printer._module_format('math.erfc')}, otypes=[float])"
        return f"0.5*{erfc}(-({printer._print(self.args[0])})/{math.sqrt(2.0)!r})"

    def _torchcode(self, printer: sp.printing.pytorch.TorchPrinter) -> str:
        return f"{printer._module_format('torch.special.ndtr')}({printer._print(self.args[0])})"


class NormalPDF(ElementaryCode, sp.Function):
    r"""The standard normal density, $\varphi(z) = e^{-z^2/2}/\sqrt{2\pi}$, with $\varphi' = -z\varphi$."""

    nargs = 1

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return -self.args[0] * self

    @staticmethod
    def numeric(z: float) -> float:
        return math.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)

    def _eval_rewrite_as_elementary(self, z: sp.Expr, **kwargs: object) -> sp.Expr:
        return sp.exp(-(z**2) / 2) / sp.sqrt(2 * sp.pi)

    def _sympystr(self, printer: sp.printing.str.StrPrinter) -> str:
        return f"phi({printer._print(self.args[0])})"

    def _eval_evalf(self, prec: int) -> sp.Expr:
        return self.rewrite("elementary")._eval_evalf(prec)

    def _latex(self, printer: sp.printing.latex.LatexPrinter, exp: str | None = None) -> str:
        power = f"^{{{exp}}}" if exp is not None else ""
        return rf"\varphi{power}\left({printer._print(self.args[0])}\right)"

    def _numpycode(self, printer: sp.printing.numpy.NumPyPrinter) -> str:
        return printer._print(self._eval_rewrite_as_elementary(self.args[0]))

    def _torchcode(self, printer: sp.printing.pytorch.TorchPrinter) -> str:
        # 1/√(2π) as a float literal: SymPy prints sqrt(2*pi) as torch.sqrt(2*math.pi), which takes tensors only
        z = printer._print(self.args[0])
        return f"{printer._module_format('torch.exp')}(-({z})**2/2)*{1 / math.sqrt(2 * math.pi)!r}"
