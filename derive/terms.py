"""Fast construction of the two shapes of expression a network graph is made of.

SymPy's ``a * b`` and ``Add(*terms)`` canonicalise their arguments (flatten, collect, sort), at tens of
microseconds per call. A weight times an activation, and a sum of such distinct products, are already
canonical once their arguments are sorted, so they are built directly; the result is the same expression
(equal, same hash, same argument order) as SymPy would build. Anything else goes through SymPy.

Sorting is by SymPy's canonical order (`sympy.Basic.compare`). For the *plain* symbols derive makes (no
assumptions but commutativity) and products of two of them, that order is a plain tuple key (`simple_key`):
a symbol before any product, symbols by name, products by their factors' names. Sorting by a key is about
fifty times faster than by ``compare``, which is what made the adjoint of a convolution's input (a sum of
hundreds of products) slow.

>>> import sympy as sp
>>> W, a, b = sp.symbols("W a b")
>>> product(W, a) == W * a, total([product(W, a), b]) == W * a + b
(True, True)
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import cmp_to_key

import sympy as sp

_canonical = cmp_to_key(sp.Basic.compare)
#: the assumptions of ``Symbol(name)``: what `Basic.compare` looks at besides the name
PLAIN = sp.Symbol("x")._assumptions0


def is_plain(symbol: sp.Basic) -> bool:
    """Whether ``symbol`` is a ``Symbol(name)`` with no assumptions (the symbols derive makes)."""
    return type(symbol) is sp.Symbol and symbol._assumptions0 == PLAIN


def simple_key(term: sp.Expr) -> tuple[int, str, str] | None:
    """A sort key equal to SymPy's canonical order for plain symbols and products of two; else None.

    ``Basic.compare`` orders classes (Symbol before Mul), then compares contents: a symbol's name, a
    product's two factors in turn.

    >>> x, y = sp.symbols("x y")
    >>> sorted([x * y, y, x], key=simple_key)
    [x, y, x*y]
    """
    if term.is_Symbol:
        return (0, term.name, "") if is_plain(term) else None
    if term.is_Mul and len(term.args) == 2:
        a, b = term.args
        if is_plain(a) and is_plain(b):
            return (1, a.name, b.name)
    return None


def product(x: sp.Expr, y: sp.Expr) -> sp.Expr:
    """``x * y``, built directly for two distinct symbols, or a symbol times a sum or a function."""
    if is_plain(x) and is_plain(y):
        if x.name == y.name:
            return x**2
        return sp.Mul._from_args((x, y) if x.name < y.name else (y, x), is_commutative=True)
    if is_plain(x) and (y.is_Add or isinstance(y, sp.Function)) and y.is_commutative:
        # an adjoint times a local derivative (1 − a², a max pooling's winner): a symbol never merges with a
        # sum or a function, only a number distributes over a sum, and a symbol sorts before both
        return sp.Mul._from_args((x, y), is_commutative=True)
    if x.is_Symbol and y.is_Symbol and x != y:
        return sp.Mul._from_args(sorted((x, y), key=_canonical))
    return x * y


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while building many small objects.

    A derivation allocates millions of SymPy objects and no cycles; the collector's full passes over a
    growing heap made derivation time grow faster than the network (a third of it at 100k parameters).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _is_simple(term: sp.Expr) -> bool:
    return term.is_Symbol or (term.is_Mul and len(term.args) == 2 and all(a.is_Symbol for a in term.args))


def total(terms: Sequence[sp.Expr]) -> sp.Expr:
    """``Add(*terms)``, built directly when the terms are distinct symbols or products of two symbols."""
    if len(terms) < 2:
        return sp.Add(*terms)
    keys = [simple_key(t) for t in terms]
    if None not in keys and len(set(keys)) == len(keys):
        return _sorted_sum(list(zip(keys, terms)))
    if len(set(terms)) == len(terms) and all(_is_simple(t) for t in terms):
        return sp.Add._from_args(sorted(terms, key=_canonical))
    return sp.Add(*terms)


def dot(pairs: Iterable[tuple[sp.Expr, sp.Expr]], extra: sp.Expr | None = None) -> sp.Expr:
    """Σ x·y (+ ``extra``): `total` of the `product` of each pair, with the common case inline.

    The adjoint of a convolution's input and the gradient of its kernel are sums of hundreds of products
    of two symbols (δ·W, δ·x), millions in a LeNet: this loop is most of reverse mode's time.

    >>> x, y, W, b = sp.symbols("x y W b")
    >>> dot([(W, x), (y, W)], b) == W * x + W * y + b
    True
    """
    keyed: list[tuple[tuple[int, str, str], sp.Expr]] = []
    for x, y in pairs:
        if (type(x) is not sp.Symbol or type(y) is not sp.Symbol or x._assumptions0 != PLAIN
                or y._assumptions0 != PLAIN or x.name == y.name):
            terms = [product(x, y) for x, y in pairs]
            return total(terms if extra is None else [*terms, extra])
        a, b = (x, y) if x.name < y.name else (y, x)
        keyed.append(((1, a.name, b.name), sp.Mul._from_args((a, b), is_commutative=True)))
    if extra is not None:
        key = simple_key(extra)
        if key is None:
            return total([term for _, term in keyed] + [extra])
        keyed.append((key, extra))
    if len(keyed) < 2 or len({key for key, _ in keyed}) != len(keyed):
        return total([term for _, term in keyed])
    return _sorted_sum(keyed)


def _sorted_sum(keyed: list[tuple[tuple[int, str, str], sp.Expr]]) -> sp.Expr:
    """The sum of distinct simple terms, each given with its `simple_key` (canonical order)."""
    keyed.sort(key=_first)
    return sp.Add._from_args([term for _, term in keyed], is_commutative=True)


def _first(pair: tuple) -> object:
    return pair[0]
