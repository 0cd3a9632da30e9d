"""Fast construction of the two shapes of expression a network graph is made of.

SymPy's ``a * b`` and ``Add(*terms)`` canonicalise their arguments (flatten, collect, sort), at tens of
microseconds per call. A weight times an activation, and a sum of such distinct products, are already
canonical once their arguments are sorted, so they are built directly; the result is the same expression
(equal, same hash, same argument order) as SymPy would build. Anything else goes through SymPy.

>>> import sympy as sp
>>> W, a, b = sp.symbols("W a b")
>>> product(W, a) == W * a, total([product(W, a), b]) == W * a + b
(True, True)
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cmp_to_key

import sympy as sp

_canonical = cmp_to_key(sp.Basic.compare)


def product(x: sp.Expr, y: sp.Expr) -> sp.Expr:
    """``x * y``, built directly when both are distinct symbols."""
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
    if len(terms) > 1 and all(_is_simple(t) for t in terms) and len(set(terms)) == len(terms):
        return sp.Add._from_args(sorted(terms, key=_canonical))
    return sp.Add(*terms)
