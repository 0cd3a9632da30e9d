r"""How the attention chapter writes its numbers and names (`derive.report.attention`): matrices of rounded
values, a transpose as its values, heads as subscripts, the scale as 1/√d when it is.

>>> import numpy as np
>>> Page(None, 4).grid(np.array([[1.0, -0.5]])), rows_text((0, 1, 2, 3))
('\\begin{bmatrix} 1.0000 & -0.5000 \\end{bmatrix}', '1–4')
"""

from __future__ import annotations

import math

import numpy as np

from derive.report.attention_find import Site
from derive.report.numformat import fmt, total


class Page:
    """Number formatting and names for one site."""

    def __init__(self, site: Site, digits: int) -> None:
        self.site, self.digits = site, digits
        self.many = site is not None and site.heads > 1

    def n(self, value: float) -> str:
        if math.isinf(value):
            return r"\infty" if value > 0 else r"-\infty"
        return fmt(float(value), self.digits)

    def grid(self, values: np.ndarray) -> str:
        """A matrix (a vector as one row) of rounded numbers."""
        table = np.atleast_2d(np.asarray(values, dtype=float))
        body = r" \\ ".join(" & ".join(self.n(v) for v in row) for row in table)
        return rf"\begin{{bmatrix}} {body} \end{{bmatrix}}"

    def column(self, values: np.ndarray) -> str:
        return self.grid(np.asarray(values, dtype=float).reshape(-1, 1))

    @staticmethod
    def ones(count: int, row: bool = False) -> str:
        return r"\begin{bmatrix} " + (" & " if row else r" \\ ").join(["1"] * count) + r" \end{bmatrix}"

    def head(self, name: str, h: int) -> str:
        return f"{name}_{{{h + 1}}}" if self.many else name

    def scale(self) -> tuple[str, str]:
        """The scale as a formula and as a number: 1/√d when it is, else its value."""
        width = self.site.width
        if abs(self.site.scale - 1 / math.sqrt(width)) < 1e-12:
            return rf"\sqrt{{{width}}}", rf"\frac{{1}}{{\sqrt{{{width}}}}}"
        return "", self.n(self.site.scale)

    def scaled(self, product: str, numbers: str, fraction: bool = False) -> tuple[str, str]:
        """A product times the scale, as a formula (``fraction``: over √d) and with its numbers."""
        root, factor = self.scale()
        if root and fraction:
            formula = rf"\frac{{{product}}}{{{root}}}"
        else:
            formula = rf"\frac{{1}}{{{root}}} {product}" if root else rf"{self.n(self.site.scale)} \, {product}"
        return formula, f"{factor} {numbers}"


def d(name: str) -> str:
    r"""``∂L/∂name`` in LaTeX."""
    return rf"\frac{{\partial \mathcal{{L}}}}{{\partial {name}}}"


def rows_text(rows: tuple[int, ...]) -> str:
    """1-based rows, as a range when they are one: ``1–4`` or ``1, 3``."""
    if list(rows) == list(range(rows[0], rows[0] + len(rows))):
        return f"{rows[0] + 1}–{rows[-1] + 1}" if len(rows) > 1 else str(rows[0] + 1)
    return ", ".join(str(r + 1) for r in rows)


def concat(values: np.ndarray) -> np.ndarray:
    """Heads × tokens × width as tokens × (heads·width), head 1's columns first."""
    return np.concatenate(list(values), axis=-1)


def residual_name(site: Site) -> str:
    return "X" if site.q is not None and site.residual_source == site.q.source else "R"


def mean_text(page: Page, terms: list[str], count: int) -> str:
    return rf"\frac{{1}}{{{count}}} \left({total(terms)}\right)"


def eps_text(page: Page, eps: float) -> str:
    inverse = round(1 / eps) if eps > 0 else 0
    return rf"\frac{{1}}{{{inverse}}}" if inverse and 1 / inverse == eps else page.n(eps)


def norm_row(h: np.ndarray, eps: float) -> tuple[float, float, np.ndarray]:
    """μ, σ = √(var + ε) and x̂ of one row."""
    mu = float(h.mean())
    sigma = math.sqrt(float(((h - mu) ** 2).mean()) + eps)
    return mu, sigma, (h - mu) / sigma


