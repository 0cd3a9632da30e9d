"""Printing derived expressions: LaTeX with textbook names, and plain SymPy strings.

>>> import sympy as sp
>>> from derive.network import Architecture
>>> from derive.graph import build_graph
>>> g = build_graph(Architecture((1, 1), ("sigmoid",), "mse", "mean", 1))
>>> W1, x1 = g.weights[0][0][0], g.inputs[0][0]
>>> latex(W1 * x1, g.latex_names)
'W_{1} x_{1}'
"""

from __future__ import annotations

from collections.abc import Mapping

import sympy as sp

from derive.ops.activations import LeakyReLU, ReLU, Step


def latex(expr: sp.Expr, names: Mapping[sp.Symbol, str]) -> str:
    """LaTeX of ``expr``, with each symbol shown by its textbook name (``W1`` as ``W_{1}``)."""
    return sp.latex(expr, symbol_names=dict(names))


def _unevaluated(func: type, *args: sp.Expr) -> sp.Expr:
    return func(*args, evaluate=False)


def _piecewise(expr: sp.Expr, args: tuple[sp.Expr, ...]) -> sp.Expr | None:
    """The elementary form of a non-smooth op, built without SymPy's evaluation (None for other ops).

    ``Max(0, z)`` evaluated runs ``factor_terms`` and assumption queries on ``z``: most of the time of
    printing a large ReLU network went there. Built unevaluated, it prints the same.
    """
    if isinstance(expr, LeakyReLU):  # before ReLU: not a subclass, but keep the specific case first
        (z,) = args
        return _unevaluated(sp.Max, 0, z) + expr.exact_slope() * _unevaluated(sp.Min, 0, z)
    if isinstance(expr, ReLU):
        return _unevaluated(sp.Max, 0, args[0])
    if isinstance(expr, Step):
        return _unevaluated(sp.Heaviside, args[0], 0)
    return None


def elementary(expr: sp.Expr) -> sp.Expr:
    """``expr`` in SymPy's own functions only (σ(z) as 1/(1 + e^{−z}), ReLU' as Heaviside(z, 0)).

    The same as ``expr.rewrite("elementary")``, with each shared subexpression rewritten once and
    Max, Min and Heaviside built unevaluated.

    >>> from derive.ops.activations import Sigmoid
    >>> z = sp.Symbol("z")
    >>> elementary(Sigmoid(z)), elementary(ReLU(z) * Step(z))
    (1/(1 + exp(-z)), Heaviside(z, 0)*Max(0, z))
    """
    memo: dict[sp.Basic, sp.Basic] = {}

    def rewrite(e: sp.Basic) -> sp.Basic:
        if not e.args:
            return e
        done = memo.get(e)
        if done is not None:
            return done
        args = tuple(rewrite(a) for a in e.args)
        result = _piecewise(e, args)
        if result is None:
            method = getattr(e, "_eval_rewrite_as_elementary", None)
            if method is not None:
                result = method(*args)
            if result is None:
                result = e if args == e.args else e.func(*args)
        memo[e] = result
        return result

    return rewrite(expr)


def expression_string(expr: sp.Expr) -> str:
    """A string SymPy parses back into ``expr`` (in elementary functions) given the symbol names."""
    return sp.sstr(elementary(expr))
