r"""Element-wise functions of tensor expressions: the functions derive's scalar expressions use (``exp``,
``tanh``, ``sigmoid``, ``step``, ``Phi``, …), each evaluated as its own SymPy definition lambdified for the
backend, and `from_sympy`, which turns an element-wise scalar expression into a tensor expression.

>>> from derive.tensor.expr import Ref
>>> a = sp.Symbol("a")
>>> str(from_sympy(a * (1 - a), {a: Ref("A")}))
'A*(1 - A)'
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import sympy as sp

from derive.errors import DeriveError
from derive.tensor.expr import Num, TExpr, call


@functools.cache
def _elementwise_classes() -> dict[str, Any]:
    """Element-wise functions by the name SymPy's ``str`` prints for them (derive's own and SymPy's)."""
    from derive.ops.activations import ACTIVATIONS, Step
    from derive.ops.more_activations import ExpLeft
    from derive.ops.normal import NormalPDF, Phi

    table: dict[str, Any] = {"exp": sp.exp, "log": sp.log, "tanh": sp.tanh, "sqrt": sp.sqrt, "sin": sp.sin,
                             "cos": sp.cos, "sinh": sp.sinh, "cosh": sp.cosh, "atan": sp.atan, "erf": sp.erf,
                             "erfc": sp.erfc, "Abs": sp.Abs, "abs": sp.Abs, "sign": sp.sign, "step": Step,
                             "Phi": Phi, "phi": NormalPDF, "exp_left": ExpLeft}
    for key, cls in ACTIVATIONS.items():
        if not cls.vector and "(" not in key:
            table[key] = cls
    return table


@functools.lru_cache(maxsize=256)
def elementwise_function(name: str, backend: str) -> Callable[[Any], Any]:
    from derive.lambdify import lambdify

    cls = _elementwise_classes().get(name)
    if cls is None:
        raise DeriveError(f"tensor expressions have no function {name!r}")
    a = sp.Symbol("a")
    if backend == "mpmath":
        return sp.lambdify([a], cls(a), modules="mpmath")
    return lambdify([a], cls(a), backend)


def is_elementwise(name: str) -> bool:
    return name in _elementwise_classes()


class NotTensorExpression(DeriveError):
    """A scalar expression with a function the tensor vocabulary does not have."""


def from_sympy(expr: sp.Expr, tensors: Mapping[sp.Symbol, TExpr]) -> TExpr:
    """An element-wise SymPy expression over symbols standing for tensors, as a tensor expression.

    Sums, products, constant powers and the element-wise functions of this module; anything else raises
    `NotTensorExpression`.
    """
    if expr in tensors:
        return tensors[expr]
    if expr.is_Number:
        value = float(expr)
        return Num(value) if value >= 0 else call("neg", Num(-value))
    if expr.is_Symbol:
        raise NotTensorExpression(f"the symbol {expr} stands for no tensor")
    if expr.is_Add:
        terms = list(expr.as_ordered_terms())
        out = from_sympy(terms[0], tensors)
        for term in terms[1:]:
            coefficient, rest = term.as_coeff_Mul()
            if coefficient < 0:
                out = call("sub", out, from_sympy(-term, tensors))
            else:
                out = call("add", out, from_sympy(term, tensors))
        return out
    if expr.is_Mul:
        coefficient, rest = expr.as_coeff_Mul()
        if coefficient < 0:
            return call("neg", from_sympy(-expr, tensors))
        numerator, denominator = sp.fraction(expr)
        if denominator != 1:
            return call("div", from_sympy(numerator, tensors), from_sympy(denominator, tensors))
        factors = list(expr.as_ordered_factors())
        out = from_sympy(factors[0], tensors)
        for factor in factors[1:]:
            out = call("mul", out, from_sympy(factor, tensors))
        return out
    if expr.is_Pow:
        base, exponent = expr.args
        if exponent.is_Number:
            if exponent == -1:
                return call("div", Num(1.0), from_sympy(base, tensors))
            if exponent == sp.Rational(1, 2):
                return call("sqrt", from_sympy(base, tensors))
            return call("pow", from_sympy(base, tensors), exponent=float(exponent))
        if base == sp.E:
            return call("exp", from_sympy(exponent, tensors))
        raise NotTensorExpression(f"a power with a tensor exponent: {expr}")
    name = sp.sstr(expr.func(sp.Symbol("a"))).partition("(")[0] if len(expr.args) == 1 else ""
    if len(expr.args) == 1 and _elementwise_classes().get(name) is expr.func:  # not a variant (leaky_relu(0.1))
        return call(name, from_sympy(expr.args[0], tensors))
    raise NotTensorExpression(f"no tensor function for {expr.func}")
