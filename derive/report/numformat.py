"""Number formatting for reports: every shown number is the rounding of an exact (float64) value.

A value is printed with a fixed number of decimal places; given data that is a whole number (an input
``x = 1``, a target ``y = 0``, a learning rate of 1) is printed as an integer, because it is exact.
Negative zero never appears. Substituted expressions are built from the exact values, each rounded once
for display: a rounded value is never fed back into a computation.

>>> fmt(0.6477999999999999, 4), fmt(-1e-9, 4), fmt(1.0, 4, exact=True), fmt(0.05, 4, exact=True)
('0.6478', '0.0000', '1', '0.0500')
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import sympy as sp

from derive.errors import DeriveError

#: the largest number of decimal places a report shows
MAX_DIGITS = 15


def check_digits(digits: int) -> int:
    """``digits`` if it is a usable number of decimal places, else a `DeriveError`."""
    if isinstance(digits, bool) or not isinstance(digits, int) or not 1 <= digits <= MAX_DIGITS:
        raise DeriveError(f"digits must be a whole number from 1 to {MAX_DIGITS}, got {digits!r}")
    return digits


def fmt(value: float, digits: int, exact: bool = False) -> str:
    """``value`` rounded to ``digits`` decimal places (an exact whole number as an integer).

    >>> fmt(2.5, 2), fmt(-0.341549297, 4), fmt(3.0, 2, exact=True)
    ('2.50', '-0.3415', '3')
    """
    if exact and float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    text = f"{value:.{digits}f}"
    if text.startswith("-") and set(text[1:]) <= {"0", "."}:
        return text[1:]
    return text


def signed(text: str) -> str:
    """A number as a factor of a product: negative numbers in parentheses.

    >>> signed("-0.1725"), signed("0.5")
    ('\\\\left(-0.1725\\\\right)', '0.5')
    """
    return rf"\left({text}\right)" if text.startswith("-") else text


def product(texts: list[str]) -> str:
    r"""Numbers multiplied: ``a \cdot b``; a negative first factor keeps its sign in front.

    >>> product(["-0.1725", "-0.5", "1"])
    '-0.1725 \\cdot \\left(-0.5\\right) \\cdot 1'
    """
    return r" \cdot ".join([texts[0], *(signed(t) for t in texts[1:])])


def total(terms: list[str]) -> str:
    """Terms added, each sign written as the operator: ``a + b - c``.

    >>> total(["0.4352 \\\\cdot 1", "-0.1419", "2"])
    '0.4352 \\\\cdot 1 - 0.1419 + 2'
    """
    out = terms[0]
    for term in terms[1:]:
        out += f" - {term[1:]}" if term.startswith("-") else f" + {term}"
    return out


def substitute(
    expr: sp.Expr,
    values: Mapping[sp.Symbol, float],
    text: Callable[[sp.Symbol, float], str],
) -> str:
    r"""LaTeX of ``expr`` with every symbol replaced by its formatted value, in the same shape.

    Each symbol becomes a placeholder of the same name (so terms keep their order) carrying the magnitude;
    the sign goes into the expression, so SymPy writes ``e^{0.3415}`` rather than ``e^{- -0.3415}``.

    >>> z, y = sp.symbols("z y", real=True)
    >>> substitute(z * (1 - z) - y, {z: -0.5, y: 0.0}, lambda s, v: fmt(abs(v), 2))
    '- 0.00 - 0.50 \\cdot \\left(0.50 + 1\\right)'
    """
    replace: dict[sp.Symbol, sp.Expr] = {}
    shown: dict[sp.Symbol, str] = {}
    for symbol in expr.free_symbols:
        value = values[symbol]
        placeholder = sp.Symbol(symbol.name)
        shown[placeholder] = text(symbol, abs(value))
        replace[symbol] = -placeholder if value < 0 and shown[placeholder].strip("0.") else placeholder
    return sp.latex(expr.xreplace(replace), symbol_names=shown, mul_symbol="dot")
