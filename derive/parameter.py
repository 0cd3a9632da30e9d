"""The vocabulary a chain and a model share: a scalar `Parameter` and a chain's `Architecture` (a bottom module:
it imports nothing of derive's).

>>> Parameter("W1", 1, "weight", (0, 0), 0.5).name, Architecture((2, 1), ("sigmoid",), "bce", "mean", 1).batch
('W1', 1)
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Parameter:
    """One scalar parameter: its textbook name, where it lives, and its value.

    ``layer`` counts a chain's layers from 1 (0 in a graph model); ``tensor`` is ``"weight"`` or ``"bias"`` (a
    graph's: the last part of its key); ``index`` is into it.
    A ``frozen`` parameter keeps its value in updates (its gradient is still derived).
    """

    name: str
    layer: int
    tensor: str
    index: tuple[int, ...]
    value: float
    frozen: bool = False
    #: the tensor's key in the torch module's ``named_parameters()`` (``"fc1.weight"``, ``"0.weight"``)
    torch: str = ""


@dataclass(frozen=True)
class Architecture:
    """What the symbolic derivation depends on: no numbers but sizes."""

    sizes: tuple[int, ...]
    activations: tuple[str, ...]
    loss: str
    reduction: str
    batch: int
    #: penalties added to the loss: (("l2", ("W1", "W2", …)), ("l1", (…))); their λ are values, not structure
    penalty: tuple[tuple[str, tuple[str, ...]], ...] = ()
