"""Central finite differences of the torch model's loss: a third opinion, independent of both derivations.

For each parameter p, with h = step · max(1, |p|), the fourth-order central stencil

    ∂L/∂p ≈ (L(p − 2h) − 8 L(p − h) + 8 L(p + h) − L(p + 2h)) / 12h

in float64 (truncation error ~h⁴, rounding ~ε·|L|/h: about 1e-12 for step 1e-3). Only the forward pass of
the torch model is used, without autograd. At a kink (a ReLU pre-activation that changes side within ±2h) the
difference quotient is meaningless: such parameters are listed in ``kinked`` and get no value.

>>> import derive
>>> fd = finite_differences(derive.examples.seed())
>>> round(fd.gradients["b3"], 9), fd.kinked
(0.415433183, ())
"""

from __future__ import annotations

from dataclasses import dataclass

from derive.network import Network
from derive.ops import activation
from verify.reference import _torch, forward, torch_model

STEP = 1e-3
_STENCIL = ((-2, 1.0), (-1, -8.0), (1, 8.0), (2, -1.0))


@dataclass(frozen=True)
class FiniteDifferences:
    """∂L/∂p by textbook name (None at a kink), the loss, and the parameters whose stencil crosses a kink."""

    gradients: dict[str, float | None]
    loss: float
    kinked: tuple[str, ...]
    step: float


def finite_differences(network: Network, *, device: str = "cpu", step: float = STEP) -> FiniteDifferences:
    """Fourth-order central differences of the loss for every parameter, in float64 on ``device``."""
    torch = _torch()
    model = torch_model(network, device=device, dtype="float64")
    x = torch.tensor(network.x, dtype=torch.float64, device=device)
    y = torch.tensor(network.y, dtype=torch.float64, device=device)
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    kinks = [activation(layer.activation).kinks for layer in network.layers]

    def evaluate() -> tuple[float, tuple]:
        result = forward(network, model, x, y)
        sides = tuple(
            tuple((z > k).flatten().tolist()) + tuple((z == k).flatten().tolist())
            for z, layer_kinks in zip(result.pre_activations, kinks)
            for k in layer_kinks
        )
        return float(result.loss), sides

    gradients: dict[str, float | None] = {}
    kinked = []
    with torch.no_grad():
        loss, base_sides = evaluate()
        for p in network.parameters():
            tensor = getattr(linears[p.layer - 1], p.tensor)
            original = float(tensor[p.index])
            h = step * max(1.0, abs(original))
            h = (original + h) - original  # a step that is exact in float64
            total, crossed = 0.0, False
            for k, weight in _STENCIL:
                tensor[p.index] = original + k * h
                value, sides = evaluate()
                total += weight * value
                crossed = crossed or sides != base_sides
            tensor[p.index] = original
            if crossed:
                kinked.append(p.name)
                gradients[p.name] = None
            else:
                gradients[p.name] = total / (12 * h)
    return FiniteDifferences(gradients, loss, tuple(kinked), step)
