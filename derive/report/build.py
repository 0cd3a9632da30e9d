"""Assembling a report: the walk-through of one network, from title to training steps.

>>> import derive
>>> doc = build(derive.examples.seed())
>>> [b.text for b in doc.blocks if getattr(b, "level", 0) == 2][:4]
['The network', 'Forward pass', 'Loss', 'Backward pass']
"""

from __future__ import annotations

import dataclasses
import math

import sympy as sp

from derive.derivation import Derivation
from derive.errors import DeriveError
from derive.naming import report_fields
from derive.network import Network
from derive.report import backward, forward, matrix
from derive.report.document import Document, Heading, Paragraph
from derive.report.labels import check_lang, label
from derive.report.numformat import check_digits, fmt
from derive.report.shown import Shown
from derive.training import train
from derive.training.optimizers import Optimizer

#: The most training steps a report shows.
MAX_STEPS = 200


def build(
    network: Network, steps: int = 1, digits: int = 4, lang: str = "en", optimizer: Optimizer | None = None
) -> Document:
    """The document of a report: forward pass, loss, backward pass, update (by ``optimizer``, plain SGD when
    ``None``), and later steps."""
    check_digits(digits)
    check_lang(lang)
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= MAX_STEPS:
        raise DeriveError(f"steps must be a whole number from 1 to {MAX_STEPS}, got {steps!r}")
    network, optimizer = with_rate(network, optimizer)
    history = train(network, steps, optimizer)
    d = history.steps[0]
    _check_finite(d)
    s = Shown(d, digits)
    arch = network.architecture
    doc = Document(lang, label(lang, "title", name=network.name))
    doc.add(
        Paragraph(
            label(
                lang,
                "intro",
                sizes="-".join(map(str, arch.sizes)),
                activations=", ".join(arch.activations),
                loss=arch.loss,
                reduction=arch.reduction,
                lr=fmt(network.lr, digits, exact=True),
                batch=arch.batch,
                digits=digits,
            )
        )
    )
    names = report_fields(network, lang)  # how σ₁ … and W₁ … read in derive grads and derive code
    doc.add(Paragraph(label(lang, "names" if names["report"] else "names_layers", **names)))
    picture = forward.picture(s, lang)
    if picture is not None:
        doc.add(Heading(2, label(lang, "picture")), picture)
    if arch.batch == 1:
        doc.add(*forward.forward_section(s, lang), *forward.loss_section(s, lang))
        doc.add(Heading(2, label(lang, "backward")), Paragraph(label(lang, "backward_text")))
        doc.add(*(backward.chain_section(s, lang) if backward.uses_chains(d) else backward.delta_section(s, lang)))
    else:
        values = matrix.program_values(s)
        doc.add(*matrix.forward_matrix(s, lang, values), *forward.loss_section(s, lang),
                *matrix.backward_matrix(s, lang, values))
    doc.add(*backward.closed_section(s, lang))
    doc.add(*backward.update_section(s, lang, history), backward.gradient_table(s, lang, history))
    if steps > 1:
        final = Derivation(history.final)
        _check_finite(final)
        doc.add(*backward.steps_section(history, final.loss, digits, lang))
    return doc


def with_rate(network, optimizer: Optimizer | None):
    """The optimizer's learning rate moved to the network (so that the report states one rate)."""
    if optimizer is None:
        optimizer = getattr(network, "optimizer", None)
    if optimizer is None or optimizer.lr is None:
        return network, optimizer
    return network.replace(lr=optimizer.lr), dataclasses.replace(optimizer, lr=None)


def _check_finite(d: Derivation) -> None:
    """Refuse a report with an overflowed value; −∞ is a value where a mask puts it (a masked attention score,
    ``masked_fill(…, -inf)``: the node's definition holds −∞, or reads a value that is −∞ so)."""
    masked = set()
    for node in d.graph.nodes:
        if d.values[node.symbol] == -math.inf and (node.expr.has(sp.S.NegativeInfinity)
                                                   or any(s in masked for s in node.expr.free_symbols)):
            masked.add(node.symbol)
    bad = [str(symbol) for symbol, value in d.values.items() if not math.isfinite(value) and symbol not in masked]
    bad += [p.name for p in d.parameters if not math.isfinite(p.gradient)]
    if bad:
        raise DeriveError(
            f"the values of {', '.join(bad[:5])} are not finite (overflow); use smaller weights, inputs or lr"
        )
