"""`Shown`: how one derivation's symbols and values appear in a report (names, rounded numbers).

>>> import derive
>>> s = Shown(derive.derive(derive.examples.seed()), digits=4)
>>> z1 = s.graph.pre[0][0][0]
>>> s.name(z1), s.value(z1), s.value(s.graph.inputs[0][0])
('z_{1}', '0.6478', '1')
"""

from __future__ import annotations

import sympy as sp

from derive.derivation import Derivation
from derive.forms import latex_names
from derive.numeric import evaluate
from derive.printing import latex
from derive.report.numformat import fmt, substitute

_SUBSCRIPTS = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")
_GREEK = {r"\sigma": "σ", r"\mathcal{L}": "L", r"\delta": "δ"}


class Shown:
    """Names (LaTeX and plain), formatted values and substituted expressions for one derivation."""

    def __init__(self, derivation: Derivation, digits: int) -> None:
        self.d = derivation
        self.graph = graph = derivation.graph
        self.digits = digits
        self.names: dict[sp.Symbol, str] = latex_names(derivation)  # the adjoints as δ
        self.exact = {s for row in (*graph.inputs, *graph.targets) for s in row}
        self.values = derivation.values

    def name(self, symbol: sp.Symbol) -> str:
        """The LaTeX name of a symbol (``W_{1}``, ``\\sigma_{1}``, ``\\delta_{3}``)."""
        return self.names[symbol]

    def text_name(self, symbol: sp.Symbol) -> str:
        """A plain-text name for pictures: ``W₁``, ``σ₁``, ``x₂``."""
        name = self.names[symbol]
        for tex, char in _GREEK.items():
            name = name.replace(tex, char)
        base, _, rest = name.partition("_{")
        index = rest.split("}")[0]
        return base + index.translate(_SUBSCRIPTS)

    def value(self, symbol: sp.Symbol) -> str:
        """The value of a symbol, rounded (given whole-number data as an integer)."""
        return fmt(self.values[symbol], self.digits, exact=symbol in self.exact)

    def number(self, value: float, exact: bool = False) -> str:
        """A computed value, rounded."""
        return fmt(value, self.digits, exact=exact)

    def latex(self, expr: sp.Expr, names: dict[sp.Symbol, str] | None = None) -> str:
        """An expression over symbols, with textbook names."""
        return latex(expr, names or self.names)

    def evaluate(self, expr: sp.Expr) -> float:
        """The exact (float64) value of an expression at the network's point."""
        return evaluate(expr, self.values)

    def substitute(self, expr: sp.Expr) -> str:
        """The expression with every symbol replaced by its rounded value (same shape)."""
        return substitute(
            expr, self.values, lambda s, v: fmt(v, self.digits, exact=s in self.exact)
        )

    def partial(self, numerator: sp.Symbol, denominator: sp.Symbol | str) -> str:
        r"""``\frac{\partial N}{\partial D}`` in textbook names."""
        bottom = denominator if isinstance(denominator, str) else self.names[denominator]
        return rf"\frac{{\partial {self.names[numerator]}}}{{\partial {bottom}}}"
