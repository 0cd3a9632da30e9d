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

import dataclasses
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from derive.errors import ShapeError
from derive.ops import conv_arrays
from derive.ops.linalg import _dot
from derive.ops.tensor import Sample, TensorOp, register, symbols_only, torch_module

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
    aten = ("convolution.default",)

    @classmethod
    def read(cls, call: Any) -> Any:
        """``aten.convolution``: a convolution, or a transposed one (`ConvTranspose`)."""
        nd = len(call.shape("weight")) - 2
        stride, padding, dilation = (tuple(int(v) for v in call.arg(n)) for n in ("stride", "padding", "dilation"))
        stride, padding, dilation = (v * nd if len(v) == 1 else v for v in (stride, padding, dilation))
        inputs = (call.input("input"), call.input("weight"), call.input("bias"))
        if call.arg("transposed"):
            output_padding = tuple(int(v) for v in call.arg("output_padding"))
            return call.op("conv_transpose", *inputs, stride=stride, padding=padding, dilation=dilation,
                           output_padding=output_padding * nd if len(output_padding) == 1 else output_padding,
                           groups=int(call.arg("groups")))
        return call.op("conv", *inputs, stride=stride, padding=tuple((p, p) for p in padding), dilation=dilation,
                       groups=int(call.arg("groups")))

    @classmethod
    def samples(cls) -> Iterable[Sample]:
        rng = np.random.default_rng(1)
        x1, x2 = rng.uniform(-1, 1, (2, 2, 5)), rng.uniform(-1, 1, (1, 2, 4, 5))
        return [Sample(cls((1,), ((1, 1),), (1,), 1), (x1, rng.uniform(-1, 1, (3, 2, 3)), rng.uniform(-1, 1, 3))),
                Sample(cls((2, 1), ((1, 0), (0, 1)), (1, 2), 2), (x2, rng.uniform(-1, 1, (4, 1, 2, 2)), None))]

    def reads(self) -> tuple[bool, bool]:
        return True, False

    def forward(self, x: Any, weight: Any, bias: Any = None) -> Any:
        F = torch_module().nn.functional
        conv = F.conv1d if weight.dim() == 3 else F.conv2d if weight.dim() == 4 else F.conv3d
        own, rest = _kernel_padding(self.padding)  # torch's kernel pads by itself where it can
        return conv(padded(x, rest), weight, bias, self.stride, own, self.dilation, self.groups)

    def backward(self, g: Any, inputs: Sequence[Any], out: Any, wanted: Sequence[bool], saved: Any = None) -> list:
        """torch's convolution backward kernel as the tensor rule: ∂K = X ⋆ δ, ∂X = δ ∗ rot180(K), ∂b = Σ δ."""
        x, W = inputs[0], inputs[1]
        b = inputs[2] if len(inputs) > 2 else None
        nd = W.dim() - 2
        own, rest = _kernel_padding(self.padding)
        dx, dW, db = torch_module().ops.aten.convolution_backward(
            g, padded(x, rest), W, None if b is None else [b.shape[0]], list(self.stride), own,
            list(self.dilation), False, [0] * nd, self.groups, [bool(wanted[0]), True, b is not None])
        if dx is not None and has_padding(rest):
            dx = dx[(slice(None), slice(None), *(slice(before, before + size)
                                                 for (before, _), size in zip(rest, x.shape[2:])))]
        return [dx, dW, db]

    # --- the tensor program: ∂K = X ⋆ Δ, ∂X = Δ ∗ rot180(K), ∂b = Σ Δ (derive.ops.conv_arrays) -------------

    proof_shrinks = True

    def numpy_forward(self, x: Any, weight: Any, bias: Any = None) -> Any:
        unbatched = x.ndim == weight.ndim - 1
        out = conv_arrays.correlate(conv_arrays.pad(x[None] if unbatched else x, self.padding), weight,
                                    self.stride, self.dilation, self.groups)
        if bias is not None:
            out = out + bias.reshape(-1, *(1,) * (weight.ndim - 2))
        return out[0] if unbatched else out

    def tensor_rule(self, g, inputs, parts, wanted, shapes, shape) -> list[Any]:
        """∂X = Δ ∗ rot180(K) (a full convolution), ∂K = X ⋆ Δ, ∂b = Σ Δ over the batch and the spatial dims."""
        from derive.tensor.expr import call

        if len(shapes[0]) != len(shapes[1]):  # an unbatched input: torch's kernel as the rule
            return super().tensor_rule(g, inputs, parts, wanted, shapes, shape)
        x, kernel = inputs[0], inputs[1]
        options = {"stride": self.stride, "padding": self.padding, "dilation": self.dilation, "groups": self.groups}
        rules = [call("conv.full", g, call("conv.rot180", kernel, groups=self.groups), size=shapes[0][2:], **options)
                 if wanted[0] else None,
                 call("conv.weight", x, g, kernel=shapes[1][2:], **options) if wanted[1] else None]
        if len(inputs) > 2:
            rules.append(call("sum", g, dims=(0, *range(2, len(shape))), keepdim=False) if wanted[2] else None)
        return rules

    @classmethod
    def tensor_function(cls, rule: str, args: list[Any], options: dict[str, Any], backend: str) -> Any:
        if rule not in ("weight", "full", "rot180"):
            return super().tensor_function(rule, args, options, backend)
        if rule == "rot180":
            return conv_arrays.rot180(args[0], options["groups"]) if backend != "torch" else \
                _torch_rot180(args[0], options["groups"])
        stride, dilation, groups = tuple(options["stride"]), tuple(options["dilation"]), options["groups"]
        padding = tuple(tuple(p) for p in options["padding"])
        if rule == "weight":
            x, g = args
            kernel = tuple(options["kernel"])
            if backend == "torch":  # torch's kernel for X ⋆ Δ (the registry's tests hold it to the rule)
                shape = (g.shape[1], x.shape[1] // groups, *kernel)
                return torch_module().ops.aten.convolution_backward(
                    g, padded(x, padding), x.new_empty(shape), None, list(stride), [0] * len(kernel), list(dilation),
                    False, [0] * len(kernel), groups, [False, True, False])[1]
            return conv_arrays.weight_gradient(conv_arrays.pad(x, padding), g, kernel, stride, dilation, groups)
        g, turned = args
        size = tuple(options["size"])
        if backend == "torch":
            return _torch_full(g, turned, size, stride, padding, dilation, groups)
        return conv_arrays.full_correlation(g, turned, size, stride, padding, dilation, groups)

    @classmethod
    def tensor_latex(cls, rule: str, args: list[str], options: dict[str, Any]) -> str:
        if rule == "rot180":
            return rf"\operatorname{{rot}}_{{180}}\left({args[0]}\right)"
        if rule == "full":
            return rf"{args[0]} \ast {args[1]}"
        if rule == "weight":
            return rf"{args[0]} \star {args[1]}"
        return super().tensor_latex(rule, args, options)

    def proof_instance(self, shapes, data) -> tuple[Any, list, list]:
        """A batch of 2, 2 input and 3 output channels per group (at most 2 groups), the same kernel, stride,
        padding and dilation, and 3 output positions per spatial dim (the first and last windows reach the
        padding as the model's do) with the same rows left unread by the stride."""
        x, weight = shapes[0], shapes[1]
        if len(x) != len(weight):
            return self, list(shapes), list(data)
        groups = min(self.groups, 2)
        c_in, c_out = min(x[1] // self.groups, 2), min(weight[0] // self.groups, 3)
        kernel = weight[2:]
        spatial = conv_arrays.small_spatial(x[2:], kernel, self.stride, self.padding, self.dilation)
        op = dataclasses.replace(self, groups=groups)
        new = [(min(x[0], 2), c_in * groups, *spatial), (c_out * groups, c_in, *kernel)]
        if len(shapes) > 2:
            new.append(None if shapes[2] is None else (c_out * groups,))
        return op, new, list(data)

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


def _torch_rot180(weight: Any, groups: int) -> Any:
    c_out, per_group, *kernel = weight.shape
    turned = weight.reshape(groups, c_out // groups, per_group, *kernel).transpose(1, 2)
    turned = turned.reshape(groups * per_group, c_out // groups, *kernel).flip(list(range(2, 2 + len(kernel))))
    return turned.contiguous()  # a strided kernel sends torch's convolution down a slow path


def _torch_full(g: Any, turned: Any, size: tuple[int, ...], stride: tuple[int, ...],
                padding: tuple[tuple[int, int], ...], dilation: tuple[int, ...], groups: int) -> Any:
    """`conv_arrays.full_correlation` on torch tensors, by torch's own convolution backward kernel (the kernel
    turned back: rot180 is its own inverse); the tests hold it to the rule, entry by entry."""
    kernel = _torch_rot180(turned, groups)
    nd = len(size)
    spread = [s + before + after for s, (before, after) in zip(size, padding)]
    shape = g.new_empty((g.shape[0], turned.shape[0], *spread))  # only its shape is read
    dx = torch_module().ops.aten.convolution_backward(
        g, shape, kernel, None, list(stride), [0] * nd, list(dilation), False, [0] * nd, groups,
        [True, False, False])[0]
    if has_padding(padding):
        dx = dx[(slice(None), slice(None), *(slice(before, before + n) for (before, _), n in zip(padding, size)))]
    return dx


def padded(x: Any, padding: tuple[tuple[int, int], ...]) -> Any:
    """``x`` with zeros before and after each spatial dim (itself, not a copy, when there are none)."""
    if not has_padding(padding):
        return x
    return torch_module().nn.functional.pad(x, [p for before_after in reversed(padding) for p in before_after])


def _kernel_padding(padding: tuple[tuple[int, int], ...]) -> tuple[list[int], tuple[tuple[int, int], ...]]:
    """The padding torch's convolution kernels apply themselves (the same before and after, in every dim),
    and what is left to pad by hand: ``([1, 1], ((0, 0), (0, 0)))`` for ``((1, 1), (1, 1))``."""
    if all(before == after for before, after in padding):
        return [before for before, _ in padding], tuple((0, 0) for _ in padding)
    return [0] * len(padding), padding


def has_padding(padding: tuple[tuple[int, int], ...]) -> bool:
    return any(before or after for before, after in padding)


@register
@dataclass(frozen=True)
class ConvTranspose(TensorOp):
    """Transposed convolution (``nn.ConvTranspose1d/2d``): each input element spreads W·x over its window of
    the output; out[o] = Σ W[k]·x[i] over the taps with o = i·s − p + k·d (+ b). Weight (C_in, C_out/groups,
    *kernel); output size (L − 1)s − 2p + d(k − 1) + output_padding + 1."""

    stride: tuple[int, ...] = (1,)
    padding: tuple[int, ...] = (0,)
    dilation: tuple[int, ...] = (1,)
    output_padding: tuple[int, ...] = (0,)
    groups: int = 1
    key = "conv_transpose"

    @classmethod
    def samples(cls) -> Iterable[Sample]:
        rng = np.random.default_rng(2)
        return [Sample(cls((2,), (1,), (1,), (1,), 1), (rng.uniform(-1, 1, (2, 2, 3)), rng.uniform(-1, 1, (2, 3, 3)),
                                                          rng.uniform(-1, 1, 3))),
                Sample(cls((2, 1), (0, 1), (1, 1), (1, 0), 2), (rng.uniform(-1, 1, (1, 2, 3, 3)),
                                                                 rng.uniform(-1, 1, (2, 1, 2, 3)), None))]

    def _taps(self, spatial: tuple[int, ...], kernel: tuple[int, ...]) -> tuple[tuple[int, ...], list[Taps]]:
        """The output's spatial shape, and for each output position its (kernel, input) taps."""
        out = tuple((L - 1) * s - 2 * p + d * (k - 1) + op + 1 for L, s, p, d, k, op in
                    zip(spatial, self.stride, self.padding, self.dilation, kernel, self.output_padding))
        if any(o < 1 for o in out):
            raise ShapeError(f"conv_transpose: the output would be empty ({out})")
        taps: list[Taps] = [[] for _ in range(int(np.prod(out)))]
        for i in itertools.product(*(range(L) for L in spatial)):
            for k in itertools.product(*(range(n) for n in kernel)):
                o = tuple(ii * s - p + kk * d for ii, s, p, kk, d in zip(i, self.stride, self.padding, k, self.dilation))
                if all(0 <= v < n for v, n in zip(o, out)):
                    taps[int(np.ravel_multi_index(o, out))].append(
                        (int(np.ravel_multi_index(k, kernel)), int(np.ravel_multi_index(i, spatial))))
        return out, taps

    def lower(self, lowering, x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
        nd = weight.ndim - 2
        unbatched = x.ndim == nd + 1
        if unbatched:
            x = x[None]
        batch, channels = x.shape[:2]
        g = self.groups
        if channels != weight.shape[0] or channels % g:
            raise ShapeError(f"conv_transpose: {channels} input channels for a weight of shape {weight.shape}")
        per_group_in, per_group_out = channels // g, weight.shape[1]
        c_out = per_group_out * g
        out_spatial, taps = self._taps(x.shape[2:], weight.shape[2:])
        X = x.reshape(batch, channels, -1)
        W = weight.reshape(channels, per_group_out, -1)
        out = lowering.new((batch, c_out, *out_spatial))
        flat = out.reshape(batch, c_out, -1)
        for n in range(batch):
            for co in range(c_out):
                group, local = divmod(co, per_group_out)
                for position, window in enumerate(taps):
                    pairs = [(W[ci, local, k], X[n, ci, i]) for ci in range(group * per_group_in, (group + 1) * per_group_in)
                             for k, i in window]
                    expr, partials = _dot(pairs, None if bias is None else bias[co])
                    lowering.define(flat[n, co, position], expr, symbols_only(partials))
        return out[0] if unbatched else out

    def reads(self) -> tuple[bool, bool]:
        return True, False

    def forward(self, x: Any, weight: Any, bias: Any = None) -> Any:
        F = torch_module().nn.functional
        conv = F.conv_transpose1d if weight.dim() == 3 else F.conv_transpose2d if weight.dim() == 4 else F.conv_transpose3d
        return conv(x, weight, bias, self.stride, self.padding, self.output_padding, self.groups, self.dilation)

    def backward(self, g: Any, inputs: Sequence[Any], out: Any, wanted: Sequence[bool], saved: Any = None) -> list:
        x, W = inputs[0], inputs[1]
        b = inputs[2] if len(inputs) > 2 else None
        return list(torch_module().ops.aten.convolution_backward(
            g, x, W, None if b is None else [b.shape[0]], list(self.stride), list(self.padding), list(self.dilation),
            True, list(self.output_padding), self.groups, [bool(wanted[0]), True, b is not None]))

    def describe(self, *inputs: str) -> str:
        return rf"{inputs[0]} \star^{{\top}} {inputs[1]}" + (f" + {inputs[2]}" if len(inputs) > 2 else "")
