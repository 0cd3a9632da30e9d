r"""The matrix form of a report, for a batch of more than one sample (one row per sample).

Forward: ``Z^{(l)} = A^{(l-1)} W^{(l)\top} + \mathbf{1} b^{(l)\top}`` and ``A^{(l)} = f(Z^{(l)})`` with the
real matrices. Backward: the per-sample error terms ``Δ = ∂ℓ/∂Z`` (without the mean's factor), propagated
by ``Δ^{(l)} = (Δ^{(l+1)} W^{(l+1)}) ⊙ f'(Z^{(l)})``, and the gradients as the mean over the batch,
``∂L/∂W^{(l)} = \frac{1}{N} Δ^{(l)\top} A^{(l-1)}``. The matrices Z, A and Δ are the chain's tensor program's
(`derive.tensor.program`: the dense op's rules), evaluated in float64.

>>> print(bmatrix([["1", "-0.5"]]))
\begin{bmatrix} 1 & -0.5 \end{bmatrix}
"""

from __future__ import annotations


import sympy as sp

from derive.ops import activation
from derive.ops import loss as lookup_loss
from derive.report.document import Equation, Heading, Paragraph
from derive.report.labels import label
from derive.report.shown import Shown
from derive.tensor.program import program


def bmatrix(rows: list[list[str]]) -> str:
    """A matrix of numbers in LaTeX (amsmath ``bmatrix``)."""
    body = r" \\ ".join(" & ".join(row) for row in rows)
    return rf"\begin{{bmatrix}} {body} \end{{bmatrix}}"


def _sup(name: str, layer: int) -> str:
    return f"{name}^{{({layer})}}"


def _t(name: str, layer: int) -> str:
    return rf"{name}^{{({layer})\top}}"


def z_sample(s: Shown, z: sp.Symbol) -> int:
    """The 1-based sample of a pre-activation symbol."""
    return s.graph.node[z].sample + 1


def program_values(s: Shown) -> dict:
    """Every tensor of the chain's tensor program at the derivation's point (Z_1, A_1, dL_dZ_1, …; float64),
    penalties aside: they touch the parameters' gradients only, not Z, A or Δ."""
    network = s.d.network.chain.replace(l1=0.0, l2=0.0, penalized=())
    return program(network).values(network)


def _rows(s: Shown, value) -> list[list[str]]:
    return [[s.number(float(v)) for v in row] for row in value]


def mean_count(s: Shown) -> int:
    """What the loss divides by: the number of its terms for ``mean``, 1 for ``sum``."""
    arch = s.graph.architecture
    if arch.reduction != "mean":
        return 1
    return lookup_loss(arch.loss).term_count(arch.batch, arch.sizes[-1])


def forward_matrix(s: Shown, lang: str, values: dict) -> list:
    """Z and A for every layer with real matrices (``values``: `program_values`)."""
    g = s.graph
    blocks: list = [Heading(2, label(lang, "matrix")), Paragraph(label(lang, "matrix_text", batch=len(g.inputs)))]
    previous = [[s.value(x) for x in row] for row in g.inputs]
    previous_name = "X"
    for layer, weights in enumerate(g.weights, start=1):
        blocks.append(Heading(3, label(lang, "layer", layer=layer)))
        act = activation(g.architecture.activations[layer - 1])
        transposed = [[s.value(row[j]) for row in weights] for j in range(len(weights[0]))]
        biases = [[s.value(b) for b in g.biases[layer - 1]] for _ in g.inputs]
        z_values = _rows(s, values[f"Z_{layer}"])
        a_values = _rows(s, values[f"A_{layer}"])
        Z, A = _sup("Z", layer), _sup("A", layer)
        blocks.append(
            Equation(
                Z,
                (
                    rf"{previous_name} {_t('W', layer)} + \mathbf{{1}} {_t('b', layer)}",
                    f"{bmatrix(previous)} {bmatrix(transposed)} + {bmatrix(biases)}",
                    bmatrix(z_values),
                ),
            )
        )
        function = act.latex_symbol or r"\operatorname{id}"
        blocks.append(Equation(A, (rf"{function}\left({Z}\right)", bmatrix(a_values))))
        previous, previous_name = a_values, A
    return blocks


def backward_matrix(s: Shown, lang: str, values: dict) -> list:
    """Δ per layer (last first), then ∂L/∂W and ∂L/∂b as the mean over the batch."""
    g, bp = s.graph, s.d.backprop
    count = mean_count(s)
    scale = "" if count == 1 else rf"\frac{{1}}{{{count}}} "
    blocks: list = [Heading(2, label(lang, "backward")), Paragraph(label(lang, "matrix_backward", count=count))]
    layers = len(g.weights)

    def delta_values(layer: int) -> list[list[str]]:  # Δ = N ∂L/∂Z, from the tensor program
        return _rows(s, values[f"dL_dZ_{layer}"] * count)

    for layer in range(layers, 0, -1):
        blocks.append(Heading(3, label(lang, "layer", layer=layer)))
        D = _sup(r"\Delta", layer)
        if layer == layers:
            for row in g.pre[layer - 1]:
                for z in row:
                    expr = sp.expand(bp.adjoints[bp.adjoint_symbols[z]] * count)
                    expr = sp.factor_terms(expr)
                    value = s.number(s.values[bp.adjoint_symbols[z]] * count)
                    lhs = rf"\frac{{\partial \ell^{{({z_sample(s, z)})}}}}{{\partial {s.name(z)}}}"
                    blocks.append(Equation(lhs, (s.latex(expr), s.substitute(expr), value)))
            lhs_parts = [rf"{count} \frac{{\partial \mathcal{{L}}}}{{\partial {_sup('Z', layer)}}}" if count != 1
                         else rf"\frac{{\partial \mathcal{{L}}}}{{\partial {_sup('Z', layer)}}}"]
            blocks.append(Equation(D, (*lhs_parts, bmatrix(delta_values(layer)))))
        else:
            act = activation(g.architecture.activations[layer - 1])
            z0, a0 = sp.Symbol("Z", real=True), sp.Symbol("A", real=True)
            derivative = act.derivative(z0, a0)
            shape = s.latex(derivative, {z0: _sup("Z", layer), a0: _sup("A", layer)})
            derivative_values = [
                [s.number(s.evaluate(act.derivative(z, a))) for z, a in zip(zs, as_)]
                for zs, as_ in zip(g.pre[layer - 1], g.post[layer - 1])
            ]
            F = rf"f'\left({_sup('Z', layer)}\right)"
            shapes = () if derivative.is_Number else (shape,)
            blocks.append(Equation(F, (*shapes, bmatrix(derivative_values))))
            above = _sup(r"\Delta", layer + 1)
            weights = [[s.value(w) for w in row] for row in g.weights[layer]]
            blocks.append(
                Equation(
                    D,
                    (
                        rf"\left({above} {_sup('W', layer + 1)}\right) \odot {F}",
                        rf"\left({bmatrix(delta_values(layer + 1))} {bmatrix(weights)}\right) \odot "
                        + bmatrix(derivative_values),
                        bmatrix(delta_values(layer)),
                    ),
                )
            )
        inputs = g.inputs if layer == 1 else g.post[layer - 2]
        previous = [[s.value(a) for a in row] for row in inputs]
        previous_name = "X" if layer == 1 else _sup("A", layer - 1)
        deltas = delta_values(layer)
        delta_t = _t(r"\Delta", layer)
        transposed = [[row[k] for row in deltas] for k in range(len(deltas[0]))]
        gradients = {p.symbol: p.gradient for p in s.d.parameters}
        weight_gradients = [[s.number(gradients[w]) for w in row] for row in g.weights[layer - 1]]
        bias_gradients = [[s.number(gradients[b]) for b in g.biases[layer - 1]]]
        blocks.append(
            Equation(
                rf"\frac{{\partial \mathcal{{L}}}}{{\partial {_sup('W', layer)}}}",
                (
                    rf"{scale}{delta_t} {previous_name}",
                    f"{scale}{bmatrix(transposed)} {bmatrix(previous)}",
                    bmatrix(weight_gradients),
                ),
            )
        )
        ones = [["1" for _ in deltas]]
        blocks.append(
            Equation(
                rf"\frac{{\partial \mathcal{{L}}}}{{\partial {_sup('b', layer)}}}",
                (rf"{scale}\mathbf{{1}}^{{\top}} {D}", f"{scale}{bmatrix(ones)} {bmatrix(deltas)}", bmatrix(bias_gradients)),
            )
        )
    return blocks
