r"""The attention chapter of a report: a block worked through as a textbook page, with every number.

Forward: X; Q = X W_Qᵀ + b_Q, K, V likewise (``in_proj_weight``'s three blocks named by their rows); the
split into heads; for the first head the scores S = Q Kᵀ/√d, the mask (−∞), each row's softmax written as
e^s/Σe^s, O = A V; the other heads as grids; the concatenation, the output projection, the residual and
LayerNorm (row 1 written out). Backward: ∂L/∂N from the walk-through; LayerNorm's backward for row 1; ∂L/∂W_O;
∂L/∂O split into heads; for the first head ∂L/∂A = ∂L/∂O Vᵀ, ∂L/∂V = Aᵀ ∂L/∂O, one row's softmax Jacobian
diag(a) − a aᵀ as a matrix and applied, ∂L/∂S, ∂L/∂Q and ∂L/∂K with the scale; ∂L/∂W_Q, ∂L/∂W_K, ∂L/∂W_V;
the two paths to X. Then *why the design is what it is* (`derive.report.attention_why`).

Every product is printed with the numbers it multiplies (a transpose as its values), so that each line can
be recomputed from what is printed; results are the tensor program's values.

>>> import torch, derive
>>> class Block(torch.nn.Module):
...     def __init__(self):
...         super().__init__()
...         torch.manual_seed(0)
...         self.attn = torch.nn.MultiheadAttention(2, 1, batch_first=True)
...     def forward(self, x):
...         return self.attn(x, x, x)[0].mean(dim=1)
>>> model = derive.from_torch(Block(), loss="mse", x=[[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]], y=[[0.0, 1.0]])
>>> blocks = attention_section(model)
>>> blocks[0].text, next(b for b in blocks if getattr(b, "lhs", "") == "S").parts[0]
('Attention, worked through', '\\frac{Q K^\\top}{\\sqrt{2}}')
"""

from __future__ import annotations

import math

import numpy as np

from derive.model.graph import Model
from derive.report.attention_back import backward_blocks
from derive.report.attention_find import Backward, Projection, Site, backward, sites
from derive.report.attention_page import Page, concat, eps_text, mean_text, norm_row, residual_name, rows_text
from derive.report.attention_why import why_blocks
from derive.report.document import Equation, Heading, Paragraph
from derive.report.labels import label
from derive.report.numformat import total


def _projection(page: Page, letter: str, p: Projection, x_name: str, lang: str) -> list:
    blocks: list = []
    W, b = f"W_{{{letter}}}", f"b_{{{letter}}}"
    bias = "" if p.bias is None else f" + \\mathbf{{1}} {b}^\\top"
    numbers = f"{page.grid(p.x)} {page.grid(p.weight.T)}"
    if p.bias is not None:
        numbers += f" + {page.ones(len(p.x))} {page.grid(p.bias)}"
    blocks.append(Paragraph(label(lang, "attention_rows", letter=letter, rows=rows_text(p.rows), tensor=p.key,
                                  bias="" if p.bias_key is None else label(lang, "attention_bias_rows", letter=letter,
                                                                          tensor=p.bias_key))))
    blocks.append(Equation(letter, (f"{x_name} {W}^\\top{bias}", numbers, page.grid(p.out))))
    return blocks


def forward_blocks(page: Page, b: Backward, lang: str) -> list:
    """X, the projections, the split, head 1 in full, the other heads, concatenation, residual, LayerNorm."""
    site = page.site
    blocks: list = []
    x_name = "X"
    projections = [(letter, p) for letter, p in zip("QKV", (site.q, site.k, site.v)) if p is not None]
    if projections:
        blocks.append(Heading(3, label(lang, "attention_projections")))
        sources = {p.source for _, p in projections}
        first = projections[0][1]
        blocks.append(Equation("X", (page.grid(first.x),)))
        for letter, p in projections:
            name = x_name if len(sources) == 1 or p.source == first.source else f"X_{{{letter}}}"
            if name != "X":
                blocks.append(Equation(name, (page.grid(p.x),)))
            blocks.extend(_projection(page, letter, p, name, lang))
    if page.many:
        blocks.append(Paragraph(label(lang, "attention_split", heads=site.heads, width=site.width)))
        for h in range(site.heads):
            for letter, values in zip("QKV", (site.q_in, site.k_in, site.v_in)):
                blocks.append(Equation(page.head(letter, h), (page.grid(values[h]),)))
    blocks.extend(_head_forward(page, b, 0, lang))
    if page.many:
        blocks.append(Heading(3, label(lang, "attention_other_heads")))
        for h in range(1, site.heads):
            blocks.extend(_head_forward(page, b, h, lang, full=False))
    return blocks + _after_forward(page, b, lang)


def _head_forward(page: Page, b: Backward, h: int, lang: str, full: bool = True) -> list:
    site = page.site
    Q, K, V, S, A, O = (page.head(n, h) for n in "QKVSAO")
    raw = site.q_in[h] @ site.k_in[h].T * site.scale
    blocks: list = [Heading(3, label(lang, "attention_head", head=h + 1))] if full else []
    formula, numbers = page.scaled(f"{Q} {K}^\\top", f"{page.grid(site.q_in[h])} {page.grid(site.k_in[h].T)}", True)
    masked = ~np.isfinite(site.scores[h])
    added = np.where(masked, 0.0, site.scores[h] - raw)
    if full:
        blocks.append(Equation(S, (formula, numbers, page.grid(raw))))
    else:
        blocks.append(Equation(S, (formula, page.grid(raw))))
    if masked.any() or not np.allclose(added, 0.0, rtol=0.0, atol=1e-12):
        if full:
            blocks.append(Paragraph(label(lang, "attention_mask")))
        blocks.append(Equation(rf"\tilde{{{S}}}", (f"{S} + M", page.grid(site.scores[h]))))
        S = rf"\tilde{{{S}}}"
    if full:
        blocks.append(Paragraph(label(lang, "attention_softmax")))
        for i, row in enumerate(site.scores[h]):
            blocks.extend(_softmax_row(page, b.weights[h, i], row, i, h, S, lang))
    blocks.append(Equation(A, (rf"\operatorname{{softmax}}\left({S}\right)", page.grid(b.weights[h]))))
    numbers = f"{page.grid(b.weights[h])} {page.grid(site.v_in[h])}"
    blocks.append(Equation(O, (f"{A} {V}", *((numbers,) if full else ()), page.grid(b.out[h]))))
    return blocks


def _softmax_row(page: Page, weights: np.ndarray, scores: np.ndarray, i: int, h: int, S: str, lang: str) -> list:
    kept = np.isfinite(scores)
    lhs = f"a_{{{i + 1}}}"
    formula = rf"\operatorname{{softmax}}\left(s_{{{i + 1}}}\right)"
    if not kept.any():
        return [Paragraph(label(lang, "attention_masked_row", row=i + 1)), Equation(lhs, (page.grid(weights),))]
    exps = [f"e^{{{page.n(s)}}}" if k else "0" for s, k in zip(scores, kept)]
    numbers = rf"\frac{{1}}{{{' + '.join(e for e in exps if e != '0')}}} " + r"\begin{bmatrix} " + " & ".join(exps) \
        + r" \end{bmatrix}"
    return [Equation(lhs, (formula, numbers, page.grid(weights)))]


def _after_forward(page: Page, b: Backward, lang: str) -> list:
    site, out = page.site, page.site.output
    if out is None:
        return []
    o_cat = concat(b.out)
    blocks: list = [Heading(3, label(lang, "attention_concat"))]
    blocks.append(Paragraph(label(lang, "attention_out_rows", tensor=out.key)))
    if page.many:
        blocks.append(Equation("O", (r"\begin{bmatrix} " + " & ".join(page.head("O", h) for h in range(site.heads))
                                     + r" \end{bmatrix}", page.grid(o_cat))))
    numbers = f"{page.grid(o_cat)} {page.grid(out.weight.T)}"
    bias = ""
    if out.bias is not None:
        numbers += f" + {page.ones(site.tokens)} {page.grid(out.bias)}"
        bias = r" + \mathbf{1} b_{O}^\top"
    blocks.append(Equation("Y", (rf"O W_{{O}}^\top{bias}", numbers, page.grid(out.out))))
    if site.residual is None:
        return blocks
    R = residual_name(site)
    blocks.append(Paragraph(label(lang, "attention_residual", name=R)))
    blocks.append(Equation("H", (f"{R} + Y", f"{page.grid(site.residual)} + {page.grid(out.out)}", page.grid(site.h))))
    if site.norm is not None:
        blocks.extend(_norm_forward(page, lang))
    return blocks


def _norm_forward(page: Page, lang: str) -> list:
    site, norm = page.site, page.site.norm
    h = site.h[0]
    count = len(h)
    mu, sigma, xhat = norm_row(h, norm.eps)
    page_mu, page_sigma = page.n(mu), page.n(sigma)
    blocks: list = [Paragraph(label(lang, "attention_norm_row", tensor=norm.key))]
    blocks.append(Equation(r"\mu_{1}", (rf"\frac{{1}}{{{count}}} \sum_j h_{{1j}}",
                                        mean_text(page, [page.n(v) for v in h], count), page_mu)))
    squares = [rf"\left({total([page.n(v), page.n(-mu)])}\right)^{{2}}" for v in h]
    blocks.append(Equation(r"\sigma_{1}", (
        rf"\sqrt{{\frac{{1}}{{{count}}} \sum_j \left(h_{{1j}} - \mu_{{1}}\right)^{{2}} + \epsilon}}",
        rf"\sqrt{{{mean_text(page, squares, count)} + {eps_text(page, norm.eps)}}}", page_sigma)))
    blocks.append(Equation(r"\hat{h}_{1}", (r"\frac{h_{1} - \mu_{1}}{\sigma_{1}}",
                                            rf"\frac{{1}}{{{page_sigma}}} \left({total([page.grid(h), page.n(-mu)])}\right)",
                                            page.grid(xhat))))
    blocks.append(Equation("n_{1}", (r"\gamma \odot \hat{h}_{1} + \beta",
                                     f"{page.grid(norm.gamma)} \\odot {page.grid(xhat)} + {page.grid(norm.beta)}",
                                     page.grid(norm.out[0]))))
    blocks.append(Equation("N", (r"\operatorname{LayerNorm}\left(H\right)", page.grid(norm.out))))
    return blocks


def attention_section(model: Model, lang: str = "en", digits: int = 4) -> list:
    """The chapter (empty for a model without attention, or with a batch of more than one sample)."""
    found = sites(model)
    if not found:
        return []
    blocks: list = [Heading(2, label(lang, "attention"))]
    for number, site in enumerate(found, start=1):
        page = Page(site, digits)
        b = backward(site)
        name = model.structure.nodes[site.node].name
        heads = label(lang, "attention_one_head") if site.heads == 1 else label(lang, "attention_heads",
                                                                                 heads=site.heads)
        blocks.append(Paragraph(label(lang, "attention_text", name=name, heads=site.heads, heads_text=heads,
                                      tokens=site.tokens,
                                      width=site.width, scale=_plain_scale(site))))
        blocks.extend(forward_blocks(page, b, lang))
        blocks.extend(backward_blocks(page, b, lang))
        blocks.extend(why_blocks(page, b, lang))
    return blocks


def _plain_scale(site: Site) -> str:
    if abs(site.scale - 1 / math.sqrt(site.width)) < 1e-12:
        return f"1/√{site.width}"
    return repr(site.scale)


__all__ = ["attention_section"]
