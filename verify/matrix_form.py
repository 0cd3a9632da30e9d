"""Gradient code in matrix form: one vectorised operation per layer step, from derive's δ rules.

The rules are read off derive's own derivation of a one-unit-per-layer network with the same activations
and loss (the δ of a unit depends only on that unit, so the rule of one unit is the rule of every unit):

- forward: ``Z⁽ˡ⁾ = A⁽ˡ⁻¹⁾ W⁽ˡ⁾ᵀ + b⁽ˡ⁾``, ``A⁽ˡ⁾ = f(Z⁽ˡ⁾)`` (batch-major rows, torch layout weights);
- output: ``Δ⁽ᴸ⁾ = rule(Z⁽ᴸ⁾, A⁽ᴸ⁾, Y) / count`` (count: what ``mean`` divides by, 1 for ``sum``);
- hidden: ``Δ⁽ˡ⁾ = (Δ⁽ˡ⁺¹⁾ W⁽ˡ⁺¹⁾) ⊙ f'(Z⁽ˡ⁾, A⁽ˡ⁾)`` (on torch, σ' = σ(1 − σ), tanh' = 1 − tanh² and
  ReLU' = 𝟙[z > 0] run as torch's fused backward kernels, and the affine step as ``addmm``);
- gradients: ``∂L/∂W⁽ˡ⁾ = Δ⁽ˡ⁾ᵀ A⁽ˡ⁻¹⁾``, ``∂L/∂b⁽ˡ⁾ = Σ_rows Δ⁽ˡ⁾``.

The element-wise rules are lambdified with SymPy (NumPy or torch); the glue is plain matrix products, so the
same function runs on CPU or CUDA tensors and on any batch size. On torch, the intermediates (Z, Δ W) are
written into buffers kept between calls, one set per thread (`_Workspace`); every returned gradient is fresh.

>>> import derive
>>> from verify.compile import arguments
>>> net = derive.examples.seed()
>>> fn = compile_matrix(net, backend="numpy")
>>> grads = fn(*arguments(net))
>>> round(float(grads[2][0, 0]), 9)   # ∂L/∂W5
0.27273792
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import sympy as sp

from derive.errors import DeriveError
from derive.rules import MatrixRules, matrix_rules
from derive.network import Architecture, Network
from derive.ops import loss as lookup_loss

BACKENDS = ("numpy", "torch")


def compile_matrix(network: Network | Architecture, *, backend: str = "numpy") -> Callable[..., list[Any]]:
    """``fn(x, y, W1, b1, W2, b2, …) -> [∂L/∂W1, ∂L/∂b1, …]`` in matrix form, for any batch size.

    ``x`` is batch × inputs, ``y`` batch × outputs, weights out × in (torch layout); arrays for NumPy,
    tensors (any device and dtype) for torch. ``fn.forward(x, y, *tensors)`` gives the loss alone.
    """
    arch = network.architecture if isinstance(network, Network) else network
    if backend not in BACKENDS:
        raise DeriveError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
    rules = matrix_rules(arch.activations, arch.loss)
    z, a, y = rules.z, rules.a, rules.y
    forwards = [_lambdify((z,), f, backend) for f in rules.forward]
    backwards = [_backward(rules, d, backend) for d in rules.derivative]
    keep_z = [z in d.free_symbols or not getattr(b, "fused_on_a", False) for d, b in zip(rules.derivative, backwards)]
    keep_z[-1] = z in rules.output_delta.free_symbols
    output_delta = _lambdify((z, a, y), rules.output_delta, backend)
    term = _lambdify((a, y), rules.term, backend)
    spec = lookup_loss(arch.loss)
    mean = arch.reduction == "mean"
    layers = len(arch.activations)

    workspace = _Workspace()

    def forward(x: Any, y: Any, *tensors: Any) -> tuple[list[Any], list[Any]]:
        if len(tensors) != 2 * layers:
            raise DeriveError(f"expected {2 * layers} tensors (W1, b1, …), got {len(tensors)}")
        inputs, pre = [x], []
        for l, (W, b, f, keep) in enumerate(zip(tensors[0::2], tensors[1::2], forwards, keep_z)):
            z = _affine(inputs[-1], W, b, workspace, l)
            inputs.append(f(z))
            pre.append(z if keep else None)  # Z only where a rule reads it: a smaller working set
        return inputs, pre

    def loss(x: Any, y: Any, *tensors: Any) -> Any:
        inputs, _ = forward(x, y, *tensors)
        total = term(inputs[-1], y).sum()
        return total / spec.term_count(x.shape[0], y.shape[1]) if mean else total

    def gradients(x: Any, y: Any, *tensors: Any) -> list[Any]:
        inputs, pre = forward(x, y, *tensors)
        weights = tensors[0::2]
        delta = output_delta(pre[-1], inputs[-1], y)
        if mean:
            delta = delta / spec.term_count(x.shape[0], y.shape[1])
        grads: list[Any] = [None] * (2 * layers)
        for l in reversed(range(layers)):
            grads[2 * l] = delta.T @ inputs[l]
            grads[2 * l + 1] = delta.sum(0)
            if l:
                delta = backwards[l - 1](workspace.product(delta, weights[l], l), pre[l - 1], inputs[l])
        return grads

    gradients.forward = loss  # type: ignore[attr-defined]
    return gradients


def _affine(a: Any, W: Any, b: Any, workspace: _Workspace | None = None, layer: int = 0) -> Any:
    """``a Wᵀ + b``: one fused ``addmm`` for torch tensors (as ``nn.Linear``), else a product and a sum."""
    if type(a).__module__.startswith("torch") and a.dim() == 2:
        import torch

        out = None if workspace is None else workspace.buffer(("z", layer), (a.shape[0], W.shape[0]), a, W, b)
        return torch.addmm(b, a, W.T, out=out)
    return a @ W.T + b


class _Workspace(threading.local):
    """The intermediates of a compiled torch gradient (Z, Δ W), kept from one call to the next, per thread.

    Allocating them afresh on every call made the memory allocator hand back new pages, faulted in on first
    touch: at batch 4096 that cost more than the arithmetic saved over autograd (1.03–1.20× its time, against
    0.8× in kernel time). Written into the same buffers each call, the matrix form stays under autograd's
    time (docs/performance.md). Only intermediates live here: every gradient returned is a fresh tensor. Inputs
    that record autograd history get fresh tensors too (``out=`` does not record it).
    """

    def __init__(self) -> None:
        self.buffers: dict[tuple, Any] = {}

    def buffer(self, key: tuple, shape: tuple[int, ...], like: Any, *others: Any) -> Any:
        """The buffer ``key`` of ``shape`` with ``like``'s dtype and device (None: allocate as usual)."""
        if like.requires_grad or any(t.requires_grad for t in others):
            return None
        buf = self.buffers.get(key)
        if buf is None or buf.shape != shape or buf.dtype != like.dtype or buf.device != like.device:
            import torch

            buf = self.buffers[key] = torch.empty(shape, dtype=like.dtype, device=like.device)
        return buf

    def product(self, delta: Any, W: Any, layer: int) -> Any:
        """``Δ W`` (the next layer's δ before f′), into a buffer for torch tensors."""
        if type(delta).__module__.startswith("torch") and delta.dim() == 2:
            import torch

            return torch.mm(delta, W, out=self.buffer(("g", layer), (delta.shape[0], W.shape[1]), delta, W))
        return delta @ W


def _fused_rules(z: sp.Symbol, a: sp.Symbol) -> dict[sp.Expr, Callable[[Any, Any, Any], Any]]:
    """torch's fused kernels for G ⊙ f' (autograd's own, one pass), by the textbook derivative they compute."""
    import torch

    from derive.ops.activations import Step

    aten = torch.ops.aten
    def sigmoid(g: Any, zs: Any, outs: Any) -> Any:  # g is the step's own (Δ W): written over in place
        return aten.sigmoid_backward(g, outs) if g.requires_grad else aten.sigmoid_backward.grad_input(g, outs, grad_input=g)

    def tanh(g: Any, zs: Any, outs: Any) -> Any:
        return aten.tanh_backward(g, outs) if g.requires_grad else aten.tanh_backward.grad_input(g, outs, grad_input=g)

    sigmoid.fused_on_a = tanh.fused_on_a = True  # type: ignore[attr-defined]  # they need A only, not Z
    return {
        a * (1 - a): sigmoid,
        1 - a**2: tanh,
        Step(z): lambda g, zs, outs: (aten.threshold_backward(g, zs, 0) if g.requires_grad
                                      else aten.threshold_backward.grad_input(g, zs, 0, grad_input=g)),
    }


def _backward(rules: MatrixRules, derivative: sp.Expr, backend: str) -> Callable[[Any, Any, Any], Any]:
    """``(G, Z, A) -> G ⊙ f'(Z, A)``: the hidden-layer step of one activation.

    On torch, a derivative read off the derivation that is one of the textbook forms of `_fused_rules` runs as
    torch's fused kernel for it; any other is the lambdified rule, multiplied in place into the fresh G.
    """
    if backend == "torch":
        fused = _fused_rules(rules.z, rules.a).get(derivative)
        if fused is not None:
            return fused
    f = _lambdify((rules.z, rules.a), derivative, backend)

    def step(g: Any, zs: Any, outs: Any) -> Any:
        g *= f(zs, outs)
        return g

    return step


def _lambdify(args: tuple[sp.Symbol, ...], expr: sp.Expr, backend: str) -> Callable[..., Any]:
    function = sp.lambdify(args, expr, modules=backend)
    if expr.free_symbols:
        return function
    constant = float(expr)
    return lambda *arrays: constant  # broadcasts: a constant derivative (identity) times an array
