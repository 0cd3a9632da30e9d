r"""Renderers: a `Document` as a standalone LaTeX document, as Markdown, or as one HTML page.

- **tex**: ``article`` with amsmath, amssymb, booktabs, longtable and TikZ only (all in Debian's
  ``texlive-latex-base``/``-recommended``/``-pictures``); Korean loads ``kotex``. Compiles with pdflatex.
- **md**: display math in ``$$`` blocks (an ``aligned`` environment inside, never ``align``), which KaTeX
  and MathJax render; plain-text table headers; no picture.
- **html**: one self-contained page: MathML (rendered by the browser, no script), an inline SVG picture.

The output depends on the document alone: the same network gives byte-identical text.

>>> from derive.report.document import Document, Equation, Heading
>>> doc = Document("en", "T & U", [Heading(2, "Loss"), Equation("L", ("1",))])
>>> print(markdown(doc))
# T &amp; U
<BLANKLINE>
## Loss
<BLANKLINE>
$$
\begin{aligned}
L &= 1
\end{aligned}
$$
<BLANKLINE>
"""

from __future__ import annotations

import re

from derive.report import picture as pictures
from derive.report.document import Document, Equation, Heading, Paragraph, Picture, Table
from derive.report.escaping import html_text, md_text, tex_text
from derive.report.layout import aligned
from derive.report.mathml import to_mathml
from derive.report.numformat import plain

_TEX_PREAMBLE = r"""\documentclass[11pt]{article}
\usepackage[utf8]{inputenc}
%(korean)s\usepackage[a4paper, margin=2cm]{geometry}
\usepackage{amsmath, amssymb}
\usepackage{booktabs, longtable}
\usepackage{tikz}
\usetikzlibrary{positioning}
\setlength{\parindent}{0pt}
\setlength{\parskip}{0.5em}
\allowdisplaybreaks
%(fit)s\begin{document}
"""

#: A display wider than the text (a long product inside ``\left( … \right)``, a wide matrix, where `layout`
#: cannot break it) is scaled to the text's width, in documents that ask for it (`Document.fit_wide`).
_FIT = r"""\newsavebox{\derivebox}
\newcommand{\fitdisplay}[1]{\sbox{\derivebox}{$\displaystyle #1$}%
\ifdim\wd\derivebox>\linewidth\resizebox{\linewidth}{!}{\usebox{\derivebox}}\else\usebox{\derivebox}\fi}
"""


def tex(doc: Document) -> str:
    """A standalone LaTeX document."""
    korean = doc.lang == "ko"
    out: list[str] = []
    out.append(rf"{{\LARGE\bfseries {tex_text(doc.title, korean)}\par}}" + "\n")
    for block in doc.blocks:
        if isinstance(block, Heading):
            command = "section" if block.level <= 2 else "subsection"
            out.append(rf"\{command}*{{{tex_text(block.text, korean)}}}" + "\n")
        elif isinstance(block, Paragraph):
            out.append(tex_text(block.text, korean) + "\n")
        elif isinstance(block, Equation):
            body = aligned(block)
            out.append("\\[\n" + (f"\\fitdisplay{{{body}}}" if doc.fit_wide else body) + "\n\\]\n")
        elif isinstance(block, Table):
            out.append(_tex_table(block))
        elif isinstance(block, Picture):
            out.append("\\begin{center}\n" + pictures.tikz(block) + "\n\\end{center}\n")
            out.append(tex_text(block.caption, korean) + "\n")
    out.append("\\end{document}\n")
    fit = _FIT if doc.fit_wide else ""
    return "\n".join([_TEX_PREAMBLE % {"korean": "\\usepackage{kotex}\n" if korean else "", "fit": fit}, *out])


#: The width of a LaTeX report's text (A4, 2 cm margins) in points, and of a table column's padding.
TEXT_WIDTH, COLUMN_PADDING = 483.0, 12.0


def _tex_table(table: Table) -> str:
    """A longtable; one too wide for the page (numbers in scientific notation) is split into several, each
    with the first column (t, the parameter)."""
    out = []
    for columns in _column_groups(table):
        spec = "r" * len(columns)
        header = " & ".join(f"${table.header_latex[c]}$" for c in columns) + r" \\"
        rows = "\n".join(" & ".join(f"${row[c]}$" for c in columns) + r" \\" for row in table.rows)
        out.append(
            rf"\begin{{longtable}}{{{spec}}}" + "\n\\toprule\n" + header + "\n\\midrule\n\\endhead\n"
            + rows + "\n\\bottomrule\n\\end{longtable}\n"
        )
    return "\n".join(out)


def _column_groups(table: Table) -> list[list[int]]:
    """The columns of each table to print: all of them while they fit `TEXT_WIDTH`, else the first column and
    as many of the others as fit, in turn."""
    widths = [max(_width(cell) for cell in (header, *(row[c] for row in table.rows))) + COLUMN_PADDING
              for c, header in enumerate(table.header_latex)]
    if sum(widths) <= TEXT_WIDTH or len(widths) < 3:
        return [list(range(len(widths)))]
    groups, current = [], [0]
    for c in range(1, len(widths)):
        if len(current) > 1 and sum(widths[i] for i in current) + widths[c] > TEXT_WIDTH:
            groups.append(current)
            current = [0]
        current.append(c)
    return [*groups, current]


def _width(cell: str) -> float:
    """The printed width of a table cell in points at 11 pt, roughly: digits 5.5, a minus 8.5, a point 3, a
    power of ten ``\\cdot 10^{e}`` 18.5 and its exponent's digits 4 each; other characters (a LaTeX command
    counts as one) as digits."""
    width = 0.0
    scientific = re.search(r"\\cdot 10\^\{(-?[0-9]+)\}", cell)
    if scientific:
        width += 18.5 + 4.0 * len(scientific.group(1))
        cell = cell[: scientific.start()]
    for char in re.sub(r"[{}_^ ]", "", re.sub(r"\\[A-Za-z]+", "x", cell)):  # a command: one character
        width += {"-": 8.5, ".": 3.0}.get(char, 5.5)
    return width


def markdown(doc: Document) -> str:
    """Markdown with ``$$`` display math."""
    out = [f"# {md_text(doc.title)}", ""]
    blocks = doc.blocks
    for i, block in enumerate(blocks):
        if isinstance(block, Heading) and i + 1 < len(blocks) and isinstance(blocks[i + 1], Picture):
            continue  # Markdown has no picture
        if isinstance(block, Heading):
            out += ["#" * max(block.level, 2) + " " + md_text(block.text), ""]
        elif isinstance(block, Paragraph):
            out += [md_text(block.text), ""]
        elif isinstance(block, Equation):
            out += ["$$", aligned(block), "$$", ""]
        elif isinstance(block, Table):
            out += ["| " + " | ".join(md_text(c) for c in block.header_text) + " |"]
            out += ["|" + "---:|" * len(block.header_text)]
            out += ["| " + " | ".join(plain(c) for c in row) + " |" for row in block.plain_rows]
            out.append("")
    return "\n".join(out)


_CSS = """body { font-family: Georgia, serif; max-width: 60em; margin: 2em auto; padding: 0 1em; line-height: 1.5; }
math[display="block"] { margin: 0.8em 0; overflow-x: auto; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { padding: 0.2em 0.7em; text-align: right; border-bottom: 1px solid #ccc; }
figure { margin: 1em 0; text-align: center; }
figcaption { font-size: 0.9em; }"""


def html(doc: Document) -> str:
    """One self-contained HTML page (MathML and inline SVG; no scripts, no external files)."""
    title = html_text(doc.title)
    out = [
        "<!DOCTYPE html>",
        f'<html lang="{doc.lang}">',
        '<head>\n<meta charset="utf-8">\n<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{title}</title>\n<style>\n{_CSS}\n</style>\n</head>",
        "<body>",
        f"<h1>{title}</h1>",
    ]
    for block in doc.blocks:
        if isinstance(block, Heading):
            level = min(max(block.level, 2), 4)
            out.append(f"<h{level}>{html_text(block.text)}</h{level}>")
        elif isinstance(block, Paragraph):
            out.append(f"<p>{html_text(block.text)}</p>")
        elif isinstance(block, Equation):
            out.append(to_mathml(aligned(block), display=True))
        elif isinstance(block, Table):
            head = "".join(f"<th>{to_mathml(c)}</th>" for c in block.header_latex)
            body = "".join("<tr>" + "".join(f"<td>{html_text(plain(c))}</td>" for c in row) + "</tr>" for row in block.plain_rows)
            out.append(f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>{body}</tbody>\n</table>")
        elif isinstance(block, Picture):
            out.append(f"<figure>\n{pictures.svg(block)}\n<figcaption>{html_text(block.caption)}</figcaption>\n</figure>")
    out += ["</body>", "</html>", ""]
    return "\n".join(out)


RENDERERS = {"tex": tex, "md": markdown, "html": html}


def _markdown(document: Document) -> str:
    """A document as Jupyter shows it: its Markdown."""
    return RENDERERS["md"](document)


Document._repr_markdown_ = _markdown  # the renderers know the document; the document does not import them
