"""The torch kernels a compiled chain runs for some of its program's lines (`verify.chain_compile.KERNELS`).

The affine step is one ``addmm`` (as ``nn.Linear``); σ′, tanh′ and ReLU′ are torch's fused backward kernels,
applied in place into the step's own ∂L/∂A = Δ W. Z and Δ W are written into buffers kept from one call to the
next, one set per thread (`Workspace`): allocated afresh on every call, large batches made the allocator hand
back new pages, faulted in on first touch, which cost more than the arithmetic (docs/performance.md). Only
intermediates live there: every gradient returned is a fresh tensor. Tensors that record autograd history get
fresh tensors and functional kernels (``out=`` and in-place kernels record none).

>>> import torch
>>> kernels = torch_kernels()
>>> z = kernels["_affine"]("Z_1", torch.zeros(2), torch.ones(1, 3), torch.ones(2, 3))
>>> z.tolist()
[[3.0, 3.0]]
"""

from __future__ import annotations

import threading
from typing import Any


class Workspace(threading.local):
    """Buffers by name, each with the shape, dtype and device it was last asked for, per thread."""

    def __init__(self) -> None:
        self.buffers: dict[str, Any] = {}

    def buffer(self, key: str, shape: tuple[int, ...], like: Any, *others: Any) -> Any:
        """The buffer ``key`` of ``shape`` with ``like``'s dtype and device (None where a tensor records
        autograd history: allocate as usual)."""
        if like.requires_grad or others[0].requires_grad or (len(others) > 1 and others[1].requires_grad):
            return None
        buf = self.buffers.get(key)
        if buf is None or buf.shape != shape or buf.dtype != like.dtype or buf.device != like.device:
            import torch

            buf = self.buffers[key] = torch.empty(shape, dtype=like.dtype, device=like.device)
        return buf


def torch_kernels() -> dict[str, Any]:
    """The kernels by the names `KERNELS` writes, with a workspace of their own."""
    import torch

    aten = torch.ops.aten
    workspace = Workspace()

    def affine(key: str, b: Any, a: Any, w: Any) -> Any:
        """Z = A Wᵀ + b."""
        return torch.addmm(b, a, w.T, out=workspace.buffer(key, (a.shape[0], w.shape[0]), a, w, b))

    def product(key: str, g: Any, w: Any) -> Any:
        """∂L/∂A⁽ˡ⁻¹⁾ = Δ W."""
        return torch.mm(g, w, out=workspace.buffer(key, (g.shape[0], w.shape[1]), g, w))

    def into(kernel: Any) -> Any:
        """The fused backward ``kernel`` written over its own G (a Δ W of `product`, read by nothing else)."""
        def step(g: Any, *rest: Any) -> Any:
            if g.requires_grad or rest[0].requires_grad:  # (G, A) or (G, Z, threshold)
                return kernel.default(g, *rest)
            return kernel.grad_input(g, *rest, grad_input=g)

        return step

    from derive.ops.activations import ACTIVATIONS

    kernels = {"_affine": affine, "_product": product}
    for act in ACTIVATIONS.values():  # each fused g·f′ an activation names (`Activation.torch_backward`)
        if act.torch_backward is not None:
            name = act.torch_backward[0]
            kernels[f"_{name}"], kernels[f"_{name}_into"] = getattr(aten, name).default, into(getattr(aten, name))
    return kernels
