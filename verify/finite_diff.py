"""Central finite differences of the module's loss: a third opinion, independent of both derivations.

For each parameter p, with h = step · max(1, |p|), the fourth-order central stencil

    ∂L/∂p ≈ (L(p − 2h) − 8 L(p − h) + 8 L(p + h) − L(p + 2h)) / 12h

in float64 (truncation error ~h⁴, rounding ~ε·|L|/h: about 1e-12 for step 1e-3), of the same module and loss
autograd differentiates (`verify.reference`: a chain's equivalent ``nn.Sequential``, a graph model's own
module), forward passes only. Where the difference quotient is meaningless it gets no value (None):

- **a kink it can see**: an input of a kinked activation module (``nn.ReLU``, a chain's ReLU layer) changes
  side within ±2h; such parameters are listed in ``kinked``;
- **a kink it cannot see** (``torch.relu``, ``abs``, ``max`` and its ties in a graph's forward), judged only
  where the difference disagrees with what ``judge`` gives: the loss is probed for smoothness within the
  stencil (`_smooth_within`).

>>> import derive
>>> fd = finite_differences(derive.examples.seed())
>>> round(fd.gradients["b3"], 9), fd.kinked
(0.415433183, ())
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from derive.model.graph import Leaf, Model, OpNode
from derive.network import Network
from verify.reference import _torch, data_of, forward, module_of, parameter_tensors, same_sides

STEP = 1e-3
#: how far apart a smooth loss's one-sided slopes at the point may lie, relative to max(1, |∂L/∂p|)
SMOOTH_SLOPES = 1e-4
_STENCIL = ((-2, 1.0), (-1, -8.0), (1, 8.0), (2, -1.0))


@dataclass(frozen=True)
class FiniteDifferences:
    """∂L/∂p by derive's name (None where they cannot judge), the loss, and the parameters whose stencil
    crosses a kink of an activation module."""

    gradients: dict[str, float | None]
    loss: float
    kinked: tuple[str, ...]
    step: float

    def __getitem__(self, name: str) -> float | None:
        return self.gradients[name]


def finite_differences(
    network: Network | Model, *, device: str = "cpu", step: float = STEP,
    judge: dict[str, tuple[float, float]] | None = None,
) -> FiniteDifferences:
    """Fourth-order central differences of the loss for every parameter, in float64 on ``device``.

    ``judge`` gives, by name, the value a difference is compared with and the allowed error; a difference
    farther than that is kept only where the loss is smooth within its stencil (`_smooth_within`).
    """
    torch = _torch()
    module = module_of(network, device=device, dtype="float64")
    x, y = data_of(network, device=device, dtype="float64")

    def at(tensor: Any, index: tuple[int, ...], value: float) -> tuple[float, bool]:
        """The loss with ``tensor[index] = value``, and whether a watched input crossed a kink."""
        tensor[index] = value
        result = forward(network, module, x, y)
        return float(result.loss), not same_sides(result.sides, base.sides)

    gradients: dict[str, float | None] = {}
    kinked = []
    with torch.no_grad():
        base = forward(network, module, x, y)
        loss = float(base.loss)
        for p, tensor in parameter_tensors(network, module):
            original = float(tensor[p.index])
            h = step * max(1.0, abs(original))
            h = (original + h) - original  # a step that is exact in float64
            f, crossed = {}, False
            for k, _ in _STENCIL:
                f[k], moved = at(tensor, p.index, original + k * h)
                crossed = crossed or moved
            value: float | None = sum(weight * f[k] for k, weight in _STENCIL) / (12 * h)
            if crossed:
                kinked.append(p.name)
                value = None
            elif judge is not None and p.name in judge and abs(value - judge[p.name][0]) > judge[p.name][1]:
                f[-0.5], f[0.5] = (at(tensor, p.index, original + k * h)[0] for k in (-0.5, 0.5))
                if not _smooth_within(f, loss, h, value, judge[p.name][0]):
                    value = None
            tensor[p.index] = original
            gradients[p.name] = value
    return FiniteDifferences(gradients, loss, tuple(kinked), step)


def _smooth_within(f: dict[float, float], base: float, h: float, value: float, expected: float) -> bool:
    """Whether the loss is smooth within the stencil, from the stencil's values ``f`` (at k·h) and two more,
    at ±h/2: the same stencil at h/2 and the one-sided second-order differences of step h/2 on each side. A
    smooth loss makes each pair agree to within truncation (h⁴ and h³/16 terms); a kink within ±2h, or at the
    point itself, makes one pair differ by a share of the jump in slope. Where either pair differs by more than
    a quarter of the disagreement |value − expected|, or the one-sided slopes by more than `SMOOTH_SLOPES`
    relative, the loss is not smooth there."""
    half = (f[-1] - 8 * f[-0.5] + 8 * f[0.5] - f[1]) / (6 * h)
    right = (-3 * base + 4 * f[0.5] - f[1]) / h
    left = (3 * base - 4 * f[-0.5] + f[-1]) / h
    # a kink within the stencil that moves it by d moves one probe by more than d/2 (checked over every place
    # of a kink in a piecewise-linear loss: at least 0.48 d); a smooth loss moves them by truncation alone
    if max(abs(value - half), abs(right - left)) > abs(value - expected) / 4:
        return False
    # a kink at the point whose one-sided slopes both lie far from ``expected`` (max-pooling's ties across
    # overlapping windows, where torch's first-maximum rule takes neither side) moves them by far less than d;
    # smooth, they differ by h²/6·|f‴| and rounding, under 1e-4 for |f‴| up to hundreds
    return abs(right - left) <= SMOOTH_SLOPES * max(1.0, abs(value), abs(expected))


def detached_parameters(model: Network | Model) -> set[str]:
    """The parameters whose gradient torch defines otherwise than the slope of the loss: those that reach it
    through a stop-gradient (``detach``), and entries an op gives no gradient though it reads them (an
    embedding's padding row): `TensorOp.stops_gradient`. There the module's gradient, autograd's and derive's
    alike, is not the loss's slope, and finite differences do not judge it."""
    if model.textbook:
        return set()
    nodes = model.structure.nodes
    below: set[int] = set()  # nodes feeding a stop-gradient
    entries: dict[str, list] = {}  # parameter tensor -> which of its entries an op reads without a gradient
    for i in reversed(range(len(nodes))):
        node = nodes[i]
        if not isinstance(node, OpNode):
            continue
        for k, a in enumerate(node.args):
            stop = True if i in below else node.op.stops_gradient(k)
            if a is None or stop is False:
                continue
            if stop is True:
                below.add(a)
            elif isinstance(nodes[a], Leaf) and nodes[a].kind == "parameter":
                entries.setdefault(nodes[a].name, []).append(stop)
        if i in below:
            below.update(a for a in node.args if a is not None)
    tensors = {nodes[i].name for i in below if isinstance(nodes[i], Leaf) and nodes[i].kind == "parameter"}
    return {p.name for p in model.parameters()
            if p.torch in tensors or any(stop(p.index) for stop in entries.get(p.torch, ()))}
