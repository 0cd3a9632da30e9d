"""The table from torch's modules, functions and tensor methods to derive's tensor ops (graph models).

One entry per torch name; composite modules (``LayerNorm``, ``BatchNorm1d``) become their textbook steps
(mean, centring, variance, normalisation, scale and shift), each a named node of the graph. `SUPPORTED`
lists every name for the refusal message and docs/ops.md.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from derive.errors import did_you_mean
from derive.model.build import Ref
from derive.sources import torch_conv
from derive.sources.torch_fx import UnsupportedModelError, _activation
from derive.sources.torch_layers import batch_norm, dropout_function, dropout_module, embedding, layer_norm
from derive.sources.torch_recurrent import recurrent_cell, recurrent_layer


@dataclass
class Call:
    """One traced call being read: the reader, the fx node, its arguments (tensors as `Tensor`), its result."""

    reader: Any
    node: Any
    args: tuple
    kwargs: dict
    real: Any

    def arg(self, position: int, name: str, default: Any = None) -> Any:
        if position < len(self.args):
            return self.args[position]
        return self.kwargs.get(name, default)

    def ref(self, value: Any) -> Ref | float:
        """A tensor argument's node, or a Python number as it is."""
        if hasattr(value, "ref"):
            return value.ref
        if isinstance(value, Ref):
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.refuse(f"an argument of type {type(value).__name__}")
        return value

    def op(self, key: str, *args: Any, name: str | None = None, role: str = "", **attributes: Any) -> Ref:
        return self.reader.builder.op(key, *(self.ref(a) if a is not None else None for a in args),
                                      name=name or self.node.name, role=role, **attributes)

    def refuse(self, what: str) -> None:
        raise UnsupportedModelError(f"{self.title} with {what} is not supported {self.reader.where(self.node)}")

    @property
    def title(self) -> str:
        if self.node.op == "call_module":
            return type(self.reader.root.get_submodule(self.node.target)).__name__
        if self.node.op == "call_method":
            return f".{self.node.target}()"
        return getattr(self.node.target, "__name__", str(self.node.target))

    @property
    def module(self) -> Any:
        return self.reader.root.get_submodule(self.node.target)


def containers(torch: Any) -> tuple[type, ...]:
    return (torch.nn.Sequential, torch.nn.ModuleList, torch.nn.ModuleDict)


# --- activations -----------------------------------------------------------------------------------------

def _activate(key: str, names: tuple[str, ...] = ()) -> Callable[[Call], Ref]:
    def lower(call: Call) -> Ref:
        arguments = dict(zip(names, call.args[1:])) | dict(call.kwargs)
        return call.op("activate", call.args[0], activation=_checked(call, key, arguments))

    return lower


def _checked(call: Call, key: str, arguments: dict[str, Any]) -> str:
    arguments = {k: v for k, v in arguments.items() if k not in ("inplace", "_stacklevel", "dtype")}
    if key == "elu" and float(arguments.pop("alpha", 1.0)) != 1.0:
        call.refuse("alpha ≠ 1")
    if key == "hardtanh" and (float(arguments.pop("min_val", -1.0)), float(arguments.pop("max_val", 1.0))) != (-1, 1):
        call.refuse("bounds other than (-1, 1) (use torch.clamp)")
    try:
        return _activation(key, arguments, "")
    except UnsupportedModelError as err:  # where it is costs a second trace: only when refusing
        raise UnsupportedModelError(f"{str(err).rstrip()} {call.reader.where(call.node)}") from None


def _activation_module(key: str, fields: tuple[str, ...] = ()) -> Callable[[Call], Ref]:
    def lower(call: Call) -> Ref:
        arguments = {f: getattr(call.module, f) for f in fields}
        return call.op("activate", call.args[0], activation=_checked(call, key, arguments))

    return lower


def _along(key: str) -> Callable[[Call], Ref]:
    def lower(call: Call) -> Ref:
        dim = getattr(call.module, "dim", None) if call.node.op == "call_module" else call.arg(1, "dim")
        if dim is None:
            call.refuse("no dim (give dim=…)")
        return call.op(key, call.args[0], dim=int(dim))

    return lower


# --- element-wise ----------------------------------------------------------------------------------------

def _binary(key: str) -> Callable[[Call], Ref]:
    def lower(call: Call) -> Ref:
        if call.kwargs.get("alpha", 1) != 1 or call.kwargs.get("rounding_mode") is not None:
            call.refuse("alpha or rounding_mode")
        a, b = call.arg(0, "input"), call.arg(1, "other")
        return call.op(key, a, b)

    return lower


def _unary(key: str) -> Callable[[Call], Ref]:
    return lambda call: call.op(key, call.args[0])


def _pow(call: Call) -> Ref:
    base, exponent = call.arg(0, "input"), call.arg(1, "exponent")
    if hasattr(exponent, "ref") or not hasattr(base, "ref"):
        call.refuse("a tensor exponent (only tensor ** constant)")
    return call.op("pow", base, exponent=float(exponent))


def _clamp(call: Call) -> Ref:
    low, high = call.arg(1, "min"), call.arg(2, "max")
    if hasattr(low, "ref") or hasattr(high, "ref"):
        call.refuse("tensor bounds")
    return call.op("clamp", call.args[0], low=None if low is None else float(low),
                   high=None if high is None else float(high))


# --- linear algebra --------------------------------------------------------------------------------------

def _linear_module(call: Call) -> Ref:
    path = call.node.target
    return call.op("linear", call.args[0], call.reader.parameter(path, "weight"), call.reader.parameter(path, "bias"))


def _linear_function(call: Call) -> Ref:
    return call.op("linear", call.arg(0, "input"), call.arg(1, "weight"), call.arg(2, "bias"))


def _addmm(call: Call) -> Ref:
    if call.kwargs.get("beta", 1) != 1 or call.kwargs.get("alpha", 1) != 1:
        call.refuse("beta or alpha ≠ 1")
    product = call.op("matmul", call.args[1], call.args[2], name=f"{call.node.name}_product")
    return call.op("add", product, call.args[0])


# --- shape -----------------------------------------------------------------------------------------------

def _shape_arguments(call: Call) -> tuple[int, ...]:
    dims = call.args[1:] if len(call.args) > 1 else (call.kwargs.get("shape") or call.kwargs.get("size"),)
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = tuple(dims[0])
    return tuple(int(d) for d in dims)


def _reshape(call: Call) -> Ref:
    return call.op("reshape", call.args[0], shape=_shape_arguments(call))


def _flatten(call: Call) -> Ref:
    if call.node.op == "call_module":
        return call.op("flatten", call.args[0], start=call.module.start_dim, end=call.module.end_dim)
    return call.op("flatten", call.args[0], start=int(call.arg(1, "start_dim", 0)), end=int(call.arg(2, "end_dim", -1)))


def _transpose(call: Call) -> Ref:
    ndim = call.args[0].real.dim()
    d0, d1 = int(call.arg(1, "dim0")) % ndim, int(call.arg(2, "dim1")) % ndim
    dims = list(range(ndim))
    dims[d0], dims[d1] = dims[d1], dims[d0]
    return call.op("permute", call.args[0], dims=tuple(dims))


def _t(call: Call) -> Ref:
    ndim = call.args[0].real.dim()
    return call.op("permute", call.args[0], dims=(1, 0) if ndim == 2 else tuple(range(ndim)))


def _permute(call: Call) -> Ref:
    return call.op("permute", call.args[0], dims=_shape_arguments(call) if "dims" not in call.kwargs
                   else tuple(call.kwargs["dims"]))


def _expand(call: Call) -> Ref:
    if call.node.target == "expand_as":
        return call.op("expand", call.args[0], shape=tuple(call.args[1].real.shape))
    return call.op("expand", call.args[0], shape=_shape_arguments(call))


def _squeeze(call: Call) -> Ref:
    dim = call.arg(1, "dim")
    if isinstance(dim, (tuple, list)):
        call.refuse("several dims")
    return call.op("squeeze", call.args[0], dim=None if dim is None else int(dim))


def _unsqueeze(call: Call) -> Ref:
    return call.op("unsqueeze", call.args[0], dim=int(call.arg(1, "dim")))


def _join(key: str) -> Callable[[Call], Ref]:
    def lower(call: Call) -> Ref:
        tensors = call.arg(0, "tensors")
        return call.op(key, *tensors, dim=int(call.arg(1, "dim", 0)))

    return lower


def _getitem(call: Call) -> Ref:
    key = call.args[1]
    key = key if isinstance(key, tuple) else (key,)
    items = []
    for item in key:
        if item is None:
            items.append(("none",))
        elif item is Ellipsis:
            items.append(("ellipsis",))
        elif isinstance(item, slice):
            items.append(("slice", item.start, item.stop, item.step))
        elif isinstance(item, int) and not isinstance(item, bool):
            items.append(("int", item))
        else:
            call.refuse(f"an index of type {type(item).__name__} (basic indexing only: ints, slices, None, ...)")
    return call.op("index", call.args[0], items=tuple(items))


# --- reductions ------------------------------------------------------------------------------------------

def _reduction(key: str) -> Callable[[Call], Ref]:
    def lower(call: Call) -> Ref:
        dim = call.arg(1, "dim")
        if call.arg(3, "dtype") is not None:
            call.refuse("dtype")
        dims = None if dim is None else tuple(int(d) for d in (dim if isinstance(dim, (tuple, list)) else (dim,)))
        return call.op(key, call.args[0], dims=dims, keepdim=bool(call.arg(2, "keepdim", False)))

    return lower


def _passthrough(call: Call) -> None:
    return None


def _filled(call: Call) -> Ref:
    """``x.new_zeros(…)``, ``torch.zeros_like(x)`` …: a constant tensor (its values do not depend on x's)."""
    return call.reader.builder.constant(call.node.name, call.real.detach().cpu().numpy())


MODULES: dict[str, Callable[[Call], Ref | None]] = {
    "Linear": _linear_module,
    "Sigmoid": _activation_module("sigmoid"), "Tanh": _activation_module("tanh"),
    "ReLU": _activation_module("relu"), "LeakyReLU": _activation_module("leaky_relu", ("negative_slope",)),
    "Softplus": _activation_module("softplus", ("beta", "threshold")),
    "GELU": _activation_module("gelu", ("approximate",)), "ELU": _activation_module("elu", ("alpha",)),
    "SiLU": _activation_module("silu"), "Hardtanh": _activation_module("hardtanh", ("min_val", "max_val")),
    "Softmax": _along("softmax"), "LogSoftmax": _along("log_softmax"),
    "Identity": _passthrough, "Dropout": dropout_module, "Flatten": _flatten,
    "LayerNorm": layer_norm, "BatchNorm1d": batch_norm, "Embedding": embedding,
    "RNN": recurrent_layer, "LSTM": recurrent_layer, "GRU": recurrent_layer,
    "RNNCell": recurrent_cell, "LSTMCell": recurrent_cell, "GRUCell": recurrent_cell,
    "BatchNorm2d": batch_norm, **torch_conv.MODULES,
}  # fmt: skip

METHODS: dict[str, Callable[[Call], Ref | None]] = {
    "view": _reshape, "reshape": _reshape, "flatten": _flatten, "squeeze": _squeeze, "unsqueeze": _unsqueeze,
    "transpose": _transpose, "permute": _permute, "t": _t, "contiguous": _passthrough, "float": _passthrough,
    "double": _passthrough, "sum": _reduction("sum"), "mean": _reduction("mean"),
    "logsumexp": _reduction("logsumexp"), "exp": _unary("exp"), "log": _unary("log"), "sqrt": _unary("sqrt"),
    "abs": _unary("abs"), "neg": _unary("neg"), "clamp": _clamp, "clip": _clamp, "pow": _pow,
    "sigmoid": _activate("sigmoid"), "tanh": _activate("tanh"), "relu": _activate("relu"),
    "softmax": _along("softmax"), "log_softmax": _along("log_softmax"), "matmul": _binary("matmul"),
    "mm": _binary("matmul"), "bmm": _binary("matmul"), "add": _binary("add"), "sub": _binary("sub"),
    "mul": _binary("mul"), "div": _binary("div"), "new_zeros": _filled, "new_ones": _filled, "expand": _expand, "expand_as": _expand,
    "new_full": _filled, "zeros_like": _filled, "ones_like": _filled,
}  # fmt: skip

#: tensor queries that give a Python value (shapes), not a tensor
QUERIES = ("size", "dim", "ndim", "shape", "numel", "ndimension")


def is_query(node: Any) -> bool:
    """Whether a call asks for a tensor's shape (``x.size(0)``, ``x.shape``, ``len(x)``)."""
    if node.op == "call_method":
        return node.target in QUERIES
    if node.target is getattr:
        return node.args[1] in QUERIES
    return node.target is len


def _attribute(call: Call) -> Ref:
    if call.args[1] in ("T", "mT"):
        ndim = call.args[0].real.dim()
        dims = tuple(reversed(range(ndim))) if call.args[1] == "T" else (*range(ndim - 2), ndim - 1, ndim - 2)
        return call.op("permute", call.args[0], dims=dims)
    call.refuse(f"the attribute {call.args[1]!r}")


def functions(torch: Any) -> dict[Any, Callable[[Call], Ref | None]]:
    F = torch.nn.functional
    return {
        operator.add: _binary("add"), operator.iadd: _binary("add"), torch.add: _binary("add"),
        operator.sub: _binary("sub"), operator.isub: _binary("sub"), torch.sub: _binary("sub"),
        operator.mul: _binary("mul"), operator.imul: _binary("mul"), torch.mul: _binary("mul"),
        operator.truediv: _binary("div"), operator.itruediv: _binary("div"), torch.div: _binary("div"),
        operator.neg: _unary("neg"), torch.neg: _unary("neg"), operator.pow: _pow, torch.pow: _pow,
        torch.exp: _unary("exp"), torch.log: _unary("log"), torch.sqrt: _unary("sqrt"),
        torch.abs: _unary("abs"), operator.abs: _unary("abs"), torch.clamp: _clamp, torch.clip: _clamp,
        torch.sigmoid: _activate("sigmoid"), F.sigmoid: _activate("sigmoid"), torch.tanh: _activate("tanh"),
        F.tanh: _activate("tanh"), torch.relu: _activate("relu"), F.relu: _activate("relu", ("inplace",)),
        F.leaky_relu: _activate("leaky_relu", ("negative_slope", "inplace")),
        F.softplus: _activate("softplus", ("beta", "threshold")), F.gelu: _activate("gelu", ("approximate",)),
        F.elu: _activate("elu", ("alpha", "inplace")), F.silu: _activate("silu", ("inplace",)),
        F.hardtanh: _activate("hardtanh", ("min_val", "max_val", "inplace")),
        torch.softmax: _along("softmax"), F.softmax: _along("softmax"),
        torch.log_softmax: _along("log_softmax"), F.log_softmax: _along("log_softmax"),
        operator.matmul: _binary("matmul"), torch.matmul: _binary("matmul"), torch.mm: _binary("matmul"),
        torch.bmm: _binary("matmul"), F.linear: _linear_function, torch.addmm: _addmm,
        torch.flatten: _flatten, torch.reshape: _reshape, torch.transpose: _transpose, torch.permute: _permute,
        torch.t: _t, torch.squeeze: _squeeze, torch.unsqueeze: _unsqueeze, torch.cat: _join("cat"),
        torch.concat: _join("cat"), torch.stack: _join("stack"), operator.getitem: _getitem,
        torch.sum: _reduction("sum"), torch.mean: _reduction("mean"), torch.logsumexp: _reduction("logsumexp"),
        F.dropout: dropout_function, getattr: _attribute, torch.zeros_like: _filled, torch.ones_like: _filled,
        **torch_conv.functions(F),
    }  # fmt: skip


def handler(reader: Any, node: Any) -> Callable[[Call], Ref | None]:
    """The handler of one traced call, or refuse the call (naming it, where it is, what is supported)."""
    if node.op == "call_module":
        module = reader.root.get_submodule(node.target)
        name = type(module).__name__
        found = MODULES.get(name) if type(module).__module__.startswith("torch.") else None
        if found is None:
            supported = ", ".join(sorted(MODULES))
            raise UnsupportedModelError(
                f"unsupported module {name} {reader.where(node)}; supported: {supported} (docs/ops.md)"
            )
        return found
    if node.op == "call_method":
        found = METHODS.get(node.target)
        if found is None:
            raise UnsupportedModelError(
                f"unsupported tensor method .{node.target}() {reader.where(node)}; supported: "
                f"{', '.join(sorted(METHODS))} (docs/ops.md).{did_you_mean(node.target, METHODS)}"
            )
        return found
    table = functions(reader.torch)
    found = table.get(node.target)
    if found is None:
        name = getattr(node.target, "__name__", str(node.target))
        known = sorted({getattr(f, "__name__", str(f)).strip("_") for f in table})
        raise UnsupportedModelError(
            f"unsupported call {name} {reader.where(node)}; supported: {', '.join(known)} (docs/ops.md)"
        )
    return found


def lower_call(call: Call) -> Ref | None:
    """The model-graph node of one traced call (None: it passes its input through), or refuse it."""
    return handler(call.reader, call.node)(call)
