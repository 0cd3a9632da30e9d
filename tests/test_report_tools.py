"""Tools for the report tests: an independent reader of printed equations, and the external oracles.

`read_equations` takes a Markdown report apart into its equations; `evaluate` computes a printed numeric
expression with interval arithmetic, every printed decimal standing for the interval of values that round
to it (a whole number is exact). Nothing here uses derive's code: it is a small parser of its own (no eval).

Oracles: pdflatex (`compile_pdf` runs it) and KaTeX (one node process per test session, `katex`). A
missing tool skips the test locally and fails it when the environment variable CI is set.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
KATEX = ROOT / "tools" / "katex"


def need(tool: str, available: bool) -> None:
    """Skip (locally) or fail (in CI) when a tool is missing."""
    if available:
        return
    message = f"{tool} is not available (scripts/test.sh installs it)"
    if os.environ.get("CI"):
        pytest.fail(message + "; CI must have it")
    pytest.skip(message)


def need_pdflatex() -> None:
    need("pdflatex", shutil.which("pdflatex") is not None)


class Katex:
    """One node process rendering formulas with KaTeX (strict), line by line."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            ["node", str(KATEX / "render.js")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            cwd=KATEX,
        )

    def errors(self, formulas: list[tuple[str, str]]) -> list[str]:
        """The formulas KaTeX refuses, with its message (empty: all render)."""
        assert self.process.stdin and self.process.stdout
        for name, latex in formulas:
            self.process.stdin.write(json.dumps([name, latex]) + "\n")
        self.process.stdin.flush()
        out = []
        for _ in formulas:
            answer = json.loads(self.process.stdout.readline())
            if not answer["ok"]:
                out.append(f"{answer['name']}: {answer['error']}")
        return out

    def close(self) -> None:
        assert self.process.stdin and self.process.stdout
        self.process.stdin.close()
        self.process.wait(timeout=30)
        self.process.stdout.close()


@pytest.fixture(scope="session")
def katex():
    need("node with KaTeX", shutil.which("node") is not None and (KATEX / "node_modules" / "katex").is_dir())
    tool = Katex()
    yield tool
    tool.close()


def markdown_math(text: str) -> list[str]:
    """Every ``$$ … $$`` block of a Markdown report."""
    return re.findall(r"^\$\$\n(.*?)\n\$\$$", text, flags=re.S | re.M)


# ----------------------------------------------------------------------------------------------------------
# Interval arithmetic on printed numbers


@dataclass(frozen=True)
class I:
    lo: float
    hi: float

    def __add__(self, o: I) -> I:
        return I(self.lo + o.lo, self.hi + o.hi)

    def __neg__(self) -> I:
        return I(-self.hi, -self.lo)

    def __sub__(self, o: I) -> I:
        return self + (-o)

    def __mul__(self, o: I) -> I:
        if self == I(0.0, 0.0) or o == I(0.0, 0.0):  # an exact 0 (a target y = 0) times anything, even ±inf
            return I(0.0, 0.0)
        products = [self.lo * o.lo, self.lo * o.hi, self.hi * o.lo, self.hi * o.hi]
        return I(min(products), max(products))

    def __truediv__(self, o: I) -> I:
        assert o.lo > 0 or o.hi < 0, "division by an interval around 0"
        return self * I(1 / o.hi, 1 / o.lo)

    def widen(self) -> I:
        eps = 1e-12 * max(1.0, abs(self.lo), abs(self.hi))
        return I(self.lo - eps, self.hi + eps)

    def meets(self, o: I) -> bool:
        a, b = self.widen(), o.widen()
        return a.lo <= b.hi and b.lo <= a.hi


def number(text: str) -> I:
    """A printed number: the interval of values that round to it (exact if whole)."""
    value = float(text)
    if "." not in text:
        return I(value, value)
    half = 0.5 * 10 ** -len(text.split(".")[1])
    return I(value - half, value + half)


def monotone(f, x: I, increasing: bool = True) -> I:
    """f over an interval; a logarithm of an interval reaching 0 (a rounded 1 − 1.0000) is unbounded below."""
    a, b = (_at(f, v) for v in (x.lo, x.hi))
    return I(a, b) if increasing else I(b, a)


def _at(f, v: float) -> float:
    if f is math.log and v <= 0:
        return -math.inf
    return f(v)


_TOKEN = re.compile(r"\\begin\{bmatrix\}|\\end\{bmatrix\}|\\left.|\\right.|\\[A-Za-z]+|\\\\|[0-9]+(?:\.[0-9]+)?|\S")


class NotNumeric(Exception):
    """The part has symbols: it is not a numeric expression."""


class Unreadable(AssertionError):
    """A part made of numbers alone that the reader cannot read: a failure, never skipped."""


#: control words that name something (a Greek letter, a named tensor, ∂, a transpose, a sum over an index):
#: a part with one is a formula. Any other control word is arithmetic, which the reader must read.
NAMING_WORDS = re.compile(
    r"\\(alpha|beta|gamma|delta|epsilon|varepsilon|eta|theta|lambda|mu|sigma|tau|phi|psi|omega|Delta|Sigma|ell"
    r"|mathrm|mathcal|mathbf|operatorname|text|textstyle|hat|bar|tilde|partial|nabla|top|star|sum|prod)"
)


def has_symbols(latex: str) -> bool:
    """Whether a printed part names anything: a letter (e is Euler's number) or a naming control word."""
    for token in _TOKEN.findall(latex):
        if NAMING_WORDS.fullmatch(token) or (re.fullmatch(r"[A-Za-z]", token) and token != "e"):
            return True
    return False


def _matmul(a, b):
    return [[_sum([a[i][k] * b[k][j] for k in range(len(b))]) for j in range(len(b[0]))] for i in range(len(a))]


def _sum(items):
    total = items[0]
    for item in items[1:]:
        total = total + item
    return total


def _map2(f, a, b):
    if isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b) and len(a[0]) == len(b[0]), "matrix shapes differ"
        return [[f(x, y) for x, y in zip(ra, rb)] for ra, rb in zip(a, b)]
    if isinstance(a, list):
        return [[f(x, b) for x in row] for row in a]
    if isinstance(b, list):
        return [[f(a, y) for y in row] for row in b]
    return f(a, b)


#: tokens that end a product: closing brackets, separators, and the backslash of a \; between slices
STOP = ("+", "-", "}", ")", r"\right)", r"\right]", r"\right|", ",", ">", r"\end{bmatrix}", "&", r"\\", "\\")


class Reader:
    """A recursive-descent reader of the numeric LaTeX derive prints (numbers, + - · ⊙, fractions, e^,
    log, tanh, max, the indicator, matrices); anything else it meets raises `Unreadable`."""

    def __init__(self, latex: str, exact: frozenset[str] = frozenset()) -> None:
        self.tokens = _TOKEN.findall(latex)
        self.pos = 0
        self.exact = exact  # printed decimals that are exact constants (an optimizer's 0.999), not roundings

    def peek(self) -> str:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else ""

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if expected is not None and token != expected:
            raise Unreadable(f"expected {expected!r}, got {token!r}")
        self.pos += 1
        return token

    def read(self):
        value = self.expr()
        if self.peek() == "\\" and self.tokens[self.pos + 1:self.pos + 2] == [";"]:  # slices: A_{1} \; A_{2} …
            value = [value]
            while self.peek() == "\\":
                self.take()
                self.take(";")
                value.append(self.expr())
        if self.pos != len(self.tokens):
            raise Unreadable(f"left over: {self.tokens[self.pos:]}")
        return value

    def expr(self):
        value = self.unary()
        while self.peek() in ("+", "-"):
            op = self.take()
            right = self.unary()
            value = _map2(lambda a, b: a + b if op == "+" else a - b, value, right)
        return value

    def unary(self):
        if self.peek() == "-":
            self.take()
            value = self.unary()
            return _map2(lambda a, _: -a, value, I(0, 0)) if isinstance(value, list) else -value
        return self.term()

    def term(self):
        value = self.power()
        while True:
            token = self.peek()
            if token == r"\cdot":
                self.take()
                value = self.product(value, self.power())
            elif token == r"\odot":
                self.take()
                value = _map2(lambda a, b: a * b, value, self.power())
            elif token == r"\oslash":
                self.take()
                value = _map2(lambda a, b: a / b, value, self.power())
            elif token == r"\times":
                self.take()
                value = self.product(value, self.power())
            elif token and token not in STOP:
                value = self.product(value, self.power())
            else:
                return value

    @staticmethod
    def product(a, b):
        if isinstance(a, list) and isinstance(b, list):
            return _matmul(a, b)
        return _map2(lambda x, y: x * y, a, b)

    def power(self):
        base = self.atom()
        if self.peek() == "^":
            self.take()
            exponent = self.group() if self.peek() == "{" else number(self.take())  # x^{2} or x^2
            assert exponent.lo == exponent.hi, "only exact exponents"
            n = int(exponent.lo)
            result = I(1.0, 1.0)
            for _ in range(abs(n)):
                result = result * base
            if n % 2 == 0 and base.lo < 0 < base.hi:
                result = I(0.0, result.hi)
            return I(1.0, 1.0) / result if n < 0 else result  # 10^{-5} of scientific notation
        return base

    def group(self):
        self.take("{")
        value = self.expr()
        self.take("}")
        return value

    def atom(self):
        token = self.take()
        if re.fullmatch(r"[0-9]+(?:\.[0-9]+)?", token):
            return I(float(token), float(token)) if token in self.exact else number(token)
        if token == "{":
            value = self.expr()
            self.take("}")
            return value
        if token == r"\left(":
            value = self.expr()
            self.take(r"\right)")
            return value
        if token == r"\left|":
            value = self.expr()
            self.take(r"\right|")
            return value if value.lo >= 0 else -value if value.hi <= 0 else I(0.0, max(-value.lo, value.hi))
        if token == r"\frac":
            top, bottom = self.group(), self.group()
            return _map2(lambda a, b: a / b, top, bottom)
        if token == "e":
            self.take("^")
            return monotone(math.exp, self.group())
        if token == r"\sqrt":
            value = self.group()
            return monotone(math.sqrt, I(max(value.lo, 0.0), max(value.hi, 0.0)))
        if token in (r"\log", r"\tanh"):
            f = math.log if token == r"\log" else math.tanh
            if self.peek() == "{":
                return monotone(f, self.group())
            self.take(r"\left(")
            value = self.expr()
            self.take(r"\right)")
            return monotone(f, value)
        if token == r"\infty":
            return I(math.inf, math.inf)
        if token == r"\sqrt":
            return monotone(lambda v: math.sqrt(max(v, 0.0)), self.group())  # a rounded 0.0000 reaches below 0
        if token == "(":
            value = self.expr()
            self.take(")")
            return value
        if token in (r"\max", r"\min"):
            pick = max if token == r"\max" else min
            self.take(r"\left(")
            items = [self.expr()]
            while self.peek() == ",":  # max(a, b) or a pooling window's max(a, b, c, d)
                self.take()
                items.append(self.expr())
            self.take(r"\right)")
            return I(pick(i.lo for i in items), pick(i.hi for i in items))
        if token == r"\mathbb":
            self.take("{")
            self.take("1")
            self.take("}")
            self.take(r"\left[")
            a = self.expr()
            self.take(">")
            b = self.expr()
            self.take(r"\right]")
            if a.lo > b.hi:
                return I(1, 1)
            if a.hi <= b.lo:
                return I(0, 0)
            return I(0, 1)
        if token == r"\begin{bmatrix}":
            rows, row = [], [self.expr()]
            while True:
                sep = self.take()
                if sep == "&":
                    row.append(self.expr())
                elif sep == r"\\":
                    rows.append(row)
                    row = [self.expr()]
                elif sep == r"\end{bmatrix}":
                    rows.append(row)
                    if self.peek() == "_":  # a slice of a larger tensor, labelled by its index: _{1}, _{2,1}
                        self.take()
                        self.take("{")
                        while re.fullmatch(r"[0-9]+|,", self.peek()):
                            self.take()
                        self.take("}")
                    return rows
                else:
                    raise Unreadable(sep)
        if token in (r"\cdots", r"\vdots"):  # a large tensor cut to its first rows: not all of it is shown
            raise NotNumeric(f"elided: {token}")
        raise Unreadable(token)


def evaluate(latex: str, exact: frozenset[str] = frozenset()):
    """The interval (or matrix of intervals) of a printed numeric expression. ``exact``: decimals printed as
    they are (constants such as β₂ = 0.999), read as exact numbers.

    `NotNumeric` if it names a symbol (a formula, skipped by the checks); `Unreadable`, an assertion error,
    if it is made of numbers alone and still cannot be read (a check that would otherwise be skipped).
    """
    if has_symbols(latex):
        raise NotNumeric(latex)
    return Reader(latex, exact).read()


def read_equations(markdown: str) -> list[tuple[str, list[str]]]:
    """Every display of a Markdown report as (lhs, [parts]) — layout (``&``, ``\\\\``, ``\\quad``) removed."""
    equations = []
    for block in markdown_math(markdown):
        body = block.removeprefix("\\begin{aligned}\n").removesuffix("\n\\end{aligned}")
        tokens, depth, text = _TOKEN.findall(body), 0, []
        for token in tokens:
            if token == r"\begin{bmatrix}":
                depth += 1
            elif token == r"\end{bmatrix}":
                depth -= 1
            if depth == 0 and token in ("&", r"\\", r"\quad"):
                continue
            text.append(token)
        parts = _split_equals(text)
        equations.append((parts[0], parts[1:]))
    return equations


def _split_equals(tokens: list[str]) -> list[str]:
    parts, current, depth = [], [], 0
    for token in tokens:
        depth += token in ("{", r"\begin{bmatrix}") or token.startswith(r"\left")
        depth -= token in ("}", r"\end{bmatrix}") or token.startswith(r"\right")
        if token == "=" and depth == 0:
            parts.append(" ".join(current))
            current = []
        else:
            current.append(token)
    parts.append(" ".join(current))
    return parts


def meets(a, b) -> bool:
    """Whether two intervals (or matrices of them, or slices of matrices, entry by entry) overlap."""
    if isinstance(a, list) or isinstance(b, list):
        assert isinstance(a, list) and isinstance(b, list), "a matrix against a number"
        assert len(a) == len(b), "matrix shapes differ"
        return all(meets(x, y) for x, y in zip(a, b))
    return a.meets(b)


# ----------------------------------------------------------------------------------------------------------
# The reader's own tests


def test_reader_evaluates_printed_arithmetic_with_rounding_intervals():
    value = evaluate(r"-0.1725 \cdot 0.6565 + 0.1129 \cdot 0.6732 - 0.3043")
    assert value.lo < -0.341549297 < value.hi and value.hi - value.lo < 3e-4
    assert evaluate(r"\frac{1}{1 + e^{0.3415}}").meets(number("0.4154"))
    assert evaluate(r"- 0 \cdot \log{\left(0.4154 \right)} - \left(1 - 0\right) \cdot \log{\left(1 - 0.4154 \right)}").meets(number("0.5369"))
    assert not evaluate(r"0.1951 \cdot 1 + 0.4835 \cdot 1 - 0.0439").meets(number("0.7225"))  # the note's sign
    matrix = evaluate(r"\frac{1}{2} \begin{bmatrix} 1 & 1 \end{bmatrix} \begin{bmatrix} 2 \\ 4 \end{bmatrix}")
    assert matrix == [[I(3.0, 3.0)]]


def test_reader_reads_scientific_notation_and_roots():
    assert evaluate(r"7.437 \cdot 10^{-5}").meets(I(7.437e-5, 7.437e-5))
    value = evaluate(r"\frac{7.438 \cdot 10^{-5}}{1 - 0.999^{1}}", exact=frozenset({"0.999"}))
    assert value.lo < 0.07438 < value.hi and value.hi - value.lo < 2e-5  # as tight as its printed inputs
    loose = evaluate(r"\frac{0.0001}{1 - 0.999^{1}}", exact=frozenset({"0.999"}))
    assert loose.meets(number("0.0744")) and loose.hi - loose.lo > 0.09  # one significant digit: anything goes
    assert evaluate(r"\sqrt{0.07439} + 10^{-8}").meets(number("0.2727"))
    assert evaluate(r"-1.000 \cdot 10^{308}").hi < -9.99e307


def test_reader_refuses_symbols():
    with pytest.raises(NotNumeric):
        evaluate(r"W_{1} x_{1} + b_{1}")


def test_read_equations_undoes_the_layout():
    text = "$$\n\\begin{aligned}\nz &= a + b \\\\\n&= 1 + 2 \\\\\n&\\quad + 3 = 6\n\\end{aligned}\n$$\n"
    assert read_equations(text) == [("z", ["a + b", "1 + 2 + 3", "6"])]


def test_a_log_of_a_rounded_zero_is_unbounded_below_not_an_error():
    value = evaluate(r"- \log{\left(1 - 1.0000 \right)}")
    assert value.hi == math.inf and value.lo > 9
    assert evaluate(r"0 \cdot \log{\left(0.000 \right)} + 1") == I(1.0, 1.0)  # y = 0 times log of a rounded 0
