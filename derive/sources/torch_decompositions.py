"""ATen ops that torch's core decompositions leave whole, written as the registry's ops while a module is read.

``aten._trilinear`` (what ``nn.Bilinear`` and ``F.bilinear`` run) has no decomposition in torch; by its
definition in ATen, each input is unsqueezed at its ``expand`` dims, the three are multiplied (broadcasting),
and the product is summed over ``sumdim``. `decompositions` maps each such op to a function of torch's ops
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


def decompositions(torch: Any) -> dict[Any, Callable[..., Any]]:
    """The ops torch leaves whole, each with the function of torch's ops that computes it."""
    return {torch.ops.aten._trilinear.default: _trilinear}
