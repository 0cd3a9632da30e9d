r"""Convolution's arithmetic on NumPy arrays (float64, or object arrays of exact numbers for proofs), and its
tensor rules as the textbook writes them: with Δ the output's adjoint,

- ∂L/∂K = X ⋆ Δ: the (padded) input correlated with Δ (`weight_gradient`);
- ∂L/∂X = Δ ∗ rot180(K): Δ, its rows spread by the stride (`dilate`) and padded to a full convolution,
  correlated with the kernel turned by 180° in every spatial dim, its in and out channels swapped
  (`rot180`, `full_correlation`);
- ∂L/∂b = Σ Δ over the batch and the spatial dims.

Every function loops over the kernel's taps (a 5×5 kernel: 25 tensor products), so a convolution's cost is
the taps times one matrix product, whatever the image's size.

>>> import numpy as np
>>> x, k = np.arange(5.0).reshape(1, 1, 5), np.array([1.0, -1.0]).reshape(1, 1, 2)
>>> correlate(x, k, (1,), (1,), 1).tolist()
[[[-1.0, -1.0, -1.0, -1.0]]]
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np


def pad(x: np.ndarray, padding: tuple[tuple[int, int], ...]) -> np.ndarray:
    """``x`` with zeros before and after each spatial dim (its last ones); a negative amount crops."""
    if not any(before or after for before, after in padding):
        return x
    lead = x.ndim - len(padding)
    grow = [(0, 0)] * lead + [(max(b, 0), max(a, 0)) for b, a in padding]
    if any(b or a for b, a in grow):
        x = np.pad(x, grow, constant_values=_zero(x))
    crop = tuple([slice(None)] * lead + [slice(max(-b, 0), x.shape[lead + i] - max(-a, 0))
                                         for i, (b, a) in enumerate(padding)])
    return x[crop]


def _zero(x: np.ndarray) -> Any:
    return 0 if x.dtype == object else 0.0


def _windows(spatial: tuple[int, ...], kernel: tuple[int, ...], stride: tuple[int, ...],
             dilation: tuple[int, ...]) -> tuple[tuple[int, ...], list[tuple[tuple[int, ...], tuple[slice, ...]]]]:
    """The output's spatial size, and for each kernel tap the slice of the input it reads at every output."""
    out = tuple((L - d * (k - 1) - 1) // s + 1 for L, k, s, d in zip(spatial, kernel, stride, dilation))
    taps = [(tap, tuple(slice(t * d, t * d + s * (o - 1) + 1, s) for t, d, s, o in zip(tap, dilation, stride, out)))
            for tap in itertools.product(*(range(k) for k in kernel))]
    return out, taps


def correlate(x: np.ndarray, weight: np.ndarray, stride: tuple[int, ...], dilation: tuple[int, ...],
              groups: int) -> np.ndarray:
    """torch's convolution (a cross-correlation) of an already padded ``x`` (N, C_in, *S) with ``weight``
    (C_out, C_in/groups, *k): out[n, o] = Σ_taps W[:, :, t] · x[n, :, o·s + t·d]."""
    n, _, *spatial = x.shape
    c_out, per_group, *kernel = weight.shape
    out_spatial, taps = _windows(tuple(spatial), tuple(kernel), stride, dilation)
    xg = x.reshape(n, groups, per_group, *spatial)
    wg = weight.reshape(groups, c_out // groups, per_group, *kernel)
    total = None
    for tap, window in taps:
        term = np.einsum("ngc...,gdc->ngd...", xg[(slice(None),) * 3 + window], wg[(slice(None),) * 3 + tap])
        total = term if total is None else total + term
    return total.reshape(n, c_out, *out_spatial)


def weight_gradient(x: np.ndarray, g: np.ndarray, kernel: tuple[int, ...], stride: tuple[int, ...],
                    dilation: tuple[int, ...], groups: int) -> np.ndarray:
    """∂L/∂K = X ⋆ Δ for an already padded ``x`` (N, C_in, *S) and the output's adjoint ``g`` (N, C_out, *O):
    ∂K[co, ci, t] = Σ_{n, o} Δ[n, co, o] · X[n, ci, o·s + t·d]."""
    n, c_in, *spatial = x.shape
    c_out = g.shape[1]
    per_group = c_in // groups
    _, taps = _windows(tuple(spatial), kernel, stride, dilation)
    xg = x.reshape(n, groups, per_group, *spatial)
    gg = g.reshape(n, groups, c_out // groups, -1)
    result = np.empty((groups, c_out // groups, per_group, *kernel), dtype=np.result_type(x, g))
    for tap, window in taps:
        window = tuple(slice(w.start, w.start + w.step * (o - 1) + 1, w.step) for w, o in zip(window, g.shape[2:]))
        taken = xg[(slice(None),) * 3 + window].reshape(n, groups, per_group, -1)
        result[(slice(None),) * 3 + tap] = np.einsum("ngcs,ngds->gdc", taken, gg)
    return result.reshape(c_out, per_group, *kernel)


def rot180(weight: np.ndarray, groups: int) -> np.ndarray:
    """The kernel turned by 180° in every spatial dim, its in and out channels swapped within each group:
    (C_out, C_in/g, *k) → (C_in, C_out/g, *k)."""
    c_out, per_group, *kernel = weight.shape
    turned = weight.reshape(groups, c_out // groups, per_group, *kernel).swapaxes(1, 2)
    turned = turned.reshape(groups * per_group, c_out // groups, *kernel)
    return turned[(slice(None), slice(None)) + (slice(None, None, -1),) * len(kernel)]


def dilate(g: np.ndarray, stride: tuple[int, ...]) -> np.ndarray:
    """``g`` with s − 1 zeros between neighbours along each spatial dim (the stride undone)."""
    if all(s == 1 for s in stride):
        return g
    spatial = g.shape[2:]
    out = np.full((*g.shape[:2], *((o - 1) * s + 1 for o, s in zip(spatial, stride))), _zero(g), dtype=g.dtype)
    out[(slice(None), slice(None)) + tuple(slice(None, None, s) for s in stride)] = g
    return out


def full_padding(size: tuple[int, ...], kernel: tuple[int, ...], stride: tuple[int, ...],
                 padding: tuple[tuple[int, int], ...], dilation: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
    """The padding of the dilated Δ that makes its correlation with the turned kernel a full convolution of the
    input's ``size``: d(k − 1) − p before, and after as much again plus the rows the stride left unread."""
    result = []
    for L, k, s, (before, after), d in zip(size, kernel, stride, padding, dilation):
        unread = (L + before + after - d * (k - 1) - 1) % s
        result.append((d * (k - 1) - before, d * (k - 1) - after + unread))
    return tuple(result)


def full_correlation(g: np.ndarray, turned: np.ndarray, size: tuple[int, ...], stride: tuple[int, ...],
                     padding: tuple[tuple[int, int], ...], dilation: tuple[int, ...], groups: int) -> np.ndarray:
    """∂L/∂X = Δ ∗ rot180(K): the adjoint ``g`` dilated by the stride, padded to a full convolution, and
    correlated with the ``turned`` kernel (`rot180`), giving the input's ``size``."""
    kernel = tuple(turned.shape[2:])
    spread = pad(dilate(g, stride), full_padding(size, kernel, stride, padding, dilation))
    return correlate(spread, turned, (1,) * len(kernel), dilation, groups)


def small_spatial(spatial: tuple[int, ...], kernel: tuple[int, ...], stride: tuple[int, ...],
                  padding: tuple[tuple[int, int], ...], dilation: tuple[int, ...]) -> tuple[int, ...]:
    """A proof instance's spatial sizes for a window op: at most 3 output positions per dim (the first and last
    windows reach the padding as the model's do), the same rows left unread by the stride.

    >>> small_spatial((32, 32), (5, 5), (1, 1), ((0, 0), (0, 0)), (1, 1))
    (7, 7)
    """
    sizes = []
    for L, k, s, (before, after), d in zip(spatial, kernel, stride, padding, dilation):
        span = L + before + after - d * (k - 1) - 1
        positions = min(span // s + 1, 3)
        size = s * (positions - 1) + d * (k - 1) + 1 - before - after + span % s
        while size < 1:
            size += s
        sizes.append(size)
    return tuple(sizes)
