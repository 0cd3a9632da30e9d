r"""The document model of a report: blocks that every format renders (LaTeX, Markdown, HTML).

Prose is plain text (each renderer escapes it); mathematics is LaTeX written by derive itself (never user
text). An `Equation` is a left-hand side and a chain of right-hand sides, ``lhs = p1 = p2 = …``: the last
part of a numeric equation is its value, and every part made of numbers alone evaluates to it (within the
rounding of the numbers shown), which the tests check by reading the output back.

>>> eq = Equation(r"z_{1}", (r"W_{1} x_{1} + b_{1}", r"0.5 \cdot 1 + 0.1", "0.6000"))
>>> eq.parts[-1]
'0.6000'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union


@dataclass(frozen=True)
class Heading:
    """A section heading; ``level`` 1 is the title, 2 a section, 3 a subsection."""

    level: int
    text: str


@dataclass(frozen=True)
class Paragraph:
    """Plain text (escaped by the renderer)."""

    text: str


@dataclass(frozen=True)
class Equation:
    """``lhs = parts[0] = parts[1] = …`` (LaTeX), shown as one display."""

    lhs: str
    parts: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    """A table of numbers; header cells come in LaTeX (for tex and HTML) and as plain text (Markdown)."""

    header_latex: tuple[str, ...]
    header_text: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    #: the rows as plain text (Markdown, HTML) where they differ from the LaTeX ``rows``
    rows_text: tuple[tuple[str, ...], ...] = ()

    @property
    def plain_rows(self) -> tuple[tuple[str, ...], ...]:
        return self.rows_text or self.rows


@dataclass(frozen=True)
class Unit:
    """A node of the picture at column ``layer``: its label and value lines, in LaTeX and plain text."""

    layer: int
    index: int
    label: str
    lines: tuple[str, ...] = ()
    label_text: str = ""
    lines_text: tuple[str, ...] = ()


@dataclass(frozen=True)
class Edge:
    """An edge of the picture from unit (layer, i) to unit (layer + 1, j), with its weight's labels."""

    source: tuple[int, int]
    target: tuple[int, int]
    label: str = ""  # LaTeX: W_{5} = -0.1725
    gradient: str = ""  # LaTeX: \partial L/\partial W_{5} = 0.2727
    label_text: str = ""
    gradient_text: str = ""
    #: drawn as an arc (an edge that skips columns, as a residual connection does)
    bend: bool = False


@dataclass(frozen=True)
class Picture:
    """The network drawn as columns of units joined by labelled edges."""

    units: tuple[Unit, ...]
    edges: tuple[Edge, ...]
    caption: str
    labelled: bool = True
    #: column spacing (cm in TikZ), narrower for a graph's unlabelled edges
    spacing: float = 5.5


Block = Union[Heading, Paragraph, Equation, Table, Picture]


@dataclass
class Document:
    """A report: language, title and blocks in reading order."""

    lang: str
    title: str
    blocks: list[Block] = field(default_factory=list)
    #: LaTeX: scale a display to the text's width where it is wider and cannot be broken (graph models' long
    #: element formulas and tensors); chains' reports keep the layout of their golden files
    fit_wide: bool = False

    def add(self, *blocks: Block) -> None:
        self.blocks.extend(blocks)

    def __repr__(self) -> str:
        return f"Document({self.title!r}, {len(self.blocks)} blocks)"

