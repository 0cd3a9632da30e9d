r"""Convolution, 1-D and 2-D (``nn.Conv1d``/``Conv2d``, ``F.conv1d``/``conv2d``) with torch's semantics:
input (N, C_in, *spatial), weight (C_out, C_in/groups, *kernel), optional bias (C_out); stride, zero padding
(before and after, per dim: ``"same"`` is resolved by the reader, and may be uneven), dilation and groups.

Each output element is a sum of products, Σ W·x (+ b), over the taps of its window that fall inside the
input: a tap on the zero padding adds 0·W and is left out, so its weight has no partial there. Partials from
structure: ∂/∂W = x, ∂/∂x = W, ∂/∂b = 1. The window arithmetic (`windows`) is shared with pooling.

>>> import numpy as np, sympy as sp
>>> from derive.model.lower import Lowering
>>> low = Lowering()
>>> x = np.array(sp.symbols("x1:4"), dtype=object).reshape(1, 1, 3)
>>> K = np.array(sp.symbols("K1:3"), dtype=object).reshape(1, 1, 2)
>>> Conv(stride=(1,), padding=((0, 0),), dilation=(1,)).lower(low, x, K).shape, str(low.nodes[0].expr)
((1, 1, 2), 'K1*x1 + K2*x2')
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from derive.errors import ShapeError
from derive.ops.linalg import _dot
from derive.ops.tensor import TensorOp, register, symbols_only

#: the taps of one output position: (flat index into the kernel, flat index into the input's spatial dims)
Taps = list[tuple[int, int]]


def windows(
    spatial: tuple[int, ...], kernel: tuple[int, ...], stride: tuple[int, ...], padding: tuple[tuple[int, int], ...],
    dilation: tuple[int, ...], what: str,
) -> tuple[tuple[int, ...], list[Taps]]:
    """The output's spatial shape, and for each output position (row-major) its taps inside the input.

    Output size per dim: ⌊(L + p_before + p_after − d(k − 1) − 1)/s⌋ + 1 (torch's, with ``ceil_mode=False``).
    Taps on the padding are left out; the taps keep the kernel's row-major order.

    >>> windows((3,), (2,), (1,), ((1, 1),), (1,), "pool")
    ((4,), [[(1, 0)], [(0, 0), (1, 1)], [(0, 1), (1, 2)], [(0, 2)]])
    """
    nd = len(spatial)
    if not len(kernel) == len(stride) == len(padding) == len(dilation) == nd:
        raise ShapeError(f"{what}: kernel {kernel}, stride {stride}, padding {padding} and dilation {dilation} "
                         f"do not fit {nd} spatial dims")
    out = []
    for L, k, s, (before, after), d in zip(spatial, kernel, stride, padding, dilation):
        if k < 1 or s < 1 or d < 1 or before < 0 or after < 0:
            raise ShapeError(f"{what}: kernel, stride and dilation must be positive, padding non-negative")
        size = (L + before + after - d * (k - 1) - 1) // s + 1
        if size < 1:
            raise ShapeError(f"{what}: a kernel of {k} (dilation {d}) does not fit an input of {L} padded by "
                             f"{before} + {after}")
        out.append(size)
    taps_per_dim = [
        [[(j, o * s - before + j * d) for j in range(k) if 0 <= o * s - before + j * d < L] for o in range(size)]
        for L, k, s, (before, _), d, size in zip(spatial, kernel, stride, padding, dilation, out)
    ]
    result = []
    for window in itertools.product(*taps_per_dim):  # one output position: its taps along each dim
        result.append([(int(np.ravel_multi_index(tuple(j for j, _ in tap), kernel)),
                         int(np.ravel_multi_index(tuple(i for _, i in tap), spatial)))
                        for tap in itertools.product(*window)])
    return tuple(out), result


@register
@dataclass(frozen=True)
class Conv(TensorOp):
    """N-d convolution (cross-correlation, as torch): one output element is Σ W·x (+ b) over its window."""

    key = "conv"
    stride: tuple[int, ...] = (1,)
    padding: tuple[tuple[int, int], ...] = ((0, 0),)
    dilation: tuple[int, ...] = (1,)
    groups: int = 1

    def lower(self, lowering, x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
        nd = weight.ndim - 2
        unbatched = x.ndim == nd + 1
        if unbatched:
            x = x[None]
        if nd < 1 or x.ndim != nd + 2:
            raise ShapeError(f"conv: input of shape {x.shape} and weight of shape {weight.shape} "
                             f"(C_out × C_in/groups × kernel) do not fit")
        batch, channels = x.shape[:2]
        c_out, per_group = weight.shape[:2]
        g = self.groups
        if g < 1 or channels != per_group * g or c_out % g:
            raise ShapeError(f"conv: {channels} input channels, weight of shape {weight.shape} and groups={g} "
                             "do not fit")
        if bias is not None and bias.shape != (c_out,):
            raise ShapeError(f"conv: bias of shape {bias.shape} for {c_out} output channels")
        spatial, kernel = x.shape[2:], weight.shape[2:]
        out_spatial, taps = windows(spatial, kernel, self.stride, self.padding, self.dilation, "conv")
        X = x.reshape(batch, channels, -1)
        W = weight.reshape(c_out, per_group, -1)
        out = lowering.new((batch, c_out, *out_spatial))
        flat = out.reshape(batch, c_out, -1)
        outs_per_group = c_out // g
        for n in range(batch):
            for co in range(c_out):
                first = (co // outs_per_group) * per_group
                for position, window in enumerate(taps):
                    pairs = [(W[co, ci, k], X[n, first + ci, i]) for ci in range(per_group) for k, i in window]
                    expr, partials = _dot(pairs, None if bias is None else bias[co])
                    lowering.define(flat[n, co, position], expr, symbols_only(partials))
        return out[0] if unbatched else out

    def describe(self, *inputs: str) -> str:
        return rf"{inputs[0]} \star {inputs[1]}" + (f" + {inputs[2]}" if len(inputs) > 2 else "")
