r"""Compiled gradients of graph models: one generated Python function over the op registry
(`verify.straight_line`), one torch call per op and per op's backward rule, any batch.

``compile_model(model)`` returns ``fn(x, y, *params) -> [∂L/∂p for each parameter tensor]`` (parameters in
``named_parameters()`` order, as `verify.arguments` gives them). The forward pass runs each op's tensor
forward (`TensorOp.forward`); the backward pass runs, last op first, each op's tensor rule
(`TensorOp.backward`), keeping only the forward values the rule reads (`TensorOp.reads`). The rules live in
the ops' classes (derive/ops/), each checked entry by entry against its own scalar derivation
(tests/test_registry.py); the loss starts it: ∂L/∂ŷ from the loss's own derivative (elementwise losses
lambdified, cross-entropy as softmax(ŷ)·Σy − y), ÷ the number of terms for a mean.

A call with another batch than the model was read with reads the module again at that batch (torch records
shapes as numbers: ``view(2, -1)``, ``zeros(2, H)``), once per batch shape.

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

from collections.abc import Callable
from typing import Any

import numpy as np

from derive.errors import DeriveError
from derive.model.graph import OWN_LOSS, Leaf, Model, Structure
from derive.ops import loss as lookup_loss
from verify.straight_line import straight_line


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


_LITERAL_DTYPES = {"bool": "bool", "int64": "int64", "float64": None}


class _Program:
    def __init__(self, model: Model) -> None:
        torch = _torch()
        self.model = model
        self.structure: Structure = model.structure
        self.keys = model.tensor_keys
        self.constants: dict[str, Any] = {}
        for node in self.structure.nodes:
            if isinstance(node, Leaf) and node.kind == "constant":
                self.constants[node.name] = torch.tensor(np.asarray(model.values[node.name], dtype=np.float64))
            elif isinstance(node, Leaf) and node.kind == "literal":
                dtype = getattr(torch, node.dtype)
                self.constants[node.name] = torch.tensor(node.numbers, dtype=dtype).reshape(node.shape)
            elif isinstance(node, Leaf) and node.kind == "input" and node.integers is not None and node.name != "x":
                self.constants[node.name] = torch.tensor(node.integers, dtype=torch.int64).reshape(node.shape)
        self.spec = None if model.loss == OWN_LOSS else lookup_loss(model.loss)
        index = {n.name: i for i, n in enumerate(self.structure.nodes) if isinstance(n, Leaf) and n.kind == "parameter"}
        self.parameter_nodes = [index[k] for k in self.keys]
        #: whether each node depends on a parameter: only those get gradients (not the input image)
        self.needs_gradient: list[bool] = []
        for node in self.structure.nodes:
            self.needs_gradient.append(node.kind == "parameter" if isinstance(node, Leaf) else
                                       any(a is not None and self.needs_gradient[a] for a in node.args))
        self.run, self.source = straight_line(self.structure, self.parameter_nodes, self.needs_gradient, self._leaf,
                                              self._loss_gradient, _torch().zeros_like)

    def __call__(self, x: Any, y: Any, *params: Any) -> list[Any]:
        if len(params) != len(self.keys):
            raise DeriveError(f"expected {len(self.keys)} parameter tensors ({', '.join(self.keys)}), got {len(params)}")
        if self.model.module is not None and not _same_data(self.model, x, y):
            return _read_again(self.model, x, y)(x, y, *params)
        return self.run(x, y, *params)

    def _leaf(self, i: int) -> Callable[[Any], Any]:
        """A constant leaf's value for a call with input ``x``: in x's floating dtype, on x's device."""
        value = self.constants[self.structure.nodes[i].name]
        cache: dict[tuple, Any] = {}

        def on(x: Any) -> Any:
            kind = x.dtype if x.is_floating_point() else _torch().float64
            key = (x.device, kind)
            if key not in cache:
                cache[key] = value.to(device=x.device, dtype=kind if value.is_floating_point() else value.dtype)
            return cache[key]

        return on

    def _loss_gradient(self, out: Any, y: Any) -> Any:
        torch = _torch()
        if self.spec is None:  # forward(x, y) returns L itself
            return torch.ones_like(out)
        spec = self.spec
        rows = out.reshape(out.shape[0], -1) if out.dim() > 1 else (out.reshape(1, -1) if spec.class_targets
                                                                    else out.reshape(-1, 1))
        n, width = rows.shape
        if spec.class_targets and y.numel() == n and width > 1:  # one-hot rows (one_hot would sync on y's range)
            y = rows.new_zeros((n, width)).scatter_(1, y.reshape(-1, 1).long(), 1.0)
        t = y.to(rows.dtype).reshape(n, width)
        g = spec.tensor_derivative(rows, t, "torch")  # the loss's own derivative, on whole tensors
        if self.structure.reduction == "mean":
            g = g / spec.term_count(n, width)
        return g.reshape(out.shape)



def _same_data(model: Model, x: Any, y: Any) -> bool:
    """Whether a call's data fits the program as it was read: the same shapes, and where the program depends
    on the data's values (a mask made from the data), the same values."""
    if tuple(x.shape) != tuple(np.shape(model.x)) or tuple(y.shape) != tuple(np.shape(model.y)):
        return False
    if not model.data_dependent:
        return True
    return np.array_equal(x.detach().cpu().numpy(), model.x) and np.array_equal(y.detach().cpu().numpy(), model.y)


def _read_again(model: Model, x: Any, y: Any) -> Callable[..., list[Any]]:
    """The compiled gradient of the same module read again for other data (cached per shape, and per data
    where the program depends on the data's values)."""
    from derive.sources.torch_export import read_torch

    x_data, y_data = x.detach().cpu(), y.detach().cpu()
    key = (tuple(x.shape), tuple(y.shape)) + ((x_data.numpy().tobytes(), y_data.numpy().tobytes())
                                              if model.data_dependent else ())
    cache = _READ_AGAIN.setdefault(id(model), {})
    if key not in cache:
        own = model.loss == OWN_LOSS
        again = read_torch(model.module, x_data, loss=None if own else model.loss, y=y_data,
                           reduction=model.reduction, inputs=model.inputs)
        cache[key] = _Program(again)
    return cache[key]


#: programs read again for other data, by the model's id
_READ_AGAIN: dict[int, dict] = {}


def compile_model(model: Model) -> Callable[..., list[Any]]:
    """``fn(x, y, *params) -> [∂L/∂p, …]`` (torch tensors, any device, dtype and batch) for a graph model."""
    if model.textbook:
        raise DeriveError("compile_model takes a graph model (derive.from_torch of a model that is not a chain)")
    return _Program(model)
