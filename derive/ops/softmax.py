r"""Functions of a whole vector: softmax (a registered vector activation) and log-sum-exp (cross-entropy's).

``Softmax(i, z1, …, zn)`` is output ``i`` (1-based) of the softmax of ``(z1, …, zn)``,
$e^{z_i} / \sum_j e^{z_j}$, with the textbook Jacobian $\partial a_i/\partial z_j = a_i(\delta_{ij} - a_j)$.
``LogSumExp(p1, …, pn)`` is $\log \sum_k e^{p_k}$, with $\partial/\partial p_k = \operatorname{softmax}_k(p)$.
Both are evaluated stably in float64 (the largest argument is subtracted first).

>>> import sympy as sp
>>> z1, z2 = sp.symbols("z1 z2")
>>> sp.diff(Softmax(1, z1, z2), z2)
-softmax_1(z1, z2)*softmax_2(z1, z2)
>>> sp.diff(LogSumExp(z1, z2), z1)
softmax_1(z1, z2)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import sympy as sp
from mpmath.libmp import prec_to_dps
from sympy.core.function import ArgumentIndexError

from derive.ops.activations import Activation, register
from derive.ops.code import ElementaryCode, torch_stack


def _stable_exps(values: Sequence[float]) -> tuple[float, list[float]]:
    top = max(values)
    return top, [math.exp(v - top) for v in values]


@register
class Softmax(Activation):
    r"""Softmax over the units of a layer: $a_i = e^{z_i} / \sum_j e^{z_j}$, $\partial a_i/\partial z_j = a_i(\delta_{ij} - a_j)$.

    A vector activation: every output uses every pre-activation of its layer (torch ``Softmax(dim=1)``,
    over the features of each sample). Called with one argument it is the softmax of a one-unit layer, 1.
    """

    nargs = None
    key = "softmax"
    textbook = True
    latex_symbol = r"\operatorname{softmax}"
    torch_module = "Softmax"
    torch_function = "torch.softmax"
    output_range = (0.0, 1.0)
    vector = True

    @classmethod
    def eval(cls, *args: sp.Expr) -> sp.Expr | None:
        if len(args) == 1:
            return sp.S.One
        index = args[0]
        if index.is_Float and float(index).is_integer():  # evalf turns every argument into a Float
            return cls(sp.Integer(int(index)), *args[1:])
        if not (index.is_Integer and 1 <= index <= len(args) - 1):
            raise ValueError(f"Softmax(i, z1, …, zn) needs 1 ≤ i ≤ n, got i = {index}")
        return None

    @classmethod
    def outputs(cls, zs: Sequence[sp.Expr]) -> list[sp.Expr]:
        """The outputs of a layer with pre-activations ``zs``."""
        return [cls(i + 1, *zs) for i in range(len(zs))]

    @classmethod
    def jacobian(cls, i: int, j: int, outputs: Sequence[sp.Expr]) -> sp.Expr:
        """∂a_i/∂z_j (0-based i, j) in textbook form, over the outputs ``a``."""
        return outputs[i] * ((1 if i == j else 0) - outputs[j])

    @classmethod
    def torch_kwargs(cls) -> dict[str, float | int]:
        return {"dim": 1}

    @classmethod
    def definition(cls, z: sp.Expr, *zs: sp.Expr) -> sp.Expr:
        zs = zs or (z,)
        return sp.exp(z) / sp.Add(*(sp.exp(v) for v in zs))

    @classmethod
    def derivative(cls, z: sp.Expr, a: sp.Expr) -> sp.Expr:
        return a * (1 - a)  # the diagonal of the Jacobian; the layer's rule is `jacobian`

    @staticmethod
    def numeric(*args: float) -> float:
        if len(args) == 1:
            return 1.0
        _, exps = _stable_exps(args[1:])
        return exps[int(args[0]) - 1] / math.fsum(exps)

    def _eval_evalf(self, prec: int) -> sp.Expr | None:
        """The value at ``prec`` bits, the largest argument subtracted first (its index stays an integer)."""
        zs = [z.evalf(prec_to_dps(prec)) for z in self.args[1:]]
        if not all(z.is_Number for z in zs):
            return None
        top = max(zs)
        exps = [sp.exp(z - top).evalf(prec_to_dps(prec)) for z in zs]
        return (exps[self._unit - 1] / sp.Add(*exps)).evalf(prec_to_dps(prec))

    @property
    def _unit(self) -> int:
        return int(self.args[0])

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        if argindex == 1:
            raise ArgumentIndexError(self, argindex)
        zs = self.args[1:]
        j = argindex - 1
        return self * ((1 if j == self._unit else 0) - Softmax(j, *zs))

    def _eval_rewrite_as_elementary(self, *args: sp.Expr, **kwargs: object) -> sp.Expr:
        zs = args[1:]
        return self.definition(zs[int(args[0]) - 1], *zs)

    def _sympystr(self, printer: sp.printing.str.StrPrinter) -> str:
        return f"softmax_{self._unit}({', '.join(printer._print(z) for z in self.args[1:])})"

    def _latex(self, printer: sp.printing.latex.LatexPrinter, exp: str | None = None) -> str:
        zs = ", ".join(printer._print(z) for z in self.args[1:])
        power = f"^{{{exp}}}" if exp is not None else ""
        return rf"{self.latex_symbol}_{{{self._unit}}}{power}\left({zs}\right)"

    def _numpycode(self, printer: sp.printing.numpy.NumPyPrinter) -> str:
        zs = [f"({printer._print(z)})" for z in self.args[1:]]
        top = f"{printer._module_format('numpy.maximum')}.reduce([{', '.join(zs)}])"
        exp = printer._module_format("numpy.exp")
        return f"{exp}({zs[self._unit - 1]} - {top})/({' + '.join(f'{exp}({z} - {top})' for z in zs)})"

    def _torchcode(self, printer: sp.printing.pytorch.TorchPrinter) -> str:
        stack = torch_stack(printer, self.args[1:])
        return f"{printer._module_format('torch.softmax')}({stack}, 0)[{self._unit - 1}]"


class LogSumExp(ElementaryCode, sp.Function):
    r"""$\log \sum_k e^{p_k}$, with $\partial/\partial p_k = \operatorname{softmax}_k(p)$; stable in float64."""

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return Softmax(argindex, *self.args)

    @staticmethod
    def numeric(*args: float) -> float:
        top, exps = _stable_exps(args)
        return top + math.log(math.fsum(exps))

    def _eval_evalf(self, prec: int) -> sp.Expr:
        return self.rewrite("elementary")._eval_evalf(prec)

    def _eval_rewrite_as_elementary(self, *args: sp.Expr, **kwargs: object) -> sp.Expr:
        return sp.log(sp.Add(*(sp.exp(p) for p in args)))

    def _sympystr(self, printer: sp.printing.str.StrPrinter) -> str:
        return f"logsumexp({', '.join(printer._print(p) for p in self.args)})"

    def _latex(self, printer: sp.printing.latex.LatexPrinter, exp: str | None = None) -> str:
        power = f"^{{{exp}}}" if exp is not None else ""
        return rf"\operatorname{{LSE}}{power}\left({', '.join(printer._print(p) for p in self.args)}\right)"

    def _numpycode(self, printer: sp.printing.numpy.NumPyPrinter) -> str:
        ps = ", ".join(printer._print(p) for p in self.args)
        return f"{printer._module_format('numpy.logaddexp')}.reduce([{ps}])"

    def _torchcode(self, printer: sp.printing.pytorch.TorchPrinter) -> str:
        return f"{printer._module_format('torch.logsumexp')}({torch_stack(printer, self.args)}, 0)"
