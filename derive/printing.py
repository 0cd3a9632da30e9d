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

import bisect
import re
from collections.abc import Callable, Mapping

import sympy as sp
from sympy.printing.latex import LatexPrinter

from derive.ops.activations import LeakyReLU, ReLU, Step
from derive.terms import PLAIN, is_plain

#: after every name in the print order of a sum's terms (see `sum_of_products`)
_LAST = chr(0x10FFFF)


def latex(expr: sp.Expr, names: Mapping[sp.Symbol, str]) -> str:
    """LaTeX of ``expr``, with each symbol shown by its textbook name (``W1`` as ``W_{1}``)."""
    factors = sum_of_products(expr)
    if factors is not None:
        return _sum_latex(factors, names)
    return _by_shape(expr, lambda e, tokens: LatexPrinter({"symbol_names": names if tokens is None else tokens})
                     .doprint(e), lambda s: _latex_name(s, names))


def _latex_name(symbol: sp.Symbol, names: Mapping[sp.Symbol, str]) -> str:
    name = names.get(symbol)
    return name if name is not None else LatexPrinter().doprint(symbol)


def sum_of_products(expr: sp.Expr) -> list[tuple[sp.Symbol, ...]] | None:
    """The terms of a sum of distinct plain symbols and products of two, as factors in SymPy's print order.

    None for any other expression: those go through SymPy's printers. A convolution or a dense layer is
    such a sum, of hundreds of terms, and SymPy's printers order them through its polynomial machinery
    (``as_ordered_terms``), most of the time of printing a CNN's program. The order is the same: SymPy
    prints terms by decreasing exponents of the symbols sorted by name, which for distinct products of
    distinct symbols is increasing order of their sorted names with a sentinel after each (so ``a*b``
    comes before ``a``). A test checks the strings equal SymPy's.

    >>> a, b, c = sp.symbols("a b c")
    >>> sum_of_products(c + a * b + a)
    [(a, b), (a,), (c,)]
    """
    if not expr.is_Add:
        return None
    singles: list[sp.Symbol] = []
    products: list[tuple[sp.Symbol, ...]] = []
    last = ("", "")
    for term in expr.args:  # the checks of `is_plain`, inline: this loop runs over millions of terms
        if type(term) is sp.Symbol:
            if term._assumptions0 != PLAIN:
                return None
            if products:  # not SymPy's canonical order (symbols first): sort
                return _sorted_terms(expr.args)
            singles.append(term)
            continue
        pair = term.args
        if type(term) is not sp.Mul or len(pair) != 2:
            return None
        a, b = pair
        if type(a) is not sp.Symbol or type(b) is not sp.Symbol or a._assumptions0 != PLAIN or b._assumptions0 != PLAIN:
            return None
        names = (a.name, b.name)
        if names <= last:  # canonical order sorts products by their factors' names, as printing does
            return _sorted_terms(expr.args)
        last = names
        products.append(pair)
    # a symbol prints after every product whose first factor's name is not greater than its own
    for symbol in singles:
        products.insert(bisect.bisect_right(products, symbol.name, key=_first_name), (symbol,))
    return products


def _first_name(factors: tuple[sp.Symbol, ...]) -> str:
    return factors[0].name


def _sorted_terms(terms: tuple[sp.Expr, ...]) -> list[tuple[sp.Symbol, ...]]:
    """`sum_of_products` of plain symbols and products in any order: sorted by the print key."""
    keyed = [((*(s.name for s in factors), _LAST), factors)
             for factors in ((t,) if t.is_Symbol else t.args for t in terms)]
    keyed.sort()  # the keys are distinct (so are the terms): the factors are never compared
    return [factors for _, factors in keyed]


def printed(expr: sp.Expr, names: Mapping[sp.Symbol, str]) -> tuple[str, str]:
    """(`expression_string`, `latex`) of ``expr``: the two strings of a document entry, in one pass."""
    factors = sum_of_products(expr)
    if factors is None:
        return expression_string(expr), latex(expr, names)
    return _sum_string(factors), _sum_latex(factors, names)


def _sum_string(factors: list[tuple[sp.Symbol, ...]]) -> str:
    return " + ".join([f"{t[0].name}*{t[1].name}" if len(t) == 2 else t[0].name for t in factors])


def _sum_latex(factors: list[tuple[sp.Symbol, ...]], names: Mapping[sp.Symbol, str]) -> str:
    get = names.get
    return " + ".join([f"{get(t[0]) or _latex_name(t[0], names)} {get(t[1]) or _latex_name(t[1], names)}"
                       if len(t) == 2 else get(t[0]) or _latex_name(t[0], names) for t in factors])


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
    factors = sum_of_products(expr)
    if factors is not None:
        return _sum_string(factors)
    return _by_shape(expr, lambda e, tokens: sp.sstr(elementary(e)), lambda s: s.name)


def plain_string(expr: sp.Expr) -> str:
    """``str(expr)``: derive's own function names kept (``sigmoid(z1)``); sums and repeated shapes fast.

    >>> from derive.ops.activations import Sigmoid
    >>> a, z = sp.symbols("a z")
    >>> plain_string(Sigmoid(z) * a + a * z) == str(Sigmoid(z) * a + a * z)
    True
    """
    factors = sum_of_products(expr)
    if factors is not None:
        return _sum_string(factors)
    return _by_shape(expr, lambda e, tokens: sp.sstr(e), lambda s: s.name)


#: printed templates of small expressions by shape (see `_by_shape`), with placeholders for the symbols
_TEMPLATES: dict[tuple, list[str]] = {}
#: expressions with more nodes than this are printed directly
_SHAPE_NODES = 64
_PLACEHOLDER = re.compile(r"\x00(\d{6})\^?\x00(?:1\})?")
#: LaTeX names that could print differently from their placeholder beside a number (a leading digit or
#: fraction) or in a fraction's layout (SymPy counts words): printed without a template
_UNSAFE = re.compile(r"\s|^\d|^\\frac|\x00")
#: a name ending so, followed by a number, gets \cdot between them: its placeholder ends so too
_ENDS_IN_DIGIT = re.compile(r"[0-9][} ]*$")


def _by_shape(
    expr: sp.Expr, printer: Callable[[sp.Expr, dict[sp.Symbol, str] | None], str], name: Callable[[sp.Symbol], str]
) -> str:
    """``printer(expr)`` with each symbol printed as ``name(symbol)``, printed once per *shape* and filled in.

    A network has thousands of expressions that differ only in their symbols (``dL_da*(1 - a**2)`` for
    every unit of a tanh layer; a max-pooling's routing): SymPy's printers spend up to a millisecond on
    each. Their output depends on the symbols only through the order of their names (sums and products
    are sorted by name) and, in LaTeX, whether a name has a superscript (a power wraps it in braces). So an
    expression's shape is its tree with every symbol replaced by its rank by name (and that flag); the
    first expression of a shape is printed with placeholder symbols (named to sort as the ranks, printed as
    tokens), later ones fill the tokens in. ``printer(e, tokens)`` prints ``e`` with ``tokens`` as the
    names of its symbols, or with their own names where ``tokens`` is None.
    """
    shape = _shape(expr)
    if shape is None:
        return printer(expr, None)
    tree, symbols = shape
    names = [name(s) for s in symbols]
    if any(_UNSAFE.search(n) for n in names):  # a name that could change how its neighbours print
        return printer(expr, None)
    flags = tuple(("^" in n, bool(_ENDS_IN_DIGIT.search(n))) for n in names)
    key = (printer.__code__, tree, flags)
    template = _TEMPLATES.get(key)
    if template is None:
        if len(_TEMPLATES) > 10_000:
            _TEMPLATES.clear()
        placeholders = {s: sp.Symbol(f"\x00{i:06d}\x00") for i, s in enumerate(symbols)}
        tokens = {p: p.name[:-1] + ("^" if caret else "") + ("\x001}" if digit else "\x00")
                  for p, (caret, digit) in zip(placeholders.values(), flags)}
        template = _TEMPLATES[key] = _PLACEHOLDER.split(printer(expr.xreplace(placeholders), tokens))
    parts = list(template)
    for i in range(1, len(parts), 2):
        parts[i] = names[int(parts[i])]
    return "".join(parts)


def _shape(expr: sp.Expr) -> tuple[tuple, list[sp.Symbol]] | None:
    """(the tree of ``expr`` with symbols as their rank by name, the symbols by name), or None.

    None for an expression over more than `_SHAPE_NODES` nodes or with a symbol that is not plain.
    """
    symbols: set[sp.Symbol] = set()
    nodes = [expr]
    for e in nodes:  # grows while it is read: every node, breadth first
        if len(nodes) > _SHAPE_NODES:
            return None
        if e.is_Symbol:
            if not is_plain(e):
                return None
            symbols.add(e)
        nodes.extend(e.args)
    ordered = sorted(symbols, key=lambda s: s.name)
    rank = {s: i for i, s in enumerate(ordered)}

    def tree(e: sp.Basic) -> tuple:
        if e.is_Symbol:
            return (rank[e],)
        if not e.args:
            return (type(e), e)
        return (e.func, *(tree(a) for a in e.args))

    return tree(expr), ordered
