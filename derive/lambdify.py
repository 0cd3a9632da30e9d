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


def printer(backend: str, **settings: Any) -> Any:
    """A printer as lambdify makes one, with constant subexpressions (√2, π, …) printed as float literals;
    ``settings`` are SymPy's (``order="none"``: terms as they are, not sorted: fast, for code nobody reads)."""
    settings = {"fully_qualified_modules": False, "inline": True, "allow_unknown_functions": True, **settings}
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

        def _print_Integer(self, expr: Any) -> str:
            # beyond float64's exact integers (torch.finfo(float32).min made exact, a mask's fill): a float, as it
            # came; torch takes no Python int past int64
            return repr(float(expr)) if abs(int(expr)) > 2**53 else super()._print_Integer(expr)

        def _print_Min(self, expr: Any) -> str:
            return self._extremum(expr.args, "minimum")

        def _print_Max(self, expr: Any) -> str:
            return self._extremum(expr.args, "maximum")

        def _extremum(self, args: Sequence[Any], name: str) -> str:
            """min/max of any arguments, numbers and tensors mixed: ``numpy.minimum(numpy.minimum(0, a), b)``,
            and for torch (whose ``minimum`` takes tensors only) ``torch.stack([a, b, …]).amin(0)``, a number
            among them made a tensor like the others (each argument printed once)."""
            if backend != "numpy":
                from derive.ops.code import torch_stack

                return f"{torch_stack(self, args)}.{'amin' if name == 'minimum' else 'amax'}(0)"
            text = self._print(args[0])
            for arg in args[1:]:
                text = f"{self._module_format(f'numpy.{name}')}({text}, {self._print(arg)})"
            return text

    return Printer
