"""Read a torch module as a `Model`: the ATen graph torch itself records when the module runs on the data.

A float64 deep copy of the module (the user's module is never touched, BatchNorm's running statistics
included) is exported with ``torch.export`` (non-strict) on the user's data, then decomposed to torch's core
ATen ops, keeping whole the big ops whose rules are worth writing and reading (`KEEP`: ``linear``,
``scaled_dot_product_attention``, the recurrent layers). The graph is functional: no in-place op or buffer
update reaches the registry. Loops, ``x.shape``, tensors made in ``forward``, masks and torch's own composite
modules arrive as the ops torch actually runs.

The graph is walked node by node with the real values (`AtenCall`): each ATen op's class in the registry
(`derive.ops.tensor.ATEN`) reads it into a node of the model graph. Values that depend on no parameter and
on no float data (masks, ``torch.zeros(x.shape[0], H)``, ``arange``, class ids) are folded: they enter the
model as literal tensors. Integer or boolean results of the data alone (``y == 1``, a padding mask) are
folded too: the data is part of the model. Parameters keep their ``named_parameters()`` keys (a tied weight
is one tensor, under the key ``named_parameters()`` gives), buffers become constants, and each node is named
after its module path (``enc.self_attn``). Anything outside the registry is refused in one line naming the
ATen op, the module path and ``file:line``.

>>> import torch
>>> class Residual(torch.nn.Module):
...     def __init__(self):
...         super().__init__()
...         self.fc = torch.nn.Linear(2, 2)
...     def forward(self, x):
...         return x + torch.tanh(self.fc(x))
>>> model = read_torch(Residual(), torch.ones(1, 2), loss="mse", y=[[0.0, 1.0]])
>>> model.tensor_keys, [n.name for n in model.structure.nodes if hasattr(n, "op")]
(['fc.weight', 'fc.bias'], ['fc', 'tanh', 'add'])
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import inspect
import io
import logging
import operator
import re
import sys
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from derive.errors import DeriveError, ShapeError, ValueDomainError, require
from derive.model.build import ModelBuilder, Ref
from derive.model.graph import OWN_LOSS, Model, OpNode
from derive.ops.tensor import ATEN
from derive.sources.torch_checks import lifted
from derive.sources.torch_decompositions import decompositions


class UnsupportedModelError(DeriveError):
    """A torch model that derive cannot read: an op outside the registry, or a value-dependent branch."""


#: ATen ops kept whole when the program is decomposed: their rules are worth writing and reading
KEEP = ("linear.default", "scaled_dot_product_attention.default", "lstm.input", "gru.input", "rnn_tanh.input",
        "rnn_relu.input", "rnn_tanh_cell.default", "rnn_relu_cell.default", "lstm_cell.default",
        "gru_cell.default", "softplus.default", "silu.default", "detach.default")
#: ops that allocate a tensor without values (its elements are all written before they are read)
EMPTY = ("empty.memory_format", "empty_like.default", "new_empty.default", "empty_strided.default",
         "empty_permuted.default")
#: ops whose output does not depend on their tensor inputs' values (only on shapes): always folded
FACTORIES = ("full_like.default", "zeros_like.default", "ones_like.default", "empty_like.default",
             "new_zeros.default", "new_ones.default", "new_full.default", "new_empty.default",
             "scalar_tensor.default", "full.default", "arange.start_step", "arange.default", "arange.start", *EMPTY)
#: ops that give a tensor's size as a Python int: known at the point (a boolean mask's count of the data)
SIZES = ("sym_size.int", "sym_numel.default", "sym_stride.int", "sym_storage_offset.default")
#: ops that check and return nothing the graph uses
CHECKS = ("_assert_tensor_metadata.default", "_assert_async.msg", "_assert_scalar.default",
          "_assert_async.default", "sym_constrain_range_for_size.default")


def _torch() -> Any:
    return require("torch", "reading a torch model")  # without torch: which extra to install


class Value:
    """A value of the graph being read: its real tensor (or Python value), and its model node if it has one.

    ``level``: 0 for a value of no parameter and no float data (folded), 1 for one of the float data only,
    2 for one that depends on a parameter. ``key``: the buffer's key for a buffer (a constant of the model).
    """

    def __init__(self, real: Any, ref: Ref | None = None, level: int = 0, key: str | None = None,
                 name: str = "") -> None:
        self.real, self.ref, self.level, self.key, self.name = real, ref, level, key, name


@contextlib.contextmanager
def default_dtype(torch: Any, dtype: Any) -> Iterator[None]:
    """torch's default dtype set to ``dtype`` inside: a tensor a ``forward`` makes without one
    (``h = torch.zeros(x.shape[0], H)``, the RNN tutorials' first state) takes the copy's dtype, as it would
    take the module's float32 in the user's own run."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def read_torch(
    module: Any, x: Any, *, loss: str | None, y: Any, reduction: str = "mean", lr: float = 1.0, freeze: Any = (),
    name: str | None = None, inputs: Mapping[str, Any] | None = None,
) -> Model:
    """The `Model` of a torch module run on ``x`` (any rank), with targets ``y`` and a loss name.

    With ``loss=None``, ``forward(x, y)`` computes the loss itself. ``inputs``: more keyword arguments of
    ``forward`` (an attention mask), as data. The float64 copy runs with float64 as torch's default dtype.
    """
    torch = _torch()
    with default_dtype(torch, torch.float64):
        return _read_torch(torch, module, x, loss=loss, y=y, reduction=reduction, lr=lr, freeze=freeze, name=name,
                           inputs=inputs)


def _read_torch(
    torch: Any, module: Any, x: Any, *, loss: str | None, y: Any, reduction: str, lr: float, freeze: Any,
    name: str | None, inputs: Mapping[str, Any] | None,
) -> Model:
    label = type(module).__name__
    if not isinstance(module, torch.nn.Module):
        raise UnsupportedModelError(f"a torch model must be a torch.nn.Module, got {label}")
    if not list(module.parameters()):
        raise DeriveError(f"{label} has no parameters: there is nothing to differentiate")
    own = loss is None or loss == OWN_LOSS
    if own and not _takes_targets(module):
        raise DeriveError(f"no loss given, and {label}.forward takes no y to compute its own: give a loss")
    x_real = _tensor(torch, x, "x")
    y_real = _tensor(torch, y, "y") if y is not None else None
    if own and y_real is None:
        raise DeriveError(f"no loss given, and no y for {label}.forward(x, y) to compute its own: give a loss and y")
    extra = {k: _tensor(torch, v, k) for k, v in (inputs or {}).items()}
    copied = _float64_copy(torch, module)
    if not x_real.is_floating_point() and not any(isinstance(m, torch.nn.Embedding) for m in module.modules()):
        try:  # whole numbers are values, unless the model takes them as ids
            _run_eagerly(torch, copied, (x_real.to(torch.float64), y_real) if own else (x_real.to(torch.float64),),
                         extra, label)
            x_real = x_real.to(torch.float64)
        except DeriveError:
            pass
    args = (x_real, y_real) if own else (x_real,)
    _run_eagerly(torch, copied, args, extra, label)
    program = _export(torch, copy.deepcopy(copied), args, extra, label)
    reader = _Reader(torch, copied, program, label)
    output = reader.run([x_real, *([y_real] if own else []), *extra.values()], ["x", *(["y"] if own else []),
                                                                              *extra])
    frozen = tuple(key for key, p in module.named_parameters() if not p.requires_grad)
    model_y = y_real.numpy() if y_real is not None else None
    if not own and model_y is None:
        raise DeriveError("no y data: give y")
    model = reader.builder.model(
        output, x=x_real.numpy(), y=model_y, loss=OWN_LOSS if own else loss, reduction=reduction, lr=lr,
        name=name or label, frozen=frozen, freeze=tuple(freeze), module=module, output_shape=reader.output_shape,
    )
    changes = {"inputs": {k: v.numpy() for k, v in extra.items()}} if extra else {}
    return dataclasses.replace(model, data_dependent=reader.data_dependent or bool(extra), precision=reader.precision,
                               **changes)


def _takes_targets(module: Any) -> bool:
    """Whether ``forward`` takes a second positional argument (y, for a model that returns its own loss)."""
    try:
        parameters = list(inspect.signature(module.forward).parameters.values())
    except (TypeError, ValueError):
        return True
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in parameters)


def _tensor(torch: Any, values: Any, what: str) -> Any:
    """Data as a CPU tensor: floating point as float64, whole numbers and booleans as they are."""
    if values is None:
        raise DeriveError(f"no {what} data: give {what}")
    if isinstance(values, torch.Tensor):
        real = values.detach().cpu()
    else:
        array = np.asarray(values)
        if array.dtype == object or array.dtype.kind not in "iubf":
            raise DeriveError(f"{what} must be numbers, got {array.dtype} values")
        real = torch.from_numpy(np.ascontiguousarray(array))
    if real.is_floating_point():
        real = real.to(torch.float64)
        if not bool(torch.isfinite(real).all()):
            raise ValueDomainError(f"{what} has a NaN or infinite value; every value must be finite")
    elif real.dtype != torch.bool:
        real = real.to(torch.int64)
    return real


def _float64_copy(torch: Any, module: Any) -> Any:
    """A deep copy of the module with every floating-point parameter and buffer in float64, on the CPU."""
    copied = copy.deepcopy(module).cpu()
    for sub in copied.modules():
        for key, p in list(sub._parameters.items()):
            if p is not None and p.is_floating_point():
                p.data = p.data.to(torch.float64)
        for key, b in list(sub._buffers.items()):
            if b is not None and b.is_floating_point():
                sub._buffers[key] = b.to(torch.float64)
    return copied


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Around torch's export: its warnings and logs silenced, and anything printed (the user's ``print``
    in ``forward`` too) sent to standard error, never into a JSON on standard output."""
    previous = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(sys.stderr):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)


@contextlib.contextmanager
def _held_on_failure() -> Iterator[None]:
    """Standard error held inside: passed on if the block succeeds, dropped if it raises (a failing export
    prints the partial graph it recorded, dozens of lines, before derive's one-line refusal)."""
    held = io.StringIO()
    with contextlib.redirect_stderr(held):
        yield
    sys.stderr.write(held.getvalue())


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0]}" if text else type(err).__name__


def _run_eagerly(torch: Any, module: Any, args: tuple, kwargs: dict, label: str) -> None:
    """Run the copy once on the data (export checks no dtypes): the user's own errors, in one line."""
    trial = copy.deepcopy(module)
    try:
        with quiet(), torch.no_grad():
            trial(*args, **kwargs)
    except Exception as err:  # noqa: BLE001 - the user's forward fails on this data
        raise ShapeError(f"running {label}.forward on the data failed: {_first_line(err)}{_user_line(err)}") from None


def _user_line(err: BaseException) -> str:
    """`` (model.py:12)``: the innermost frame of an exception's traceback outside torch, if any."""
    torch_files = str(Path(_torch().__file__).parent)
    found = ""
    tb = err.__traceback__
    while tb is not None:
        file = tb.tb_frame.f_code.co_filename
        if not file.startswith(torch_files) and not file.startswith(str(Path(__file__).parents[1])):
            found = f" ({Path(file).name}:{tb.tb_lineno})"
        tb = tb.tb_next
    return found


def _export(torch: Any, module: Any, args: tuple, kwargs: dict, label: str) -> Any:
    """The module's core ATen program on this data, the `KEEP` ops kept whole."""
    try:
        with _held_on_failure(), quiet(), lifted(torch):  # torch's checks on values: made when it ran eagerly
            program = torch.export.export(module, args, kwargs or None, strict=False)
            table = torch.export.default_decompositions()
            table.update(decompositions(torch))  # ops torch leaves whole (nn.Bilinear's _trilinear)
            for name in KEEP:
                op = _overload(torch, name)
                if op in table:
                    del table[op]
            return program.run_decompositions(table)
    except Exception as err:  # noqa: BLE001 - the user's forward cannot be exported
        text = str(err)
        if "data-dependent" in text or "GuardOnDataDependent" in type(err).__name__:
            where = re.search(r'File "([^"]+)", line (\d+), in \w+\n\s*(.*)', text)
            line = f" ({Path(where[1]).name}:{where[2]}: {where[3].strip()})" if where else ""
            cause = re.search(r"Caused by: \((\S+):\d+ in (\w+)\)", text)
            if cause and not cause[2].startswith("_") and (Path(torch.__file__).parent / cause[1]).is_file():
                # a check inside one of torch's own functions (not the user's ``if`` on a tensor)
                raise UnsupportedModelError(
                    f"{label}.forward calls torch's {cause[2]}{line}, which branches on a tensor's value (a check "
                    "torch makes on the data): derive reads the ops torch records, which cannot follow it; "
                    "write that computation with torch's ops in forward"
                ) from None
            raise UnsupportedModelError(
                f"{label}.forward branches on a tensor's value{line}: derive reads the ops torch records, "
                "which cannot follow a branch taken on data; write it with torch.where, or branch on shapes"
            ) from None
        raise UnsupportedModelError(f"torch.export cannot read {label}: {_first_line(err)}") from None


def _overload(torch: Any, name: str) -> Any:
    packet, _, overload = name.partition(".")
    return getattr(getattr(torch.ops.aten, packet), overload)


class _Reader:
    """Walks the exported graph with real values, building the model graph through the registry."""

    def __init__(self, torch: Any, module: Any, program: Any, label: str) -> None:
        self.torch, self.module, self.program, self.label = torch, module, program, label
        self.builder = ModelBuilder()
        #: the key named_parameters() gives each parameter tensor (a tied weight has one)
        self.keys = {id(p): key for key, p in module.named_parameters()}
        for key, p in module.named_parameters():
            self.builder.parameter(key, p.detach().numpy())
        #: nodes named by their reader as they are (`AtenCall.op` with ``step``)
        self.fixed: set[int] = set()
        #: calls so far of each (op, module path)
        self.calls: dict[tuple[str, str], int] = {}
        #: whether a value of the data alone was folded into the graph (a mask made from the data)
        self.data_dependent = False
        #: the lowest float precision the module rounds a parameter's value to (a .float() in forward)
        self.precision = "float64"

    def run(self, user: list[Any], names: list[str]) -> Ref:
        torch = self.torch
        graph = self.program.graph
        env: dict[Any, Any] = {}
        signature = self.program.graph_signature
        specs = {s.arg.name: s for s in signature.input_specs}
        user_values = iter(zip(user, names))
        for node in graph.nodes:
            if node.op == "placeholder":
                env[node] = self._placeholder(specs[node.name], user_values)
            elif node.op == "call_function":
                env[node] = self._call(node, env)
            elif node.op == "output":
                outputs = [spec for spec in signature.output_specs if spec.kind.name == "USER_OUTPUT"]
                results = node.args[0]
                by_name = {getattr(r, "name", None): r for r in results}
                first = by_name.get(outputs[0].arg.name) if outputs else None
                value = env.get(first) if first is not None else None
                if not isinstance(value, Value) or not isinstance(value.real, torch.Tensor):
                    raise UnsupportedModelError(f"{self.label}.forward must return a tensor (the prediction or the loss)")
                if value.ref is None:
                    raise UnsupportedModelError(f"{self.label}.forward returns a value that depends on no parameter")
                _name_by_module(self.builder, self.fixed)
                self.output_shape = tuple(value.real.shape)
                return value.ref
        raise UnsupportedModelError(f"{self.label}.forward returns nothing")

    def _placeholder(self, spec: Any, user: Iterator) -> Value:
        kind = spec.kind.name
        if kind == "PARAMETER":
            tensor = self.module.get_parameter(spec.target)
            key = self.keys[id(tensor)]
            return Value(tensor.detach(), self.builder.parameter(key, tensor.detach().numpy()), 2)
        if kind == "BUFFER":
            value = self.program.state_dict.get(spec.target) if spec.persistent else self.program.constants.get(spec.target)
            if value is None:
                value = self.module.get_buffer(spec.target)
            return Value(value.detach(), None, 0, spec.target)
        if kind in ("CONSTANT_TENSOR", "CUSTOM_OBJ", "TOKEN"):
            value = self.program.constants.get(spec.target)
            return Value(value.detach() if hasattr(value, "detach") else value, None, 0)
        real, name = next(user)
        if real.is_floating_point():
            return Value(real, self.builder.input(name, tuple(real.shape)) if name in ("x", "y") else
                         self.builder.constant(name, real.numpy()), 1)
        # ids, class indices, masks: data that chooses elements, part of the graph (what it makes is folded)
        self.data_dependent = True
        ids = self.builder.input(name, tuple(real.shape), real.to(self.torch.int64).numpy()) if name in ("x", "y") \
            else None
        return Value(real, ids, 0)

    def _call(self, node: Any, env: dict[Any, Any]) -> Any:
        target = node.target
        name = _aten_name(target)
        if name in CHECKS:
            return None
        args = self.torch.fx.node.map_arg(node.args, lambda n: env[n])
        kwargs = self.torch.fx.node.map_arg(node.kwargs, lambda n: env[n])
        real_args, real_kwargs = _real(args), _real(kwargs)
        try:
            real = target(*real_args, **real_kwargs)
        except Exception as err:  # noqa: BLE001 - replaying torch's own graph on the data failed
            raise UnsupportedModelError(f"{name} {self.where(node)}: running it on the data failed: "
                                        f"{_first_line(err)}") from None
        if name in EMPTY:
            real = self.torch.zeros_like(real)  # its values are never read, and may be NaN: zeros, to fold
        if name is None or name in SIZES:  # Python on shapes and tuples (getitem of a multi-output op, operator.mul
            # of sizes), and sizes themselves
            if target is operator.getitem and isinstance(args[0], Value) and isinstance(args[0].real, (tuple, list)):
                return _item(args[0], args[1])
            return real
        level = max((v.level for v in _flat(args, kwargs) if isinstance(v, Value)), default=0)
        if level == 0 or name in FACTORIES:
            return _wrap(real, None, 0, node.name)
        if level == 1 and not _floating(real):
            self.data_dependent = True
            return _wrap(real, None, 0, node.name)  # a mask or ids from the data alone: part of the model
        if name == "_local_scalar_dense.default" and level == 2:
            raise UnsupportedModelError(
                f".item() (or float(), int()) of a tensor that depends on parameters {self.where(node)}: no gradient "
                "flows through the Python number it makes, and its value would stay fixed; keep it a tensor"
            )
        cls = ATEN.get(name)
        if cls is None:
            raise UnsupportedModelError(
                f"unsupported op aten.{name} {self.where(node)}: derive has no rule for it; docs/ops.md lists "
                "the supported ops (write it with those, or add a class to derive/ops)"
            )
        call = AtenCall(self, node, name, args, kwargs, real, level)
        result = cls.read(call)
        return _pair(result, real, level)

    def where(self, node: Any) -> str:
        """``at 'enc.self_attn' (MultiheadAttention, model.py:12)`` or ``in Net.forward (model.py:12)``."""
        stack = list((node.meta.get("nn_module_stack") or {}).values())
        path = stack[-1][0] if stack else ""
        kind = str(stack[-1][1]).rpartition(".")[2] if stack and path else ""
        place = f"at {path!r}" if path else f"in {self.label}.forward"
        details = ", ".join(part for part in (kind, user_line(self.torch, node)) if part)
        return f"{place} ({details})" if details else place


def _name_by_module(builder: ModelBuilder, fixed: set[int]) -> None:
    """Name each op node after its module: the path alone where the module ran one op (``fc``), else the
    path and the op (``act.clamp``); ops of the top module keep torch's node names (``add``, ``tanh``);
    the ``fixed`` nodes keep the names their reader gave them."""
    nodes = builder.nodes
    ops = [i for i, n in enumerate(nodes) if isinstance(n, OpNode) and i not in fixed]
    per_path: dict[str, int] = {}
    for i in ops:
        per_path[nodes[i].path] = per_path.get(nodes[i].path, 0) + 1
    taken: set[str] = {nodes[i].name for i in fixed}
    for i in ops:
        node = nodes[i]
        base = re.sub(r"_\d+$", "", node.name)
        if not node.path:
            name = base
        elif per_path[node.path] == 1:
            name = node.path
        else:
            name = f"{node.path}.{base}"
        unique, k = name, 1
        while unique in taken:
            k += 1
            unique = f"{name}_{k}"
        taken.add(unique)
        nodes[i] = dataclasses.replace(node, name=unique)


def module_path(node: Any) -> str:
    """The innermost module the node ran in (``enc.self_attn``), '' for the top module's own code."""
    stack = node.meta.get("nn_module_stack") or {}
    paths = [path for path, _ in stack.values()]
    return paths[-1] if paths else ""


def user_line(torch: Any, node: Any) -> str:
    """``model.py:12``: the innermost frame of the node's stack trace outside torch ('' if none)."""
    torch_files = str(Path(torch.__file__).parent)
    found = ""
    for file, line in re.findall(r'File "([^"]+)", line (\d+)', node.meta.get("stack_trace") or ""):
        if not file.startswith(torch_files):
            found = f"{Path(file).name}:{line}"
    return found


def _aten_name(target: Any) -> str | None:
    """``"add.Tensor"`` for ``torch.ops.aten.add.Tensor``; None for a Python function (operator.getitem)."""
    text = str(target)
    return text.removeprefix("aten.") if text.startswith("aten.") else None


def _floating(real: Any) -> bool:
    if isinstance(real, (tuple, list)):
        return any(_floating(r) for r in real)
    return hasattr(real, "is_floating_point") and real.is_floating_point()


def _wrap(real: Any, ref: Any, level: int, name: str = "") -> Any:
    if isinstance(real, (tuple, list)):
        return Value(tuple(real), None, level, name=name)
    return Value(real, ref, level, name=name) if hasattr(real, "dim") else real


def _pair(result: Any, real: Any, level: int) -> Value:
    """A read op's result as a `Value`: one node, or a tuple of nodes (None: an output not modelled)."""
    if isinstance(result, Value):
        return Value(real, result.ref, result.level if result.ref is None else level, result.key)
    if isinstance(real, (tuple, list)):
        refs = result if isinstance(result, tuple) else (result,) + (None,) * (len(real) - 1)
        return Value(tuple(real), refs, level)
    return Value(real, result, level)


def _item(value: Value, index: int) -> Value:
    real = value.real[index]
    refs = value.ref
    if refs is None:
        return _wrap(real, None, 0, value.name)
    ref = refs[index] if index < len(refs) else None
    if ref is None:
        return Value(real, None, 0)  # an output derive does not model (indices, saved statistics)
    return Value(real, ref, value.level)


def _real(value: Any) -> Any:
    if isinstance(value, Value):
        return value.real
    if isinstance(value, (list, tuple)):
        return type(value)(_real(v) for v in value)
    if isinstance(value, dict):
        return {k: _real(v) for k, v in value.items()}
    return value


def _flat(*values: Any) -> Iterator[Any]:
    for value in values:
        if isinstance(value, (list, tuple)):
            yield from _flat(*value)
        elif isinstance(value, dict):
            yield from _flat(*value.values())
        else:
            yield value


class AtenCall:
    """One ATen call being read, for its op class's `read`: arguments by schema name, real values, and
    `op` to add the node."""

    def __init__(self, reader: _Reader, node: Any, name: str, args: tuple, kwargs: dict, real: Any,
                 level: int) -> None:
        self.reader, self.node, self.name, self.real, self.level = reader, node, name, real, level
        schema = node.target._schema
        self.arguments: dict[str, Any] = {}
        for argument, value in zip(schema.arguments, args):
            self.arguments[argument.name] = value
        self.arguments.update(kwargs)
        for argument in schema.arguments:
            if argument.name not in self.arguments and argument.has_default_value():
                self.arguments[argument.name] = argument.default_value

    def arg(self, name: str, default: Any = None) -> Any:
        """An argument as a Python value (a tensor argument as its real tensor)."""
        value = self.arguments.get(name, default)
        return _real(value)

    def given(self, name: str) -> bool:
        return self.arguments.get(name) is not None

    def tensors(self, name: str) -> list[Ref | None]:
        return [self.node_of(v) for v in self.arguments.get(name) or ()]

    def node_of(self, value: Any) -> Ref | float | None:
        """The node of a value: its model node, or a constant (buffer) or literal leaf for a folded tensor."""
        if value is None:
            return None
        if not isinstance(value, Value):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                self.refuse(f"an argument of type {type(value).__name__}")
            return value  # a Python number
        if value.ref is not None:
            return value.ref
        real = value.real
        if value.key is not None and real.is_floating_point() and bool(self.reader.torch.isfinite(real).all()):
            value.ref = self.reader.builder.constant(value.key, real.detach().numpy())  # a buffer: a constant
        else:
            value.ref = self.reader.builder.literal(value.name or self.node.name, real.detach().numpy())
        return value.ref

    def literal(self, real: Any, name: str = "") -> Value:
        """A tensor made while reading (a mask's positions): folded into the model as a literal."""
        return Value(real, None, 0, name=name)

    def input(self, name: str) -> Ref | float | None:
        """A tensor argument's node, or a number argument as it is (None when absent)."""
        return self.node_of(self.arguments.get(name))

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self.arg(name).shape)

    def op(self, key: str, *args: Any, name: str | None = None, step: str | None = None, role: str = "",
           **attributes: Any) -> Ref:
        """Add the op ``key`` (a registry key) over nodes, numbers or None, named after this call and its
        module (`_name_by_module`); ``step`` names it as it is (``rnn_h3``: a recurrent layer's steps)."""
        ref = self.reader.builder.op(key, *args, name=step or name or self.node.name, where=self.where,
                                     path=module_path(self.node), role=role, **attributes)
        if step is not None:
            self.reader.fixed.add(ref.index)
        return ref

    def next_node(self) -> int:
        """The index the next node added will have."""
        return len(self.reader.builder.nodes)

    def group(self, op: Any, args: list[Ref], outputs: list[Ref], first: int, name: str) -> None:
        """Record the nodes added from ``first`` on as one op of the tensor program (`OpGroup`)."""
        self.reader.builder.group(op, args, outputs, first, name)

    @property
    def path(self) -> str:
        """The module the call ran in (``enc.self_attn``; '' for the top module's own code)."""
        return module_path(self.node)

    def count_of_path(self) -> int:
        """How many earlier calls of the same op ran in the same module (a cell called in a loop)."""
        key = (self.name, self.path)
        count = self.reader.calls.get(key, 0)
        self.reader.calls[key] = count + 1
        return count

    def refuse(self, what: str) -> None:
        """Refuse the call: ``aten.OP with WHAT is not supported at 'path' (file:line)``."""
        raise UnsupportedModelError(f"aten.{self.name} with {what} is not supported {self.where}")

    def rounds_to(self, dtype: str) -> None:
        """Note that the module rounds a value that depends on parameters to ``dtype`` here."""
        bits = {"float64": 64, "float32": 32, "float16": 16, "bfloat16": 16}
        if bits.get(dtype, 64) < bits[self.reader.precision]:
            self.reader.precision = dtype

    def fail(self, message: str) -> None:
        """Refuse the call with a message of its own (``{where}`` in it: the module path and file:line)."""
        raise UnsupportedModelError(message.format(where=self.where))

    @property
    def where(self) -> str:
        return self.reader.where(self.node)
