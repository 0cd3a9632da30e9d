r"""The report of a graph model: the same walk-through, op by op instead of layer by layer.

Forward: each op as a tensor equation over its inputs with its values (a matrix), and for small tensors
every element with its numbers substituted. Loss. Backward: the δ = ∂L/∂v of every named intermediate
(last op first), each element the sum over its uses of δ·(local derivative), and the local derivative of
each op written for its first element. Then each parameter's gradient as the sum over its uses, the update
and the later steps, as for chains.

>>> import torch, derive
>>> class Residual(torch.nn.Module):
...     def __init__(self):
...         super().__init__()
...         self.fc = torch.nn.Linear(2, 2)
...     def forward(self, x):
...         return x + torch.tanh(self.fc(x))
>>> model = derive.from_torch(Residual(), loss="mse", x=[[1.0, 2.0]], y=[[0.0, 1.0]])
>>> [b.text for b in build_model(model).blocks if getattr(b, "level", 0) == 2]
['The model', 'Forward pass', 'Loss', 'Backward pass', 'Gradients', 'Update']
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from derive.backprop import count_operations
from derive.model.graph import Leaf, Model, OpNode
from derive.model.lower import latex_text, parameter_base
from derive.report import backward
from derive.report.attention import attention_section
from derive.report.document import Document, Edge, Equation, Heading, Paragraph, Picture, Table, Unit
from derive.report.labels import label
from derive.report.numformat import fmt
from derive.report.recurrent import through_time_section
from derive.report.shown import Shown

#: Tensors with at most this many elements are written element by element (larger ones as matrices).
ELEMENTS = 4
#: An element's expression is written with its numbers substituted up to this many operations.
SUBSTITUTED = 24
#: Matrices show at most this many rows and columns (then ⋯).
ROWS, COLUMNS = 8, 8
#: The update is written parameter by parameter up to this many parameters (then only the table).
UPDATES = 40
#: The graph is drawn when it has at most this many operations, and columns of at most `PICTURE_COLUMN`.
PICTURE_OPS, PICTURE_COLUMN = 12, 4


#: Tensors of rank 3 and more (images, kernels) show at most this many of their last-two-dims grids.
GRIDS = 4


def matrix(values: np.ndarray, text, rows: int = ROWS, columns: int = COLUMNS, grids: int = GRIDS) -> str:
    """A tensor's values as a bmatrix, cut to ``rows`` × ``columns``; rank 3 and more as ``grids`` grids of the
    last two dims (an image's channels, a kernel's slices), each labelled with its leading indices."""
    array = np.asarray(values, dtype=object)
    if array.ndim == 0:
        return text(array[()])
    if array.ndim >= 3:
        lead = array.shape[:-2]
        shown = []
        for k, index in enumerate(np.ndindex(lead)):
            if k == grids:
                shown.append(r"\cdots")
                break
            label = ",".join(str(i + 1) for i in index)
            shown.append(f"{matrix(array[index], text, rows, columns)}_{{{label}}}")
        return r" \; ".join(shown)
    table = array.reshape(1, -1) if array.ndim == 1 else array.reshape(array.shape[0], -1)
    lines = []
    for row in table[:rows]:
        cells = [text(v) for v in row[:columns]] + ([r"\cdots"] if len(row) > columns else [])
        lines.append(" & ".join(cells))
    if len(table) > rows:
        lines.append(r"\vdots")
    return r"\begin{bmatrix} " + r" \\ ".join(lines) + r" \end{bmatrix}"


class _GraphShown(Shown):
    """Names and values of a model's derivation, with tensor-level names for whole tensors."""

    def tensor_name(self, index: int) -> str:
        node = self.graph.structure.nodes[index]
        elements = self.graph.tensors[index]
        if isinstance(node, Leaf) and node.kind == "number":
            return self.number(float(node.name), exact=True)
        if isinstance(node, Leaf) and node.kind == "input":
            return "X"
        if isinstance(node, Leaf) and node.kind == "parameter":
            return parameter_base(node.name)[1]
        if isinstance(node, Leaf) and node.kind == "literal" and node.shape:
            return latex_text(node.name)  # a tensor made in forward (zeros, a mask): by name, not by an element
        if isinstance(node, OpNode) and _defined(self, index):
            return latex_text(node.name)  # the stem its elements are named with
        first = elements.reshape(-1)[0] if elements.size else None  # a shape op: named after its node
        return latex_text(node.name) if isinstance(first, sp.Symbol) or not elements.size else self.element(first)

    def element(self, value: sp.Expr) -> str:
        return self.value(value) if isinstance(value, sp.Symbol) else self.number(float(value), exact=True)


def _defined(s: _GraphShown, index: int) -> list[sp.Symbol]:
    """The elements op ``index`` defines (shape ops define none)."""
    return [e for e in s.graph.tensors[index].reshape(-1) if isinstance(e, sp.Symbol)
            and e in s.graph.node and s.graph.node[e].layer == index and s.graph.node[e].kind == "op"]


def _element_equation(s: _GraphShown, symbol: sp.Symbol, expr: sp.Expr, value: float, lhs: str) -> Equation:
    if expr.is_Number:
        return Equation(lhs, (s.number(value, exact=True),))
    parts = [s.latex(expr)]
    if not expr.is_Symbol and count_operations(expr) <= SUBSTITUTED:
        parts.append(s.substitute(expr))
    return Equation(lhs, (*parts, s.number(value)))


def model_section(s: _GraphShown, lang: str) -> list:
    """The ops of the graph as a table: each node, what it computes, its shape."""
    structure = s.graph.structure
    rows, text_rows = [], []
    for i, node in enumerate(structure.nodes):
        if isinstance(node, (OpNode, Leaf)) and not (isinstance(node, Leaf) and node.kind == "number"):
            kind = node.op.key if isinstance(node, OpNode) else node.kind
            shape = r" \times ".join(map(str, s.graph.tensors[i].shape)) or "1"
            name = node.name if isinstance(node, OpNode) else ("x" if node.kind == "input" else node.name)
            rows.append((rf"\text{{{_escape(name)}}}", rf"\text{{{_escape(kind)}}}", shape))
            text_rows.append((name, kind, shape.replace(r" \times ", "×")))
    header = tuple(label(lang, key) for key in ("node", "op", "shape"))
    blocks = [Heading(2, label(lang, "model")), Paragraph(label(lang, "model_text")),
              Table(tuple(rf"\text{{{h}}}" for h in header), header, tuple(rows), tuple(text_rows))]
    for i, node in enumerate(structure.nodes):  # images and kernels as grids of numbers
        if isinstance(node, Leaf) and node.kind in ("input", "parameter") and s.graph.tensors[i].ndim >= 3:
            blocks.append(Equation(s.tensor_name(i), (matrix(s.graph.tensors[i], s.element),)))
    return blocks


def _escape(text: str) -> str:
    return text.replace("\\", "").replace("_", r"\_").replace("{", "").replace("}", "")


def picture(s: _GraphShown, lang: str) -> Picture | None:
    """The graph as a DAG: the input, each op in the column of its depth, the loss; None when large."""
    nodes = s.graph.structure.nodes
    depth: dict[int, int] = {}
    for i, node in enumerate(nodes):
        if isinstance(node, Leaf) and node.kind == "input":
            depth[i] = 0
        elif isinstance(node, OpNode):
            sources = [depth[a] for a in node.args if a is not None and a in depth]
            depth[i] = 1 + max(sources, default=0)
    ops = [i for i in depth if isinstance(nodes[i], OpNode)]
    columns: dict[int, list[int]] = {}
    for i in depth:
        columns.setdefault(depth[i], []).append(i)
    if len(ops) > PICTURE_OPS or max(len(c) for c in columns.values()) > PICTURE_COLUMN:
        return None
    place = {i: (depth[i], column.index(i)) for column in columns.values() for i in column}
    units = []
    for i, (layer, index) in place.items():
        name = "x" if isinstance(nodes[i], Leaf) else nodes[i].name
        shape = " \\times ".join(map(str, s.graph.tensors[i].shape)) or "1"
        units.append(Unit(layer, index, "X" if name == "x" else s.tensor_name(i), (shape,), name,
                          (shape.replace(" \\times ", "×"),)))
    last = max(depth.values()) + 1
    units.append(Unit(last, 0, r"\mathcal{L}", (), "L", ()))
    edges = [Edge(place[a], place[i], bend=depth[i] - depth[a] > 1) for i in ops for a in nodes[i].args if a in place]
    edges.append(Edge(place[s.graph.structure.output], (last, 0)))
    spacing = min(2.6, 13.0 / last)  # fits the text width
    return Picture(tuple(units), tuple(edges), label(lang, "graph_picture_caption"), False, spacing)


def forward_section(s: _GraphShown, lang: str) -> list:
    blocks: list = [Heading(2, label(lang, "forward")), Paragraph(label(lang, "graph_forward_text"))]
    structure, g = s.graph.structure, s.graph
    for i, node in enumerate(structure.nodes):
        if not isinstance(node, OpNode):
            continue
        inputs = [s.tensor_name(a) for a in node.args if a is not None]
        blocks.append(Heading(3, f"{node.name}: {node.op.key}"))
        blocks.append(Equation(s.tensor_name(i), (node.op.describe(*inputs), matrix(g.tensors[i], s.element))))
        defined = _defined(s, i)
        for e in defined if len(defined) <= ELEMENTS else defined[:1]:  # a large tensor: its first element
            blocks.append(_element_equation(s, e, g.node[e].expr, s.values[e], s.name(e)))
    return blocks


def loss_section(s: _GraphShown, lang: str) -> list:
    g = s.graph
    node = g.node[g.loss]
    parts = [s.latex(node.expr)]
    if count_operations(node.expr) <= SUBSTITUTED:
        parts.append(s.substitute(node.expr))
    return [Heading(2, label(lang, "loss")), Paragraph(label(lang, "graph_loss_text")),
            Equation(s.name(g.loss), (*parts, s.value(g.loss)))]


def backward_section(s: _GraphShown, lang: str) -> list:
    """δ of every op's elements, last op first, and each op's local derivative for its first element."""
    blocks: list = [Heading(2, label(lang, "backward")), Paragraph(label(lang, "graph_backward_text"))]
    g, bp = s.graph, s.d.backprop
    for i in reversed(range(len(g.structure.nodes))):
        node = g.structure.nodes[i]
        defined = _defined(s, i) if isinstance(node, OpNode) else []
        if not defined:
            continue
        blocks.append(Heading(3, label(lang, "delta_of", name=node.name)))
        # an element that is a number (a masked score, a weight of 0) has no δ: 0
        deltas = np.array([bp.adjoint_symbols.get(e, sp.S.Zero) for e in g.tensors[i].reshape(-1)], dtype=object)
        shape = g.tensors[i].shape
        blocks.append(Equation(rf"\delta^{{{s.tensor_name(i)}}}", (matrix(deltas.reshape(shape), s.element),)))
        shown = defined if len(defined) <= ELEMENTS else defined[:1]
        for e in shown:
            d = bp.adjoint_symbols[e]
            blocks.append(_element_equation(s, d, bp.adjoints[d], s.values[d], s.name(d)))
        first = defined[0]
        for argument, partial in g.node[first].partials[:ELEMENTS]:
            value = s.evaluate(partial)
            blocks.append(_element_equation(s, first, partial, value, s.partial(first, argument)))
    return blocks


def gradient_section(s: _GraphShown, lang: str) -> list:
    """Each parameter's gradient as the sum over its uses; a matrix per tensor when it is large."""
    blocks: list = [Heading(2, label(lang, "graph_gradients")), Paragraph(label(lang, "graph_gradients_text"))]
    g, program = s.graph, s.d.backprop.program
    by_tensor: dict[str, list] = {}
    for p in s.d.parameters:
        by_tensor.setdefault(p.parameter.torch, []).append(p)
    for key, params in by_tensor.items():
        shown = params if len(params) <= ELEMENTS else params[:1]
        if len(params) > ELEMENTS:
            leaf = next(i for i, n in enumerate(g.structure.nodes) if isinstance(n, Leaf) and n.name == key)
            values = np.array([p.gradient for p in params], dtype=float).reshape(g.tensors[leaf].shape)
            name = s.tensor_name(leaf)
            blocks.append(Equation(rf"\frac{{\partial \mathcal{{L}}}}{{\partial {name}}}",
                                   (matrix(values, s.number),)))
        for p in shown:
            lhs = rf"\frac{{\partial \mathcal{{L}}}}{{\partial {s.name(p.symbol)}}}"
            blocks.append(_element_equation(s, p.symbol, program[p.name], p.gradient, lhs))
    return blocks


def build_model(model: Model, steps: int = 1, digits: int = 4, lang: str = "en", optimizer=None) -> Document:
    """The document of a graph model's report (``optimizer``: as in `derive.report.build.build`)."""
    from derive.derivation import Derivation
    from derive.report.build import _check_finite, with_rate
    from derive.training import train

    model, optimizer = with_rate(model, optimizer)
    history = train(model, steps, optimizer)
    d = history.steps[0]
    _check_finite(d)
    s = _GraphShown(d, digits)
    ops = sum(isinstance(n, OpNode) for n in model.structure.nodes)
    doc = Document(lang, label(lang, "title", name=model.name), fit_wide=True)
    doc.add(Paragraph(label(lang, "graph_intro", ops=ops, parameters=len(d.parameters), loss=model.loss,
                            reduction=model.reduction, lr=fmt(model.lr, digits, exact=True),
                            batch=model.batch, digits=digits)))
    doc.add(*model_section(s, lang))
    drawing = picture(s, lang)
    if drawing is not None:
        doc.add(drawing)
    doc.add(*forward_section(s, lang), *loss_section(s, lang))
    doc.add(*backward_section(s, lang), *through_time_section(d, lang, s.number), *gradient_section(s, lang))
    doc.add(*attention_section(model, lang, digits))
    if len(d.parameters) <= UPDATES:
        doc.add(*backward.update_section(s, lang, history))
    elif not backward.plain(history):
        doc.add(*backward.optimizer_intro(s, lang, history))
    else:
        doc.add(Heading(2, label(lang, "update")), Paragraph(label(lang, "update_text", lr=fmt(model.lr, digits, exact=True))))
    doc.add(backward.gradient_table(s, lang, history))
    if steps > 1:
        final = Derivation(history.final)
        _check_finite(final)
        doc.add(*backward.steps_section(history, final.loss, digits, lang))
    return doc
