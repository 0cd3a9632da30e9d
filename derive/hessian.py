r"""Second order: the Hessian of the loss with respect to the parameters, and Hessian–vector products.

Forward over reverse on the derived straight-line program: a tangent (a direction in parameter space) is
pushed through every forward node with its local partials, then through every adjoint δ and every gradient
∂L/∂p with the partial derivatives of their own (small) definitions — never ``diff`` of an inlined closed
form. One sweep gives the Hessian–vector product H v in time linear in the program; the whole Hessian is the
same sweep with all n unit directions at once (NumPy columns), of which the upper triangle is kept and
mirrored (H is symmetric: each pair is taken once). An entry's expression is built on demand.

>>> import derive
>>> H = hessian(derive.examples.seed())
>>> H.names[:3], H.values.shape, round(float(H.values[4, 4]), 6)   # ∂²L/∂W5²
(['W1', 'W2', 'W3'], (9, 9), 0.10467)
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy as sp

from derive.derivation import Derivation
from derive.errors import DeriveError
from derive.numeric import evaluate
from derive.printing import latex


@functools.lru_cache(maxsize=None)
def _factor_partials(factor: sp.Expr) -> tuple[tuple[sp.Symbol, sp.Expr], ...]:
    """∂factor/∂s for every symbol of one factor of a definition (σ(z), 1 − a², …: small).

    sign′ is 0, as in torch (sign has no gradient): the L1 penalty's |p| adds nothing to the Hessian, where
    SymPy would leave ``Derivative(sign(p), p)`` (or a Dirac delta), which has no value."""
    def derivative(s: sp.Symbol) -> sp.Expr:
        d = sp.diff(factor, s)
        return d.replace(lambda e: isinstance(e, sp.Derivative) and e.expr.func is sp.sign, lambda e: sp.S.Zero
                         ).replace(sp.DiracDelta, lambda *args: sp.S.Zero)

    return tuple((s, derivative(s)) for s in sorted(factor.free_symbols, key=lambda s: s.name))


def _numeric_partials(expr: sp.Expr, values: dict) -> list[tuple[sp.Symbol, float]]:
    """The value of ∂expr/∂s for every symbol s of a definition: a sum of products, by the product rule."""
    out: dict[sp.Symbol, float] = {}
    for term in sp.Add.make_args(expr):
        factors = sp.Mul.make_args(term)
        numbers = [evaluate(f, values) for f in factors]
        for k, factor in enumerate(factors):
            if factor.is_Number:
                continue
            rest = float(np.prod(numbers[:k] + numbers[k + 1:]))
            if factor.is_Symbol:
                out[factor] = out.get(factor, 0.0) + rest
                continue
            for symbol, derivative in _factor_partials(factor):
                out[symbol] = out.get(symbol, 0.0) + evaluate(derivative, values) * rest
    return list(out.items())


class _Sweep:
    """The program's tangent rules, evaluated once at the derivation's point: (target, [(source, factor)])."""

    def __init__(self, d: Derivation) -> None:
        values, bp, graph = d.values, d.backprop, d.graph
        self.parameters = [p.symbol for p in d.parameters]
        self.steps: list[tuple[sp.Symbol, list[tuple[sp.Symbol, float]]]] = []
        for node in graph.nodes:
            if node.kind != "loss":
                self.steps.append((node.symbol, [(s, evaluate(p, values)) for s, p in node.partials]))
        definitions = [*bp.adjoints.items(), *((sp.Symbol(f"grad_{p.name}"), bp.program[p.name])
                                               for p in d.parameters)]
        self.outputs = [symbol for symbol, _ in definitions[len(bp.adjoints):]]
        for symbol, expr in definitions:
            self.steps.append((symbol, _numeric_partials(expr, values)))

    def run(self, seeds: np.ndarray) -> np.ndarray:
        """Tangents of every ∂L/∂p for the parameter directions ``seeds`` (n × k): an n × k array."""
        zero = np.zeros(seeds.shape[1:])
        tangent: dict[sp.Symbol, Any] = dict(zip(self.parameters, seeds))
        for target, rules in self.steps:
            total = zero
            for source, factor in rules:
                t = tangent.get(source)
                if t is not None and factor:
                    total = total + factor * t
            tangent[target] = total
        return np.array([tangent[s] for s in self.outputs])


@dataclass
class Hessian:
    """∂²L/∂p_i∂p_j: ``names`` (parameter order), ``values`` (n × n float64), `expression` on demand."""

    names: list[str]
    values: np.ndarray
    derivation: Derivation = field(repr=False)

    def __repr__(self) -> str:
        return f"Hessian({len(self.names)} × {len(self.names)} of {self.derivation.network.name})"

    def expression(self, first: str, second: str) -> sp.Expr:
        """∂²L/∂first∂second as an expression over inputs, targets and parameters (small networks)."""
        d = self.derivation
        symbol = {p.name: p.symbol for p in d.parameters}
        for name in (first, second):
            if name not in symbol:
                raise KeyError(f"no parameter {name!r}; parameters: {', '.join(self.names)}")
        return sp.diff(d.closed(first), symbol[second])

    def _repr_markdown_(self) -> str:
        from derive.report.numformat import fmt  # as reports show numbers

        names = self.derivation.graph.latex_names
        symbols = [p.symbol for p in self.derivation.parameters]
        if len(symbols) > 12:
            return f"**Hessian** of {self.derivation.network.name}: {len(symbols)} × {len(symbols)} (too large to show)"
        head = " & ".join(["", *(names[s] for s in symbols)])
        rows = [" & ".join([names[s], *(fmt(v, 4) for v in row)]) for s, row in zip(symbols, self.values)]
        body = r" \\ ".join([head, *rows])
        return (f"**Hessian** of {self.derivation.network.name} (∂²L/∂p_i∂p_j):\n\n$$\n\\begin{{array}}{{r|"
                f"{'r' * len(symbols)}}}\n{body}\n\\end{{array}}\n$$\n")

    def latex(self, first: str, second: str) -> str:
        return latex(self.expression(first, second), self.derivation.graph.latex_names)


def hessian(network: Any) -> Hessian:
    """The Hessian of the network's loss with respect to all its parameters, in float64."""
    d = network if isinstance(network, Derivation) else Derivation(network)
    sweep = _Sweep(d)
    n = len(d.parameters)
    columns = sweep.run(np.eye(n))
    upper = np.triu(columns)
    values = upper + np.triu(columns, 1).T  # each pair (i ≤ j) once, mirrored
    return Hessian([p.name for p in d.parameters], values, d)


def hessian_vector_product(network: Any, vector: Any) -> np.ndarray:
    """H v without forming H: one tangent sweep of the gradient program (``vector`` in parameter order)."""
    d = network if isinstance(network, Derivation) else Derivation(network)
    v = np.asarray(vector, dtype=np.float64).reshape(-1)
    if v.shape != (len(d.parameters),):
        raise DeriveError(f"the vector has {v.size} values; the network has {len(d.parameters)} parameters")
    return _Sweep(d).run(v.reshape(-1, 1)).reshape(-1)
