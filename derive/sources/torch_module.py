"""Models from torch: ``derive.from_torch`` and ``--torch FILE.py:CLASS``.

The module is read once, as the ATen graph torch records when a float64 copy runs on the data
(`derive.sources.torch_export`). A graph that is a chain — Linear layers, each followed by at most one
activation (sigmoid, tanh, ReLU, leaky ReLU, softplus, GELU, softmax last), one input of rows of features —
is a `Model` that keeps the textbook names of the seed (W1, b1, z1, a1, …: `Model.textbook`); any other graph
is named after its modules.

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

import contextlib
import copy
import importlib.util
import inspect
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from derive.errors import EXTRAS, DeriveError, did_you_mean, install_hint
from derive.model.graph import Leaf, Model
from derive.network import Linear, Network
from derive.ops import LOSSES, REDUCTIONS, activation
from derive.sources.torch_export import UnsupportedModelError, _torch, read_torch


__all__ = ["UnsupportedModelError", "from_torch", "load_from_file", "load_module"]


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
    inputs: Mapping[str, Any] | None = None,
) -> Model:
    """The `Model` of a torch module with its current weights: a chain (`Model.textbook`: W1, b1, z1, a1, …) or
    any other graph (named after its modules).

    ``loss`` is a loss name (``"bce"``, ``"cross_entropy"``, …) or a torch loss module (``nn.BCELoss()``),
    whose ``reduction`` is then used; None when ``forward(x, y)`` returns the loss itself. ``x`` and ``y`` are
    tensors, arrays or lists, one row per sample (``cross_entropy``: class indices, ``y = [2, 0, 1]``).
    ``freeze`` adds parameter names to the frozen ones. ``inputs``: more keyword arguments of ``forward``
    (an attention mask), as data. ``optimizer``: a ``torch.optim`` optimizer over the module's parameters,
    before its first step; the chain or graph model keeps it (class and options) for `derive.train` and
    reports, and parameters it does not update are frozen.
    """
    torch = _torch()
    if not isinstance(module, torch.nn.Module):
        raise UnsupportedModelError(f"from_torch needs a torch.nn.Module, got {type(module).__name__}")
    if optimizer is not None:
        return _with_optimizer(module, optimizer, dict(loss=loss, x=x, y=y, lr=lr, reduction=reduction,
                                                       freeze=freeze, name=name, inputs=inputs))
    if isinstance(freeze, (str, bytes)):
        raise DeriveError(f"freeze must be a list of parameter names such as ['b1', 'b2'], got {freeze!r}")
    if loss is None:  # forward(x, y) returns the loss: a graph model
        return read_torch(module, x, loss=None, y=y, lr=lr, freeze=freeze, name=name, inputs=inputs)
    if _with_options(torch, loss):  # its options (label_smoothing, weight, delta, …) read as torch runs them
        if reduction is not None and reduction != loss.reduction:
            raise DeriveError(f"reduction {reduction!r} contradicts {type(loss).__name__}(reduction={loss.reduction!r})")
        return read_torch(_loss_in_forward(module, loss), x, loss=None, y=y, lr=lr, freeze=freeze,
                          name=name or type(module).__name__, inputs=inputs)
    loss_name, reduction = _loss(loss, reduction)
    model = read_torch(module, x, loss=loss_name, y=y, reduction=reduction, lr=lr, freeze=(), name=name,
                       inputs=inputs)
    chain = chain_of(model)
    if chain is None:
        return model.replace(freeze=tuple(freeze)) if freeze else model
    layers, frozen = chain
    return Network(layers=tuple(layers), x=_data(x), y=_data(y), loss=loss_name, reduction=reduction, lr=lr,
                   name=name or type(module).__name__, freeze=(*frozen, *freeze)).model()


def chain_of(model: Model) -> tuple[list[Linear], list[str]] | None:
    """The Linear layers (activations attached) and frozen parameter names of a model that is a chain, else
    None: one float input of rows, each ``linear`` taking the previous value and its own weight, each followed
    by at most one textbook activation (`Activation.textbook`; a softmax over the features last)."""
    nodes = model.structure.nodes
    if model.inputs or np.asarray(model.x).dtype.kind != "f" or np.ndim(model.x) not in (1, 2):
        return None
    values = model.values
    layers: list[list[Any]] = []  # [weight key, bias key or None, activation]
    current, used = None, set()
    for i, node in enumerate(nodes):
        if isinstance(node, Leaf):
            if node.kind == "input" and node.name == "x":
                current = i
            elif node.kind not in ("parameter", "input"):
                return None
            continue
        op = node.op
        inputs = [a for a in node.args if a is not None]
        if op.key == "linear":
            weight, bias = node.args[1], node.args[2] if len(node.args) > 2 else None
            if node.args[0] != current or not _parameter(nodes, weight) or (bias is not None and not _parameter(nodes, bias)):
                return None
            keys = nodes[weight].name, None if bias is None else nodes[bias].name
            if keys[0] in used:
                return None
            used.add(keys[0])
            layers.append([keys[0], keys[1], "identity"])
        elif op.key in ("activate", "softmax") and layers and inputs == [current] and layers[-1][2] == "identity":
            key = op.activation if op.key == "activate" else "softmax"
            if op.key == "softmax" and op.dim not in (1, -1):
                return None
            if not activation(key).textbook:
                return None
            layers[-1][2] = key
        else:
            return None
        current = i
    if not layers or current != model.structure.output or any(a == "softmax" for _, _, a in layers[:-1]):
        return None
    return _layers(layers, values, model)


def _parameter(nodes: tuple, index: int | None) -> bool:
    return index is not None and isinstance(nodes[index], Leaf) and nodes[index].kind == "parameter"


def _layers(chain: list[list[Any]], values: Mapping[str, Any], model: Model) -> tuple[list[Linear], list[str]]:
    layers, frozen, w, b = [], [], 0, 0
    for weight_key, bias_key, key in chain:
        weight = np.asarray(values[weight_key], dtype=np.float64)
        n_out, n_in = weight.shape
        if bias_key is None:
            bias, bias_frozen = [0.0] * n_out, True
        else:
            bias, bias_frozen = np.asarray(values[bias_key], dtype=np.float64).tolist(), bias_key in model.frozen
        if weight_key in model.frozen:
            frozen += [f"W{w + k + 1}" for k in range(n_out * n_in)]
        if bias_frozen:
            frozen += [f"b{b + k + 1}" for k in range(n_out)]
        w, b = w + n_out * n_in, b + n_out
        layers.append(Linear(weight, np.asarray(bias, dtype=np.float64), key, weight_key.rpartition(".")[0]))
    return layers, frozen


def _with_optimizer(module: Any, optimizer: Any, options: dict) -> Model:
    """`from_torch` of ``module`` with a torch optimizer read into the network (see `from_torch`)."""
    from derive.sources.torch_optimizer import optimized_keys, read_optimizer

    opt = read_optimizer(optimizer)
    network = from_torch(module, **options)
    updated = optimized_keys(optimizer, module)
    left = [p.name for p in network.parameters() if p.torch not in updated and not p.frozen]
    return network.replace(optimizer=opt, freeze=(*network.freeze, *left) if left else None)


def _data(values: Any) -> Any:
    """Tensors as exact float64 lists (integer class indices stay integers); anything else as given."""
    if type(values).__module__.startswith("torch") and hasattr(values, "detach"):
        torch = _torch()
        tensor = values.detach().to("cpu")
        return (tensor.to(torch.float64) if tensor.is_floating_point() else tensor).tolist()
    if isinstance(values, np.ndarray):
        return values.tolist()
    return values


_DEFAULTS = {"weight": None, "pos_weight": None, "label_smoothing": 0.0, "ignore_index": -100}


def _by_module(torch: Any) -> dict[str, str]:
    """derive's loss key by torch loss module class name (`Loss.torch_module`), for the modules torch has."""
    return {cls.torch_module: key for key, cls in LOSSES.items() if hasattr(torch.nn, cls.torch_module)}


def _with_options(torch: Any, loss: Any) -> bool:
    """Whether ``loss`` is a torch loss module derive has no loss class for as it is set (``nn.HuberLoss``,
    ``CrossEntropyLoss(label_smoothing=0.1)``): it is then read as part of the module, as torch runs it."""
    if not isinstance(loss, torch.nn.modules.loss._Loss) or loss.reduction not in REDUCTIONS:
        return False
    if type(loss).__name__ not in _by_module(torch):
        return True
    return any((getattr(loss, a, d) is None) != (d is None) or (d is not None and getattr(loss, a, d) != d)
               for a, d in _DEFAULTS.items())


def _loss_in_forward(module: Any, loss: Any) -> Any:
    """A shallow copy of ``module`` whose ``forward(x, y, …)`` returns ``loss(module.forward(x, …), y)``: the same
    parameters under the same keys (the loss module is one more child, holding its buffers such as ``weight``),
    the user's module unchanged."""
    cls = type(module)

    def forward(self: Any, x: Any, y: Any, **inputs: Any) -> Any:
        return self._derive_loss(cls.forward(self, x, **inputs), y)

    wrapped = copy.copy(module)
    wrapped.__class__ = type(cls.__name__, (cls,), {"forward": forward, "__module__": cls.__module__})
    wrapped.__dict__["_modules"] = {**module._modules, "_derive_loss": loss}
    return wrapped


def _loss(loss: Any, reduction: str | None) -> tuple[str, str]:
    """A loss name and reduction from a name or a torch loss module."""
    if isinstance(loss, str):
        return loss, reduction or "mean"
    torch = _torch()
    if isinstance(loss, type):
        raise DeriveError(f"loss: give an instance such as {loss.__name__}(), not the class")
    by_module = _by_module(torch)
    if not isinstance(loss, torch.nn.Module) or type(loss).__name__ not in by_module:
        name = type(loss).__name__
        raise UnsupportedModelError(
            f"unsupported loss {name}; use one of {', '.join(by_module)} or a name: {', '.join(LOSSES)}"
        )
    name = type(loss).__name__
    for attribute, default in _DEFAULTS.items():
        value = getattr(loss, attribute, default)
        if (value is None) != (default is None) or (default is not None and value != default):
            raise UnsupportedModelError(f"{name} with {attribute} set is not supported (only its default)")
    if loss.reduction not in REDUCTIONS:
        raise DeriveError(f"{name}(reduction={loss.reduction!r}) gives no scalar loss; use 'mean' or 'sum'")
    if reduction is not None and reduction != loss.reduction:
        raise DeriveError(f"reduction {reduction!r} contradicts {name}(reduction={loss.reduction!r})")
    return by_module[name], loss.reduction


def load_module(source: str) -> Any:
    """An instance of ``CLASS`` from ``FILE.py:CLASS``, made with no arguments. Importing the file runs it."""
    _torch()  # without torch: which extra to install, before the file fails to import it
    return load_from_file(source, option="--torch", what="CLASS", make=lambda cls: _instance(cls, source))


def _instance(cls: Any, source: str) -> Any:
    """``cls()``; a class whose constructor needs arguments is refused by name, before it is called."""
    name = getattr(cls, "__name__", repr(cls))
    if not isinstance(cls, type):
        raise DeriveError(f"--torch {source!r}: {name} is not a class (FILE.py:CLASS names a torch.nn.Module class)")
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):  # no signature to read: the call will tell
        return cls()
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    needed = [p.name for p in signature.parameters.values() if p.default is p.empty and p.kind in kinds]
    if needed:
        raise DeriveError(
            f"--torch {source!r}: {name}{signature} needs arguments ({', '.join(needed)}), and --torch makes the "
            f"class with none: give them defaults, or add a class to the file that passes them "
            f"(class Model({name}): def __init__(self): super().__init__(…))"
        )
    return cls()


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
        with _user_code(f"{option} {source!r}", f"running {path.name}"):
            spec.loader.exec_module(user)
        found = getattr(user, class_name, None)
        if found is None:
            kind = type if what == "CLASS" else type(load_from_file)
            known = [k for k, v in vars(user).items() if isinstance(v, kind) and getattr(v, "__module__", "") == user.__name__]
            raise DeriveError(
                f"{option} {source!r}: {path.name} has no {class_name!r}; {_PLURAL[what]}: {', '.join(known) or 'none'}."
                f"{did_you_mean(class_name, known)}"
            )
        if make is None:
            return found
        with _user_code(f"{option} {source!r}", f"making {class_name}()"):  # the file ran: its class failed
            return make(found)
    finally:
        sys.path.remove(str(path.resolve().parent))


@contextlib.contextmanager
def _user_code(where: str, doing: str) -> Iterator[None]:
    """Run a user's code: what it prints goes to standard error (standard output is derive's: JSON, a
    report); its failure is one line saying what was being done (running the file, making the class), never
    a traceback."""
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    except DeriveError:
        raise
    except SystemExit as err:  # sys.exit() at the top level of the file, or in the class
        raise DeriveError(
            f"{where}: {doing} called sys.exit({err.code!r}); derive imports the file, "
            "so put script code under `if __name__ == \"__main__\":`"
        ) from None
    except ModuleNotFoundError as err:
        if err.name in EXTRAS:  # an optional package of derive's own: say which extra brings it
            file = doing.removeprefix("running ")
            raise DeriveError(f"{where}: {file} imports {err.name}, which is not installed: "
                              f"{install_hint(err.name)}") from None
        raise DeriveError(f"{where}: {doing} failed: {_one_line(err)}") from None
    except Exception as err:  # noqa: BLE001 - the user's code failed: report it in one line
        raise DeriveError(f"{where}: {doing} failed: {_one_line(err)}") from None


def _one_line(err: BaseException) -> str:
    """``TypeError: the first line of its message``."""
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0] if text else ''}"
