r"""Why the design is what it is, measured on the user's own block (the end of the attention chapter).

The scale: for each row of each head, the entropy H(a) = −Σ a_j log a_j (nats) of its softmax and the
Frobenius norm of its Jacobian diag(a) − a aᵀ, with the scores scaled as the block scales them and without the
scale (the same weights). Unscaled scores are larger, the softmax saturates toward one key, and both numbers
fall: less of every gradient gets through the row.

The residual: per token, the norms of the two contributions to ∂L/∂x, through the residual path (∂L/∂H
itself) and through the attention path (Σ ∂L/∂P W), and the cosine between them.

>>> import numpy as np
>>> [round(v, 4) for v in row_figures(np.array([0.0, 0.0]))]
[0.6931, 0.5]
"""

from __future__ import annotations

import math

import numpy as np

from derive.ops.attention import softmax_rows
from derive.report.attention_back import attention_path
from derive.report.attention_find import Backward, Site, jacobian
from derive.report.attention_page import Page
from derive.report.document import Heading, Paragraph, Table
from derive.report.labels import label


def row_figures(scores: np.ndarray) -> tuple[float, float]:
    """The entropy of the softmax of one row of scores (−∞: masked) and the Frobenius norm of its Jacobian."""
    a = softmax_rows(scores[None])[0]
    kept = a > 0
    entropy = float(-(a[kept] * np.log(a[kept])).sum())
    return entropy, float(np.linalg.norm(jacobian(a)))


def unscaled(site: Site) -> np.ndarray:
    """The scores without the scale: Q Kᵀ (a float mask still added, masked scores still −∞)."""
    raw = site.q_in @ np.swapaxes(site.k_in, -1, -2)
    masked = ~np.isfinite(site.scores)
    added = np.where(masked, 0.0, site.scores - raw * site.scale)
    return np.where(masked, -np.inf, raw + added)


def saturation(site: Site) -> list[tuple[int, int, float, float, float, float]]:
    """(head, row, H scaled, ‖J‖_F scaled, H unscaled, ‖J‖_F unscaled), heads and rows from 1."""
    plain = unscaled(site)
    rows = []
    for h in range(site.heads):
        for i in range(site.tokens):
            rows.append((h + 1, i + 1, *row_figures(site.scores[h, i]), *row_figures(plain[h, i])))
    return rows


def paths(page: Page) -> list[tuple[int, float, float, float | None]]:
    """(token, ‖∂L/∂x_t‖ residual, ‖∂L/∂x_t‖ attention, cosine), or [] when the residual does not add X."""
    through = attention_path(page)
    if through is None:
        return []
    rows = []
    for t, (r, a) in enumerate(zip(page.site.grad_h, through), start=1):
        nr, na = float(np.linalg.norm(r)), float(np.linalg.norm(a))
        rows.append((t, nr, na, float(r @ a) / (nr * na) if nr > 0 and na > 0 else None))
    return rows


def _uniform(site: Site) -> float:
    """The mean entropy of uniform weights over each row's unmasked keys."""
    kept = np.isfinite(site.scores).sum(axis=-1)
    return float(np.mean(np.log(np.maximum(kept, 1))))


def why_blocks(page: Page, b: Backward, lang: str) -> list:
    """The two tables, with the words that read them."""
    del b
    site = page.site
    scale = f"1/√{site.width}" if abs(site.scale - 1 / math.sqrt(site.width)) < 1e-12 else page.n(site.scale)
    blocks: list = [Heading(3, label(lang, "attention_why")),
                    Paragraph(label(lang, "attention_why_scale", scale=scale))]
    words = (label(lang, "attention_col_head"), label(lang, "attention_col_row"))
    rows = saturation(site)
    blocks.append(Table(
        (rf"\text{{{words[0]}}}", rf"\text{{{words[1]}}}", r"H\left(a\right)", r"\lVert J \rVert_F",
         r"H\left(a\right)\ \text{(no scale)}", r"\lVert J \rVert_F\ \text{(no scale)}"),
        (*words, "H(a)", "‖J‖_F", label(lang, "attention_col_entropy_plain"), label(lang, "attention_col_norm_plain")),
        tuple((str(h), str(i), *(page.n(v) for v in values)) for h, i, *values in rows)))
    mean = [sum(r[k] for r in rows) / len(rows) for k in range(2, 6)]
    blocks.append(Paragraph(label(lang, "attention_why_mean", entropy=page.n(mean[0]), norm=page.n(mean[1]),
                                  entropy_plain=page.n(mean[2]), norm_plain=page.n(mean[3]),
                                  uniform=page.n(_uniform(site)))))
    two = paths(page)
    if two:
        blocks.append(Paragraph(label(lang, "attention_why_paths")))
        blocks.append(Table(
            (rf"\text{{{label(lang, 'attention_col_token')}}}", r"\lVert \partial \mathcal{L}/\partial x_t \rVert_{\mathrm{res}}",
             r"\lVert \partial \mathcal{L}/\partial x_t \rVert_{\mathrm{att}}", r"\cos"),
            (label(lang, "attention_col_token"), "‖∂L/∂x_t‖ res", "‖∂L/∂x_t‖ att", "cos"),
            tuple((str(t), page.n(nr), page.n(na), "—" if c is None else page.n(c)) for t, nr, na, c in two)))
    return blocks
