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


def latex(expr: sp.Expr, names: Mapping[sp.Symbol, str]) -> str:
    """LaTeX of ``expr``, with each symbol shown by its textbook name (``W1`` as ``W_{1}``)."""
    return sp.latex(expr, symbol_names=dict(names))


def elementary(expr: sp.Expr) -> sp.Expr:
    """``expr`` in SymPy's own functions only (σ(z) as 1/(1 + e^{−z}), ReLU' as Heaviside(z, 0)).

    >>> from derive.ops.activations import Sigmoid
    >>> elementary(Sigmoid(sp.Symbol("z")))
    1/(1 + exp(-z))
    """
    return expr.rewrite("elementary")


def expression_string(expr: sp.Expr) -> str:
    """A string SymPy parses back into ``expr`` (in elementary functions) given the symbol names."""
    return sp.sstr(elementary(expr))
