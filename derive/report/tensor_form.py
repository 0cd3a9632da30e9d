r"""The report in matrix form: the tensor program's equations (`derive.tensor.program`), each a whole tensor
with its shape under its name and its values (large tensors cut to their first rows and columns), and the
proofs of the rules it used as an appendix.

It continues the scalar walk-through of a graph model, and it is the whole report of a model past the scalar
report's limit (`tensor_report`): there the number of equations grows with the number of ops, not with the
parameters.

>>> import derive
>>> doc = tensor_report(derive.examples.seed().replace(x=[[1, 1], [0, 1]], y=[[0], [1]]))
>>> [b.text for b in doc.blocks if getattr(b, "level", 0) == 2]
['The gradient in matrix form', 'Update', 'Appendix: proofs of the tensor rules']
>>> next(b for b in doc.blocks if getattr(b, "lhs", "") == r"\underset{2 \times 2}{Z^{(1)}}").parts[0]
'X {W^{(1)}}^\\top + b^{(1)}'
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from derive.errors import DeriveError
from derive.model.graph import Leaf
from derive.report.document import Document, Equation, Heading, Paragraph
from derive.report.escaping import tex_text
from derive.report.graph import matrix
from derive.report.labels import label
from derive.report.numformat import check_digits, fmt
from derive.tensor.latex import latex
from derive.tensor.program import as_model, as_structure, op_count, program


def _number(digits: int, exact: bool = False):
    def text(value: Any) -> str:
        if isinstance(value, (bool, np.bool_)):
            return str(int(value))
        if isinstance(value, (int, np.integer)):
            return str(int(value))
        value = float(value)
        if math.isnan(value):
            return r"\mathrm{NaN}"
        if math.isinf(value):
            return r"\infty" if value > 0 else r"-\infty"
        return fmt(value, digits, exact=exact)

    return text


def _values(value: np.ndarray, text) -> str:
    """A tensor's values, cut to fit a page: 8 × 8 for a matrix; an image or kernel's first 6 × 6 grid."""
    if np.ndim(value) >= 3:
        return matrix(value, text, rows=6, columns=6, grids=1)
    return matrix(value, text)


def _shape(shape: tuple[int, ...]) -> str:
    return r" \times ".join(map(str, shape))


def _named(name: str, shape: tuple[int, ...]) -> str:
    """A tensor's name with its shape written under it (a scalar's alone)."""
    return rf"\underset{{{_shape(shape)}}}{{{name}}}" if shape else name


def tensor_sections(network: Any, lang: str = "en", digits: int = 4) -> list:
    """The program's equations: the tensors it starts from, forward, loss, backward, the gradients."""
    p = program(network)
    model = as_model(network)
    values = p.values(model)
    text = _number(digits)
    blocks: list = [Heading(2, label(lang, "tensor")), Paragraph(label(lang, "tensor_text"))]
    starts = (["T"] if "T" in values else []) + [n for n in p.leaves.values() if n in values]
    data = _number(digits, exact=True)  # data as given: 1, not 1.0000
    for name in sorted(starts, key=lambda n: (n != "X", n != "T")):  # data first, then parameters
        value = np.asarray(values[name])
        shown = data if name in ("X", "T") else text
        blocks.append(Equation(_named(p.latex_names.get(name, name), value.shape), (_values(value, shown),)))
    headings = {"forward": "tensor_forward", "loss": "loss", "adjoint": "tensor_backward",
                "gradient": "tensor_gradients"}
    current = ""
    for d in p.definitions:
        if d.kind != current:
            blocks.append(Heading(3, label(lang, headings[d.kind])))
            current = d.kind
        value = np.asarray(values[d.symbol])
        rule = latex(d.expr, p.latex_names)
        blocks.append(Equation(_named(d.latex_name, value.shape), (rule, _values(value, text))))
    return blocks


def proof_section(network: Any, lang: str = "en") -> list:
    """The appendix: for each op configuration, its verdict on its instance and its rule, on inputs I₀, I₁, …
    with the output's adjoint G."""
    from derive.tensor.proof import prove

    blocks: list = [Heading(2, label(lang, "proofs")), Paragraph(label(lang, "proofs_text"))]
    for proof in prove(network):
        shapes = " × ".join("(" + ", ".join(map(str, s)) + ")" for s in proof.shapes)
        if proof.arithmetic == "not proved":
            verdict = label(lang, "proof_not_proved")
        elif proof.holds:
            verdict = label(lang, "proof_holds", entries=proof.entries, arithmetic=proof.arithmetic)
        else:
            verdict = label(lang, "proof_fails", failure=proof.failure)
        blocks.append(Paragraph(f"{proof.op}, {label(lang, 'proof_instance')} {shapes}: {verdict}."))
        blocks.extend(_rule_equation(line) for line in proof.rule)
    return blocks


def _rule_equation(line: str) -> Equation:
    """``dI1 = transpose(G) @ I0`` as ``∂I₁ = Gᵀ I₀``."""
    from derive.tensor.expr import ParseError, parse

    name, _, expression = line.partition(" = ")
    names = {f"I{k}": f"I_{{{k}}}" for k in range(8)} | {"G": "G", "O": "O"}
    names |= {f"O_{p}": f"O_{{{p}}}" for p in ("z", "q", "k", "v", "w", "s", "h", "c")}
    lhs = name
    if name.startswith("dI"):
        lhs = rf"\partial I_{{{name[2:]}}}"
    elif name.startswith("dO_"):
        lhs = rf"\partial O_{{{name[3:]}}}"
    elif name.startswith("O_"):
        lhs = f"O_{{{name[2:]}}}"
    try:
        return Equation(lhs, (latex(parse(expression), names),))
    except ParseError:  # a rule written before the notation had a name for a part: as its text
        return Equation(lhs, (rf"\texttt{{{tex_text(expression)}}}",))


def update_section(network: Any, lang: str = "en", digits: int = 4) -> list:
    """One step of gradient descent on every parameter tensor, P − α ∂L/∂P, with the new values."""
    p = program(network)
    model = as_model(network)
    values = p.values(model)
    text = _number(digits)
    lr = float(model.lr)
    rate = fmt(lr, digits, exact=True)
    blocks: list = [Heading(2, label(lang, "update")), Paragraph(label(lang, "tensor_update", lr=rate))]
    for index, name in p.leaves.items():
        leaf = p.structure.nodes[index]
        if not (isinstance(leaf, Leaf) and leaf.kind == "parameter"):
            continue
        gradient = p.gradients[leaf.name]
        symbol = p.latex_names[name]
        new = np.asarray(values[name]) - lr * np.asarray(values[gradient])
        blocks.append(Equation(_named(rf"{symbol}_{{\text{{new}}}}", new.shape),
                               (rf"{symbol} - {rate} \, {p.latex_names[gradient]}", _values(new, text))))
    return blocks


def tensor_report(network: Any, steps: int = 1, digits: int = 4, lang: str = "en", optimizer: Any = None) -> Document:
    """The whole report in matrix form: the model, the program with its values, one update, the proofs."""
    check_digits(digits)
    if steps != 1 or optimizer is not None:
        asked = f"{steps} steps" if steps != 1 else "an optimizer"
        raise DeriveError(f"the report in matrix form shows one step of plain gradient descent, not {asked}: "
                          "drop --steps/--optimizer, or raise --max-params for the scalar report")
    model = as_model(network)
    structure = as_structure(network)
    tensors = sum(1 for n in structure.nodes if isinstance(n, Leaf) and n.kind == "parameter")
    count = sum(int(np.prod(np.shape(model.values[n.name]))) for n in structure.nodes
                if isinstance(n, Leaf) and n.kind == "parameter")
    ops = op_count(structure)  # a recurrent layer call is one
    doc = Document(lang, label(lang, "tensor_title", name=getattr(network, "name", "model")), fit_wide=not model.textbook)
    doc.add(Paragraph(label(lang, "tensor_intro", ops=ops, parameters=f"{count:,}", tensors=tensors, loss=model.loss,
                            reduction=model.reduction, lr=fmt(float(model.lr), digits, exact=True),
                            batch=model.batch, digits=digits)))
    doc.add(*tensor_sections(network, lang, digits), *update_section(network, lang, digits),
            *proof_section(network, lang))
    return doc
