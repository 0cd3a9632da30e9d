r"""MathML for the HTML report, from the LaTeX that derive writes (a small, known subset).

HTML reports carry their mathematics as MathML, which browsers render natively: the page needs no script,
font or network. This is not a general LaTeX parser: it knows the commands derive's reports use
(``\frac``, ``\left…\right``, ``bmatrix``, ``aligned``, sub- and superscripts, Greek letters, …).
An unknown command raises `UnknownLatex` with ``strict=True`` (the tests use it); otherwise it is shown
as text.

>>> to_mathml(r"\sigma_{1} = \frac{1}{1 + e^{-z_{1}}}")
'<math><msub><mi>σ</mi><mn>1</mn></msub><mo>=</mo><mfrac><mn>1</mn><mrow><mn>1</mn><mo>+</mo><msup><mi>e</mi><mrow><mo>-</mo><msub><mi>z</mi><mn>1</mn></msub></mrow></msup></mrow></mfrac></math>'
"""

from __future__ import annotations

import re
from html import escape

from derive.errors import DeriveError

_TOKEN = re.compile(r"\\[A-Za-z]+|\\.|[0-9]+(?:\.[0-9]+)?|\s+|.", re.S)

_SYMBOLS = {
    r"\sigma": ("mi", "σ"), r"\delta": ("mi", "δ"), r"\Delta": ("mi", "Δ"), r"\alpha": ("mi", "α"),
    r"\partial": ("mo", "∂"), r"\ell": ("mi", "ℓ"), r"\cdot": ("mo", "·"), r"\odot": ("mo", "⊙"),
    r"\top": ("mi", "⊤"), r"\times": ("mo", "×"), r"\sum": ("mo", "∑"), r"\tanh": ("mi", "tanh"),
    r"\log": ("mi", "log"), r"\max": ("mi", "max"), r"\min": ("mi", "min"), r"\exp": ("mi", "exp"),
    r"\mapsto": ("mo", "↦"), r"\to": ("mo", "→"), r"\,": ("mspace", ""), r"\quad": ("mspace", ""),
    r"\{": ("mo", "{"), r"\}": ("mo", "}"), r"\theta": ("mi", "θ"), r"\phi": ("mi", "φ"),
}
_FONTS = {r"\mathcal": {"L": "ℒ"}, r"\mathbb": {"1": "𝟙", "R": "ℝ"}}


class UnknownLatex(DeriveError):
    """LaTeX outside the subset this converter knows."""


def to_mathml(latex: str, display: bool = False, strict: bool = False) -> str:
    """A ``<math>`` element for LaTeX math (``display=True``: a block)."""
    parser = _Parser(latex, strict)
    body = "".join(parser.sequence(()))
    if parser.pos != len(parser.tokens):
        raise UnknownLatex(f"unbalanced LaTeX near {''.join(parser.tokens[parser.pos:parser.pos + 5])!r}")
    attribute = ' display="block"' if display else ""
    return f"<math{attribute}>{body}</math>"


class _Parser:
    def __init__(self, latex: str, strict: bool) -> None:
        self.tokens = [t for t in _TOKEN.findall(latex) if not t.isspace()]
        self.pos = 0
        self.strict = strict

    def peek(self) -> str:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else ""

    def take(self) -> str:
        token = self.peek()
        self.pos += 1
        return token

    def group(self) -> str:
        """A braced group (as an mrow) or a single atom."""
        if self.peek() == "{":
            self.take()
            inner = self.sequence(("}",))
            self.take()
            return _row(inner)
        return self.atom()

    def raw_group(self) -> str:
        """The text of a braced group, unparsed."""
        if self.take() != "{":
            raise UnknownLatex("expected '{'")
        depth, out = 1, []
        while True:
            token = self.take()
            if token == "":
                raise UnknownLatex("unbalanced braces")
            depth += {"{": 1, "}": -1}.get(token, 0)
            if depth == 0:
                return "".join(out)
            out.append(token)

    def sequence(self, stops: tuple[str, ...]) -> list[str]:
        out = []
        while self.peek() and self.peek() not in stops and not self.peek().startswith((r"\right", r"\end")):
            item = self.atom()
            while self.peek() in ("^", "_"):
                kind = self.take()
                script = self.group()
                if kind == "_" and self.peek() == "^":
                    self.take()
                    item = f"<msubsup>{item}{script}{self.group()}</msubsup>"
                else:
                    item = f"<m{'sup' if kind == '^' else 'sub'}>{item}{script}</m{'sup' if kind == '^' else 'sub'}>"
            out.append(item)
        return out

    def atom(self) -> str:
        token = self.take()
        if token == "{":
            inner = self.sequence(("}",))
            self.take()
            return _row(inner)
        if token[0].isdigit():
            return f"<mn>{token}</mn>"
        if token.isalpha():
            return f"<mi>{token}</mi>"
        if token == "'":
            return "<mo>′</mo>"
        if not token.startswith("\\"):
            return f"<mo>{escape(token)}</mo>"
        return self.command(token)

    def command(self, token: str) -> str:
        if token in _SYMBOLS:
            tag, text = _SYMBOLS[token]
            if tag == "mspace":
                return '<mspace width="1em"/>' if token == r"\quad" else '<mspace width="0.17em"/>'
            return f"<{tag}>{text}</{tag}>"
        if token == r"\frac":
            return f"<mfrac>{self.group()}{self.group()}</mfrac>"
        if token in _FONTS:
            text = self.raw_group()
            return f"<mi>{_FONTS[token].get(text, escape(text))}</mi>"
        if token == r"\mathbf":
            return f'<mi mathvariant="bold">{escape(self.raw_group())}</mi>'
        if token == r"\hat":
            return f'<mover accent="true">{self.group()}<mo>^</mo></mover>'
        if token in (r"\text", r"\operatorname", r"\mathrm"):
            tag = "mtext" if token == r"\text" else "mi"
            return f"<{tag}>{escape(self.raw_group())}</{tag}>"
        if token == r"\left":
            opening = self.take()
            inner = self.sequence(())
            closing_command = self.take()
            if closing_command != r"\right":
                raise UnknownLatex(r"\left without \right")
            closing = self.take()
            return _row([*_fence(opening), *inner, *_fence(closing)])
        if token == r"\begin":
            return self.environment(self.raw_group())
        if self.strict:
            raise UnknownLatex(f"the HTML renderer does not know the LaTeX command {token}")
        return f"<mtext>{escape(token)}</mtext>"

    def environment(self, name: str) -> str:
        rows: list[list[str]] = [[]]
        while True:
            cell = self.sequence(("&", r"\\"))
            rows[-1].append(cell)
            token = self.take()
            if token == "&":
                continue
            if token == r"\\":
                rows.append([])
                continue
            if token == r"\end":
                if self.raw_group() != name:
                    raise UnknownLatex(f"\\begin{{{name}}} ended by another environment")
                break
            raise UnknownLatex(f"unfinished environment {name}")
        cells = "".join("<mtr>" + "".join(f"<mtd>{_row(c)}</mtd>" for c in row) + "</mtr>" for row in rows)
        if name == "bmatrix":
            return f"<mrow><mo>[</mo><mtable>{cells}</mtable><mo>]</mo></mrow>"
        if name == "aligned":
            return f'<mtable columnalign="right left" displaystyle="true">{cells}</mtable>'
        raise UnknownLatex(f"unknown environment {name}")


def _fence(delimiter: str) -> list[str]:
    if delimiter == ".":
        return []
    return [f'<mo fence="true">{escape(delimiter.lstrip(chr(92)))}</mo>']


def _row(items: list[str]) -> str:
    return items[0] if len(items) == 1 else "<mrow>" + "".join(items) + "</mrow>"
