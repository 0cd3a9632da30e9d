"""The report's section on second order: the Hessian (`derive.hessian`) as a matrix for small networks, one
entry's expression, and the curvature's bound on the learning rate."""

from __future__ import annotations

from typing import Any

import numpy as np

from derive.hessian import hessian
from derive.printing import latex
from derive.report.document import Equation, Heading, Paragraph
from derive.report.labels import label
from derive.report.numformat import fmt


def hessian_section(network: Any, lang: str, digits: int) -> list:
    """The report's section on second order: the Hessian as a matrix (small networks), one entry's
    expression, and the curvature's bound on the learning rate (gradient descent on the local quadratic
    model is stable for α < 2/λ_max)."""
    H = hessian(network)
    d = H.derivation
    names = d.graph.latex_names
    symbols = [p.symbol for p in d.parameters]
    blocks: list = [Heading(2, label(lang, "hessian")), Paragraph(label(lang, "hessian_text"))]
    if len(symbols) <= 10:  # a bmatrix holds up to 10 columns (amsmath's MaxMatrixCols)
        rows = r" \\ ".join(" & ".join(fmt(v, digits) for v in row) for row in H.values)
        blocks.append(Paragraph(label(lang, "hessian_order", names=", ".join(H.names))))
        blocks.append(Equation(r"\nabla^2 \mathcal{L}", (rf"\begin{{bmatrix}} {rows} \end{{bmatrix}}",)))
    first, last = len(symbols) - 1, len(symbols) - 1
    expr = H.expression(H.names[first], H.names[last]) if d.backprop.size(H.names[first]) <= 200 else None
    lhs = rf"\frac{{\partial^2 \mathcal{{L}}}}{{\partial {names[symbols[first]]}^2}}"
    parts = (latex(expr, names),) if expr is not None else ()
    blocks.append(Equation(lhs, (*parts, fmt(H.values[first, last], digits))))
    top = float(np.linalg.eigvalsh(H.values).max())
    if top > 0:
        blocks.append(Paragraph(label(lang, "hessian_rate", top=fmt(top, digits), bound=fmt(2 / top, digits))))
    return blocks
