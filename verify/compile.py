"""Compile derived gradients to NumPy and torch callables, vectorised over a batch.

``compile(net, backend="numpy" | "torch", form="scalar")`` returns ``fn(x, y, *tensors)``: ``x`` is
batch × inputs, ``y`` batch × outputs, ``tensors`` the parameters in layer order (W1, b1, W2, b2, …, torch
layout: a weight is out × in), and the result is one gradient array per tensor, of the same shape, dtype and
device. The gradient is the network's: summed over the batch, divided by the number of loss terms for
``reduction = "mean"``.

The **scalar form** lambdifies derive's straight-line program for one sample (the forward z and a, the
adjoints δ, then ∂L/∂p), printing every scalar expression on its own: each is evaluated on whole batch
columns, and the results are stacked. SymPy's torch printer turns a ``Matrix`` into
``torch.tensor([[…]])``, which breaks batches and autograd; nothing here prints a Matrix. derive's own
functions (σ, tanh, the ReLU step, …) print themselves (``_numpycode``, ``_torchcode`` in
`derive.ops.activations`). Compiled kernels are cached per architecture.

>>> import derive
>>> net = derive.examples.seed()
>>> fn = compile(net, backend="numpy")
>>> grads = fn(*arguments(net, backend="numpy"))
>>> [g.shape for g in grads]
[(2, 2), (2,), (1, 2), (1,)]
>>> round(float(grads[3][0]), 9)  # ∂L/∂b3
0.415433183
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import sympy as sp

from derive.errors import DeriveError
from derive.graph import backpropagate
from derive.lambdify import printer
from derive.model.graph import Model
from derive.network import Architecture, Network
from derive.ops import loss as lookup_loss
from verify.chain_compile import compile_chain

BACKENDS = ("numpy", "torch")
FORMS = ("scalar", "matrix")

GradientFunction = Callable[..., list[Any]]


def compile(network: Network, backend: str = "numpy", form: str = "scalar") -> GradientFunction:
    """``fn(x, y, *tensors) -> [∂L/∂W1, ∂L/∂b1, …]`` for networks of this one's architecture (any batch).

    ``backend`` is ``"numpy"`` or ``"torch"`` (torch keeps device, dtype and autograd of its inputs).
    ``form="scalar"`` lambdifies the scalar program (for verification); ``form="matrix"`` runs the chain's
    tensor program, one vectorised operation per definition (fast; see `verify.chain_compile`).
    """
    if backend not in BACKENDS:
        raise DeriveError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
    if form not in FORMS:
        raise DeriveError(f"form {form!r} is not available; use one of {', '.join(FORMS)}")
    if not network.textbook:  # a graph model: tensor rules op by op, torch only
        if backend != "torch" or form != "matrix":
            raise DeriveError("a graph model compiles with backend='torch', form='matrix' (tensor rules op by op)")
        from verify.graph_compile import compile_model

        return compile_model(network)
    if form == "matrix":
        matrix = compile_chain(network, backend=backend)
        if not network.penalized:
            return matrix
        return lambda x, y, *tensors: add_penalty(network, matrix(x, y, *tensors), tensors)
    arch = network.architecture
    kernel = _kernel(arch.sizes, arch.activations, arch.loss, backend)
    spec = lookup_loss(arch.loss)
    shapes = tensor_shapes(network)
    outputs = arch.sizes[-1]
    mean = arch.reduction == "mean"
    stack = _numpy_stack if backend == "numpy" else _torch_stack

    def gradients(x: Any, y: Any, *tensors: Any) -> list[Any]:
        if len(tensors) != len(shapes):
            raise DeriveError(f"expected {len(shapes)} parameter tensors (W1, b1, …), got {len(tensors)}")
        batch = x.shape[0]
        weights = [tensors[2 * l].reshape(-1) for l in range(len(shapes) // 2)]
        biases = [tensors[2 * l + 1].reshape(-1) for l in range(len(shapes) // 2)]
        leaves = [x[:, i] for i in range(x.shape[1])] + [y[:, k] for k in range(y.shape[1])]
        leaves += [w[i] for w in weights for i in range(w.shape[0])]
        leaves += [b[i] for b in biases for i in range(b.shape[0])]
        per_sample = stack(kernel(*leaves), batch, x)  # parameters × batch
        total = per_sample.sum(1)
        if mean:
            total = total / spec.term_count(batch, outputs)
        return add_penalty(network, _unflatten(total, shapes), tensors)

    return gradients


def add_penalty(network: Network, grads: list[Any], tensors: Sequence[Any]) -> list[Any]:
    """The penalties' gradients added to the loss's: 2·l2·p + l1·sign(p) on the penalized entries."""
    if not network.penalized:
        return grads
    chosen = set(network.penalized)
    grads = [g.copy() if hasattr(g, "copy") else g.clone() for g in grads]
    for p in network.parameters():
        if p.name in chosen:
            k = 2 * (p.layer - 1) + (0 if p.tensor == "weight" else 1)
            value = tensors[k][p.index]
            sign = float(value > 0) - float(value < 0)  # a Python number: the tensor's dtype is kept
            grads[k][p.index] = grads[k][p.index] + 2 * network.l2 * value + network.l1 * sign
    return grads


def tensor_shapes(network: Network) -> list[tuple[int, ...]]:
    """Shapes of the parameter tensors in layer order: W1 (out × in), b1 (out,), W2, b2, …"""
    shapes: list[tuple[int, ...]] = []
    for layer in network.layers:
        shapes += [(layer.out_features, layer.in_features), (layer.out_features,)]
    return shapes


def arguments(network: Network, backend: str = "numpy", dtype: str = "float64", device: str = "cpu") -> list:
    """``[x, y, W1, b1, W2, b2, …]`` of a network as NumPy arrays or torch tensors (`compile`'s arguments).

    For a graph model (torch only): ``[x, y, *parameters]`` in the module's ``named_parameters()`` order.
    """
    if not network.textbook:
        from verify.graph_compile import model_arguments

        if backend != "torch":
            raise DeriveError("a graph model's arguments are torch tensors: backend='torch'")
        return model_arguments(network, dtype, device)
    values = [network.x, network.y]
    for layer in network.layers:
        values += [layer.weight, layer.bias]
    if backend == "numpy":
        return [np.asarray(v, dtype=np.dtype(dtype)) for v in values]
    import torch

    # float64 values, rounded once to ``dtype`` (as the reference model does)
    kind = getattr(torch, dtype)
    return [torch.tensor(v, dtype=torch.float64).to(device=device, dtype=kind) for v in values]


def compile_expressions(
    expressions: Sequence[sp.Expr], names: Sequence[str], backend: str = "numpy"
) -> Callable[[Mapping[str, Any]], list[Any]]:
    """Lambdify any expressions (with CSE) over the symbols called ``names``: ``fn(values by name)``.

    Symbols are matched by name, so expressions built with other assumptions still fit.

    >>> x = sp.Symbol("x")
    >>> compile_expressions([2 * x, x**2], ["x"])({"x": 3.0})
    [6.0, 9.0]
    """
    if backend not in BACKENDS:
        raise DeriveError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
    plain = [sp.Symbol(n) for n in names]
    by_name = dict(zip(names, plain))
    exprs = [
        e.xreplace({s: by_name.get(s.name, s) for s in e.free_symbols}) for e in map(sp.sympify, expressions)
    ]
    unknown = sorted({s.name for e in exprs for s in e.free_symbols} - set(names))
    if unknown:
        raise DeriveError(f"expressions use symbols that are not in the network: {', '.join(unknown)}")
    function = sp.lambdify(
        plain, exprs, modules=backend, printer=_printer(backend), cse=True, docstring_limit=0
    )

    def evaluate(values: Mapping[str, Any]) -> list[Any]:
        return list(function(*(values[n] for n in names)))

    return evaluate


@functools.lru_cache(maxsize=256)
def _kernel(sizes: tuple[int, ...], activations: tuple[str, ...], loss: str, backend: str) -> Callable:
    """The lambdified per-sample program: (x…, y…, weights…, biases…) -> [∂L/∂p per sample, …]."""
    backprop = backpropagate(Architecture(sizes, activations, loss, "sum", 1))
    graph = backprop.graph
    assignments = [(n.symbol, n.expr) for n in graph.nodes if n.kind != "loss"]
    assignments += list(backprop.adjoints.items())
    outputs = [backprop.program[p.name] for p in graph.parameters]
    weights = [w for layer in graph.weights for row in layer for w in row]
    biases = [b for layer in graph.biases for b in layer]
    leaves = [*graph.inputs[0], *graph.targets[0], *weights, *biases]
    used = _used(assignments, outputs)
    program = [(s, e) for s, e in assignments if s in used]
    # The program's own intermediates take the place of SymPy's common subexpressions.
    return sp.lambdify(
        leaves, outputs, modules=backend, printer=_printer(backend), cse=lambda exprs: (program, exprs),
        docstring_limit=0,
    )


@functools.lru_cache(maxsize=32)
def _program_kernel(structure: Any, backend: str) -> tuple[list[str], Any]:
    """A model's whole scalar program lambdified over its leaves: (leaf names, fn(*leaves) -> gradients)."""
    from derive.model.lower import backpropagate_model

    backprop = backpropagate_model(structure)
    graph = backprop.graph
    assignments = [(n.symbol, n.expr) for n in graph.nodes if n.kind != "loss"]
    assignments += list(backprop.adjoints.items())
    outputs = [backprop.program[p.name] for p in graph.parameters]
    defined = {s for s, _ in assignments}
    used_symbols = {s for _, e in assignments for s in e.free_symbols} | {s for e in outputs for s in e.free_symbols}
    leaves = sorted(used_symbols - defined, key=lambda s: s.name)
    used = _used(assignments, outputs)
    program = [(s, e) for s, e in assignments if s in used]
    # functions by their module's name (numpy.exp, torch.softplus): a node called "softplus" cannot shadow one
    function = sp.lambdify(leaves, outputs, modules=[{"math": math}, backend],  # math.erfc in NumPy's GELU
                           printer=printer(backend, order="none", fully_qualified_modules=True),
                           cse=lambda exprs: (program, exprs), docstring_limit=0)
    return [s.name for s in leaves], function


def compile_program(derivation: Any, backend: str, dtype: str = "float64", device: str = "cpu") -> dict[str, float]:
    """∂L/∂p by name from a graph model's whole scalar program lambdified to ``backend``, evaluated in
    ``dtype`` at the derivation's point (the scalar form of a model, which has no per-sample program)."""
    names, function = _program_kernel(derivation.network.structure, backend)
    point = {s.name: v for s, v in derivation.point.items()}
    if backend == "numpy":
        values = [np.asarray(point[n], dtype=np.dtype(dtype)) for n in names]
    else:
        import torch

        kind = getattr(torch, dtype)
        values = [torch.tensor(point[n], dtype=torch.float64).to(device=device, dtype=kind) for n in names]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        results = function(*values)
    return {p.name: float(r) for p, r in zip(derivation.parameters, results)}


def _printer(backend: str) -> Any:
    return printer(backend)


def _used(assignments: list[tuple[sp.Symbol, sp.Expr]], outputs: list[sp.Expr]) -> set[sp.Symbol]:
    """The intermediates the outputs need, directly or through other intermediates."""
    needed = set().union(*(e.free_symbols for e in outputs))
    for symbol, expr in reversed(assignments):
        if symbol in needed:
            needed |= expr.free_symbols
    return needed


def _numpy_stack(values: list[Any], batch: int, like: Any) -> Any:
    dtype = np.result_type(like.dtype, *(np.asarray(v).dtype for v in values))
    return np.stack([np.broadcast_to(np.asarray(v, dtype=dtype), (batch,)) for v in values])


def _torch_stack(values: list[Any], batch: int, like: Any) -> Any:
    import torch

    tensors = [torch.as_tensor(v, dtype=like.dtype, device=like.device) for v in values]
    return torch.stack([t.expand(batch) for t in tensors])


def _unflatten(total: Any, shapes: list[tuple[int, ...]]) -> list[Any]:
    """Split the textbook-ordered vector (all weights, then all biases) into tensors in layer order."""
    sizes = [int(np.prod(s)) for s in shapes]
    weight_sizes, bias_sizes = sizes[0::2], sizes[1::2]
    result: list[Any] = []
    w_at, b_at = 0, sum(weight_sizes)
    for (w_shape, b_shape), w_size, b_size in zip(zip(shapes[0::2], shapes[1::2]), weight_sizes, bias_sizes):
        result += [total[w_at : w_at + w_size].reshape(w_shape), total[b_at : b_at + b_size].reshape(b_shape)]
        w_at, b_at = w_at + w_size, b_at + b_size
    return result
