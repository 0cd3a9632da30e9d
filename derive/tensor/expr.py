r"""Tensor expressions: the notation of the tensor program's definitions, parsed (never evaluated by Python).

An expression is a tree of `Ref` (a tensor by name), `Num` (a number) and `Call` (a function of the tensor
vocabulary, `derive.tensor.functions`, with tensor arguments and keyword options). Its text is the
documented notation, which `parse` reads back:

    expr    := sum
    sum     := product (("+" | "-") product)*
    product := unary (("*" | "/" | "@") unary)*          * and / element-wise, @ the matrix product
    unary   := "-" unary | power
    power   := atom ("**" number)?
    atom    := number | name | name "(" args ")" | "(" expr ")"
    args    := [expr ("," expr)*] [";" option ("," option)*]
    option  := name "=" value
    value   := number | "true" | "false" | "none" | string | "[" [value ("," value)*] "]"

Names are letters, digits, ``_`` and ``.`` (``dL_dW_fc``, ``fc.weight``); numbers are decimal
(``0.5``, ``1e-05``, ``-inf`` inside options); strings are double-quoted. ``a * b`` is the element-wise
product with torch's broadcasting, ``a @ b`` the matrix product (torch's ``matmul``).

>>> e = parse("sum(G; dims=[0], keepdim=false) + 2 * transpose(X) @ W")
>>> str(e)
'sum(G; dims=[0], keepdim=false) + 2*transpose(X) @ W'
>>> parse(str(e)) == e
True
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from derive.errors import DeriveError


class TExpr:
    """A tensor expression (see the module's grammar)."""

    def __add__(self, other: TExpr) -> TExpr:
        return call("add", self, _as_expr(other))

    def __sub__(self, other: TExpr) -> TExpr:
        return call("sub", self, _as_expr(other))

    def __mul__(self, other: TExpr | float) -> TExpr:
        return call("mul", self, _as_expr(other))

    def __rmul__(self, other: float) -> TExpr:
        return call("mul", _as_expr(other), self)

    def __truediv__(self, other: TExpr | float) -> TExpr:
        return call("div", self, _as_expr(other))

    def __matmul__(self, other: TExpr) -> TExpr:
        return call("matmul", self, other)

    def __neg__(self) -> TExpr:
        return call("neg", self)

    def __str__(self) -> str:
        return text(self)

    def refs(self) -> set[str]:
        """The names this expression reads."""
        raise NotImplementedError


@dataclass(frozen=True, eq=True)
class Ref(TExpr):
    name: str

    def refs(self) -> set[str]:
        return {self.name}

    __str__ = TExpr.__str__


@dataclass(frozen=True, eq=True)
class Num(TExpr):
    value: float

    def refs(self) -> set[str]:
        return set()

    __str__ = TExpr.__str__


@dataclass(frozen=True, eq=True)
class Call(TExpr):
    fn: str
    args: tuple[TExpr, ...]
    options: tuple[tuple[str, Any], ...] = ()

    def refs(self) -> set[str]:
        return set().union(*(a.refs() for a in self.args)) if self.args else set()

    def option(self, name: str, default: Any = None) -> Any:
        return dict(self.options).get(name, default)

    __str__ = TExpr.__str__


def _as_expr(value: Any) -> TExpr:
    return value if isinstance(value, TExpr) else Num(float(value))


def _freeze(value: Any) -> Any:
    """An option's value as a hashable one (lists as tuples)."""
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


def call(fn: str, *args: TExpr, **options: Any) -> Call:
    """``fn(args; options)`` (options as hashable values, in the order given)."""
    return Call(fn, tuple(args), tuple((k, _freeze(v)) for k, v in options.items()))


def substitute(expr: TExpr, mapping: dict[str, TExpr]) -> TExpr:
    """``expr`` with the tensors named in ``mapping`` replaced."""
    if isinstance(expr, Ref):
        return mapping.get(expr.name, expr)
    if isinstance(expr, Call):
        return Call(expr.fn, tuple(substitute(a, mapping) for a in expr.args), expr.options)
    return expr


# --- text ---------------------------------------------------------------------------------------------------

_INFIX = {"add": ("+", 1), "sub": ("-", 1), "mul": ("*", 2), "div": ("/", 2), "matmul": ("@", 2)}


def text(expr: TExpr) -> str:
    """The expression in the notation of the module's grammar."""
    return _text(expr, 0)


def _number(value: float) -> str:
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def _value(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if isinstance(value, float) and (math.isinf(value) or value != int(value)) else (
            str(int(value)) if isinstance(value, int) else repr(value))
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return "[" + ", ".join(_value(v) for v in value) + "]"


def _text(expr: TExpr, context: int) -> str:
    if isinstance(expr, Ref):
        return expr.name
    if isinstance(expr, Num):
        out = _number(expr.value)
        return f"({out})" if expr.value < 0 and context > 0 else out
    assert isinstance(expr, Call)
    if expr.fn in _INFIX and len(expr.args) == 2 and not expr.options:
        symbol, level = _INFIX[expr.fn]
        left = _text(expr.args[0], level)
        right = _text(expr.args[1], level + 1)  # a right operand of its own level keeps its parentheses:
        # a*(b*c) is not (a*b)*c in floating point, and the text must parse back to the same tree
        joined = f"{left} {symbol} {right}" if symbol in "+-@" else f"{left}{symbol}{right}"
        return f"({joined})" if level < context else joined
    if expr.fn == "neg" and len(expr.args) == 1:
        inner = _text(expr.args[0], 3)
        return f"(-{inner})" if context > 0 else f"-{inner}"
    if expr.fn == "pow" and len(expr.args) == 1:
        return f"{_text(expr.args[0], 4)}**{_number(expr.option('exponent'))}"
    args = ", ".join(_text(a, 0) for a in expr.args)
    options = ", ".join(f"{k}={_value(v)}" for k, v in expr.options)
    return f"{expr.fn}({args}{'; ' if options else ''}{options})"


# --- parsing --------------------------------------------------------------------------------------------------

_TOKEN = re.compile(r'\s*(?:(\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)|([A-Za-z_][A-Za-z0-9_.]*)|'
                    r'("(?:[^"\\]|\\.)*")|(\*\*|[-+*/@(),;=\[\]]))')


class ParseError(DeriveError):
    """A tensor expression that does not follow the notation's grammar."""


def parse(source: str) -> TExpr:
    """The expression written in the notation of the module's grammar (see `text`)."""
    return _Parser(source).expression_only()


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.tokens: list[tuple[str, str]] = []
        position = 0
        while position < len(source):
            if source[position:].isspace():
                break
            match = _TOKEN.match(source, position)
            if not match:
                raise ParseError(f"cannot read the tensor expression {source!r} at position {position}")
            kind = ("number", "name", "string", "punct")[next(i for i in range(4) if match.group(i + 1) is not None)]
            self.tokens.append((kind, match.group(match.lastindex)))
            position = match.end()
        self.at = 0

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.at] if self.at < len(self.tokens) else ("end", "")

    def take(self, expected: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if expected is not None and token[1] != expected:
            raise ParseError(f"expected {expected!r} in {self.source!r}, got {token[1] or 'the end'!r}")
        self.at += 1
        return token

    def expression_only(self) -> TExpr:
        expr = self.sum()
        if self.peek()[0] != "end":
            raise ParseError(f"unexpected {self.peek()[1]!r} in {self.source!r}")
        return expr

    def sum(self) -> TExpr:
        expr = self.product()
        while self.peek()[1] in ("+", "-"):
            op = self.take()[1]
            expr = call("add" if op == "+" else "sub", expr, self.product())
        return expr

    def product(self) -> TExpr:
        expr = self.unary()
        while self.peek()[1] in ("*", "/", "@"):
            op = self.take()[1]
            expr = call({"*": "mul", "/": "div", "@": "matmul"}[op], expr, self.unary())
        return expr

    def unary(self) -> TExpr:
        if self.peek()[1] == "-":
            self.take()
            return call("neg", self.unary())
        expr = self.atom()
        if self.peek()[1] == "**":
            self.take()
            negative = self.peek()[1] == "-" and bool(self.take())
            kind, number = self.take()
            if kind != "number":
                raise ParseError(f"expected a number after ** in {self.source!r}")
            expr = call("pow", expr, exponent=(-1 if negative else 1) * float(number))
        return expr

    def atom(self) -> TExpr:
        kind, token = self.take()
        if kind == "number":
            return Num(float(token))
        if token == "(":
            expr = self.sum()
            self.take(")")
            return expr
        if kind != "name":
            raise ParseError(f"unexpected {token!r} in {self.source!r}")
        if self.peek()[1] != "(":
            return Ref(token)
        self.take("(")
        args: list[TExpr] = []
        options: list[tuple[str, Any]] = []
        if self.peek()[1] not in (")", ";"):
            args.append(self.sum())
            while self.peek()[1] == ",":
                self.take()
                args.append(self.sum())
        if self.peek()[1] == ";":
            self.take()
            while True:
                name = self.take()[1]
                self.take("=")
                options.append((name, self.value()))
                if self.peek()[1] != ",":
                    break
                self.take()
        self.take(")")
        return Call(token, tuple(args), tuple(options))

    def value(self) -> Any:
        kind, token = self.take()
        if token == "[":
            values = []
            if self.peek()[1] != "]":
                values.append(self.value())
                while self.peek()[1] == ",":
                    self.take()
                    values.append(self.value())
            self.take("]")
            return tuple(values)
        if token == "-":
            kind, token = self.take()
            if token == "inf":
                return -math.inf
            return -_numeric(token)
        if kind == "number":
            return _numeric(token)
        if kind == "string":
            return token[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        words = {"true": True, "false": False, "none": None, "inf": math.inf}
        if token in words:
            return words[token]
        raise ParseError(f"unexpected {token!r} as an option's value in {self.source!r}")


def _numeric(token: str) -> int | float:
    return int(token) if re.fullmatch(r"\d+", token) else float(token)
