"""ATen ops that torch's core decompositions leave whole, written as the registry's ops while a module is read.

``aten._trilinear`` (what ``nn.Bilinear`` and ``F.bilinear`` run) has no decomposition in torch; by its
definition in ATen, each input is unsqueezed at its ``expand`` dims, the three are multiplied (broadcasting),
and the product is summed over ``sumdim``. ``torch.cdist`` is the norm of row differences; ``avg_pool3d``
across one dim (``nn.LocalResponseNorm`` of images) a 1-D average pooling. `decompositions` maps each such op to a function of torch's ops
that computes it; `derive.sources.torch_export` adds them to the table it decomposes with.

>>> import torch
>>> a, w, b = torch.randn(5, 3), torch.randn(4, 3, 2), torch.randn(5, 2)
>>> ours = _trilinear(a, w, b, [1, 3], [0], [1, 2], [2, 3])
>>> bool(torch.allclose(ours, torch.ops.aten._trilinear(a, w, b, [1, 3], [0], [1, 2], [2, 3])))
True
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any


def _trilinear(i1: Any, i2: Any, i3: Any, expand1: Sequence[int], expand2: Sequence[int],
               expand3: Sequence[int], sumdim: Sequence[int], unroll_dim: int = 1) -> Any:
    """``aten._trilinear``: Σ over ``sumdim`` of the three inputs, each unsqueezed at its ``expand`` dims."""
    total = i1.dim() + len(expand1)
    for dim in range(total):  # in increasing order, as ATen inserts them
        i1 = i1.unsqueeze(dim) if dim in expand1 else i1
        i2 = i2.unsqueeze(dim) if dim in expand2 else i2
        i3 = i3.unsqueeze(dim) if dim in expand3 else i3
    product = i1 * i2 * i3
    return product.sum(list(sumdim)) if len(sumdim) else product


def _cdist(x1: Any, x2: Any, p: float, compute_mode: Any = None) -> Any:
    """``aten._cdist_forward`` (``torch.cdist``): the p-norm of every row difference, ‖x1_i − x2_j‖_p, for p = 1,
    2 (`vector_norm`: its gradient 0 at a zero distance, as torch's cdist has it) and ∞."""
    import torch

    difference = x1.unsqueeze(-2) - x2.unsqueeze(-3)
    if p == 2:
        return torch.linalg.vector_norm(difference, dim=-1)
    if p == 1:
        return difference.abs().sum(-1)
    if p == float("inf"):
        return difference.abs().amax(-1)
    return NotImplemented  # other p: left whole (refused)


def _avg_pool3d(x: Any, kernel: Sequence[int], stride: Sequence[int] = (), padding: Sequence[int] = (0,),
                ceil_mode: bool = False, count_include_pad: bool = True, divisor_override: Any = None) -> Any:
    """``aten.avg_pool3d`` whose window spans the first pooled dim only (``nn.LocalResponseNorm`` of images
    pools across channels so): a 1-D average pooling along that dim. Other windows: left whole (refused)."""
    import torch

    kernel, stride = list(kernel), list(stride) or list(kernel)
    if len(kernel) != 3 or kernel[1:] != [1, 1] or stride[1:] != [1, 1] or any(padding) or ceil_mode \
            or divisor_override is not None:
        return NotImplemented
    n, c, d, h, w = x.shape
    rows = x.permute(0, 1, 3, 4, 2).reshape(n, c * h * w, d)
    pooled = torch.nn.functional.avg_pool1d(rows, kernel[0], stride[0])
    return pooled.reshape(n, c, h, w, -1).permute(0, 1, 4, 2, 3)


def decompositions(torch: Any) -> dict[Any, Callable[..., Any]]:
    """The ops torch leaves whole, each with the function of torch's ops that computes it."""
    aten = torch.ops.aten
    return {aten._trilinear.default: _trilinear, aten._cdist_forward.default: _cdist,
            aten.avg_pool3d.default: _avg_pool3d}
