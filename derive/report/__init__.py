"""Derivation reports: the textbook walk-through of a network, generated (LaTeX, Markdown, HTML, PDF).

>>> import derive
>>> text = report(derive.examples.seed(), format="md")
>>> "0.4352 \\\\cdot 1 + 0.3545 \\\\cdot 1 - 0.1419" in text
True
"""

from __future__ import annotations

import math

from derive.errors import DeriveError, did_you_mean
from derive.model.graph import Leaf, Model
from derive.network import Network
from derive.report.build import build
from derive.report.graph import build_model
from derive.report.labels import LANGUAGES
from derive.report.pdf import compile_pdf
from derive.report.render import RENDERERS
from derive.training.optimizers import Optimizer
from derive.training.optimizers import optimizer as make_optimizer

FORMATS = tuple(RENDERERS)
#: Reports print every parameter; networks with more parameters than this are refused unless asked for.
MAX_PARAMETERS = 500


#: What a report shows: the scalar walk-through, the matrix form, or the first within the limit (then both for a
#: graph model) and the second past it.
FORMS = ("auto", "scalar", "tensor")


def _count(network: Network | Model) -> int:
    """The number of scalar parameters, from the shapes (no parameter objects for a large network)."""
    if network.textbook:
        return sum(layer.out_features * (layer.in_features + 1) for layer in network.layers)
    return sum(math.prod(node.shape) for node in network.structure.nodes
               if isinstance(node, Leaf) and node.kind == "parameter")


class ReportTooLarge(DeriveError):
    """A network too large to print as a report (override with ``max_parameters``)."""


def report(
    network: Network | Model,
    format: str = "tex",
    steps: int = 1,
    digits: int = 4,
    lang: str = "en",
    *,
    max_parameters: int = MAX_PARAMETERS,
    optimizer: str | Optimizer | None = None,
    hessian: bool = False,
    form: str = "auto",
    **options: object,
) -> str:
    """The report of ``network`` as text: ``format`` is ``"tex"``, ``"md"`` or ``"html"``.

    ``steps``: SGD steps (the first in full, later ones as a table); ``digits``: the precision shown
    (decimal places, significant digits below 1, scientific notation below 10⁻⁴ and from 10⁶:
    `derive.report.numformat`); ``lang``: ``"en"`` or ``"ko"``; ``max_parameters``: refuse larger networks
    (`ReportTooLarge`);
    ``optimizer``: a name (sgd, adam, adamw, rmsprop, adagrad) with ``options`` named as in torch.optim, or
    an `Optimizer` (default: plain SGD with the network's learning rate); ``hessian``: add the second-order
    section (the Hessian, one entry's expression, the learning-rate bound of its largest eigenvalue);
    ``form``: ``"scalar"`` (the walk-through; refused past ``max_parameters``), ``"tensor"`` (the report in
    matrix form, `derive.report.tensor_form`: the tensor program with its values, one update, the proofs of
    its rules) or ``"auto"``: the walk-through within the limit, continued by the matrix form for a graph
    model, and the matrix form alone past it.
    """
    opt = None if optimizer is None and not options else make_optimizer(optimizer, **options)
    if format not in RENDERERS:
        raise DeriveError(f"unknown format {format!r}; known: {', '.join(FORMATS)}.{did_you_mean(str(format), FORMATS)}")
    if form not in FORMS:
        raise DeriveError(f"unknown report form {form!r}; known: {', '.join(FORMS)}.{did_you_mean(str(form), FORMS)}")
    count = _count(network)
    if form == "tensor" or (form == "auto" and count > max_parameters):
        from derive.report.tensor_form import tensor_report

        if hessian:
            raise DeriveError("the report in matrix form has no Hessian section: use --form scalar")
        return RENDERERS[format](tensor_report(network, steps=steps, digits=digits, lang=lang, optimizer=opt))
    if count > max_parameters:
        raise ReportTooLarge(
            f"the network has {count:,} parameters; reports print every one and are limited to "
            f"{max_parameters:,} (raise the limit with --max-params N, or max_parameters=N)"
        )
    if not network.textbook:
        document = build_model(network, steps=steps, digits=digits, lang=lang, optimizer=opt)
        if form == "auto":  # the walk-through continued in matrix form
            from derive.report.tensor_form import proof_section, tensor_sections

            document.add(*tensor_sections(network, lang, digits), *proof_section(network, lang))
    else:
        document = build(network, steps=steps, digits=digits, lang=lang, optimizer=opt)
    if hessian:
        from derive.report.second_order import hessian_section

        document.add(*hessian_section(network, lang, digits))
    return RENDERERS[format](document)


__all__ = ["FORMATS", "FORMS", "LANGUAGES", "MAX_PARAMETERS", "ReportTooLarge", "build", "compile_pdf", "report"]
