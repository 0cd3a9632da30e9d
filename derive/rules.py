"""The element-wise δ rules of a chain, read off derive's own derivation of a one-unit-per-layer network.

The δ of a unit depends only on that unit (for element-wise activations and losses), so the rule of one unit
is the rule of every unit: the chain's printed code (`derive.code`) is glued from these rules with one matrix
product per layer step (its compiled gradient runs the tensor program: `verify.chain_compile`).

>>> rules = matrix_rules(("sigmoid", "sigmoid"), "bce")
>>> rules.output_delta, rules.derivative[0]
(a - y, a*(1 - a))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sympy as sp

from derive.errors import DeriveError
from derive.graph import backpropagate
from derive.network import Architecture
from derive.ops import activation


@dataclass(frozen=True)
class MatrixRules:
    """The element-wise rules of one architecture, as SymPy expressions over one unit's symbols."""

    z: sp.Symbol
    a: sp.Symbol
    y: sp.Symbol
    forward: tuple[sp.Expr, ...]  # a = f(z), per layer
    derivative: tuple[sp.Expr, ...]  # da/dz over (z, a), per layer
    output_delta: sp.Expr  # ∂(sum of terms)/∂z of an output unit, over (z, a, y)


def matrix_rules(activations: Sequence[str], loss: str) -> MatrixRules:
    """Read the δ rules off derive's derivation of a one-unit-per-layer network.

    Only element-wise rules have that form: a vector activation (softmax) or a loss over a whole row
    (cross_entropy) is refused with a `DeriveError` (the tensor program covers them).
    """
    for name in activations:
        if getattr(activation(name), "vector", False):
            raise DeriveError(f"a δ rule of one unit needs element-wise activations; {name!r} is not")
    z, a, y = sp.symbols("z a y")
    rules = []
    for outputs in (1, 2):  # with two outputs, the rule of output 1 must not involve output 2
        arch = Architecture((1,) * len(activations) + (outputs,), tuple(activations), loss, "sum", 1)
        bp = backpropagate(arch)
        graph = bp.graph
        z_out, a_out, y_out = graph.pre[-1][0][0], graph.post[-1][0][0], graph.targets[0][0]
        units = {z_out: z, a_out: a, y_out: y}
        rules.append(bp.adjoints[bp.adjoint_symbols[z_out]].xreplace(units))
    output = rules[0]
    if not rules[1].free_symbols <= {z, a, y}:
        raise DeriveError(
            f"loss {loss!r} is not element-wise: it has no δ rule of one unit"
        )
    acts = [activation(name) for name in activations]
    return MatrixRules(
        z, a, y,
        forward=tuple(act(z) for act in acts),
        derivative=tuple(act.derivative(z, a) for act in acts),
        output_delta=output,
    )  # fmt: skip
