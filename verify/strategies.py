"""Hypothesis strategies for networks derive can verify: architectures, weights, inputs, targets, batches.

They draw the space of `verify.sampling` (see there for why numbers lie on a grid of 1/64 by default), with
zeros, whole units at a kink and targets at the ends of their range drawn on purpose; hypothesis shrinks a
failure to the smallest network and the simplest numbers. Use them in your own tests:

>>> from hypothesis import given, settings
>>> import verify
>>> from verify.strategies import architectures, networks
>>> @settings(max_examples=3, deadline=None)
... @given(networks(architectures(max_depth=2, losses=["mse"])))
... def test_derive_agrees_with_autograd(net):
...     assert verify.check(net).ok
>>> test_derive_agrees_with_autograd()

``networks(arch)`` also takes a fixed `Architecture`; ``values()`` and ``targets()`` draw the elements;
``saturated_networks()`` draws networks whose adjoints are far larger than their gradients.
"""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import strategies as st

from derive.network import Architecture, Linear, Network
from derive.ops import ACTIVATIONS, REDUCTIONS, activation, loss as lookup_loss
from verify import sampling
from verify.sampling import BOUND, RESOLUTION, ZERO_CHANCE


def values(
    lo: float = -BOUND, hi: float = BOUND, resolution: float | None = RESOLUTION
) -> st.SearchStrategy[float]:
    """Finite floats in [lo, hi]: on the grid ``k · resolution`` (None: any float), often 0 and the ends."""
    k = sampling.grid(lo, hi, resolution)
    if k is not None:
        inner = st.integers(*k).map(lambda i: i * resolution)
    else:
        inner = st.floats(lo, hi, allow_nan=False, allow_infinity=False)
    zero = lo if lo >= 0 else (hi if hi <= 0 else 0.0)
    special = st.sampled_from(sorted({zero, lo, hi}))
    chance = round(1 / (2 * ZERO_CHANCE))
    return st.integers(0, chance).flatmap(lambda i: special if i == 0 else inner)


@st.composite
def architectures(
    draw: st.DrawFn,
    *,
    max_depth: int = 3,
    max_width: int = 4,
    max_batch: int = 4,
    losses: Sequence[str] | None = None,
    activations: Sequence[str] | None = None,
    reductions: Sequence[str] = REDUCTIONS,
) -> Architecture:
    """Depth, widths, activations (the last one valid for the loss), loss, reduction and batch size."""
    loss_name = draw(st.sampled_from(list(losses or sampling.losses())))
    allowed = list(activations or sorted(ACTIVATIONS))
    hidden = [a for a in sampling.hidden_activations() if a in allowed] or sampling.hidden_activations()
    last = [a for a in sampling.last_activations(loss_name) if a in allowed]
    last = last or sampling.last_activations(loss_name)
    depth = draw(st.integers(1, max_depth))
    acts = tuple(draw(st.sampled_from(hidden)) for _ in range(depth - 1)) + (draw(st.sampled_from(last)),)
    sizes = draw(st.lists(st.integers(1, max_width), min_size=depth + 1, max_size=depth + 1))
    sizes[-1] = max(sizes[-1], sampling.min_outputs(loss_name, acts[-1]))
    sizes = tuple(sizes)
    return Architecture(
        sizes, acts, loss_name, draw(st.sampled_from(list(reductions))), draw(st.integers(1, max_batch))
    )


def targets(loss_name: str, batch: int, outputs: int, resolution: float | None = RESOLUTION):
    """batch × outputs targets valid for the loss (BCE: in [0, 1], with 0 and 1 drawn on purpose)."""
    if getattr(lookup_loss(loss_name), "class_targets", False):
        row = st.integers(0, outputs - 1).map(lambda k: sampling.one_hot(k, outputs))
        return st.lists(row, min_size=batch, max_size=batch)
    lo, hi = sampling.target_range(loss_name)
    row = st.lists(values(lo, hi, resolution), min_size=outputs, max_size=outputs)
    return st.lists(row, min_size=batch, max_size=batch)


@st.composite
def networks(
    draw: st.DrawFn,
    architecture: Architecture | st.SearchStrategy[Architecture] | None = None,
    *,
    bound: float = BOUND,
    resolution: float | None = RESOLUTION,
    kinks: bool = True,
) -> Network:
    """A network of a drawn (or given) architecture with finite weights, inputs and valid targets.

    ``kinks`` lets whole units of a kinked activation (ReLU) sit exactly at the kink.
    """
    if architecture is None:
        architecture = architectures()
    arch = draw(architecture) if isinstance(architecture, st.SearchStrategy) else architecture
    element = values(-bound, bound, resolution)
    layers = []
    for (n_in, n_out), act in zip(zip(arch.sizes, arch.sizes[1:]), arch.activations):
        row = st.lists(element, min_size=n_in, max_size=n_in)
        weight = draw(st.lists(row, min_size=n_out, max_size=n_out))
        bias = draw(st.lists(element, min_size=n_out, max_size=n_out))
        kink = activation(act).kinks
        if kinks and kink:
            at_kink = draw(st.lists(st.integers(0, 9), min_size=n_out, max_size=n_out))
            for i, roll in enumerate(at_kink):
                if roll == 0:
                    weight[i], bias[i] = [0.0] * n_in, kink[0]
        layers.append(Linear(weight, bias, act))
    x = draw(st.lists(st.lists(element, min_size=arch.sizes[0], max_size=arch.sizes[0]),
                      min_size=arch.batch, max_size=arch.batch))
    y = draw(targets(arch.loss, arch.batch, arch.sizes[-1], resolution))
    return Network(tuple(layers), x, y, loss=arch.loss, reduction=arch.reduction, name="drawn")


#: Factors that scale a saturated network's last layer (powers of 2: the numbers stay on the grid).
SATURATION = (8.0, 16.0)


@st.composite
def saturated_networks(draw: st.DrawFn, *, max_depth: int = 2, scales: Sequence[float] = SATURATION) -> Network:
    """BCE after a softmax whose last layer is scaled up: predictions near 0 and 1, adjoints of 1e5 and more.

    BCE's ∂L/∂ŷ = (ŷ − y)/(ŷ(1 − ŷ)) is huge where ŷ nears 0 or 1, yet the gradients stay of order 1: the
    softmax's backward subtracts large, nearly equal terms, so torch's rounding errors scale with the
    adjoints, not with the gradients. These networks are the reason the tolerance's scale includes the largest
    adjoint (`verify.tolerances`); without it they give false mismatches. Hidden layers are unscaled (softplus
    stays below torch's threshold z > 20); some predictions may still round to 1 (no finite BCE): filter them.
    """
    acts = [a for a in sorted(ACTIVATIONS) if a != "sigmoid"]  # for BCE, the last activation is then softmax
    net = draw(networks(architectures(max_depth=max_depth, losses=["bce"], activations=acts)))
    k = draw(st.sampled_from(list(scales)))
    last = net.layers[-1]
    scaled = Linear([[k * w for w in row] for row in last.weight], [k * b for b in last.bias], last.activation)
    return net.replace(layers=net.layers[:-1] + (scaled,), name="saturated")
