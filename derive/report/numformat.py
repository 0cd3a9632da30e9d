r"""Number formatting for reports: every shown number is the rounding of an exact (float64) value.

``digits`` is the precision: a value of magnitude 1 or more shows ``digits`` decimal places; a smaller one
shows ``digits`` significant digits (0.02727, not 0.0273; a reader who recomputes an equation from its printed
numbers gets its printed result); past `SCIENTIFIC` (below 10⁻⁴, from 10⁶) a value is written in scientific
notation with ``digits`` significant digits, ``7.437 \cdot 10^{-5}``, so that no number runs to hundreds of
digits; a computed value below `NOISE` (10⁻¹⁵, float64's rounding of quantities of order 1) is shown as 0.
Given data that is a whole number (an input ``x = 1``, a target ``y = 0``, a learning rate of 1) is printed
as an integer, because it is exact. Negative zero never appears. Substituted expressions are built from the
exact values, each rounded once for display: a rounded value is never fed back into a computation. The text
is LaTeX; `plain` gives the same number for text (tables in Markdown, labels): ``7.437e-5``.

>>> fmt(0.6477999999999999, 4), fmt(0.0272737919757, 4), fmt(1.0, 4, exact=True), fmt(0.05, 4, exact=True)
('0.6478', '0.02727', '1', '0.05000')
>>> fmt(7.4383e-05, 4), fmt(-1e308, 4), fmt(1e308, 4, exact=True), fmt(0.0, 4)
('7.438 \\cdot 10^{-5}', '-1.000 \\cdot 10^{308}', '10^{308}', '0.0000')
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping

import sympy as sp

from derive.errors import DeriveError

#: the largest number of digits a report shows
MAX_DIGITS = 15
#: magnitudes written in scientific notation: nonzero values below the first, values from the second on
SCIENTIFIC = (1e-4, 1e6)
#: computed values below this magnitude are shown as 0: float64's rounding of quantities of order 1 (a
#: gradient that is 0 in exact arithmetic comes out as 3.5e-18 from terms that cancel)
NOISE = 1e-15


def check_digits(digits: int) -> int:
    """``digits`` if it is a usable precision, else a `DeriveError`."""
    if isinstance(digits, bool) or not isinstance(digits, int) or not 1 <= digits <= MAX_DIGITS:
        raise DeriveError(f"digits must be a whole number from 1 to {MAX_DIGITS}, got {digits!r}")
    return digits


def fmt(value: float, digits: int, exact: bool = False) -> str:
    r"""``value`` rounded for display (LaTeX): ``digits`` decimal places from 1 on, ``digits`` significant digits
    below, scientific notation past `SCIENTIFIC`, 0 below `NOISE`; an exact whole number (given data) as an
    integer.

    >>> fmt(2.5, 2), fmt(-0.341549297, 4), fmt(3.0, 2, exact=True), fmt(0.099996, 4), fmt(-1e-9, 2)
    ('2.50', '-0.3415', '3', '0.1000', '-1.0 \\cdot 10^{-9}')
    >>> fmt(3.469e-18, 4), fmt(-2e-16, 2)
    ('0.0000', '0.00')
    """
    value = float(value)
    if exact and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if not math.isfinite(value):
        return r"\infty" if value > 0 else (r"-\infty" if value < 0 else r"\mathrm{NaN}")
    size = abs(value)
    if size < NOISE and not exact:
        size = value = 0.0
    if size and (size < SCIENTIFIC[0] or size >= SCIENTIFIC[1]):
        # a computed value to `digits` significant digits; exact data to its own shortest digits (10^{-5})
        mantissa, exponent = (_shortest(value) if exact else f"{value:.{digits - 1}e}").split("e")
        power = f"10^{{{int(exponent)}}}"
        if exact and mantissa.lstrip("-") == "1":
            return mantissa[:-1] + power
        return rf"{mantissa} \cdot {power}"
    if size >= 1 or size == 0:
        text = f"{value:.{digits}f}"
    else:  # below 1: `digits` significant digits (0.02727, 0.0001000)
        text = f"{value:#.{digits}g}"
        if abs(float(text)) >= 1:  # rounded up to 1: as the values from 1 on
            text = f"{value:.{digits}f}"
    if text.startswith("-") and set(text[1:]) <= {"0", "."}:
        return text[1:]
    return text


def _shortest(value: float) -> str:
    """``value`` in e-notation with the fewest digits that read back exactly."""
    return next(text for k in range(17) if float(text := f"{value:.{k}e}") == value)


_SCIENTIFIC = re.compile(r"([-−]?[0-9.]*)(?: \\cdot )?10\^\{([-−]?[0-9]+)\}")


def plain(text: str) -> str:
    r"""Numbers in scientific notation as plain text (``7.437e-5``), everything else unchanged: for text
    that is not LaTeX (Markdown and HTML tables, picture labels, prose).

    >>> plain(r"7.437 \cdot 10^{-5}"), plain(r"10^{308}"), plain("W₅ = −1.000 \\cdot 10^{6}"), plain("0.4154")
    ('7.437e-5', '1e308', 'W₅ = −1.000e6', '0.4154')
    """
    return _SCIENTIFIC.sub(lambda m: f"{m.group(1) or '1'}e{m.group(2)}", text)


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
