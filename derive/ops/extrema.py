r"""The maximum of several elements and its derivative: `MaxOf`, `Winner` (the first maximum takes the
gradient: max pooling, ``max(dim)``) and `TieShare` (ties share it equally: ``amax``, ``max()``), as torch.

>>> a, b = sp.symbols("a b")
>>> MaxOf(a, b).diff(a), TieShare.numeric(1, 2.0, 2.0)
(winner(1, a, b), 0.5)
"""

from __future__ import annotations

import sympy as sp

from derive.ops.activations import Step
from derive.ops.code import torch_stack


class MaxOf(sp.Function):
    """max(a, b, …), never evaluated (SymPy's ``Max`` would sort and simplify its arguments).

    Its derivative with respect to argument k is `Winner`\\ (k, a, b, …); in elementary form (JSON) it is
    SymPy's ``Max`` built unevaluated.

    >>> a, b = sp.symbols("a b")
    >>> MaxOf(b, a).args, MaxOf.numeric(1.0, 3.0, 3.0), MaxOf(a, b).diff(b)
    ((b, a), 3.0, winner(2, a, b))
    """

    @classmethod
    def eval(cls, *args: sp.Expr) -> None:
        return None

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return Winner(argindex, *self.args)

    @staticmethod
    def numeric(*values: float) -> float:
        return max(values)

    def _eval_rewrite_as_elementary(self, *args: sp.Expr, **kwargs: object) -> sp.Expr:
        return sp.Max(*args, evaluate=False)

    def _sympystr(self, printer: sp.printing.str.StrPrinter) -> str:
        return f"Max({', '.join(printer._print(a) for a in self.args)})"

    def _latex(self, printer: sp.printing.latex.LatexPrinter, exp: str | None = None) -> str:
        text = rf"\max\left({', '.join(printer._print(a) for a in self.args)}\right)"
        return text if exp is None else rf"{text}^{{{exp}}}"

    def _pythoncode(self, printer: sp.printing.pycode.PythonCodePrinter) -> str:
        return f"max({', '.join(printer._print(a) for a in self.args)})"  # math and mpmath alike

    _mpmathcode = _pythoncode

    def _numpycode(self, printer: sp.printing.numpy.NumPyPrinter) -> str:
        return _nested(printer, "numpy.maximum", self.args)

    def _torchcode(self, printer: sp.printing.pytorch.TorchPrinter) -> str:
        return _nested(printer, "torch.maximum", self.args)


def _nested(printer: sp.printing.printer.Printer, function: str, args: tuple[sp.Expr, ...]) -> str:
    name = printer._module_format(function)
    text = printer._print(args[-1])
    for arg in reversed(args[:-1]):
        text = f"{name}({printer._print(arg)}, {text})"
    return text


class Winner(sp.Function):
    """1 if argument k (1-based) is the first maximal one of a, b, …, else 0: ∂ max(a, b, …)/∂(argument k).

    The first maximum wins a tie, as in torch's max pooling. Its elementary form is a product of steps:
    the winner is greater than every argument before it and no less than every one after it.

    >>> a, b, c = sp.symbols("a b c")
    >>> [Winner.numeric(k, 1.0, 3.0, 3.0) for k in (1, 2, 3)]
    [0.0, 1.0, 0.0]
    >>> Winner(2, a, b, c).rewrite("elementary")
    (1 - Heaviside(-b + c, 0))*Heaviside(-a + b, 0)
    """

    @classmethod
    def eval(cls, k: sp.Expr, *args: sp.Expr) -> None:
        return None

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return sp.S.Zero

    @staticmethod
    def numeric(k: float, *values: float) -> float:
        return 1.0 if values.index(max(values)) == int(k) - 1 else 0.0

    def _steps(self, step: type = Step) -> sp.Expr:
        k, *args = self.args
        winner = args[int(k) - 1]
        factors = [step(winner - a) for a in args[: int(k) - 1]]
        factors += [1 - step(a - winner) for a in args[int(k):]]
        return sp.Mul(*factors)

    def _eval_rewrite_as_elementary(self, k: sp.Expr, *args: sp.Expr, **kwargs: object) -> sp.Expr:
        return Winner(k, *args)._steps(lambda z: sp.Heaviside(z, 0, evaluate=False))

    def _sympystr(self, printer: sp.printing.str.StrPrinter) -> str:
        return f"winner({', '.join(printer._print(a) for a in self.args)})"

    def _latex(self, printer: sp.printing.latex.LatexPrinter, exp: str | None = None) -> str:
        k, *args = self.args
        text = (rf"\mathbb{{1}}\left[\operatorname{{argmax}}\left({', '.join(printer._print(a) for a in args)}"
                rf"\right) = {printer._print(k)}\right]")
        return text if exp is None else rf"{text}^{{{exp}}}"

    def _pythoncode(self, printer: sp.printing.pycode.PythonCodePrinter) -> str:
        return f"({printer._print(self._steps())})"  # a product or 1 − step: parenthesised where it stands

    _mpmathcode = _numpycode = _torchcode = _pythoncode


class TieShare(sp.Function):
    """1/m if argument k (1-based) is one of the m maximal ones of a, b, …, else 0: how torch's ``amax`` and
    ``max()`` share the gradient among tied maxima.

    >>> [TieShare.numeric(k, 3.0, 1.0, 3.0) for k in (1, 2, 3)]
    [0.5, 0.0, 0.5]
    """

    @classmethod
    def eval(cls, k: sp.Expr, *args: sp.Expr) -> None:
        return None

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return sp.S.Zero

    @staticmethod
    def numeric(k: float, *values: float) -> float:
        top = max(values)
        return 1.0 / values.count(top) if values[int(k) - 1] == top else 0.0

    def _steps(self, step: type = Step) -> sp.Expr:
        k, *args = self.args
        mine = args[int(k) - 1]
        is_max = sp.Mul(*(1 - step(a - mine) for a in args))
        ties = sp.Add(*(sp.Mul(*(1 - step(a - b) for a in args)) for b in args))
        return is_max / ties

    def _eval_rewrite_as_elementary(self, k: sp.Expr, *args: sp.Expr, **kwargs: object) -> sp.Expr:
        return TieShare(k, *args)._steps(lambda z: sp.Heaviside(z, 0, evaluate=False))

    def _sympystr(self, printer: sp.printing.str.StrPrinter) -> str:
        return f"tie_share({', '.join(printer._print(a) for a in self.args)})"

    def _latex(self, printer: sp.printing.latex.LatexPrinter, exp: str | None = None) -> str:
        k, *args = self.args
        text = rf"\operatorname{{share}}_{{{printer._print(k)}}}\left({', '.join(printer._print(a) for a in args)}\right)"
        return text if exp is None else rf"{text}^{{{exp}}}"

    def _pythoncode(self, printer: sp.printing.pycode.PythonCodePrinter) -> str:
        return f"({printer._print(self._steps())})"

    _mpmathcode = _pythoncode

    def _numpycode(self, printer: sp.printing.numpy.NumPyPrinter) -> str:
        """[a_k = max] / #{a = max} on the stacked arguments, each printed once (the steps are n² terms)."""
        k, *args = self.args
        stack = (f"{printer._module_format('numpy.stack')}({printer._module_format('numpy.broadcast_arrays')}"
                 f"({', '.join(printer._print(a) for a in args)}))")
        return f"(lambda v: (v[{int(k) - 1}] == v.max(0)) / (v == v.max(0)).sum(0))({stack})"

    def _torchcode(self, printer: sp.printing.pytorch.TorchPrinter) -> str:
        k, *args = self.args
        return (f"(lambda v: (v[{int(k) - 1}] == v.amax(0)).to(v.dtype) / (v == v.amax(0)).sum(0))"
                f"({torch_stack(printer, tuple(args))})")
