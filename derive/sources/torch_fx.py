"""Networks from torch: trace an ``nn.Module`` with ``torch.fx`` and read it as a `Network`.

The module is traced (not run) into a graph of calls, which must be a chain: Linear layers, each followed by at
most one activation, as modules (``nn.Sigmoid()``, ``nn.LeakyReLU(0.1)``, …), functions (``torch.sigmoid``,
``F.relu``, …) or tensor methods (``x.tanh()``). Sequentials, nested Sequentials and custom modules with a
``forward`` are all traced through; layers are numbered in the order ``forward`` calls them. Anything else
(a convolution, a residual add, dropout in train mode, …) is refused before any work, with a one-line
`UnsupportedModelError` naming the module or call and where it is.

Weights are read exactly: float32 values are promoted to float64 (exact), never through a decimal string.
A parameter with ``requires_grad=False``, or a missing bias (``bias=False``, read as zeros), is frozen.
torch is imported inside the functions only: importing this module does not import torch.

>>> import torch
>>> model = torch.nn.Sequential(torch.nn.Linear(2, 1), torch.nn.Sigmoid())
>>> net = from_torch(model, loss="bce", x=[[1, 1]], y=[[0]])
>>> [layer.activation for layer in net.layers], net.layers[0].weight == tuple(
...     tuple(row) for row in model[0].weight.double().tolist())
(['sigmoid'], True)
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from typing import Any

from derive.errors import DeriveError, did_you_mean
from derive.network import Linear, Network
from derive.ops import LOSSES, REDUCTIONS, activation

#: torch.nn activation modules by class name -> derive activation key (parameters are read from the module).
_MODULES = {
    "Sigmoid": "sigmoid", "Tanh": "tanh", "ReLU": "relu", "LeakyReLU": "leaky_relu", "Softplus": "softplus",
    "GELU": "gelu", "Softmax": "softmax",
}  # fmt: skip
#: modules that pass their input through (Dropout only when it cannot drop: eval mode or p = 0).
_PASS = ("Identity", "Dropout")
_CONTAINERS = ("Sequential", "ModuleList", "ModuleDict")
#: tensor methods by name -> activation key
_METHODS = {"sigmoid": "sigmoid", "tanh": "tanh", "relu": "relu", "softmax": "softmax"}
#: torch loss modules by class name -> derive loss key
_LOSSES = {
    "BCELoss": "bce", "BCEWithLogitsLoss": "bce_with_logits", "MSELoss": "mse", "L1Loss": "l1",
    "CrossEntropyLoss": "cross_entropy", "NLLLoss": "nll",
}  # fmt: skip
_CALL_NAMES = {"add": "an addition (a residual connection?)", "iadd": "an addition (a residual connection?)"}


class UnsupportedModelError(DeriveError):
    """A torch model that derive cannot read: a module or call outside the supported set, or not a chain."""


def _torch() -> Any:
    try:
        import torch
    except ImportError:  # pragma: no cover - exercised only without torch
        raise DeriveError("reading a torch model needs torch: pip install 'derive-grads[torch]'") from None
    return torch


def from_torch(
    module: Any,
    *,
    loss: Any = None,
    x: Any,
    y: Any,
    lr: float = 1.0,
    reduction: str | None = None,
    freeze: Any = (),
    name: str | None = None,
    optimizer: Any = None,
) -> Network | Any:
    """The `Network` (a chain) or `Model` (any other graph) of a torch module with its current weights.

    ``loss`` is a loss name (``"bce"``, ``"cross_entropy"``, …) or a torch loss module (``nn.BCELoss()``),
    whose ``reduction`` is then used; None when ``forward(x, y)`` returns the loss itself. ``x`` and ``y`` are tensors, arrays or lists, one row per sample
    (``cross_entropy``: class indices, ``y = [2, 0, 1]``). ``freeze`` adds parameter names to the frozen ones.
    ``optimizer``: a ``torch.optim`` optimizer over the module's parameters, before its first step; the chain
    or graph model keeps it (class and options) for `derive.train` and reports, and parameters it does not
    update are frozen.
    """
    torch = _torch()
    if not isinstance(module, torch.nn.Module):
        raise UnsupportedModelError(f"from_torch needs a torch.nn.Module, got {type(module).__name__}")
    if optimizer is not None:
        return _with_optimizer(module, optimizer, dict(loss=loss, x=x, y=y, lr=lr, reduction=reduction,
                                                       freeze=freeze, name=name))
    if loss is None:  # forward(x, y) returns the loss: a graph model
        from derive.sources.torch_graph import read_graph

        return read_graph(module, x, loss=None, y=y, lr=lr, freeze=freeze, name=name)
    loss_name, reduction = _loss(loss, reduction)
    if isinstance(freeze, (str, bytes)):
        raise DeriveError(f"freeze must be a list of parameter names such as ['b1', 'b2'], got {freeze!r}")
    try:  # a chain of Linear layers keeps its textbook names (W1, b1, z, a)
        layers, frozen = read_module(module)
        return Network(
            layers=tuple(layers),
            x=_data(x),
            y=_data(y),
            loss=loss_name,
            reduction=reduction,
            lr=lr,
            name=name or type(module).__name__,
            freeze=(*frozen, *freeze),
        )
    except DeriveError:
        pass  # any other graph of supported ops, or data of another rank: a graph model
    from derive.sources.torch_graph import read_graph

    return read_graph(module, x, loss=loss_name, y=y, reduction=reduction, lr=lr, freeze=freeze, name=name)


def _with_optimizer(module: Any, optimizer: Any, options: dict) -> Network | Any:
    """`from_torch` of ``module`` with a torch optimizer read into the network (see `from_torch`)."""
    from derive.sources.torch_optimizer import optimized_keys, read_optimizer

    opt = read_optimizer(optimizer)
    network = from_torch(module, **options)  # a chain (Network) or a graph model (Model): both carry it
    updated = optimized_keys(optimizer, module)
    left = [p.name for p in network.parameters() if p.torch not in updated and not p.frozen]
    return network.replace(optimizer=opt, freeze=(*network.freeze, *left) if left else None)


def read_module(module: Any) -> tuple[list[Linear], list[str]]:
    """The Linear layers of a traced module (activations attached) and the names of its frozen parameters."""
    torch = _torch()
    label = type(module).__name__
    _check_modules(module, label)
    bare = type(module).__module__.startswith("torch.") and label not in _CONTAINERS
    if bare:
        module = torch.nn.Sequential(module)  # a bare Linear or activation: fx would trace into its forward
    tracer = torch.fx.Tracer()  # no stack traces (1.3 s): a chain's refusal falls back to the graph reader
    try:
        graph = tracer.trace(module)
    except Exception as err:  # noqa: BLE001 - any failure of the user's forward under tracing
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UnsupportedModelError(f"cannot trace {label} with torch.fx: {message}") from None
    chain: list[list[Any]] = []  # [linear module, activation key]
    value, used = None, set()
    for node in graph.nodes:
        where = _where(node, label)
        if node.op == "placeholder":
            if value is not None:
                raise UnsupportedModelError(f"{label}.forward takes more than one input ({node.name!r})")
            value = node
            continue
        if node.op == "output":
            if node.args[0] is not value:
                raise UnsupportedModelError(f"{label}.forward must return the last layer's output {where}")
            break
        if node.op == "get_attr":
            raise UnsupportedModelError(f"unsupported use of the tensor {node.target!r} {where}")
        kind, item = _classify(module, node, where)
        _check_chain(node, value, where)
        if kind == "linear":
            if id(item) in used:
                raise UnsupportedModelError(f"Linear {node.target!r} is called twice (shared weights) {where}")
            used.add(id(item))
            chain.append([item, "identity", "" if bare else node.target])
        elif kind == "activation":
            if not chain:
                raise UnsupportedModelError(f"activation {item!r} before the first Linear layer {where}")
            if chain[-1][1] != "identity":
                raise UnsupportedModelError(f"two activations in a row ({chain[-1][1]}, then {item}) {where}")
            chain[-1][1] = item
        value = node
    if not chain:
        raise UnsupportedModelError(f"{label} has no Linear layer")
    return _layers(chain)


def _check_modules(module: Any, label: str) -> None:
    """Refuse any torch module outside the supported set, and dropout that can drop, before tracing."""
    for path, sub in module.named_modules():
        cls = type(sub)
        if not cls.__module__.startswith("torch.") or cls.__name__ in _CONTAINERS:
            continue
        name = cls.__name__
        where = f"at {path!r} in {label}" if path else f"({label} itself)"
        if name == "Dropout" and sub.training and sub.p > 0:
            raise UnsupportedModelError(
                f"Dropout {where} is in train mode (it drops at random): call model.eval() first "
                "(with --torch: give --eval, or call self.eval() at the end of __init__)"
            )
        if name not in (*_MODULES, *_PASS, "Linear"):
            supported = ", ".join(["Linear", *_MODULES, *_PASS, *_CONTAINERS])
            raise UnsupportedModelError(f"unsupported module {name} {where}; supported: {supported}")


def _classify(root: Any, node: Any, where: str) -> tuple[str, Any]:
    """("linear", module) | ("activation", key) | ("pass", None) for one call, or refuse it."""
    torch = _torch()
    F = torch.nn.functional
    if node.op == "call_module":
        sub = root.get_submodule(node.target)
        name = type(sub).__name__
        if name == "Linear":
            return "linear", sub
        if name in _PASS:
            return "pass", None
        if name not in _MODULES:
            raise UnsupportedModelError(f"unsupported module {name} {where}")
        return "activation", _activation(_MODULES[name], _module_arguments(sub, name), where)
    if node.op == "call_method":
        if node.target not in _METHODS:
            raise UnsupportedModelError(f"unsupported tensor method .{node.target}() {where}")
        arguments = {"dim": node.args[1]} if len(node.args) > 1 else dict(node.kwargs)
        return "activation", _activation(_METHODS[node.target], arguments, where)
    functions = {
        torch.sigmoid: ("sigmoid", ()), F.sigmoid: ("sigmoid", ()), torch.tanh: ("tanh", ()),
        F.tanh: ("tanh", ()), torch.relu: ("relu", ()), F.relu: ("relu", ("inplace",)),
        F.leaky_relu: ("leaky_relu", ("negative_slope", "inplace")), F.softplus: ("softplus", ("beta", "threshold")),
        F.gelu: ("gelu", ("approximate",)), F.softmax: ("softmax", ("dim",)), torch.softmax: ("softmax", ("dim",)),
    }  # fmt: skip
    if node.target not in functions:
        name = getattr(node.target, "__name__", str(node.target))
        raise UnsupportedModelError(f"unsupported call {_CALL_NAMES.get(name, name)} {where}")
    key, names = functions[node.target]
    arguments = dict(zip(names, node.args[1:])) | dict(node.kwargs)
    return "activation", _activation(key, arguments, where)


def _module_arguments(sub: Any, name: str) -> dict[str, Any]:
    fields = {"LeakyReLU": ("negative_slope",), "Softplus": ("beta", "threshold"), "GELU": ("approximate",)}
    arguments = {field: getattr(sub, field) for field in fields.get(name, ())}
    return arguments | ({"dim": sub.dim} if name == "Softmax" else {})


def _activation(key: str, arguments: dict[str, Any], where: str) -> str:
    """The derive activation key of a call with these arguments, or refuse the arguments."""
    # in-place, a dtype or a stack level change nothing of the function
    arguments = {k: v for k, v in arguments.items() if k not in ("inplace", "_stacklevel", "dtype")}
    if key == "leaky_relu":
        slope = float(arguments.pop("negative_slope", 0.01))
        key = activation(f"leaky_relu({slope!r})").key
    if key == "softplus" and (arguments.pop("beta", 1) != 1 or arguments.pop("threshold", 20) != 20):
        raise UnsupportedModelError(f"softplus with beta ≠ 1 or threshold ≠ 20 is not supported {where}")
    if key == "gelu" and arguments.pop("approximate", "none") != "none":
        raise UnsupportedModelError(f"GELU with approximate='tanh' is not supported (use the erf form) {where}")
    if key == "softmax" and arguments.pop("dim", None) not in (1, -1):
        raise UnsupportedModelError(f"softmax must be over the features (dim=1 or dim=-1) {where}")
    if arguments:
        raise UnsupportedModelError(f"{key} with argument {sorted(arguments)[0]!r} is not supported {where}")
    return key


def _check_chain(node: Any, value: Any, where: str) -> None:
    """The call must take the running value as its only tensor input (no branches, no residuals)."""
    tensors = [a for a in (*node.args, *node.kwargs.values()) if hasattr(a, "op")]
    if not node.args or node.args[0] is not value or len(tensors) != 1:
        raise UnsupportedModelError(
            f"{node.name!r} does not take the previous layer's output as its only tensor input {where}; "
            "derive reads chains of layers"
        )


def _where(node: Any, label: str) -> str:
    """``at 'layer1.0' (model.py:12)`` for a module, ``in Model.forward (model.py:12)`` for a call."""
    place = f"at {node.target!r}" if node.op == "call_module" else f"in {label}.forward"
    torch_files = str(Path(_torch().__file__).parent)
    for file, line in re.findall(r'File "([^"]+)", line (\d+)', node.stack_trace or ""):
        if not file.startswith(torch_files):  # the user's line, not torch.fx's own frames
            return f"{place} ({Path(file).name}:{line})"
    return place


def _layers(chain: list[list[Any]]) -> tuple[list[Linear], list[str]]:
    layers, frozen, w, b = [], [], 0, 0
    for linear, key, path in chain:
        weight = _exact(linear.weight)
        n_out, n_in = len(weight), len(weight[0])
        if linear.bias is None:
            bias, bias_frozen = [0.0] * n_out, True
        else:
            bias, bias_frozen = _exact(linear.bias), not linear.bias.requires_grad
        if not linear.weight.requires_grad:
            frozen += [f"W{w + k + 1}" for k in range(n_out * n_in)]
        if bias_frozen:
            frozen += [f"b{b + k + 1}" for k in range(n_out)]
        w, b = w + n_out * n_in, b + n_out
        layers.append(Linear(weight, bias, key, path))
    return layers, frozen


def _exact(tensor: Any) -> list:
    """A tensor's values as Python floats: float32 (or half) promoted to float64 exactly."""
    torch = _torch()
    if not tensor.is_floating_point():
        raise UnsupportedModelError(f"a parameter of dtype {tensor.dtype} is not supported (floating point only)")
    return tensor.detach().to(device="cpu", dtype=torch.float64).tolist()


def _data(values: Any) -> Any:
    """Tensors as exact float64 lists (integer class indices stay integers); anything else as given."""
    if type(values).__module__.startswith("torch") and hasattr(values, "detach"):
        torch = _torch()
        tensor = values.detach().to("cpu")
        return (tensor.to(torch.float64) if tensor.is_floating_point() else tensor).tolist()
    return values


def _loss(loss: Any, reduction: str | None) -> tuple[str, str]:
    """A loss name and reduction from a name or a torch loss module."""
    if isinstance(loss, str):
        return loss, reduction or "mean"
    torch = _torch()
    if isinstance(loss, type):
        raise DeriveError(f"loss: give an instance such as {loss.__name__}(), not the class")
    if not isinstance(loss, torch.nn.Module) or type(loss).__name__ not in _LOSSES:
        name = type(loss).__name__
        raise UnsupportedModelError(
            f"unsupported loss {name}; use one of {', '.join(_LOSSES)} or a name: {', '.join(LOSSES)}"
        )
    name = type(loss).__name__
    defaults = {"weight": None, "pos_weight": None, "label_smoothing": 0.0, "ignore_index": -100}
    for attribute, default in defaults.items():
        value = getattr(loss, attribute, default)
        if (value is None) != (default is None) or (default is not None and value != default):
            raise UnsupportedModelError(f"{name} with {attribute} set is not supported (only its default)")
    if loss.reduction not in REDUCTIONS:
        raise DeriveError(f"{name}(reduction={loss.reduction!r}) gives no scalar loss; use 'mean' or 'sum'")
    if reduction is not None and reduction != loss.reduction:
        raise DeriveError(f"reduction {reduction!r} contradicts {name}(reduction={loss.reduction!r})")
    return _LOSSES[name], loss.reduction


def load_module(source: str) -> Any:
    """An instance of ``CLASS`` from ``FILE.py:CLASS``, made with no arguments. Importing the file runs it."""
    return load_from_file(source, option="--torch", what="CLASS", make=lambda cls: cls())


_PLURAL = {"CLASS": "classes", "FUNCTION": "functions"}


def load_from_file(source: str, *, option: str, what: str, make: Any = None) -> Any:
    """The object ``NAME`` of ``FILE.py:NAME`` (passed through ``make``); errors name ``option`` and ``what``."""
    path_text, _, class_name = source.rpartition(":")
    if not path_text or not class_name:
        raise DeriveError(f"{option} {source!r}: expected FILE.py:{what}")
    path = Path(path_text)
    if not path.exists():
        raise DeriveError(f"{option} {source!r}: {path}: no such file")
    if path.suffix != ".py" or not path.is_file():
        raise DeriveError(f"{option} {source!r}: {path} is not a Python file (FILE.py:{what})")
    spec = importlib.util.spec_from_file_location(f"derive_user_{path.stem}", path)
    user = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.resolve().parent))
    try:
        spec.loader.exec_module(user)
        found = getattr(user, class_name, None)
        if found is None:
            kind = type if what == "CLASS" else type(load_from_file)
            known = [k for k, v in vars(user).items() if isinstance(v, kind) and getattr(v, "__module__", "") == user.__name__]
            raise DeriveError(
                f"{option} {source!r}: {path.name} has no {class_name!r}; {_PLURAL[what]}: {', '.join(known) or 'none'}."
                f"{did_you_mean(class_name, known)}"
            )
        return make(found) if make is not None else found
    except DeriveError:
        raise
    except SystemExit as err:  # sys.exit() at the top level of the file, or in the class
        raise DeriveError(
            f"{option} {source!r}: running {path.name} called sys.exit({err.code!r}); derive imports the file, "
            "so put script code under `if __name__ == \"__main__\":`"
        ) from None
    except Exception as err:  # noqa: BLE001 - the user's code failed: report it in one line
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise DeriveError(f"{option} {source!r}: running {path.name} failed: {type(err).__name__}: {first}") from None
    finally:
        sys.path.remove(str(path.resolve().parent))
