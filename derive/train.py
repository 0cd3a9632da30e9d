"""Gradient descent with the derived gradients: W(t+1) = W(t) − α ∂L/∂W(t), all parameters at once.

>>> import derive
>>> history = sgd(derive.examples.seed(), steps=3)
>>> [round(loss, 4) for loss in history.losses]
[0.5369, 0.2804, 0.1836]
"""

from __future__ import annotations

from dataclasses import dataclass

from derive.derivation import Derivation
from derive.errors import DeriveError
from derive.network import Network


@dataclass(frozen=True)
class History:
    """The derivation at every step (before its update) and the network after the last update."""

    steps: tuple[Derivation, ...]
    final: Network

    @property
    def losses(self) -> list[float]:
        """The loss before each update."""
        return [d.loss for d in self.steps]


def step(derivation: Derivation) -> Network:
    """One SGD update of every parameter that is not frozen, simultaneously, with the network's learning rate."""
    lr = derivation.network.lr
    return derivation.network.with_parameters(
        {p.name: p.parameter.value - lr * p.gradient for p in derivation.parameters if not p.parameter.frozen}
    )


def sgd(network: Network, steps: int = 1) -> History:
    """Run ``steps`` SGD updates; the derivation is computed once per architecture and reused."""
    if steps < 1:
        raise DeriveError(f"steps must be at least 1, got {steps}")
    derivations = []
    for _ in range(steps):
        derivation = Derivation(network)
        derivations.append(derivation)
        network = step(derivation)
    return History(tuple(derivations), network)
