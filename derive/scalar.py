"""The scalar node: the vocabulary every derivation shares (chains, graph models, the lowering of every op).

>>> import sympy as sp
>>> z, w, x = sp.symbols("z w x")
>>> Node(z, w * x, ((w, x), (x, w)), "op", 1, 0, 0).partials[0]
(w, x)
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp


@dataclass(frozen=True)
class Node:
    """One computed quantity: ``symbol = expr``, with ∂expr/∂s for each symbol ``s`` it uses."""

    symbol: sp.Symbol
    expr: sp.Expr
    partials: tuple[tuple[sp.Symbol, sp.Expr], ...]
    kind: str  # "z" (pre-activation), "a" (activation) or "loss"
    layer: int  # 1-based Linear layer; 0 for the loss
    unit: int  # 0-based unit within its layer
    sample: int  # 0-based sample in the batch
