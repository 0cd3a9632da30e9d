"""Graph models from torch: read any traced ``nn.Module`` built from the supported ops as a `Model`.

The module is traced with ``torch.fx``; each call (module, function or tensor method) becomes one op of the
model graph, through the tables in `derive.sources.torch_ops`. While reading, every call also runs on the
real data in float64 (a copy of the module), so shapes, ``x.size(0)`` and ``x.view(x.size(0), -1)`` are
exact, and the model is read for the batch it is given. Parameters keep their ``named_parameters()`` keys
and order; buffers (running statistics) become constants. Anything unsupported is refused with the op's
name, ``file:line`` and what is supported.

>>> import torch
>>> class Residual(torch.nn.Module):
...     def __init__(self):
...         super().__init__()
...         self.fc = torch.nn.Linear(2, 2)
...     def forward(self, x):
...         return x + torch.tanh(self.fc(x))
>>> model = read_graph(Residual(), torch.ones(1, 2), loss="mse", y=[[0.0, 1.0]])
>>> model.tensor_keys, [n.name for n in model.structure.nodes if hasattr(n, "op")]
(['fc.weight', 'fc.bias'], ['fc', 'tanh', 'add'])
"""

from __future__ import annotations

import copy
import operator
import re
from pathlib import Path
from typing import Any

from derive.errors import DeriveError, ShapeError
from derive.model.build import ModelBuilder, Ref
from derive.model.graph import OWN_LOSS, Model
from derive.sources import torch_ops
from derive.sources.torch_fx import UnsupportedModelError, _torch


class Tensor:
    """A traced value that is a tensor: its node in the model graph and its real float64 value."""

    def __init__(self, ref: Ref, real: Any) -> None:
        self.ref, self.real = ref, real


def read_graph(
    module: Any, x: Any, *, loss: str | None, y: Any, reduction: str = "mean", lr: float = 1.0, freeze: Any = (),
    name: str | None = None,
) -> Model:
    """The `Model` of a torch module on input ``x`` (any rank), with targets ``y`` and a loss name.

    With ``loss=None``, ``forward(x, y)`` computes the loss itself (any loss built from supported ops).
    """
    torch = _torch()
    label = type(module).__name__
    traced_module, prefix = module, ""
    if type(module).__module__.startswith("torch.") and not isinstance(module, torch_ops.containers(torch)):
        traced_module, prefix = torch.nn.Sequential(module), "0."  # fx would trace into a torch module's forward
    try:
        graph = torch.fx.Tracer().trace(traced_module)
    except Exception as err:  # noqa: BLE001 - any failure of the user's forward under tracing
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UnsupportedModelError(f"cannot trace {label} with torch.fx: {message}") from None
    real_module = copy.deepcopy(traced_module).to(torch.float64)
    reader = _Reader(torch, traced_module, real_module, label, prefix)
    own = loss is None or loss == OWN_LOSS
    output = reader.run(graph, x, y if own else None)
    if own and reader.y_data is None:
        raise DeriveError(f"no loss given, and {label}.forward takes no y to compute its own: give a loss")
    frozen = tuple(key for key, p in module.named_parameters() if not p.requires_grad)
    return reader.builder.model(
        output, x=reader.x_data, y=reader.y_data if own else y, loss=OWN_LOSS if own else loss,
        reduction=reduction, lr=lr, name=name or label, frozen=frozen, freeze=tuple(freeze), module=module,
    )


class _Reader:
    def __init__(self, torch: Any, root: Any, real_root: Any, label: str, prefix: str) -> None:
        self.torch, self.root, self.real_root, self.label, self.prefix = torch, root, real_root, label, prefix
        self.builder = ModelBuilder()
        for key, value in root.named_parameters():
            self.builder.parameter(key.removeprefix(prefix), _exact(torch, value))
        self.x_data: Any = None
        self.y_data: Any = None
        self._traces: dict[str, str] | None = None  # stack traces by node name, traced again when refusing

    def run(self, graph: Any, x: Any, y: Any = None) -> Ref:
        """Read the traced graph; ``y`` is given for a ``forward(x, y)`` that returns its own loss."""
        env: dict[Any, Any] = {}
        for node in graph.nodes:
            if node.op == "placeholder":
                if self.x_data is None:
                    env[node] = self._input(x)
                elif y is not None and self.y_data is None:
                    env[node] = self._targets(y)
                else:
                    more = "more than two inputs" if y is not None else "a second input (y: then give no loss, " \
                        "forward(x, y) returns the loss)"
                    raise UnsupportedModelError(f"{self.label}.forward takes {more} ({node.name!r})")
            elif node.op == "output":
                result = env[node.args[0]] if hasattr(node.args[0], "op") else node.args[0]
                if not isinstance(result, Tensor):
                    raise UnsupportedModelError(
                        f"{self.label}.forward must return one tensor, got {type(result).__name__}"
                    )
                return result.ref
            else:
                env[node] = self._call(node, env)
        raise UnsupportedModelError(f"{self.label}.forward returns nothing")

    def _input(self, x: Any) -> Tensor:
        torch = self.torch
        if x is None:
            raise DeriveError("no x data: give x")
        if isinstance(x, torch.Tensor):
            real = x.detach().cpu()
        else:
            import numpy as np

            array = np.asarray(x)
            if array.dtype == object or array.dtype.kind not in "iubf":
                raise DeriveError(f"x must be numbers, got {array.dtype} values")
            real = torch.tensor(array.tolist(), dtype=torch.float64 if array.dtype.kind == "f" else torch.int64)
        # whole numbers are token ids only for a model that embeds them; otherwise they are values
        ids = not real.is_floating_point() and any(
            isinstance(m, torch.nn.Embedding) for m in self.root.modules())
        real = real.to(torch.int64) if ids else real.to(torch.float64)
        self.x_data = real.numpy()
        return Tensor(self.builder.input("x", tuple(real.shape)), real)

    def _targets(self, y: Any) -> Tensor:
        torch = self.torch
        real = torch.as_tensor(y.detach().cpu() if isinstance(y, torch.Tensor) else y)
        real = real.to(torch.float64) if real.is_floating_point() else real.to(torch.int64)
        self.y_data = real.numpy()
        return Tensor(self.builder.input("y", tuple(real.shape)), real)

    def _call(self, node: Any, env: dict[Any, Any]) -> Any:
        torch = self.torch
        args = torch.fx.node.map_arg(node.args, lambda n: env[n])
        kwargs = torch.fx.node.map_arg(node.kwargs, lambda n: env[n])
        if node.op == "get_attr":
            return self._attribute(node)
        if node.target is operator.getitem and isinstance(args[0], (tuple, list)):
            return args[0][args[1]]  # an element of a module's tuple of outputs (RNN: output, h_n)
        real_args = _real(args)
        real_kwargs = _real(kwargs)
        tensors = any(isinstance(v, Tensor) for v in _flat(args, kwargs))
        if tensors and not torch_ops.is_query(node):
            torch_ops.handler(self, node)  # refuse what is unsupported before running it
        try:
            if node.op == "call_module":
                real = self.real_root.get_submodule(node.target)(*real_args, **real_kwargs)
            elif node.op == "call_method":
                real = getattr(real_args[0], node.target)(*real_args[1:], **real_kwargs)
            else:
                real = node.target(*real_args, **real_kwargs)
        except Exception as err:  # noqa: BLE001 - the user's forward fails on this data
            message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ShapeError(f"{node.name} {self.where(node)}: running it on the data failed: {message}") from None
        if not tensors:
            if isinstance(real, torch.Tensor) and real.is_floating_point():  # made in forward from numbers
                return Tensor(self.builder.constant(node.name, real.detach().cpu().numpy()), real)
            return real  # arithmetic on shapes and numbers: a Python value
        if not isinstance(real, (torch.Tensor, tuple)):
            if torch_ops.is_query(node):
                return real  # a shape, a number of dims: a Python value
            raise UnsupportedModelError(
                f"{node.name} {self.where(node)} gives a {type(real).__name__}, not a tensor: values that depend "
                "on the data (.item(), .tolist(), comparisons) are not supported"
            )
        call = torch_ops.Call(self, node, args, kwargs, real)
        ref = torch_ops.lower_call(call)
        if ref is None:  # passes its input through (dropout in eval mode, contiguous, …)
            return Tensor(args[0].ref, real)
        return _paired(ref, real)

    def _attribute(self, node: Any) -> Any:
        torch = self.torch
        value = self.real_root
        for part in node.target.split("."):
            value = getattr(value, part)
        key = node.target.removeprefix(self.prefix)
        if isinstance(value, torch.nn.Parameter):
            return Tensor(self.builder.parameter(key, _exact(torch, value)), value.detach())
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            return Tensor(self.builder.constant(key, value.detach().cpu().numpy()), value.detach())
        raise UnsupportedModelError(f"unsupported use of the attribute {node.target!r} {self.where(node)}")

    def parameter(self, module_path: str, name: str) -> Ref | None:
        """The parameter ``name`` of the submodule at ``module_path``, or None (``bias=False``)."""
        module = self.root.get_submodule(module_path)
        if getattr(module, name, None) is None:
            return None
        key = f"{module_path}.{name}" if module_path else name
        return self.builder.parameter(key.removeprefix(self.prefix), _exact(self.torch, getattr(module, name)))

    def constant(self, module_path: str, name: str) -> Ref:
        module = self.real_root.get_submodule(module_path)
        key = (f"{module_path}.{name}" if module_path else name).removeprefix(self.prefix)
        return self.builder.constant(key, getattr(module, name).detach().cpu().numpy())

    def where(self, node: Any) -> str:
        """``at 'fc' (model.py:12)`` / ``in Model.forward (model.py:12)``: traced again, with stack traces."""
        place = f"at {node.target!r}" if node.op == "call_module" else f"in {self.label}.forward"
        if self._traces is None:
            try:
                tracer = self.torch.fx.Tracer()
                tracer.record_stack_traces = True
                self._traces = {n.name: n.stack_trace or "" for n in tracer.trace(self.root).nodes}
            except Exception:  # noqa: BLE001 - the first trace worked; a second failing only loses the line
                self._traces = {}
        torch_files = str(Path(self.torch.__file__).parent)
        trace = self._traces.get(node.name, "")
        for file, line in re.findall(r'File "([^"]+)", line (\d+)', trace):
            if not file.startswith(torch_files):
                return f"{place} ({Path(file).name}:{line})"
        return place


def _paired(ref: Any, real: Any) -> Any:
    """A call's result as `Tensor`s: one, or a (nested) tuple of them for a module that returns several."""
    if isinstance(ref, tuple):
        if not isinstance(real, tuple) or len(real) != len(ref):
            raise UnsupportedModelError("a layer's outputs do not match what was read for it")
        return tuple(_paired(r, v) for r, v in zip(ref, real))
    return Tensor(ref, real.detach())


def _exact(torch: Any, tensor: Any) -> Any:
    if not tensor.is_floating_point():
        raise UnsupportedModelError(f"a parameter of dtype {tensor.dtype} is not supported (floating point only)")
    return tensor.detach().to(device="cpu", dtype=torch.float64).numpy()


def _real(value: Any) -> Any:
    if isinstance(value, Tensor):
        return value.real
    if isinstance(value, (list, tuple)):
        return type(value)(_real(v) for v in value)
    if isinstance(value, dict):
        return {k: _real(v) for k, v in value.items()}
    return value


def _flat(*values: Any):
    for value in values:
        if isinstance(value, (list, tuple)):
            yield from _flat(*value)
        elif isinstance(value, dict):
            yield from _flat(*value.values())
        else:
            yield value
