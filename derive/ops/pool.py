r"""Pooling, 1-D and 2-D, with torch's semantics (``ceil_mode=False``): ``max_pool``, ``avg_pool`` and
``adaptive_avg_pool`` over the spatial dims of (N, C, *spatial) or unbatched (C, *spatial) input.

Max pooling must not depend on the values (a lowered graph is reused for other weights), so each output is
`MaxOf` its window, a function of its own, and its partial with respect to the k-th element of the window is
`Winner`\ (k, window): 1 where that element is the *first* maximal one in the window's row-major order, else
0 — torch's rule on ties (its kernels keep the first maximum: ``val > maxval``), checked against autograd in
tests/test_cnn_models.py. Padding for max pooling is −∞, which never wins: padded taps are left out of the
window. Average pooling is a mean over the window with padded zeros counted (``count_include_pad=True``,
torch's default) or not; adaptive average pooling uses torch's windows, [⌊iL/n⌋, ⌈(i+1)L/n⌉).

>>> import numpy as np, sympy as sp
>>> from derive.model.lower import Lowering
>>> low = Lowering()
>>> x = np.array(sp.symbols("a b c d"), dtype=object).reshape(1, 1, 4)
>>> MaxPool(kernel=(2,), stride=(2,), padding=(0,)).lower(low, x).shape, str(low.nodes[0].expr)
((1, 1, 2), 'Max(a, b)')
>>> [(str(s), str(d)) for s, d in low.nodes[0].partials]
[('a', 'winner(1, a, b)'), ('b', 'winner(2, a, b)')]
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp

from derive.errors import ShapeError
from derive.ops.conv import windows
from derive.ops.conv_arrays import small_spatial
from derive.ops.extrema import MaxOf, Winner
from derive.ops.reduce import average
from derive.ops.tensor import Sample, TensorOp, register, torch_module


def _as_2d(x: Any, nd: int) -> Any:
    """A 1-D spatial tensor (N, C, L) as 2-D (N, C, 1, L): torch's 2-D kernels serve both."""
    return x.unsqueeze(-2) if nd == 1 else x


def _pairs(values: tuple[int, ...], nd: int, fill: int) -> list[int]:
    return [fill, *values] if nd == 1 else list(values)


def _window_options(call: Any) -> dict[str, tuple[int, ...]]:
    """kernel, stride (the kernel's when not given) and padding of an ATen pooling, one int per dim."""
    if call.arg("ceil_mode"):
        call.refuse("ceil_mode=True")
    kernel = tuple(int(k) for k in call.arg("kernel_size"))
    nd = len(call.shape("self")) - 2 if len(kernel) == 1 else len(kernel)
    kernel = kernel * nd if len(kernel) == 1 else kernel
    stride = tuple(int(s) for s in call.arg("stride") or kernel)
    padding = tuple(int(p) for p in call.arg("padding"))
    return {"kernel": kernel, "stride": stride * nd if len(stride) == 1 else stride,
            "padding": padding * nd if len(padding) == 1 else padding}


def _spatial(x: np.ndarray, nd: int, what: str) -> tuple[np.ndarray, bool]:
    """The input as (N, C, *spatial), and whether it was unbatched (C, *spatial)."""
    if x.ndim == nd + 1:
        return x[None], True
    if x.ndim != nd + 2:
        raise ShapeError(f"{what}: a {nd}-D pooling takes (N, C, *spatial) or (C, *spatial), got shape {x.shape}")
    return x, False


@dataclass(frozen=True)
class _Pool(TensorOp):
    """Pooling over windows of the spatial dims; subclasses give the windows and one window's rule."""

    def lower(self, lowering, x: np.ndarray) -> np.ndarray:
        nd = self.dims()
        x, unbatched = _spatial(x, nd, self.key)
        batch, channels, spatial = x.shape[0], x.shape[1], x.shape[2:]
        out_spatial, taps, divisors = self.windows(spatial)
        X = x.reshape(batch, channels, -1)
        out = lowering.new((batch, channels, *out_spatial))
        flat = out.reshape(batch, channels, -1)
        for n in range(batch):
            for c in range(channels):
                for position, window in enumerate(taps):
                    elements = [X[n, c, i] for i in window]
                    expr, partials = self.element(elements, divisors[position])
                    lowering.define(flat[n, c, position], expr, _merged(partials))
        return out[0] if unbatched else out

    def dims(self) -> int:
        raise NotImplementedError

    def windows(self, spatial: tuple[int, ...]) -> tuple[tuple[int, ...], list[list[int]], list[int]]:
        """The output's spatial shape; per output position its input positions and the mean's divisor."""
        raise NotImplementedError

    def element(self, elements: list[sp.Expr], divisor: int) -> tuple[sp.Expr, list]:
        raise NotImplementedError


def _merged(partials: list[tuple[sp.Expr, sp.Expr]]) -> tuple[tuple[sp.Symbol, sp.Expr], ...]:
    """Partials with respect to symbols only, one per symbol (a symbol twice in a window adds up)."""
    merged: dict[sp.Symbol, sp.Expr] = {}
    for s, d in partials:
        if s.is_Symbol:
            merged[s] = merged[s] + d if s in merged else d
    return tuple(merged.items())


@dataclass(frozen=True)
class _Windowed(_Pool):
    kernel: tuple[int, ...] = (1,)
    stride: tuple[int, ...] = (1,)
    padding: tuple[int, ...] = (0,)

    def dims(self) -> int:
        return len(self.kernel)

    def proof_instance(self, shapes, data) -> tuple[Any, list, list]:
        """A batch of at most 2, at most 3 channels, at most 3 windows per spatial dim (`small_spatial`)."""
        x = shapes[0]
        nd = self.dims()
        spatial = small_spatial(x[-nd:], self.kernel, self.stride, tuple((p, p) for p in self.padding),
                                getattr(self, "dilation", (1,) * nd))
        lead = tuple(min(s, 3 - k) for k, s in enumerate(reversed(x[:-nd])))[::-1]  # C ≤ 3, N ≤ 2
        return self, [(*lead, *spatial)], list(data)

    def _taps(self, spatial: tuple[int, ...], dilation: tuple[int, ...]) -> tuple[tuple[int, ...], list[list[int]]]:
        if any(2 * p > k for p, k in zip(self.padding, self.kernel)):
            raise ShapeError(f"{self.key}: padding {self.padding} is more than half the kernel {self.kernel}")
        padding = tuple((p, p) for p in self.padding)
        out, taps = windows(spatial, self.kernel, self.stride, padding, dilation, self.key)
        return out, [[i for _, i in window] for window in taps]


class _MaxOfWindows:
    """Max pooling of any windows: each output is `MaxOf` its window, δ routed to the window's first maximum
    (its winner, which the forward pass keeps). A class gives torch's 2-D kernels: `_pooled` (output, winners)
    and `_routed` (the input's δ)."""

    def _pooled(self, x: Any, nd: int) -> tuple[Any, Any]:
        raise NotImplementedError

    def _routed(self, g: Any, x: Any, nd: int, winners: Any) -> Any:
        raise NotImplementedError

    def forward_saving(self, x: Any) -> tuple[Any, Any]:
        """The output and the flat index of each window's first maximum (its winner), kept for δ."""
        nd = self.dims()
        out, winners = self._pooled(_as_2d(x, nd), nd)
        return (out.squeeze(-2) if nd == 1 else out), winners

    def forward(self, x: Any) -> Any:
        return self.forward_saving(x)[0]

    def reads(self) -> tuple[bool, bool]:
        return True, False

    def backward(self, g: Any, inputs: Sequence[Any], out: Any, wanted: Sequence[bool], saved: Any = None) -> list:
        """δ routed to each window's first maximum (``saved``: its winners, from the forward pass)."""
        nd, x = self.dims(), inputs[0]
        winners = saved if saved is not None else self.forward_saving(x)[1]
        dx = self._routed(_as_2d(g, nd), _as_2d(x, nd), nd, winners)
        return [dx.squeeze(-2) if nd == 1 else dx]

    def element(self, elements, divisor):
        if not elements:
            raise ShapeError(f"{self.key}: a window lies wholly in the padding (torch gives −inf there)")
        if len(elements) == 1:
            return elements[0], [(elements[0], sp.S.One)]
        return MaxOf(*elements), [(e, Winner(k + 1, *elements)) for k, e in enumerate(elements)]


@register
@dataclass(frozen=True)
class MaxPool(_MaxOfWindows, _Windowed):
    """``nn.MaxPool1d/2d`` and ``nn.AdaptiveMaxPool1d/2d`` (its windows one size; else `AdaptiveMaxPool`): each
    output is `MaxOf` its window (padding is −∞: padded taps never win)."""

    key = "max_pool"
    dilation: tuple[int, ...] = (1,)
    aten = ("max_pool2d_with_indices.default", "max_pool1d_with_indices.default", "max_pool2d.default",
            "adaptive_max_pool2d.default", "adaptive_max_pool1d.default")

    @classmethod
    def read(cls, call: Any) -> Any:
        if call.name.startswith("adaptive"):  # windows of one size where the output size divides the input's
            out = tuple(int(n) for n in call.arg("output_size"))
            size = tuple(call.shape("self")[-len(out):])
            if any(n % m for n, m in zip(size, out)):  # windows of different sizes
                return call.op("adaptive_max_pool", call.input("self"), output_size=out), None
            kernel = tuple(n // m for n, m in zip(size, out))
            pooled = call.op("max_pool", call.input("self"), kernel=kernel, stride=kernel, padding=(0,) * len(out),
                             dilation=(1,) * len(out))
            return pooled, None
        options = _window_options(call)
        dilation = tuple(int(d) for d in call.arg("dilation"))
        nd = len(options["kernel"])
        pooled = call.op("max_pool", call.input("self"), **options, dilation=dilation * nd if len(dilation) == 1 else dilation)
        return (pooled, None) if "with_indices" in call.name else pooled

    @classmethod
    def samples(cls) -> Iterable[Sample]:
        x = np.random.default_rng(3).uniform(-1, 1, (1, 2, 4, 5))
        x[0, 0, 0, 1] = x[0, 0, 1, 0] = x[0, 0, 0, 0] = 2.0  # a tie: the first maximum takes the gradient
        return [Sample(cls((2, 2), (2, 2), (0, 0), (1, 1)), (x,)), Sample(cls((3,), (2,), (1,), (1,)), (x[0],)),
                Sample(cls((2, 2), (1, 2), (1, 0), (1, 2)), (x,))]

    def _pooled(self, x: Any, nd: int) -> tuple[Any, Any]:
        return torch_module().nn.functional.max_pool2d(x, *_max_pool_arguments(self, nd), return_indices=True)

    def _routed(self, g: Any, x: Any, nd: int, winners: Any) -> Any:
        return torch_module().ops.aten.max_pool2d_with_indices_backward(
            g, x, *_max_pool_arguments(self, nd), False, winners)

    def windows(self, spatial):
        out, taps = self._taps(spatial, self.dilation)
        return out, taps, [1] * len(taps)

    def describe(self, *inputs: str) -> str:
        return rf"\operatorname{{maxpool}}_{{{_size(self.kernel)}}}\left({inputs[0]}\right)"


def _size(sizes: tuple[int, ...]) -> str:
    return r" \times ".join(map(str, sizes))


@register
@dataclass(frozen=True)
class AvgPool(_Windowed):
    """``nn.AvgPool1d/2d``: the mean of each window, padded zeros counted (torch's default) or not."""

    key = "avg_pool"
    count_include_pad: bool = True
    aten = ("avg_pool2d.default", "avg_pool1d.default")

    @classmethod
    def read(cls, call: Any) -> Any:
        if call.arg("divisor_override") is not None:
            call.refuse(f"divisor_override={call.arg('divisor_override')!r}")
        return call.op("avg_pool", call.input("self"), **_window_options(call),
                       count_include_pad=bool(call.arg("count_include_pad", True)))

    @classmethod
    def samples(cls) -> Iterable[Sample]:
        x = np.random.default_rng(4).uniform(-1, 1, (1, 2, 4, 5))
        return [Sample(cls((2, 2), (2, 2), (1, 0)), (x,)), Sample(cls((2, 3), (1, 2), (1, 1), False), (x,)),
                Sample(cls((3,), (2,), (1,)), (x[0],))]

    def forward(self, x: Any) -> Any:
        nd = self.dims()
        out = torch_module().nn.functional.avg_pool2d(_as_2d(x, nd), *_window_arguments(self, nd),
                                                      count_include_pad=self.count_include_pad)
        return out.squeeze(-2) if nd == 1 else out

    def backward(self, g: Any, inputs: Sequence[Any], out: Any, wanted: Sequence[bool], saved: Any = None) -> list:
        nd, x = self.dims(), inputs[0]
        dx = torch_module().ops.aten.avg_pool2d_backward(_as_2d(g, nd), _as_2d(x, nd), *_window_arguments(self, nd),
                                                         False, self.count_include_pad, None)
        return [dx.squeeze(-2) if nd == 1 else dx]

    def windows(self, spatial):
        out, taps = self._taps(spatial, (1,) * len(spatial))
        size = math.prod(self.kernel)
        return out, taps, [size if self.count_include_pad else len(window) for window in taps]

    def element(self, elements, divisor):
        return average(elements, divisor)

    def describe(self, *inputs: str) -> str:
        return rf"\operatorname{{avgpool}}_{{{_size(self.kernel)}}}\left({inputs[0]}\right)"


@register
@dataclass(frozen=True)
class AdaptiveAvgPool(_Pool):
    """``nn.AdaptiveAvgPool1d/2d``: output i along a dim of length L averages [⌊iL/n⌋, ⌈(i+1)L/n⌉)."""

    key = "adaptive_avg_pool"
    output_size: tuple[int, ...] = (1,)
    aten = ("_adaptive_avg_pool2d.default", "adaptive_avg_pool2d.default", "adaptive_avg_pool1d.default")

    @classmethod
    def read(cls, call: Any) -> Any:
        return call.op("adaptive_avg_pool", call.input("self"), output_size=tuple(int(n) for n in call.arg("output_size")))

    @classmethod
    def samples(cls) -> Iterable[Sample]:
        x = np.random.default_rng(5).uniform(-1, 1, (1, 2, 5, 4))
        return [Sample(cls((2, 3)), (x,)), Sample(cls((3,)), (x[0],))]

    def forward(self, x: Any) -> Any:
        nd = self.dims()
        out = torch_module().nn.functional.adaptive_avg_pool2d(_as_2d(x, nd), _pairs(self.output_size, nd, 1))
        return out.squeeze(-2) if nd == 1 else out

    def backward(self, g: Any, inputs: Sequence[Any], out: Any, wanted: Sequence[bool], saved: Any = None) -> list:
        nd, x = self.dims(), inputs[0]
        dx = torch_module().ops.aten._adaptive_avg_pool2d_backward(_as_2d(g, nd), _as_2d(x, nd))
        return [dx.squeeze(-2) if nd == 1 else dx]

    def dims(self) -> int:
        return len(self.output_size)

    def windows(self, spatial):
        return adaptive_windows(self.key, spatial, self.output_size)

    def element(self, elements, divisor):
        return average(elements, divisor)

    def describe(self, *inputs: str) -> str:
        return rf"\operatorname{{avgpool}}_{{\to {_size(self.output_size)}}}\left({inputs[0]}\right)"


@register
@dataclass(frozen=True)
class AdaptiveMaxPool(_MaxOfWindows, _Pool):
    """``nn.AdaptiveMaxPool1d/2d`` whose windows differ in size (the output size does not divide the input's):
    output i along a dim of length L is `MaxOf` [⌊iL/n⌋, ⌈(i+1)L/n⌉), its first maximum taking the gradient."""

    key = "adaptive_max_pool"
    output_size: tuple[int, ...] = (1,)
    aten = ()  # read by `MaxPool.read` from torch's adaptive_max_pool1d/2d, max_pool where the windows are even

    @classmethod
    def samples(cls) -> Iterable[Sample]:
        x = np.random.default_rng(6).uniform(-1, 1, (1, 2, 5, 4))
        x[0, 1, 1, 0] = x[0, 1, 1, 1] = 2.0  # a tie in the windows that share column 1: the first maximum wins
        return [Sample(cls((2, 3)), (x,)), Sample(cls((3,)), (x[0],))]

    def _pooled(self, x: Any, nd: int) -> tuple[Any, Any]:
        return torch_module().nn.functional.adaptive_max_pool2d(x, _pairs(self.output_size, nd, 1), return_indices=True)

    def _routed(self, g: Any, x: Any, nd: int, winners: Any) -> Any:
        return torch_module().ops.aten.adaptive_max_pool2d_backward(g, x, winners)

    def dims(self) -> int:
        return len(self.output_size)

    def windows(self, spatial):
        return adaptive_windows(self.key, spatial, self.output_size)

    def describe(self, *inputs: str) -> str:
        return rf"\operatorname{{maxpool}}_{{\to {_size(self.output_size)}}}\left({inputs[0]}\right)"


def adaptive_windows(key: str, spatial: tuple[int, ...], output_size: tuple[int, ...]):
    """torch's adaptive windows: output i along a dim of length L takes [⌊iL/n⌋, ⌈(i+1)L/n⌉); (output size,
    each window's flat input indices, each window's size)."""
    if any(n < 1 for n in output_size):
        raise ShapeError(f"{key}: output size {output_size} must be positive")
    ranges = [[range(i * L // n, -(-(i + 1) * L // n)) for i in range(n)] for L, n in zip(spatial, output_size)]
    taps = [[int(np.ravel_multi_index(index, spatial)) for index in itertools.product(*along)]
            for along in itertools.product(*ranges)]
    return output_size, taps, [len(window) for window in taps]


def _window_arguments(op: Any, nd: int) -> tuple[list[int], ...]:
    """(kernel, stride, padding) of a pooling as torch's 2-D kernels take them (1-D as 1 × L)."""
    return _pairs(op.kernel, nd, 1), _pairs(op.stride, nd, 1), _pairs(op.padding, nd, 0)


def _max_pool_arguments(op: Any, nd: int) -> tuple[list[int], ...]:
    """(kernel, stride, padding, dilation) of a max pooling, as `_window_arguments`."""
    return (*_window_arguments(op, nd), _pairs(op.dilation, nd, 1))
