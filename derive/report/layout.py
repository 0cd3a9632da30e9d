r"""Laying out an equation as lines of an ``aligned`` environment, breaking long ones.

A chain ``lhs = p1 = p2 = …`` goes on one line when it is short; otherwise each part starts a line
(``&= p``), and a part wider than the page is broken before a ``+`` or ``-``, after a ``\cdot`` or between
the grids of a tensor (``\;``) at the top level (never inside braces, ``\left…\right`` or a matrix), continuing on lines ``&\quad …``.
No source line gets long either, so pdflatex's 200,000-character line limit is never reached.

>>> from derive.report.document import Equation
>>> aligned_lines(Equation("z", ("a + b", "1 + 2", "3")))
['z &= a + b = 1 + 2 = 3']
>>> chunks("a + b \\cdot \\left(c + d\\right) - e")
['a', '+ b \\cdot', '\\left(c + d\\right)', '- e']
"""

from __future__ import annotations

import re

from derive.report.document import Equation

#: The width of a line, in visible characters (an estimate).
WIDTH = 64

_COMMAND = re.compile(r"\\[A-Za-z]+|\\.")
_TOKEN = re.compile(r"\\begin\{[a-z*]+\}|\\end\{[a-z*]+\}|\\left.|\\right.|\\[A-Za-z]+|\\.|\s+|.", re.S)


def visible(latex: str) -> int:
    """An estimate of the printed width of LaTeX math (a matrix counts as its widest row)."""
    def row_width(match: re.Match[str]) -> str:
        rows = match.group(1).split(r"\\")
        return "x" * max(visible(row.replace("&", "  ")) for row in rows)

    latex = re.sub(r"\\begin\{bmatrix\}(.*?)\\end\{bmatrix\}", row_width, latex)
    latex = re.sub(r"\\(left|right|frac|partial|mathcal|mathbf|operatorname)", "", latex)
    latex = _COMMAND.sub("x", latex)
    return len(re.sub(r"[{}\s^_]", "", latex)) + latex.count(" + ") + latex.count(" - ")


def chunks(latex: str) -> list[str]:
    """Split at top-level breaking points: before binary ``+``/``-``, after ``\\cdot``, between groups."""
    tokens = _TOKEN.findall(latex)
    out: list[str] = []
    current = ""
    depth = 0
    previous = ""  # the last non-space token
    for token in tokens:
        if depth == 0 and token in ("+", "-") and previous not in ("", "(", "+", "-", r"\cdot", "=", "{"):
            out.append(current.strip())
            current = ""
        elif depth == 0 and previous in (r"\cdot", r"\end{bmatrix}", r"\right)", r"\;") and token.strip() and (
            token.startswith(r"\left") or token.startswith(r"\begin") or previous == r"\cdot"
        ):  # ``\;`` between a tensor's grids
            out.append(current.strip())
            current = ""
        if token in ("{",) or token.startswith(r"\left") or token.startswith(r"\begin"):
            depth += 1
        elif token in ("}",) or token.startswith(r"\right") or token.startswith(r"\end"):
            depth -= 1
        current += token
        if token.strip():
            previous = token
    out.append(current.strip())
    return [c for c in out if c]


def broken(latex: str, width: int = WIDTH) -> list[str]:
    """A long expression as lines of at most about ``width`` visible characters."""
    lines: list[str] = []
    for chunk in chunks(latex):
        if lines and visible(lines[-1]) + visible(chunk) + 1 <= width:
            lines[-1] += " " + chunk
        else:
            lines.append(chunk)
    return lines


def aligned_lines(eq: Equation, width: int = WIDTH) -> list[str]:
    """The lines of ``\\begin{aligned} … \\end{aligned}`` for an equation (without ``\\\\``)."""
    if visible(eq.lhs) + sum(visible(p) + 3 for p in eq.parts) <= width:
        return [f"{eq.lhs} &= " + " = ".join(eq.parts)]
    lines: list[str] = []
    for i, part in enumerate(eq.parts):
        first, *rest = broken(part, width)
        lines.append(f"{eq.lhs} &= {first}" if i == 0 else f"&= {first}")
        lines += [rf"&\quad {line}" for line in rest]
    return lines


def aligned(eq: Equation, width: int = WIDTH) -> str:
    """The equation as one ``aligned`` environment, one source line per line of the display."""
    body = " \\\\\n".join(aligned_lines(eq, width))
    return "\\begin{aligned}\n" + body + "\n\\end{aligned}"
