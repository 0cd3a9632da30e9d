"""Code for SymPy's ``lambdify`` with the ``"math"`` and ``"mpmath"`` modules: derive's functions print as
their elementary definitions (``rewrite("elementary")``), which those printers know.

SymPy's printers look for a ``_<printer>code`` method on each function they meet (``_pythoncode`` for
``"math"``, ``_mpmathcode`` for ``"mpmath"``, ``_numpycode``, ``_torchcode``); without one a derive function
prints as a call of its class name, which the generated code does not define (``Sigmoid is not defined``).
The NumPy and torch code of each function is written beside it (stable forms, torch's own functions).

>>> import math
>>> import sympy as sp
>>> from derive.ops.activations import Sigmoid
>>> z = sp.Symbol("z")
>>> f = sp.lambdify(z, sp.diff(Sigmoid(z), z), modules="math")
>>> f(0.0)
0.25
"""

from __future__ import annotations

import sympy as sp


class ElementaryCode:
    """A mix-in for `sympy.Function` subclasses that define ``_eval_rewrite_as_elementary``."""

    def _pythoncode(self, printer: sp.printing.pycode.PythonCodePrinter) -> str:
        return printer._print(self.rewrite("elementary"))  # type: ignore[attr-defined]

    def _mpmathcode(self, printer: sp.printing.pycode.MpmathPrinter) -> str:
        return printer._print(self.rewrite("elementary"))  # type: ignore[attr-defined]


def torch_stack(printer: sp.printing.pytorch.TorchPrinter, args: tuple[sp.Expr, ...]) -> str:
    """``torch.stack([...])`` of the arguments, a constant among them (a mask's −∞ or finfo.min) made a tensor
    like the others (``torch.stack`` takes tensors only)."""
    texts = [printer._print(a) for a in args]
    like = next((t for a, t in zip(args, texts) if a.free_symbols), None)
    if like is not None:
        full = printer._module_format("torch.full_like")
        texts = [t if a.free_symbols else f"{full}({like}, {t})" for a, t in zip(args, texts)]
    return f"{printer._module_format('torch.stack')}([{', '.join(texts)}])"
