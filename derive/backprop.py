"""Reverse-mode chain rule over the scalar graph, kept as a straight-line program.

For every node ``v`` the adjoint ∂L/∂v is a new symbol defined once, as the sum over the nodes ``c`` that use
``v`` of ∂L/∂c · ∂c/∂v (shared adjoints are computed once, so the program grows linearly with the network).
The gradient of a parameter is the same sum over the nodes that use it. From that program come three forms:

- the **chain**: every path from L down to the parameter as a list of local factors (summed over paths);
- the **compact** form: adjoints inlined, over intermediates (z, a), inputs, targets and parameters;
- the **closed** form: intermediates inlined too, over inputs, targets and parameters only.

>>> from derive.graph import backpropagate
>>> from derive.network import Architecture
>>> bp = backpropagate(Architecture((2, 1), ("sigmoid",), "bce", "mean", 1))
>>> bp.compact("W1")
x1*(a1 - y)
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass
from typing import Any

import sympy as sp

from derive.errors import DeriveError
from derive.progress import stage
from derive.terms import dot

#: Chains with more paths than this are not enumerated (the compact and closed forms still are).
MAX_PATHS = 256
#: Compact and closed forms larger than this many operations (as a tree) are refused, not built.
MAX_OPERATIONS = 100_000


class ExpressionTooLarge(DeriveError):
    """A compact or closed form that would be too large to build or print."""


@dataclass(frozen=True)
class Factor:
    """One local factor ∂numerator/∂denominator of a chain, with its expression over intermediates."""

    numerator: sp.Symbol
    denominator: sp.Symbol
    expr: sp.Expr


class Backprop:
    """The derived straight-line gradient program of one architecture (values come later)."""

    def __init__(self, graph: Any) -> None:
        stage("reverse mode")
        self.graph = graph
        users: dict[sp.Symbol, list[tuple[sp.Symbol, sp.Expr]]] = {}
        for node in graph.nodes:
            for dependency, partial in node.partials:
                users.setdefault(dependency, []).append((node.symbol, partial))
        self.users = users
        #: adjoint symbol -> its definition over later adjoint symbols and intermediates, in program order.
        #: Adjoints are kept for pre-activations only (the textbook δ = ∂L/∂z): the adjoint of a = f(z) is
        #: inlined into δ, so that e.g. BCE after a sigmoid cancels to δ = ŷ − y.
        self.adjoint_symbols: dict[sp.Symbol, sp.Symbol] = {}
        self.adjoints: dict[sp.Symbol, sp.Expr] = {}
        #: ∂L/∂v of every node v defined so far, as its symbol (1 for L itself)
        self._adjoint_of: dict[sp.Symbol, sp.Expr] = {graph.loss: sp.S.One}
        for node in reversed(graph.nodes):
            if node.kind not in ("z", "op"):
                continue
            d = sp.Symbol(f"dL_d{node.symbol.name}")
            self.adjoint_symbols[node.symbol] = self._adjoint_of[node.symbol] = d
            if node.kind == "op":  # a graph model's node: every one keeps its adjoint
                self.adjoints[d] = self._adjoint_sum(node.symbol)
                continue
            # one activation uses z, or all of a vector activation's outputs (softmax) do
            self.adjoints[d] = sp.Add(*(self._adjoint_sum(a) * partial for a, partial in users[node.symbol]))
        #: parameter name -> ∂L/∂p over adjoint symbols and intermediates
        self.program: dict[str, sp.Expr] = {p.name: self._adjoint_sum(p) for p in graph.parameters}

    def _adjoint_sum(self, symbol: sp.Symbol) -> sp.Expr:
        adjoint = self._adjoint_of
        return dot([(adjoint[user], partial) for user, partial in self.users.get(symbol, ())])

    def _compact_adjoints(self, expr: sp.Expr) -> dict[sp.Symbol, sp.Expr]:
        """Every adjoint ``expr`` uses, directly or not, inlined (over intermediates and leaves).

        Only those: a network's few small gradients must not inline the adjoints of its convolutions.
        """
        inlined = self._inlined
        needed: set[sp.Symbol] = set()
        todo = [s for s in expr.free_symbols if s in self.adjoints]
        while todo:
            d = todo.pop()
            if d not in needed and d not in inlined:
                needed.add(d)
                todo += [s for s in self.adjoints[d].free_symbols if s in self.adjoints]
        order = self._program_order
        for d in sorted(needed, key=order.__getitem__):  # every adjoint a definition uses comes before it
            inlined[d] = self.adjoints[d].xreplace(inlined)
        return inlined

    @functools.cached_property
    def _inlined(self) -> dict[sp.Symbol, sp.Expr]:
        """The adjoints inlined so far (`_compact_adjoints`)."""
        return {}

    @functools.cached_property
    def _program_order(self) -> dict[sp.Symbol, int]:
        return {d: i for i, d in enumerate(self.adjoints)}

    @functools.cached_property
    def _sizes(self) -> tuple[dict[sp.Symbol, int], dict[sp.Symbol, int]]:
        """Tree sizes (operations) of every inlined symbol: (compact, closed), without building them."""
        closed: dict[sp.Symbol, int] = {}
        for node in self.graph.nodes:
            closed[node.symbol] = count_operations(node.expr, closed)
        compact: dict[sp.Symbol, int] = {}
        for d, expr in self.adjoints.items():
            compact[d] = count_operations(expr, compact)
            closed[d] = count_operations(expr, closed)
        return compact, closed

    def size(self, name: str, form: str = "closed") -> int:
        """How many operations the ``form`` ("compact" or "closed") of ∂L/∂``name`` has, as a tree."""
        compact, closed = self._sizes
        return count_operations(self.program[name], compact if form == "compact" else closed)

    def _check_size(self, name: str, form: str, max_operations: int | None) -> None:
        limit = MAX_OPERATIONS if max_operations is None else max_operations
        size = self.size(name, form)
        if size > limit:
            raise ExpressionTooLarge(
                f"the {form} form of ∂L/∂{name} has {size:,} operations, over the limit of {limit:,}; "
                f"use a smaller network or the program form, or raise the limit (max_operations, --max-ops)"
            )

    @functools.cached_property
    def _closed_intermediates(self) -> dict[sp.Symbol, sp.Expr]:
        closed: dict[sp.Symbol, sp.Expr] = {}
        for node in self.graph.nodes:
            closed[node.symbol] = node.expr.xreplace(closed)
        return closed

    def compact(self, name: str, *, max_operations: int | None = None) -> sp.Expr:
        """∂L/∂p over intermediates, inputs, targets and parameters (refused past `MAX_OPERATIONS`)."""
        self._check_size(name, "compact", max_operations)
        return self.program[name].xreplace(self._compact_adjoints(self.program[name]))

    def closed(self, name: str, *, max_operations: int | None = None) -> sp.Expr:
        """∂L/∂p over inputs, targets and parameters only (refused past `MAX_OPERATIONS`)."""
        stage("closed forms")
        self._check_size(name, "closed", max_operations)
        return self.compact(name, max_operations=max_operations).xreplace(self._closed_intermediates)

    def closed_loss(self) -> sp.Expr:
        """L over inputs, targets and parameters only."""
        return self._closed_intermediates[self.graph.loss]

    def chain(self, name: str) -> list[list[Factor]] | None:
        """Every path from L down to parameter ``name`` as its local factors (L side first).

        None when there are more than `MAX_PATHS` paths.
        """
        symbol = next(p for p in self.graph.parameters if p.name == name)
        paths = list(itertools.islice(self._paths_up(symbol), MAX_PATHS + 1))
        return None if len(paths) > MAX_PATHS else [path[::-1] for path in paths]

    def _paths_up(self, symbol: sp.Symbol):
        for user, partial in self.users.get(symbol, ()):
            factor = Factor(user, symbol, partial)
            if user == self.graph.loss:
                yield [factor]
            else:
                for rest in self._paths_up(user):
                    yield [factor, *rest]


def count_operations(expr: sp.Basic, inlined: dict[sp.Symbol, int] | None = None) -> int:
    """Arithmetic operations in ``expr`` as a tree: n − 1 per n-ary sum or product, 1 per power or function.

    Negation and subtraction count as one operation (``-x`` is ``Mul(-1, x)`` in SymPy), so do constants.
    A symbol in ``inlined`` counts as the operations of what it stands for. Shared subexpressions are
    counted once per use (the size of the printed tree) but visited once (time linear in the DAG).

    >>> a, b, c = sp.symbols("a b c")
    >>> count_operations(a * b + c), count_operations(sp.exp(-a)), count_operations(a * b, {a: 5})
    (2, 2, 6)
    """
    inlined = inlined or {}
    memo: dict[sp.Basic, int] = {}

    def count(e: sp.Basic) -> int:
        if e.is_Atom:
            return inlined.get(e, 0)
        cached = memo.get(e)
        if cached is None:
            own = len(e.args) - 1 if e.is_Add or e.is_Mul else 1
            cached = memo[e] = own + sum(count(arg) for arg in e.args)
        return cached

    return count(expr)


@dataclass(frozen=True)
class OperationCount:
    """Size of the straight-line program: the forward pass (z, a, L) and the gradient part (δ and ∂L/∂p)."""

    forward: int
    gradient: int
    parameters: int

    @property
    def per_parameter(self) -> float:
        """All operations (forward and gradient) per parameter."""
        return (self.forward + self.gradient) / self.parameters

    @property
    def gradient_to_forward(self) -> float:
        return self.gradient / self.forward


def operation_count(backprop: Backprop) -> OperationCount:
    """Count the operations of a derived program (see `count_operations`)."""
    forward = sum(count_operations(node.expr) for node in backprop.graph.nodes)
    gradient = sum(count_operations(e) for e in backprop.adjoints.values())
    gradient += sum(count_operations(e) for e in backprop.program.values())
    return OperationCount(forward, gradient, len(backprop.program))
