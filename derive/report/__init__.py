"""Derivation reports: the textbook walk-through of a network, generated (LaTeX, Markdown, HTML, PDF).

>>> import derive
>>> text = report(derive.examples.seed(), format="md")
>>> "0.4352 \\\\cdot 1 + 0.3545 \\\\cdot 1 - 0.1419" in text
True
"""

from __future__ import annotations

from derive.errors import DeriveError, did_you_mean
from derive.network import Network
from derive.report.build import build
from derive.report.labels import LANGUAGES
from derive.report.pdf import compile_pdf
from derive.report.render import RENDERERS

FORMATS = tuple(RENDERERS)


def report(network: Network, format: str = "tex", steps: int = 1, digits: int = 4, lang: str = "en") -> str:
    """The report of ``network`` as text: ``format`` is ``"tex"``, ``"md"`` or ``"html"``.

    ``steps``: SGD steps (the first in full, later ones as a table); ``digits``: decimal places shown;
    ``lang``: ``"en"`` or ``"ko"``.
    """
    if format not in RENDERERS:
        raise DeriveError(f"unknown format {format!r}; known: {', '.join(FORMATS)}.{did_you_mean(str(format), FORMATS)}")
    return RENDERERS[format](build(network, steps=steps, digits=digits, lang=lang))


__all__ = ["FORMATS", "LANGUAGES", "build", "compile_pdf", "report"]
