"""The space of networks verification draws from, and a seeded sampler of it (no hypothesis needed).

Architectures: 1–3 Linear layers, widths 1–4, any element-wise activation in hidden layers, a last activation
whose outputs the loss accepts, batch 1–4, reduction mean or sum. Numbers lie on a grid of step 1/64 in
[−2, 2] (and targets in the loss's range): first-layer pre-activations are then exact in float32 and
float64 alike, so a kink hit exactly (zero weights and bias, or terms that cancel) is hit in every dtype.
Zeros are drawn on purpose: values and whole units (a ReLU exactly at its kink), and targets at the ends of
their range (BCE with y = 0 and 1). `verify.strategies` draws the same space with hypothesis;
``derive verify --random N --seed S`` with `random_network`.

>>> import random
>>> net = random_network(random.Random(0))
>>> 1 <= len(net.layers) <= 3
True
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from derive.network import Architecture, Linear, Network
from derive.ops import ACTIVATIONS, LOSSES, REDUCTIONS, activation, loss as lookup_loss

#: Losses with continuous targets that verification draws (a loss with class targets needs its own rule).
#: l1 is left out: its kink at ŷ = y would need kink-aware finite differences on the loss.
VERIFIED_LOSSES = ("bce", "bce_with_logits", "mse", "half_sse", "cross_entropy")
BOUND = 2.0
RESOLUTION = 1 / 64
ZERO_CHANCE = 0.1


@dataclass(frozen=True)
class Space:
    """Bounds of the drawn networks."""

    max_depth: int = 3
    max_width: int = 4
    max_batch: int = 4
    bound: float = BOUND
    resolution: float | None = RESOLUTION


def losses() -> list[str]:
    """The registered losses that verification draws."""
    return [name for name in VERIFIED_LOSSES if name in LOSSES]


def hidden_activations() -> list[str]:
    """Activations allowed before the last layer: the element-wise ones (softmax mixes a layer's units)."""
    return sorted(n for n, a in ACTIVATIONS.items() if not getattr(a, "vector", False))


def last_activations(loss_name: str) -> list[str]:
    """Activations whose outputs the loss accepts (all, when it takes any prediction)."""
    spec = lookup_loss(loss_name)
    if spec.prediction_range is None:
        return sorted(ACTIVATIONS)
    lo, hi = spec.prediction_range
    return sorted(n for n, a in ACTIVATIONS.items() if lo <= a.output_range[0] and a.output_range[1] <= hi)


def target_range(loss_name: str, bound: float = BOUND) -> tuple[float, float]:
    """The targets drawn for a loss: its range, clipped to [−bound, bound]."""
    lo, hi = lookup_loss(loss_name).target_range
    return max(lo, -bound), min(hi, bound)


def min_outputs(loss_name: str, last: str) -> int:
    """Class targets and vector activations (softmax) need at least two outputs."""
    vector = getattr(ACTIVATIONS.get(last), "vector", False)
    return 2 if vector or getattr(lookup_loss(loss_name), "class_targets", False) else 1


def one_hot(index: int, outputs: int) -> list[float]:
    """A class index as a one-hot row (how class targets are drawn)."""
    return [1.0 if k == index else 0.0 for k in range(outputs)]


def grid(lo: float, hi: float, resolution: float | None) -> tuple[int, int] | None:
    """Integer range k such that k · resolution lies in [lo, hi] (None without a grid)."""
    if resolution is None:
        return None
    return math.ceil(lo / resolution), math.floor(hi / resolution)


def random_architecture(rng: random.Random, space: Space = Space()) -> Architecture:
    """A random architecture in ``space``."""
    loss_name = rng.choice(losses())
    depth = rng.randint(1, space.max_depth)
    hidden = hidden_activations()
    acts = tuple(rng.choice(hidden) for _ in range(depth - 1)) + (rng.choice(last_activations(loss_name)),)
    sizes = [rng.randint(1, space.max_width) for _ in range(depth + 1)]
    sizes[-1] = max(sizes[-1], min_outputs(loss_name, acts[-1]))
    sizes = tuple(sizes)
    return Architecture(sizes, acts, loss_name, rng.choice(REDUCTIONS), rng.randint(1, space.max_batch))


def random_network(rng: random.Random, space: Space = Space(), name: str = "random") -> Network:
    """A random network in ``space``: architecture, weights, data and targets valid for its loss."""
    arch = random_architecture(rng, space)

    def value(lo: float = -space.bound, hi: float = space.bound) -> float:
        if rng.random() < ZERO_CHANCE:
            return lo if lo >= 0 else (hi if hi <= 0 else 0.0)
        if rng.random() < ZERO_CHANCE:  # the ends of the range: BCE targets 0 and 1
            return rng.choice((lo, hi))
        k = grid(lo, hi, space.resolution)
        return rng.randint(*k) * space.resolution if k else rng.uniform(lo, hi)

    layers = []
    for (n_in, n_out), act in zip(zip(arch.sizes, arch.sizes[1:]), arch.activations):
        weight = [[value() for _ in range(n_in)] for _ in range(n_out)]
        bias = [value() for _ in range(n_out)]
        for i in range(n_out):
            if activation(act).kinks and rng.random() < ZERO_CHANCE:  # a unit exactly at its kink
                weight[i], bias[i] = [0.0] * n_in, activation(act).kinks[0]
        layers.append(Linear(weight, bias, act))
    lo, hi = target_range(arch.loss, space.bound)
    x = [[value() for _ in range(arch.sizes[0])] for _ in range(arch.batch)]
    outputs = arch.sizes[-1]
    if getattr(lookup_loss(arch.loss), "class_targets", False):
        y = [one_hot(rng.randrange(outputs), outputs) for _ in range(arch.batch)]
    else:
        y = [[value(lo, hi) for _ in range(outputs)] for _ in range(arch.batch)]
    return Network(tuple(layers), x, y, loss=arch.loss, reduction=arch.reduction, name=name)
