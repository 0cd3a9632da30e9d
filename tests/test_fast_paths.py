"""The fast paths that make a CNN's derivation linear build and print exactly what SymPy would.

Sums of products are built with a sort key instead of SymPy's canonicalisation (`derive.terms`), printed
term by term, and other expressions printed once per shape (`derive.printing`). Each is checked against
SymPy itself on drawn expressions: same expression (equal, same argument order), same strings.
"""

from __future__ import annotations

from unittest.mock import patch

import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from derive.ops.activations import ReLU, Sigmoid, Step, Tanh
from derive.ops.pool import MaxOf, Winner
from derive.printing import elementary, expression_string, latex, printed, sum_of_products
from derive.terms import dot, product, total

#: names that sort in every way that matters: digits after letters, 10 before 2, upper before lower case
NAMES = ["a1", "a10", "a2", "W_fc_1_2", "W_fc_1_10", "b", "dL_dz3", "x1_2", "z_1", "tanh_1_1_1_1", "y", "Z"]
PLAIN = [sp.Symbol(n) for n in NAMES]
#: symbols with assumptions: SymPy orders them differently, so the fast paths must leave them alone
OTHER = [sp.Symbol("p", positive=True), sp.Symbol("a1", real=True)]
#: LaTeX names: plain, with a superscript (a power braces it), ending in a digit (\cdot before a number)
LATEX = [
    {s: f"n_{{{i}}}" for i, s in enumerate(PLAIN + OTHER)},
    {s: rf"\delta^{{\mathrm{{fc}}}}_{{{i}}}" for i, s in enumerate(PLAIN + OTHER)},
    {s: ["a", r"\mathrm{b}", "c^{2}", "d_{3}", "e1"][i % 5] for i, s in enumerate(PLAIN + OTHER)},
]

symbols = st.sampled_from(PLAIN + OTHER)
pairs = st.lists(st.tuples(symbols, symbols), min_size=0, max_size=12)


@settings(max_examples=300, deadline=None)
@given(pairs, st.none() | symbols)
def test_dot_is_sympys_sum_with_the_same_argument_order(pairs, extra):
    expected = sp.Add(*[a * b for a, b in pairs], *([] if extra is None else [extra]))
    got = dot(pairs, extra)
    assert got == expected and got.args == expected.args and hash(got) == hash(expected)


@settings(max_examples=300, deadline=None)
@given(st.lists(symbols | st.tuples(symbols, symbols).map(lambda p: p[0] * p[1]), max_size=12))
def test_total_and_product_are_sympys(terms):
    assert total(terms).args == sp.Add(*terms).args and total(terms) == sp.Add(*terms)
    for a, b in zip(terms, terms[1:]):
        assert product(a, b) == a * b and product(a, b).args == (a * b).args


def expressions(depth: int = 3):
    leaf = symbols | st.integers(-3, 3).map(sp.Integer) | st.sampled_from([sp.Rational(1, 2), sp.Rational(-3, 7)])
    if depth == 0:
        return leaf
    sub = expressions(depth - 1)
    return leaf | st.one_of(
        st.tuples(sub, sub).map(lambda p: p[0] + p[1]),
        st.tuples(sub, sub).map(lambda p: p[0] * p[1]),
        st.tuples(sub, sub).map(lambda p: p[0] - p[1]),
        sub.map(lambda e: e**2),
        st.tuples(sub, symbols).map(lambda p: p[0] / p[1]),
        sub.map(Sigmoid),
        st.tuples(sub, sub).map(lambda p: Tanh(p[0]) * (1 - Tanh(p[1]) ** 2)),
        st.tuples(symbols, symbols, symbols, st.integers(1, 3)).map(lambda p: p[0] * Winner(p[3], *p[:3])),
        st.tuples(symbols, symbols).map(lambda p: MaxOf(*p) + ReLU(p[0]) * Step(p[1])),
        st.tuples(sub, sub).map(lambda p: sp.exp(p[0]) * 2 ** p[1]),
    )


@settings(max_examples=400, deadline=None)
@given(expressions())
def test_printed_strings_are_sympys(expr):
    """Printed once per shape (or a sum term by term), every string is SymPy's own for that expression."""
    assert expression_string(expr) == sp.sstr(elementary(expr))
    for names in LATEX:
        assert latex(expr, names) == sp.latex(expr, symbol_names=names)
        assert printed(expr, names) == (sp.sstr(elementary(expr)), sp.latex(expr, symbol_names=names))


#: products of two different plain symbols, no product twice: the sums a dense layer or a convolution builds
distinct_pairs = st.lists(st.tuples(st.sampled_from(PLAIN), st.sampled_from(PLAIN)).filter(lambda p: p[0] != p[1]),
                          min_size=2, max_size=30, unique_by=frozenset)


def _sympys_ordering_refused():
    """SymPy's printers order a sum's terms through ``as_ordered_terms``: refused, the fast path must print it."""
    def refuse(*args, **kwargs):
        raise AssertionError("printed by SymPy's printer, not the fast path")

    return patch.object(sp.Add, "as_ordered_terms", refuse)


@settings(max_examples=200, deadline=None)
@given(distinct_pairs)
def test_long_sums_of_products_take_the_fast_path_and_print_as_sympy_does(pairs):
    expr = sp.Add(*[a * b for a, b in pairs], PLAIN[5])
    assert sum_of_products(expr) is not None
    expected = [sp.sstr(expr)] + [sp.latex(expr, symbol_names=names) for names in LATEX]
    with _sympys_ordering_refused():
        assert [expression_string(expr)] + [latex(expr, names) for names in LATEX] == expected


@settings(max_examples=100, deadline=None)
@given(distinct_pairs, st.sampled_from(PLAIN), st.booleans())
def test_a_square_or_a_repeated_product_goes_to_sympys_printer(pairs, symbol, square):
    repeated = symbol**2 if square else 2 * pairs[0][0] * pairs[0][1]
    expr = sp.Add(*[a * b for a, b in pairs], repeated)
    assert sum_of_products(expr) is None
    assert expression_string(expr) == sp.sstr(expr)
    for names in LATEX:
        assert latex(expr, names) == sp.latex(expr, symbol_names=names)


def test_a_sum_out_of_canonical_order_prints_in_sympys_order():
    """An unevaluated sum keeps the order it was built in; printing sorts it as SymPy would."""
    a, b, c, d = sp.symbols("a b c d")
    built = sp.Add(c, a * d, b, a * b, evaluate=False)
    assert expression_string(built) == sp.sstr(sp.Add(c, a * d, b, a * b)) == "a*b + a*d + b + c"


@settings(max_examples=300, deadline=None)
@given(symbols, expressions(2))
def test_a_symbol_times_any_expression_is_sympys_product(x, expr):
    """`product` of an adjoint and a local derivative (a sum, a function, anything) is SymPy's ``x * expr``."""
    assert product(x, expr) == x * expr and product(x, expr).args == (x * expr).args
