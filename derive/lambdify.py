"""SymPy's ``lambdify`` for NumPy and torch with derive's printer: tensors in, tensors out.

The printer prints constant subexpressions (√2, π, …) as float literals (SymPy prints ``sqrt(2)`` as
``torch.sqrt(2)``, which torch rejects: it takes tensors only), and sums of products in SymPy's canonical
order without sorting them again. derive's own functions print themselves (``_numpycode``, ``_torchcode``).

>>> import sympy as sp
>>> a = sp.Symbol("a")
>>> lambdify([a], sp.sqrt(2) * a, "numpy")(1.0)
1.4142135623730951
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import sympy as sp

BACKENDS = ("numpy", "torch")


def lambdify(args: Sequence[sp.Symbol], expr: Any, backend: str, **options: Any) -> Callable:
    """``sympy.lambdify(args, expr)`` for ``backend`` ("numpy" or "torch") with `printer`."""
    return sp.lambdify(args, expr, modules=backend, printer=printer(backend), docstring_limit=0, **options)


def printer(backend: str) -> Any:
    """A printer as lambdify makes one, with constant subexpressions (√2, π, …) printed as float literals."""
    settings = {"fully_qualified_modules": False, "inline": True, "allow_unknown_functions": True}
    return _printer_class(backend)(settings)


@functools.cache
def _printer_class(backend: str) -> type:
    """SymPy's printer for ``backend``, printing constant subexpressions (√2, π, …) as float literals."""
    from derive.printing import sum_of_products

    if backend == "numpy":
        from sympy.printing.numpy import NumPyPrinter as base
    else:
        from sympy.printing.pytorch import TorchPrinter as base

    class Printer(base):  # type: ignore[misc, valid-type]
        def _print(self, expr: Any, **kwargs: Any) -> str:
            factors = sum_of_products(expr) if isinstance(expr, sp.Add) else None
            if factors is not None:  # a convolution's or a dense layer's sum: SymPy's order, without its sorting
                return " + ".join("*".join(self._print(s) for s in term) for term in factors)
            if isinstance(expr, sp.Expr) and not expr.is_Number and not expr.free_symbols:
                if not expr.is_Atom or isinstance(expr, sp.NumberSymbol):
                    value = complex(expr.evalf(20))
                    if value.imag == 0:
                        return repr(value.real)
            return super()._print(expr, **kwargs)

    return Printer
