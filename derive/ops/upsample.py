r"""Upsampling (``nn.Upsample``, ``F.interpolate``) of the spatial dims, nearest and bilinear, with torch's
source coordinates.

Along a dim of input length L and output length n, with scale s (1/scale_factor when one is given, else
L/n; (L − 1)/(n − 1) with ``align_corners``):

- nearest: output i reads input ⌊i·s⌋ (at most L − 1): elements move, nothing new is defined;
- bilinear: output i sits at c = (i + ½)s − ½ (c = i·s with ``align_corners``), clamped at 0; it is
  (1 − λ)·x[⌊c⌋] + λ·x[⌊c⌋ + 1] with λ = c − ⌊c⌋, along each dim in turn.

>>> weights_along(4, 2, 2.0, False, "bilinear")[:2]
[((0, 1.0), (1, 0.0)), ((0, 0.75), (1, 0.25))]
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp

from derive.errors import ShapeError
from derive.ops.tensor import Sample, TensorOp, exact, register, symbols_only, torch_module
from derive.terms import dot


def weights_along(n: int, L: int, scale: float | None, align_corners: bool, mode: str) -> list[tuple]:
    """For each of n outputs along a dim of input length L: its ((input index, weight), …) pairs."""
    if align_corners:
        s = (L - 1) / (n - 1) if n > 1 else 0.0
    else:
        s = 1.0 / scale if scale is not None and scale > 0 else L / n
    result = []
    for i in range(n):
        if mode == "nearest":
            result.append(((min(int(np.floor(i * s)), L - 1), 1.0),))
            continue
        c = i * s if align_corners else max((i + 0.5) * s - 0.5, 0.0)
        low = min(int(np.floor(c)), L - 1)
        high = min(low + 1, L - 1)
        lam = c - low
        result.append(((low, 1.0 - lam), (high, lam)))
    return result


@register
@dataclass(frozen=True)
class Upsample(TensorOp):
    """``nn.Upsample``/``F.interpolate`` (nearest, bilinear) to ``size``, from ``scales`` when they were given."""

    mode: str = "nearest"
    size: tuple[int, ...] = ()
    scales: tuple[float, ...] | None = None
    align_corners: bool = False
    key = "upsample"
    aten = ("upsample_nearest2d.vec", "upsample_bilinear2d.vec", "upsample_nearest1d.vec", "upsample_linear1d.vec")

    @classmethod
    def read(cls, call: Any) -> Any:
        mode = "nearest" if "nearest" in call.name else "bilinear"
        size = tuple(call.real.shape[2:])
        scales = call.arg("scale_factors")
        return call.op("upsample", call.input("input"), mode=mode, size=size,
                       scales=None if scales is None else tuple(float(v) for v in scales),
                       align_corners=bool(call.arg("align_corners", False)))

    @classmethod
    def samples(cls) -> Iterable[Sample]:
        x = np.random.default_rng(12).uniform(-1, 1, (1, 2, 2, 3))
        return [Sample(cls("nearest", (4, 6), (2.0, 2.0)), (x,)), Sample(cls("bilinear", (4, 5), None), (x,)),
                Sample(cls("bilinear", (3, 5), None, True), (x,)), Sample(cls("bilinear", (1, 1), (0.5, 0.5)), (x,))]

    def _maps(self, spatial: tuple[int, ...]) -> list[list[tuple]]:
        if len(spatial) != len(self.size):
            raise ShapeError(f"upsample: {len(spatial)} spatial dims for an output size of {self.size}")
        scales = self.scales or (None,) * len(spatial)
        return [weights_along(n, L, s, self.align_corners, self.mode) for n, L, s in zip(self.size, spatial, scales)]

    def lower(self, lowering, x: np.ndarray) -> np.ndarray:
        spatial = x.shape[2:]
        maps = self._maps(spatial)
        out = np.empty(x.shape[:2] + self.size, dtype=object)
        new = lowering.new(x.shape[:2] + self.size) if self.mode != "nearest" else None
        for lead in np.ndindex(x.shape[:2]):
            for position in itertools.product(*(range(n) for n in self.size)):
                taps: dict[tuple, float] = {}
                for combo in itertools.product(*(maps[d][position[d]] for d in range(len(position)))):
                    index = tuple(i for i, _ in combo)
                    taps[index] = taps.get(index, 0.0) + float(np.prod([w for _, w in combo]))
                taps = {i: w for i, w in taps.items() if w != 0.0}
                if self.mode == "nearest":
                    (index,) = taps
                    out[lead + position] = x[lead + index]
                    continue
                pairs = [(exact(w), x[lead + index]) for index, w in taps.items()]
                symbol = new[lead + position]
                lowering.define(symbol, dot(pairs) if pairs else sp.S.Zero, symbols_only([(e, w) for w, e in pairs]))
                out[lead + position] = symbol
        return out

    def _aten(self) -> tuple[Any, Any]:
        aten = torch_module().ops.aten
        if self.mode == "nearest":
            return (aten.upsample_nearest2d, aten.upsample_nearest2d_backward) if len(self.size) == 2 else \
                (aten.upsample_nearest1d, aten.upsample_nearest1d_backward)
        return (aten.upsample_bilinear2d, aten.upsample_bilinear2d_backward) if len(self.size) == 2 else \
            (aten.upsample_linear1d, aten.upsample_linear1d_backward)

    def _scales(self) -> list:
        return list(self.scales) if self.scales is not None else [None] * len(self.size)

    def reads(self) -> tuple[bool, bool]:
        return True, False

    def forward(self, x: Any) -> Any:
        forward, _ = self._aten()
        size, scales = (None, list(self.scales)) if self.scales is not None else (list(self.size), None)
        if self.mode == "nearest":
            return forward.vec(x, size, scales)
        return forward.vec(x, size, self.align_corners, scales)

    def backward(self, g: Any, inputs: Sequence[Any], out: Any, wanted: Sequence[bool], saved: Any = None) -> list:
        _, backward = self._aten()
        x = inputs[0]
        if self.mode == "nearest":
            return [backward.default(g, list(self.size), list(x.shape), *self._scales())]
        return [backward.default(g, list(self.size), list(x.shape), self.align_corners, *self._scales())]

    def describe(self, *inputs: str) -> str:
        return rf"\operatorname{{upsample}}_{{\text{{{self.mode}}}}}\left({inputs[0]}\right)"
