r"""Compiled gradients of graph models: one torch operation per op and per op's backward rule, any batch.

``compile_model(model)`` returns ``fn(x, y, *params) -> [∂L/∂p for each parameter tensor]`` (parameters in
``named_parameters()`` order, as `verify.arguments` gives them). The forward pass runs each op on tensors; the
backward pass runs, last op first, each op's tensor-level rule:

- element-wise ops take their local partials from the op's own scalar rule (`Elementwise.scalar`, the same
  expressions the scalar program uses), lambdified once and applied to whole tensors, then summed back over
  broadcast dims;
- ``linear``: ∂X = G W, ∂W = Gᵀ X, ∂b = Σ G; ``matmul``: ∂A = G Bᵀ, ∂B = Aᵀ G (batch dims summed back);
- reductions broadcast G back (÷ n for a mean); softmax: S ⊙ (G − Σ G ⊙ S); log-softmax: G − e^{V} Σ G;
  log-sum-exp: G e^{X − V};
- shape ops move G back (reshape, inverse permutation, slices, a sum over the copies of an expansion);
- the loss starts it: ∂L/∂ŷ from the loss's own derivative (elementwise losses lambdified, cross-entropy as
  softmax(ŷ)·Σy − y), ÷ the number of terms for a mean.

Every rule is checked entry by entry against the scalar program (tests/test_graph_compile.py). Shapes that
name the batch the model was read with (``view(2, -1)``) follow the batch of the call, and a constant with the
same row for every sample (a zero initial state) is kept as one row, which broadcasting repeats.

>>> import torch, derive
>>> class Net(torch.nn.Module):
...     def __init__(self):
...         super().__init__()
...         torch.manual_seed(0)
...         self.fc = torch.nn.Linear(2, 2)
...     def forward(self, x):
...         return x + torch.tanh(self.fc(x))
>>> model = derive.from_torch(Net(), loss="mse", x=[[1.0, 2.0]], y=[[0.0, 1.0]])
>>> grads = compile_model(model)(*model_arguments(model))
>>> [tuple(g.shape) for g in grads]
[(2, 2), (2,)]
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import sympy as sp

from derive.errors import DeriveError
from derive.model.graph import OWN_LOSS, Leaf, Model, OpNode, Structure
from derive.ops import loss as lookup_loss
from derive.ops.tensor import Elementwise
from verify.compile import _printer


def _torch() -> Any:
    import torch

    return torch


def model_arguments(model: Model, dtype: str = "float64", device: str = "cpu") -> list:
    """``[x, y, *parameters]`` of a graph model as torch tensors (parameters in ``named_parameters()`` order)."""
    torch = _torch()
    kind = getattr(torch, dtype)
    x = torch.as_tensor(model.x).to(device)
    x = x.to(kind) if x.is_floating_point() else x
    y = torch.as_tensor(np.asarray(model.y)).to(device)
    y = y.to(kind) if y.is_floating_point() else y
    params = [torch.tensor(np.asarray(model.values[k], dtype=np.float64)).to(device=device, dtype=kind)
              for k in model.tensor_keys]
    return [x, y, *params]


def _unbroadcast(g: Any, shape: tuple[int, ...]) -> Any:
    """Sum ``g`` down to ``shape`` over the dims broadcasting added or stretched."""
    while g.dim() > len(shape):
        g = g.sum(0)
    for i, size in enumerate(shape):
        if size == 1 and g.shape[i] != 1:
            g = g.sum(i, keepdim=True)
    return g


@functools.lru_cache(maxsize=64)
def _partials(op: Elementwise, arity: int) -> Callable:
    """The op's local partials (its scalar rule) lambdified over (out, *args): tensors in, tensors out."""
    out, *args = sp.symbols(f"v a0:{arity}")
    _, partials = op.scalar(out, *args)
    by_arg = {a: sp.S.Zero for a in args}
    for symbol, partial in partials:
        by_arg[symbol] = by_arg[symbol] + partial
    return sp.lambdify([out, *args], [by_arg[a] for a in args], modules="torch", printer=_printer("torch"))


class _Program:
    def __init__(self, model: Model) -> None:
        torch = _torch()
        self.structure: Structure = model.structure
        self.batch = model.batch
        self.keys = model.tensor_keys
        self.constants: dict[str, Any] = {}
        for node in self.structure.nodes:
            if isinstance(node, Leaf) and node.kind == "constant":
                value = np.asarray(model.values[node.name], dtype=np.float64)
                same_rows = value.ndim > 1 and bool((value == value[:1]).all())  # e.g. a zero initial state
                self.constants[node.name] = torch.tensor(value[:1] if same_rows else value)
        self.spec = None if model.loss == OWN_LOSS else lookup_loss(model.loss)
        #: whether each node depends on a parameter: only those get gradients (not the input image)
        self.needs_gradient: list[bool] = []
        for node in self.structure.nodes:
            self.needs_gradient.append(node.kind == "parameter" if isinstance(node, Leaf) else
                                       any(a is not None and self.needs_gradient[a] for a in node.args))
        # what the backward pass reads (as autograd saves only that): every other op output is freed after its
        # last use in the forward pass, which keeps the allocator reusing memory instead of faulting in new pages
        nodes = self.structure.nodes
        self.saved = [isinstance(n, Leaf) for n in nodes]
        self.saved[self.structure.output] = True  # the loss's gradient starts from it
        self.last_use = list(range(len(nodes)))
        for i, node in enumerate(nodes):
            if isinstance(node, OpNode):
                reads_inputs, reads_output = _reads(node)
                self.saved[i] |= reads_output
                for a in node.args:
                    if a is not None:
                        self.saved[a] |= reads_inputs
                        self.last_use[a] = i

    def __call__(self, x: Any, y: Any, *params: Any) -> list[Any]:
        torch = _torch()
        if len(params) != len(self.keys):
            raise DeriveError(f"expected {len(self.keys)} parameter tensors ({', '.join(self.keys)}), got {len(params)}")
        batch = x.shape[0] if x.dim() else 1
        by_key = dict(zip(self.keys, params))
        values: list[Any] = []
        saved: dict[int, Any] = {}  # what a backward rule keeps from its forward (max pooling's winners)
        for i, node in enumerate(self.structure.nodes):
            values.append(self._forward(node, values, x, y, by_key, batch, saved, i))
            for a in node.args if isinstance(node, OpNode) else ():
                if a is not None and self.last_use[a] == i and not self.saved[a]:
                    values[a] = None
        grads: dict[int, Any] = {self.structure.output: self._loss_gradient(values[self.structure.output], y, batch)}
        for i in reversed(range(len(self.structure.nodes))):
            node = self.structure.nodes[i]
            if not isinstance(node, OpNode) or i not in grads:
                continue
            inputs = [None if a is None else values[a] for a in node.args]
            wanted = [a is not None and self.needs_gradient[a] for a in node.args]
            for a, g in zip(node.args, _backward(node, grads.pop(i), inputs, values[i], wanted, saved.pop(i, None))):
                if a is not None and g is not None and self.needs_gradient[a]:
                    grads[a] = grads[a] + g if a in grads else g
            values[i] = inputs = None  # its users are done (they come later): free it, as autograd does
        index = {n.name: i for i, n in enumerate(self.structure.nodes) if isinstance(n, Leaf) and n.kind == "parameter"}
        return [grads.get(index[k], torch.zeros_like(by_key[k])) for k in self.keys]

    def _forward(self, node: Any, values: list, x: Any, y: Any, params: dict, batch: int, saved: dict,
                 i: int) -> Any:
        torch = _torch()
        if isinstance(node, Leaf):
            if node.kind == "input":
                return x if node.name == "x" else y
            if node.kind == "parameter":
                return params[node.name]
            if node.kind == "number":
                return int(node.name) if node.name.lstrip("-").isdigit() else float(node.name)
            value = self.constants[node.name]  # one row stands for all samples: broadcasting repeats it
            return value.to(device=x.device, dtype=x.dtype if x.is_floating_point() else torch.float64)
        inputs = [None if a is None else values[a] for a in node.args]
        if node.op.key == "max_pool":
            out, saved[i] = _max_pool(node.op, inputs[0])
            return out
        return _forward(node, inputs, self.batch, batch)

    def _loss_gradient(self, out: Any, y: Any, batch: int) -> Any:
        torch = _torch()
        if self.spec is None:  # forward(x, y) returns L itself
            return torch.ones_like(out)
        spec = self.spec
        rows = out.reshape(out.shape[0], -1) if out.dim() > 1 else (out.reshape(1, -1) if spec.class_targets
                                                                    else out.reshape(-1, 1))
        n, width = rows.shape
        if spec.class_targets and y.numel() == n and width > 1:
            y = torch.nn.functional.one_hot(y.reshape(-1).long(), width).to(rows.dtype)
        t = y.to(rows.dtype).reshape(n, width)
        if spec.key in ("cross_entropy", "nll"):
            g = -t if spec.key == "nll" else torch.softmax(rows, dim=1) * t.sum(1, keepdim=True) - t
        else:
            g = _loss_rule(spec.key)(rows, t)
        if self.structure.reduction == "mean":
            g = g / spec.term_count(n, width)
        return g.reshape(out.shape)


@functools.lru_cache(maxsize=16)
def _loss_rule(key: str) -> Callable:
    """∂(one term)/∂ŷ of an element-wise loss, from its own derivative, lambdified over (ŷ, y)."""
    p, t = sp.symbols("p t")
    spec = lookup_loss(key)
    derivative = spec.derivative([p], [t])[0]
    return sp.lambdify([p, t], derivative, modules="torch", printer=_printer("torch"))


def _batched(shape: tuple[int, ...], model_batch: int, batch: int) -> tuple[int, ...]:
    return (batch, *shape[1:]) if shape and shape[0] == model_batch and batch != model_batch else tuple(shape)


def _forward(node: OpNode, inputs: list, model_batch: int, batch: int) -> Any:
    torch = _torch()
    op, key = node.op, node.op.key
    inputs = [i for i in inputs if i is not None] if key != "linear" else inputs
    if isinstance(op, Elementwise):
        like = next(a for a in inputs if hasattr(a, "dim"))
        args = [a if hasattr(a, "dim") else torch.as_tensor(a, dtype=like.dtype, device=like.device) for a in inputs]
        return _values(op, len(args))(*args)
    if key == "linear":
        x, W, b = (inputs + [None])[:3]
        return torch.nn.functional.linear(x, W, b)
    if key == "matmul":
        return inputs[0] @ inputs[1]
    if key in ("sum", "mean", "logsumexp"):
        dims = tuple(range(inputs[0].dim())) if not op.dims else op.dims
        f = {"sum": torch.sum, "mean": torch.mean, "logsumexp": torch.logsumexp}[key]
        return f(inputs[0], dim=dims, keepdim=op.keepdim)
    if key == "softmax":
        return torch.softmax(inputs[0], dim=op.dim)
    if key == "log_softmax":
        return torch.log_softmax(inputs[0], dim=op.dim)
    if key == "reshape":
        return inputs[0].reshape(_batched(op.shape, model_batch, batch))
    if key == "flatten":
        return inputs[0].flatten(op.start, op.end) if inputs[0].dim() else inputs[0].reshape(1)
    if key == "permute":
        return inputs[0].permute(*[d % inputs[0].dim() for d in op.dims])
    if key == "squeeze":
        return inputs[0].squeeze() if op.dim is None else inputs[0].squeeze(op.dim)
    if key == "unsqueeze":
        return inputs[0].unsqueeze(op.dim)
    if key == "expand":
        return inputs[0].expand(*_batched(op.shape, model_batch, batch))
    if key == "cat":
        return torch.cat(inputs, dim=op.dim)
    if key == "stack":
        return torch.stack(inputs, dim=op.dim)
    if key == "index":
        return inputs[0][_key(op.items)]
    if key == "embedding":
        return inputs[0][inputs[1].long()]
    if key in ("conv", "max_pool", "avg_pool", "adaptive_avg_pool"):
        return _spatial_forward(op, inputs)
    raise DeriveError(f"no tensor rule for op {key!r} yet (node {node.name})")


def _as_2d(x: Any, nd: int) -> Any:
    """A 1-D spatial tensor (N, C, L) as 2-D (N, C, 1, L): torch's 2-D kernels serve both."""
    return x.unsqueeze(-2) if nd == 1 else x


def _pairs(values: tuple[int, ...], nd: int, fill: int) -> list[int]:
    return [fill, *values] if nd == 1 else list(values)


def _spatial_forward(op: Any, inputs: list) -> Any:
    torch = _torch()
    F = torch.nn.functional
    x = inputs[0]
    if op.key == "conv":
        W, b = inputs[1], inputs[2] if len(inputs) > 2 else None
        nd = W.dim() - 2
        conv = F.conv1d if nd == 1 else F.conv2d
        return conv(_padded(x, op.padding), W, b, op.stride, 0, op.dilation, op.groups)
    nd = op.dims()
    x2 = _as_2d(x, nd)
    if op.key == "max_pool":
        return _max_pool(op, x)[0]
    if op.key == "avg_pool":
        out = F.avg_pool2d(x2, *_window_arguments(op, nd), count_include_pad=op.count_include_pad)
    else:
        out = F.adaptive_avg_pool2d(x2, _pairs(op.output_size, nd, 1))
    return out.squeeze(-2) if nd == 1 else out


def _padded(x: Any, padding: tuple[tuple[int, int], ...]) -> Any:
    """``x`` with zeros before and after each spatial dim (itself, not a copy, when there are none)."""
    if not _has_padding(padding):
        return x
    return _torch().nn.functional.pad(x, [p for before_after in reversed(padding) for p in before_after])


def _has_padding(padding: tuple[tuple[int, int], ...]) -> bool:
    return any(before or after for before, after in padding)


def _window_arguments(op: Any, nd: int) -> tuple[list[int], ...]:
    """(kernel, stride, padding) of a pooling as torch's 2-D kernels take them (1-D as 1 × L)."""
    return _pairs(op.kernel, nd, 1), _pairs(op.stride, nd, 1), _pairs(op.padding, nd, 0)


def _max_pool_arguments(op: Any, nd: int) -> tuple[list[int], ...]:
    """(kernel, stride, padding, dilation) of a max pooling, as `_window_arguments`."""
    return (*_window_arguments(op, nd), _pairs(op.dilation, nd, 1))


def _max_pool(op: Any, x: Any) -> tuple[Any, Any]:
    """Max pooling's output and the flat index of each window's first maximum (its winner), kept for δ."""
    nd = op.dims()
    out, winners = _torch().nn.functional.max_pool2d(_as_2d(x, nd), *_max_pool_arguments(op, nd), return_indices=True)
    return (out.squeeze(-2) if nd == 1 else out), winners


def _spatial_backward(op: Any, g: Any, inputs: list, wanted: list[bool], winners: Any = None) -> list:
    """torch's convolution and pooling backward kernels as the tensor rules: ∂K = X ⋆ δ, ∂X = δ ∗ rot180(K),
    δ routed to each window's first maximum (``winners``, from the forward pass), or shared over the window
    for an average. ``wanted``: which inputs need their gradient (not the input image)."""
    torch = _torch()
    aten = torch.ops.aten
    x = inputs[0]
    if op.key == "conv":
        W, b = inputs[1], inputs[2] if len(inputs) > 2 else None
        nd = W.dim() - 2
        dx, dW, db = aten.convolution_backward(
            g, _padded(x, op.padding), W, None if b is None else [b.shape[0]], list(op.stride), [0] * nd,
            list(op.dilation), False, [0] * nd, op.groups, [wanted[0], True, b is not None])
        if dx is not None and _has_padding(op.padding):
            dx = dx[(slice(None), slice(None), *(slice(before, before + size)
                                                 for (before, _), size in zip(op.padding, x.shape[2:])))]
        return [dx, dW, db]
    nd = op.dims()
    x2, g2 = _as_2d(x, nd), _as_2d(g, nd)
    if op.key == "max_pool":
        dx = aten.max_pool2d_with_indices_backward(g2, x2, *_max_pool_arguments(op, nd), False, winners)
    elif op.key == "avg_pool":
        dx = aten.avg_pool2d_backward(g2, x2, *_window_arguments(op, nd), False, op.count_include_pad, None)
    else:
        dx = aten._adaptive_avg_pool2d_backward(g2, x2)
    return [dx.squeeze(-2) if nd == 1 else dx]


@functools.lru_cache(maxsize=64)
def _values(op: Elementwise, arity: int) -> Callable:
    out, *args = sp.symbols(f"v a0:{arity}")
    expr, _ = op.scalar(out, *args)
    return sp.lambdify(args, expr, modules="torch", printer=_printer("torch"))


def _key(items: tuple) -> tuple:
    key = []
    for item in items:
        key.append(item[1] if item[0] == "int" else slice(*item[1:]) if item[0] == "slice"
                   else None if item[0] == "none" else Ellipsis)
    return tuple(key)


def _reads(node: OpNode) -> tuple[bool, bool]:
    """Whether the backward rule of ``node`` reads its inputs, and its output (`_backward`)."""
    op = node.op
    if op.key == "activate" and op.activation in _FUSED_BACKWARD:
        return False, True
    if op.key in ("conv", "linear", "matmul", "max_pool"):
        return True, False
    return True, True


#: activations whose derivative is a function of their output, and torch's kernel for g·f′ from it: the
#: rules the scalar program derives (tanh′ = 1 − a², σ′ = a(1 − a)), checked against it like the others
_FUSED_BACKWARD = {"tanh": "tanh_backward", "sigmoid": "sigmoid_backward"}


def _backward(node: OpNode, g: Any, inputs: list, out: Any, wanted: list[bool], saved: Any = None) -> list:
    """The gradient for each input of ``node`` from the gradient ``g`` of its output (None: no gradient)."""
    torch = _torch()
    op, key = node.op, node.op.key
    if isinstance(op, Elementwise):
        fused = _FUSED_BACKWARD.get(getattr(op, "activation", None)) if key == "activate" else None
        if fused is not None:  # the same partial (1 − a², a(1 − a)) times g, in one pass over memory
            return [getattr(torch.ops.aten, fused)(g, out)]
        tensors = [a if hasattr(a, "dim") else torch.as_tensor(a, dtype=out.dtype, device=out.device) for a in inputs]
        partials = _partials(op, len(inputs))(out, *tensors)
        return [_unbroadcast(g * p, tuple(a.shape)) if hasattr(a, "dim") else None
                for a, p in zip(inputs, partials)]
    x = inputs[0]
    if key == "linear":
        W, b = inputs[1], inputs[2] if len(inputs) > 2 else None
        g2, x2 = g.reshape(-1, g.shape[-1]), x.reshape(-1, x.shape[-1])
        return [g @ W, g2.T @ x2, None if b is None else g2.sum(0)]
    if key == "matmul":
        a, b = inputs
        a2 = a.unsqueeze(0) if a.dim() == 1 else a
        b2 = b.unsqueeze(-1) if b.dim() == 1 else b
        g2 = g
        if a.dim() == 1:
            g2 = g2.unsqueeze(-2)
        if b.dim() == 1:
            g2 = g2.unsqueeze(-1)
        da = _unbroadcast(g2 @ b2.transpose(-1, -2), tuple(a2.shape)).reshape(a.shape)
        db = _unbroadcast(a2.transpose(-1, -2) @ g2, tuple(b2.shape)).reshape(b.shape)
        return [da, db]
    if key in ("sum", "mean", "logsumexp"):
        dims = sorted(d % max(x.dim(), 1) for d in (op.dims or range(x.dim())))
        expanded, full = g, out
        if not op.keepdim:
            for d in dims:
                expanded, full = expanded.unsqueeze(d), full.unsqueeze(d)
        if key == "sum":
            return [expanded.expand_as(x)]
        if key == "mean":
            count = int(np.prod([x.shape[d] for d in dims])) if dims else 1
            return [expanded.expand_as(x) / count]
        return [expanded * torch.exp(x - full)]
    if key == "softmax":
        return [out * (g - (g * out).sum(op.dim, keepdim=True))]
    if key == "log_softmax":
        return [g - torch.exp(out) * g.sum(op.dim, keepdim=True)]
    if key in ("reshape", "flatten", "squeeze", "unsqueeze"):
        return [g.reshape(x.shape)]
    if key == "permute":
        dims = [d % x.dim() for d in op.dims]
        return [g.permute(*np.argsort(dims).tolist())]
    if key == "expand":
        return [_unbroadcast(g, tuple(x.shape))]
    if key == "cat":
        sizes = [t.shape[op.dim] for t in inputs]
        return list(torch.split(g, sizes, dim=op.dim))
    if key == "stack":
        return list(torch.unbind(g, dim=op.dim % g.dim()))
    if key == "index":
        gx = torch.zeros_like(x)
        gx[_key(op.items)] += g
        return [gx]
    if key == "embedding":
        W, ids = inputs
        gW = torch.zeros_like(W).index_add_(0, ids.reshape(-1).long(), g.reshape(-1, W.shape[1]))
        return [gW, None]
    if key in ("conv", "max_pool", "avg_pool", "adaptive_avg_pool"):
        return _spatial_backward(op, g, inputs, wanted, saved)
    raise DeriveError(f"no tensor rule for op {key!r} yet (node {node.name})")


def compile_model(model: Model) -> Callable[..., list[Any]]:
    """``fn(x, y, *params) -> [∂L/∂p, …]`` (torch tensors, any device, dtype and batch) for a graph model."""
    if not isinstance(model, Model):
        raise DeriveError("compile_model takes a graph model (derive.from_torch of a model that is not a chain)")
    return _Program(model)
