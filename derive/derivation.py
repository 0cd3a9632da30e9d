"""`Derivation`: the derived gradient program of a network together with its numbers.

>>> import derive
>>> d = derive.derive(derive.examples.seed())
>>> round(d.loss, 10), round(d.gradient("W5"), 9)
(0.5368841906, 0.27273792)
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import sympy as sp

from derive.backprop import Backprop, Factor
from derive.errors import ValueDomainError
from derive.graph import backpropagate_chain
from derive.model.graph import Model
from derive.model.lower import backpropagate_model, leaf_values, lower
from derive.network import Network, Parameter
from derive.numeric import evaluate
from derive.progress import stage
from derive.terms import gc_paused


@dataclass(frozen=True)
class ParameterGradient:
    """One parameter with its symbol and the value of ∂L/∂p at the network's point."""

    parameter: Parameter
    symbol: sp.Symbol
    gradient: float

    @property
    def name(self) -> str:
        return self.parameter.name


class Derivation:
    """Everything derived for one network: forms of every gradient, and every value in float64."""

    def __init__(self, network: Network | Model, *, max_operations: int | None = None) -> None:
        #: the model derived (a `Network` written in Python: its `ChainModel`, `Network.model`)
        self.model: Model = network.model()
        #: the same model (what reports and checks read: its chain's layers through `Model.chain`)
        self.network: Model = self.model
        #: the size limit of compact and closed forms (None: `backprop.MAX_OPERATIONS`)
        self.max_operations = max_operations
        structure = self.model.structure
        # a chain's program is over its `chain_view` (symbols by layer, sample, unit), for its reports
        chain = structure.naming == "textbook"
        self.backprop: Backprop = (backpropagate_chain if chain else backpropagate_model)(structure)
        graph = self.graph = self.backprop.graph
        self.point: dict[sp.Symbol, float] = leaf_values(self.model, lower(structure))
        if chain:  # in the textbook's order: inputs, targets, parameters, λ
            order = [*(s for row in graph.inputs for s in row), *(s for row in graph.targets for s in row),
                     *graph.parameters, *graph.penalties]
            self.point = {s: self.point[s] for s in order}
        stage("evaluating")
        with gc_paused():  # millions of floats and small objects, no cycles
            self._evaluate(self.model, graph)

    def _evaluate(self, network: Model, graph) -> None:
        values = dict(self.point)
        predictions = {a: graph.node[a].expr for row in graph.predictions for a in row if a in graph.node}
        for node in graph.nodes:
            # the loss over the activations' definitions (σ(z), not σ): log σ(z) stays finite when σ rounds to 1
            # (looked through while evaluating: substituting them rebuilt the loss, in time growing as B^1.5)
            values[node.symbol] = evaluate(node.expr, values, predictions if node.kind == "loss" else None)
        for d, expr in self.backprop.adjoints.items():
            values[d] = evaluate(expr, values, zero_adjoints=True)
        #: the value of every symbol: leaves, intermediates, the loss and the adjoints δ
        self.values = values
        self.loss: float = values[graph.loss]
        if math.isnan(self.loss):  # torch's NaN in a where's branch that the data takes (a NaN literal)
            raise ValueDomainError("the loss is NaN at this point (a NaN made in forward is taken by the data); "
                                   "derive derives functions with finite values")
        if math.isinf(self.loss):  # log 0 (torch's −∞) on the path the data takes
            raise ValueDomainError(f"the loss is {self.loss} at this point (the log of 0 on the data's path, as "
                                   "torch computes it); derive derives functions with finite values")
        self.parameters: list[ParameterGradient] = [
            ParameterGradient(p, s, evaluate(self.backprop.program[p.name], values))
            for p, s in zip(network.parameters(), graph.parameters)
        ]

    def __repr__(self) -> str:
        return f"Derivation({self.network.name}: {len(self.parameters)} parameters, L = {self.loss:.6g})"

    def _repr_markdown_(self) -> str:
        from derive.notebook import derivation_markdown

        return derivation_markdown(self)

    def gradient(self, name: str) -> float:
        """The value of ∂L/∂``name``."""
        return self._by_name(name).gradient

    def closed(self, name: str, *, max_operations: int | None = None) -> sp.Expr:
        """∂L/∂``name`` over inputs, targets and parameters only.

        Refused with `ExpressionTooLarge` past ``max_operations`` (default `backprop.MAX_OPERATIONS`).
        """
        limit = self.max_operations if max_operations is None else max_operations
        return self.backprop.closed(self._by_name(name).name, max_operations=limit)

    def compact(self, name: str, *, max_operations: int | None = None) -> sp.Expr:
        """∂L/∂``name`` over intermediates (z, a), inputs, targets and parameters."""
        limit = self.max_operations if max_operations is None else max_operations
        return self.backprop.compact(self._by_name(name).name, max_operations=limit)

    def chain(self, name: str) -> list[list[Factor]] | None:
        """The chain rule for ∂L/∂``name``: paths of local factors, summed (None if too many)."""
        return self.backprop.chain(self._by_name(name).name)

    def gradients(self, *, max_operations: int | None = None) -> dict[str, sp.Expr]:
        """Closed forms of ∂L/∂p for every parameter, keyed by name in textbook order."""
        return {p.name: self.closed(p.name, max_operations=max_operations) for p in self.parameters}

    def _by_name(self, name: str) -> ParameterGradient:
        found = self._index.get(name)
        if found is None:
            known = ", ".join(p.name for p in self.parameters)
            raise KeyError(f"no parameter {name!r}; parameters: {known}")
        return found

    @functools.cached_property
    def _index(self) -> dict[str, ParameterGradient]:
        return {p.name: p for p in self.parameters}


def derive(network: Network | Model) -> Derivation:
    """Derive ∂L/∂p for every parameter of ``network``: chain factors, compact and closed forms, values."""
    return Derivation(network)


def gradients(network: Network | Model) -> dict[str, sp.Expr]:
    """Closed forms of ∂L/∂p for every parameter, keyed by name (W1, …, b1, …).

    >>> import derive
    >>> g = derive.gradients(derive.examples.seed())
    >>> list(g)
    ['W1', 'W2', 'W3', 'W4', 'W5', 'W6', 'b1', 'b2', 'b3']
    """
    return Derivation(network).gradients()
