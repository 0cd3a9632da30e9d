r"""The backward half of the attention chapter (`derive.report.attention`): from ∂L/∂N (or ∂L/∂Y) back to the
block's input, each product printed with its numbers.

LayerNorm's backward for one row: with g = γ ⊙ ∂L/∂n and x̂ = (h − μ)/σ,
∂L/∂h = (g − mean(g) − x̂ · mean(g ⊙ x̂))/σ. Attention's: ∂L/∂A = ∂L/∂O Vᵀ, ∂L/∂V = Aᵀ ∂L/∂O, per row
∂L/∂s = (diag(a) − a aᵀ) ∂L/∂a, for all rows ∂L/∂S = A ⊙ (∂L/∂A − r 1ᵀ) with r = (A ⊙ ∂L/∂A) 1, and
∂L/∂Q = ∂L/∂S K·c, ∂L/∂K = ∂L/∂Sᵀ Q·c. The projections: ∂L/∂W = ∂L/∂Pᵀ X, ∂L/∂b = 1ᵀ ∂L/∂P; and the
input's two paths, ∂L/∂X = ∂L/∂H (the residual) + Σ ∂L/∂P W (the attention).

>>> from derive.report.attention_back import layer_norm_backward
>>> import numpy as np
>>> layer_norm_backward(np.array([-1.5, 0.0, 1.5]), np.ones(3), np.array([1.0, 0.0, 0.0]), 1.0).round(4).tolist()
[-0.0833, -0.3333, 0.4167]
"""

from __future__ import annotations

import numpy as np

from derive.report.attention_find import Backward, jacobian
from derive.report.attention_page import Page, concat, d, mean_text, norm_row, residual_name, rows_text
from derive.report.document import Equation, Heading, Paragraph
from derive.report.labels import label
from derive.report.numformat import product, signed


def layer_norm_backward(xhat: np.ndarray, gamma: np.ndarray, grad_out: np.ndarray, sigma: float) -> np.ndarray:
    """∂L/∂h of one LayerNorm row: (g − mean(g) − x̂ mean(g ⊙ x̂))/σ with g = γ ⊙ ∂L/∂n."""
    g = gamma * grad_out
    return (g - g.mean() - xhat * (g * xhat).mean()) / sigma


def attention_path(page: Page) -> np.ndarray | None:
    """Σ ∂L/∂P W over the projections that read the residual's X: the attention path's part of ∂L/∂X."""
    site = page.site
    if site.residual is None or site.q is None or site.residual_source != site.q.source:
        return None
    parts = [(p, site.program_grads.get(letter.lower())) for letter, p in zip("QKV", (site.q, site.k, site.v))]
    used = [(p, concat(g)) for p, g in parts if p is not None and g is not None and p.source == site.q.source]
    return sum(g @ p.weight for p, g in used)


def backward_blocks(page: Page, b: Backward, lang: str) -> list:
    """∂L/∂N → ∂L/∂H → ∂L/∂W_O → ∂L/∂O → head 1 in full → other heads → ∂L/∂W_Q, W_K, W_V → the two paths."""
    site = page.site
    blocks: list = [Heading(3, label(lang, "attention_backward")),
                    Paragraph(label(lang, "attention_loss", loss=page.n(site.loss)))]
    out = site.output
    if site.norm is not None:
        blocks.extend(_norm_backward(page, lang))
    if out is not None:
        if site.residual is not None:
            blocks.append(Equation(d("Y"), (d("H"), page.grid(out.grad_out))))
        else:
            blocks.append(Equation(d("Y"), (page.grid(out.grad_out),)))
        o_cat = concat(b.out)
        numbers = (f"{page.grid(out.grad_out.T)} {page.grid(o_cat)}",)
        blocks.append(Equation(d("W_{O}"), (rf"{d('Y')}^\top O", *numbers, page.grid(out.weight_grad))))
        if out.bias_grad is not None:
            blocks.append(Equation(d("b_{O}"), (rf"\mathbf{{1}}^\top {d('Y')}",
                                                f"{page.ones(site.tokens, row=True)} {page.grid(out.grad_out)}",
                                                page.grid(out.bias_grad))))
        blocks.append(Equation(d("O"), (rf"{d('Y')} W_{{O}}", f"{page.grid(out.grad_out)} {page.grid(out.weight)}",
                                        page.grid(concat(site.grad_o)))))
    if page.many:
        for h in range(site.heads):
            blocks.append(Equation(d(page.head("O", h)), (page.grid(site.grad_o[h]),)))
    blocks.extend(_head_backward(page, b, 0, lang))
    if page.many:
        blocks.append(Heading(3, label(lang, "attention_other_heads_back")))
        for h in range(1, site.heads):
            blocks.extend(_head_backward(page, b, h, lang, full=False))
    blocks.extend(_projections_backward(page, lang))
    return blocks + _paths(page, lang)


def _norm_backward(page: Page, lang: str) -> list:
    site, norm = page.site, page.site.norm
    count = site.h.shape[1]
    _, sigma, xhat = norm_row(site.h[0], norm.eps)
    g = norm.gamma * norm.grad_out[0]
    m1, m2 = float(g.mean()), float((g * xhat).mean())
    blocks: list = [Equation(d("N"), (page.grid(norm.grad_out),)),
                    Paragraph(label(lang, "attention_norm_back", tensor=norm.key))]
    blocks.append(Equation("g", (rf"\gamma \odot {d('n_{1}')}",
                                 f"{page.grid(norm.gamma)} \\odot {page.grid(norm.grad_out[0])}", page.grid(g))))
    blocks.append(Equation("m_{1}", (rf"\frac{{1}}{{{count}}} \sum_j g_{{j}}", mean_text(page, [page.n(v) for v in g], count),
                                     page.n(m1))))
    terms = [product([page.n(a), page.n(x)]) for a, x in zip(g, xhat)]
    blocks.append(Equation("m_{2}", (rf"\frac{{1}}{{{count}}} \sum_j g_{{j}} \hat{{h}}_{{1j}}", mean_text(page, terms, count),
                                     page.n(m2))))
    numbers = (rf"\frac{{1}}{{{page.n(sigma)}}} \left({page.grid(g)} - {signed(page.n(m1))} - "
               rf"{page.grid(xhat)} \cdot {signed(page.n(m2))}\right)")
    blocks.append(Equation(d("h_{1}"), (r"\frac{1}{\sigma_{1}} \left(g - m_{1} - \hat{h}_{1} m_{2}\right)", numbers,
                                        page.grid(site.grad_h[0]))))
    blocks.append(Equation(d("H"), (page.grid(site.grad_h),)))
    xhats = np.array([norm_row(row, norm.eps)[2] for row in site.h])
    numbers = (rf"{page.ones(site.tokens, row=True)} \left({page.grid(norm.grad_out)} \odot "
               rf"{page.grid(xhats)}\right)")
    blocks.append(Equation(d(r"\gamma"), (rf"\mathbf{{1}}^\top \left({d('N')} \odot \hat{{H}}\right)", numbers,
                                          page.grid(norm.gamma_grad))))
    blocks.append(Equation(d(r"\beta"), (rf"\mathbf{{1}}^\top {d('N')}",
                                         f"{page.ones(site.tokens, row=True)} {page.grid(norm.grad_out)}",
                                         page.grid(norm.beta_grad))))
    return blocks


def _jacobian_row(b: Backward, h: int) -> int:
    """The row whose softmax has the most unmasked scores (the first of them)."""
    kept = (b.weights[h] > 0).sum(axis=-1)
    return int(np.argmax(kept))


def _head_backward(page: Page, b: Backward, h: int, lang: str, full: bool = True) -> list:
    site = page.site
    Q, K, V, A, O = (page.head(n, h) for n in "QKVAO")
    S = page.head("S", h)
    blocks: list = [Heading(3, label(lang, "attention_head_back", head=h + 1))] if full else []

    def numbers(*parts: str) -> tuple[str, ...]:
        return parts if full else ()

    blocks.append(Equation(d(A), (rf"{d(O)} {V}^\top", *numbers(f"{page.grid(site.grad_o[h])} {page.grid(site.v_in[h].T)}"),
                                  page.grid(b.grad_weights[h]))))
    blocks.append(Equation(d(V), (rf"{A}^\top {d(O)}", *numbers(f"{page.grid(b.weights[h].T)} {page.grid(site.grad_o[h])}"),
                                  page.grid(site.program_grads.get("v", b.grad_v)[h]))))
    if full:
        i = _jacobian_row(b, h)
        a = b.weights[h, i]
        J = jacobian(a)
        blocks.append(Paragraph(label(lang, "attention_jacobian", row=i + 1, head=h + 1)))
        blocks.append(Equation(rf"\frac{{\partial a_{{{i + 1}}}}}{{\partial s_{{{i + 1}}}}}", (
            rf"\operatorname{{diag}}\left(a_{{{i + 1}}}\right) - a_{{{i + 1}}} a_{{{i + 1}}}^\top",
            f"{page.grid(np.diag(a))} - {page.column(a)} {page.grid(a)}", page.grid(J))))
        blocks.append(Equation(d(f"s_{{{i + 1}}}"), (
            rf"\frac{{\partial a_{{{i + 1}}}}}{{\partial s_{{{i + 1}}}}} {d(f'a_{{{i + 1}}}')}",
            f"{page.grid(J)} {page.column(b.grad_weights[h, i])}", page.column(b.grad_scores[h, i]))))
        blocks.append(Paragraph(label(lang, "attention_rowsum")))
        numbers_r = (rf"\left({page.grid(b.weights[h])} \odot {page.grid(b.grad_weights[h])}\right) "
                     f"{page.ones(b.weights.shape[-1])}")
        blocks.append(Equation("r", (rf"\left({A} \odot {d(A)}\right) \mathbf{{1}}", numbers_r,
                                     page.column(b.rowsum[h]))))
        spread = np.repeat(b.rowsum[h][:, None], b.weights.shape[-1], axis=1)
        numbers_s = (rf"{page.grid(b.weights[h])} \odot \left({page.grid(b.grad_weights[h])} - "
                     rf"{page.grid(spread)}\right)")
        blocks.append(Equation(d(S), (rf"{A} \odot \left({d(A)} - r \mathbf{{1}}^\top\right)", numbers_s,
                                      page.grid(b.grad_scores[h]))))
    else:
        blocks.append(Equation(d(S), (rf"{A} \odot \left({d(A)} - r \mathbf{{1}}^\top\right)", page.grid(b.grad_scores[h]))))
    grad_q = site.program_grads.get("q", b.grad_q)[h]
    grad_k = site.program_grads.get("k", b.grad_k)[h]
    formula, scaled = page.scaled(f"{d(S)} {K}", f"{page.grid(b.grad_scores[h])} {page.grid(site.k_in[h])}")
    blocks.append(Equation(d(Q), (formula, *numbers(scaled), page.grid(grad_q))))
    formula, scaled = page.scaled(f"{d(S)}^\\top {Q}", f"{page.grid(b.grad_scores[h].T)} {page.grid(site.q_in[h])}")
    blocks.append(Equation(d(K), (formula, *numbers(scaled), page.grid(grad_k))))
    return blocks


def _projections_backward(page: Page, lang: str) -> list:
    site = page.site
    blocks: list = []
    for letter, p in zip("QKV", (site.q, site.k, site.v)):
        grads = site.program_grads.get(letter.lower())
        if p is None or grads is None:
            continue
        if not blocks:
            blocks.append(Heading(3, label(lang, "attention_projections_back")))
        grad = concat(grads)
        if page.many:
            parts = " & ".join(d(page.head(letter, h)) for h in range(site.heads))
            blocks.append(Equation(d(letter), (rf"\begin{{bmatrix}} {parts} \end{{bmatrix}}", page.grid(grad))))
        x_name = "X" if p.source == site.q.source else f"X_{{{letter}}}"
        blocks.append(Equation(d(f"W_{{{letter}}}"), (rf"{d(letter)}^\top {x_name}",
                                                      f"{page.grid(grad.T)} {page.grid(p.x)}", page.grid(p.weight_grad))))
        if p.bias_grad is not None:
            blocks.append(Equation(d(f"b_{{{letter}}}"), (rf"\mathbf{{1}}^\top {d(letter)}",
                                                          f"{page.ones(site.tokens, row=True)} {page.grid(grad)}",
                                                          page.grid(p.bias_grad))))
            if letter == "K" and np.allclose(p.bias_grad, 0, atol=1e-12):
                blocks.append(Paragraph(label(lang, "attention_key_bias")))
        bias = "" if p.bias_key is None else label(lang, "attention_bias_rows", letter=letter, tensor=p.bias_key)
        blocks.append(Paragraph(label(lang, "attention_grad_rows", letter=letter, rows=rows_text(p.rows), tensor=p.key,
                                      bias=bias)))
    return blocks


def _paths(page: Page, lang: str) -> list:
    site = page.site
    through = attention_path(page)
    if through is None:
        return []
    R = residual_name(site)
    terms, numbers = [], []
    for letter, p in zip("QKV", (site.q, site.k, site.v)):
        grads = site.program_grads.get(letter.lower())
        if p is not None and grads is not None and p.source == site.q.source:
            terms.append(f"{d(letter)} W_{{{letter}}}")
            numbers.append(f"{page.grid(concat(grads))} {page.grid(p.weight)}")
    blocks: list = [Heading(3, label(lang, "attention_paths")), Paragraph(label(lang, "attention_paths_text"))]
    blocks.append(Equation(d(R) + r"\Big|_{\mathrm{attention}}", (" + ".join(terms), " + ".join(numbers),
                                                                   page.grid(through))))
    blocks.append(Equation(d(R) + r"\Big|_{\mathrm{residual}}", (d("H"), page.grid(site.grad_h))))
    blocks.append(Equation(d(R), (f"{page.grid(site.grad_h)} + {page.grid(through)}", page.grid(site.grad_h + through))))
    return blocks
