r"""The forward pass of a report, neuron by neuron, the loss, and the picture of the network.

Each weighted sum is shown symbolically, with the numbers substituted (every sign as it is), and its value;
then the activation, the same way. Values are rounded from the exact ones.

>>> import derive
>>> from derive.report.shown import Shown
>>> s = Shown(derive.derive(derive.examples.seed()), 4)
>>> eq = weighted_sum(s, 0, 0, 1)  # z2: the bias is added (+ 0.04390)
>>> print(eq.parts[1])
0.1951 \cdot 1 + 0.4835 \cdot 1 + 0.04390
"""

from __future__ import annotations

import sympy as sp

from derive.ops import activation
from derive.report.document import Edge, Equation, Heading, Paragraph, Picture, Unit
from derive.report.labels import label
from derive.report.numformat import product, signed, total
from derive.report.shown import Shown

#: Pictures with more units than this in one layer are drawn without edge labels; beyond twice it, none.
PICTURE_UNITS = 8


def weighted_sum(s: Shown, sample: int, layer: int, unit: int) -> Equation:
    """``z = Σ W a + b`` for one unit: symbolic, substituted, value (terms in index order)."""
    g = s.graph
    inputs = g.inputs[sample] if layer == 0 else g.post[layer - 1][sample]
    weights, bias = g.weights[layer][unit], g.biases[layer][unit]
    z = g.pre[layer][sample][unit]
    symbolic = " + ".join(f"{s.name(w)} {s.name(a)}" for w, a in zip(weights, inputs))
    numeric = total([product([s.value(w), s.value(a)]) for w, a in zip(weights, inputs)] + [s.value(bias)])
    return Equation(s.name(z), (f"{symbolic} + {s.name(bias)}", numeric, s.value(z)))


def activation_equation(s: Shown, sample: int, layer: int, unit: int) -> Equation:
    """``a = f(z)``: the function, its definition, the numbers substituted, the value."""
    g = s.graph
    z, a = g.pre[layer][sample][unit], g.post[layer][sample][unit]
    act = activation(g.architecture.activations[layer])
    if not act.latex_symbol:  # the identity: a = z
        return Equation(s.name(a), (s.name(z), s.value(a)))
    parts = [s.latex(act(z))]
    written = act.written_out(s.name(z), s.value(z))
    if written is None:
        definition = act.definition(z)
        written = s.latex(definition), s.substitute(definition)
    parts += written
    return Equation(s.name(a), (*parts, s.value(a)))


def forward_section(s: Shown, lang: str) -> list:
    """The forward pass of a one-sample network, layer by layer."""
    blocks: list = [Heading(2, label(lang, "forward")), Paragraph(label(lang, "forward_text"))]
    for layer in range(len(s.graph.pre)):
        blocks.append(Heading(3, label(lang, "layer", layer=layer + 1)))
        for unit in range(len(s.graph.pre[layer][0])):
            blocks.append(weighted_sum(s, 0, layer, unit))
            blocks.append(activation_equation(s, 0, layer, unit))
    return blocks


def prediction_names(s: Shown) -> dict[sp.Symbol, str]:
    r"""Names with the predictions written as ŷ (``\hat{y}``, ``\hat{y}_{2}``, ``\hat{y}^{(n)}``)."""
    names = dict(s.names)
    batch = len(s.graph.predictions)
    for n, row in enumerate(s.graph.predictions):
        for k, symbol in enumerate(row):
            name = r"\hat{y}" if len(row) == 1 else rf"\hat{{y}}_{{{k + 1}}}"
            names[symbol] = name if batch == 1 else f"{name}^{{({n + 1})}}"
    return names


def loss_section(s: Shown, lang: str) -> list:
    """ŷ, then L with ŷ and y, substituted, and its value."""
    g = s.graph
    names = prediction_names(s)
    blocks: list = [Heading(2, label(lang, "loss")), Paragraph(label(lang, "loss_text"))]
    if g.architecture.batch == 1:
        for symbol in g.predictions[0]:
            blocks.append(Equation(names[symbol], (s.name(symbol), s.value(symbol))))
    node = g.node[g.loss]
    if g.penalties:
        blocks.append(Paragraph(label(lang, "penalty_text")))
    blocks.append(Equation(s.name(g.loss), (s.latex(node.expr, names), s.substitute(node.expr), s.value(g.loss))))
    return blocks


def picture(s: Shown, lang: str) -> Picture | None:
    """Units in columns (inputs, layers, loss); edges labelled with weights, values and gradients."""
    g = s.graph
    sizes = g.architecture.sizes
    if max(sizes) > 2 * PICTURE_UNITS:
        return None
    one = g.architecture.batch == 1
    units = []
    for i, x in enumerate(g.inputs[0]):
        lines = (f"{s.name(x)} = {s.value(x)}",) if one else ()
        texts = (f"{s.text_name(x)} = {_minus(s.value(x))}",) if one else ()
        units.append(Unit(0, i, s.name(x) if one else f"x_{{{i + 1}}}", lines, s.text_name(x), texts))
    for layer in range(len(g.pre)):
        for i in range(sizes[layer + 1]):
            z, a = g.pre[layer][0][i], g.post[layer][0][i]
            lines = (f"{s.name(z)} = {s.value(z)}", f"{s.name(a)} = {s.value(a)}") if one else ()
            texts = (
                (f"{s.text_name(z)} = {_minus(s.value(z))}", f"{s.text_name(a)} = {_minus(s.value(a))}")
                if one
                else ()
            )
            unit_name = s.name(a) if one else s.name(a).split("^")[0]
            units.append(Unit(layer + 1, i, unit_name, lines, s.text_name(a), texts))
    units.append(
        Unit(len(sizes), 0, s.name(g.loss), (rf"\mathcal{{L}} = {s.value(g.loss)}",), "L",
             (f"L = {_minus(s.value(g.loss))}",))
    )
    gradients = {p.symbol: p.gradient for p in s.d.parameters}
    edges = []
    for layer, rows in enumerate(g.weights):
        for i, row in enumerate(rows):
            for j, w in enumerate(row):
                grad = s.number(gradients[w])
                edges.append(
                    Edge(
                        (layer, j),
                        (layer + 1, i),
                        f"{s.name(w)} = {s.value(w)}",
                        rf"\partial \mathcal{{L}} / \partial {s.name(w)} = {grad}",
                        f"{s.text_name(w)} = {_minus(s.value(w))}",
                        f"∂L/∂{s.text_name(w)} = {_minus(grad)}",
                    )
                )
    edges += [Edge((len(sizes) - 1, i), (len(sizes), 0)) for i in range(sizes[-1])]
    labelled = max(sizes) <= PICTURE_UNITS
    return Picture(tuple(units), tuple(edges), label(lang, "picture_caption"), labelled)


def _minus(text: str) -> str:
    """A number with a typographic minus, for plain-text labels."""
    return text.replace("-", "−")


__all__ = ["activation_equation", "forward_section", "loss_section", "picture", "signed", "weighted_sum"]
