"""Check a graph model's derived gradients against autograd of the user's own torch module.

The same three opinions as for chains (`verify.compare`): derive's value and its straight-line program
lambdified to NumPy and torch; autograd of a float64 (or float32) copy of the very module the model was read
from (not a rebuilt one: a misread model fails); central finite differences of that module's loss in float64,
which judge too wherever the loss is smooth within their stencil (`finite_differences`).

>>> import torch, derive
>>> class Net(torch.nn.Module):
...     def __init__(self):
...         super().__init__()
...         self.fc = torch.nn.Linear(2, 2)
...     def forward(self, x):
...         return x * torch.sigmoid(self.fc(x))
>>> model = derive.from_torch(Net(), loss="mse", x=[[1.0, 2.0]], y=[[0.5, -1.0]])
>>> check_model(model).ok
True
"""

from __future__ import annotations

import copy
import functools
from typing import Any

import numpy as np
import sympy as sp

from derive.derivation import Derivation
from derive.errors import DeriveError
from derive.model.graph import OWN_LOSS, Leaf, Model, OpNode
from derive.ops import loss as lookup_loss
from verify.compile import _printer, _used
from verify.reference import _torch, require_device, torch_loss
from verify.tolerances import FINITE_DIFFERENCES, Tolerance, magnitude, policy

STEP = 1e-3
_STENCIL = ((-2, 1.0), (-1, -8.0), (1, 8.0), (2, -1.0))


def _module(model: Model) -> Any:
    if model.module is None:
        raise DeriveError("this graph model has no torch module to check against (read it with from_torch)")
    return model.module


def _data(model: Model, device: str, kind: Any) -> tuple[Any, Any]:
    torch = _torch()
    x = torch.as_tensor(model.x).to(device)
    x = x.to(kind) if x.is_floating_point() else x
    y = torch.as_tensor(np.asarray(model.y)).to(device)
    return x, y


def _loss(model: Model, prediction: Any, y: Any, kind: Any) -> Any:
    """The model's loss in torch, with targets shaped as torch takes them."""
    spec = lookup_loss(model.loss)
    if spec.class_targets and y.numel() == (prediction.shape[0] if prediction.dim() > 1 else 1):
        target = y.reshape(-1).long() if prediction.dim() > 1 else y.reshape(()).long()
    else:
        target = y.to(kind).reshape(prediction.shape)
    return torch_loss(model)(prediction, target)


def module_loss(model: Model, *, device: str = "cpu", dtype: str = "float64") -> tuple[Any, Any]:
    """A copy of the model's module in ``dtype`` on ``device``, and a function giving its loss."""
    torch = _torch()
    kind = getattr(torch, dtype)
    module = copy.deepcopy(_module(model)).to(device=device, dtype=kind)
    x, y = _data(model, device, kind)
    if model.loss == OWN_LOSS:  # forward(x, y) returns the loss
        y = y.to(kind) if y.is_floating_point() else y
        return module, lambda: module(x, y)
    return module, lambda: _loss(model, module(x), y, kind)


def autograd(model: Model, *, device: str = "cpu", dtype: str = "float64") -> tuple[float, dict[str, float]]:
    """The loss and ∂L/∂p of every scalar parameter (by derive's name) from autograd of the module itself."""
    module, loss = module_loss(model, device=device, dtype=dtype)
    value = loss()
    value.backward()
    tensors = dict(module.named_parameters())
    gradients = {}
    for p in model.parameters():
        grad = tensors[p.torch].grad
        gradients[p.name] = 0.0 if grad is None else float(grad[p.index].item())
    return float(value.detach()), gradients


def finite_differences(
    model: Model, *, device: str = "cpu", step: float = STEP, judge: dict[str, tuple[float, float]] | None = None,
) -> dict[str, float | None]:
    """Fourth-order central differences of the module's loss in float64, None where they cannot judge.

    A graph's loss may have kinks anywhere (ReLU, |x|, max and its ties, comparisons), which the module does
    not expose; so the stencil is trusted unless it disagrees. ``judge`` gives, by name, the value the
    difference is compared with and the allowed error: where the difference is farther than that, the loss is
    probed for smoothness within the stencil, with the same stencil at h/2 (two more evaluations) and the
    one-sided second-order differences of step h/2 on each side. A smooth loss makes each pair agree to within
    truncation (h⁴ and h³/16 terms); a kink within ±2h, or at the point itself, makes one pair differ by a
    share of the jump in slope. Where either pair differs by more than a quarter of the disagreement, the
    difference is not a judge (None, shown as "kink"); else it stands, and the disagreement is real.
    """
    torch = _torch()
    module, loss = module_loss(model, device=device, dtype="float64")
    tensors = dict(module.named_parameters())
    gradients: dict[str, float | None] = {}
    with torch.no_grad():
        base = float(loss())
        for p in model.parameters():
            tensor = tensors[p.torch]
            original = float(tensor[p.index])
            h = step * max(1.0, abs(original))
            h = (original + h) - original

            def at(k: float) -> float:
                tensor[p.index] = original + k * h
                return float(loss())

            f = {k: at(k) for k, _ in _STENCIL}
            value = sum(weight * f[k] for k, weight in _STENCIL) / (12 * h)
            if judge is not None and p.name in judge and abs(value - judge[p.name][0]) > judge[p.name][1]:
                f[-0.5], f[0.5] = at(-0.5), at(0.5)
                half = (f[-1] - 8 * f[-0.5] + 8 * f[0.5] - f[1]) / (6 * h)
                right = (-3 * base + 4 * f[0.5] - f[1]) / h
                left = (3 * base - 4 * f[-0.5] + f[-1]) / h
                # a kink within the stencil that moves it by d moves one probe by more than d/2 (checked over
                # every place of a kink in a piecewise-linear loss: at least 0.48 d); a smooth loss moves
                # them by truncation alone
                if max(abs(value - half), abs(right - left)) > abs(value - judge[p.name][0]) / 4:
                    value = None
            tensor[p.index] = original
            gradients[p.name] = value
    return gradients


def detached_parameters(model: Model) -> set[str]:
    """The parameters that reach the loss through a ``detach`` (a stop-gradient): there the module's gradient,
    autograd's and derive's alike, is not the slope of its loss, and finite differences do not judge it."""
    nodes = model.structure.nodes
    below: set[int] = set()  # nodes feeding a detach
    for i in reversed(range(len(nodes))):
        node = nodes[i]
        if isinstance(node, OpNode) and (i in below or node.op.key == "detach"):
            below.update(a for a in node.args if a is not None)
    tensors = {nodes[i].name for i in below if isinstance(nodes[i], Leaf) and nodes[i].kind == "parameter"}
    return {p.name for p in model.parameters() if p.torch in tensors}


@functools.lru_cache(maxsize=32)
def _kernel(structure: Any, backend: str) -> tuple[list[str], Any]:
    """The model's whole program lambdified over its leaves: (leaf names, fn(*leaves) -> gradients)."""
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
    function = sp.lambdify(leaves, outputs, modules=backend, printer=_printer(backend),
                           cse=lambda exprs: (program, exprs), docstring_limit=0)
    return [s.name for s in leaves], function


def compiled(derivation: Derivation, backend: str, dtype: str = "float64", device: str = "cpu") -> dict[str, float]:
    """∂L/∂p from the model's program lambdified to ``backend`` and evaluated in ``dtype``."""
    names, function = _kernel(derivation.network.structure, backend)
    point = {s.name: v for s, v in derivation.point.items()}
    if backend == "numpy":
        values = [np.asarray(point[n], dtype=np.dtype(dtype)) for n in names]
    else:
        torch = _torch()
        kind = getattr(torch, dtype)
        values = [torch.tensor(point[n], dtype=torch.float64).to(device=device, dtype=kind) for n in names]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        results = function(*values)
    return {p.name: float(r) for p, r in zip(derivation.parameters, results)}


def check_model(
    model: Model, *, device: str = "cpu", dtype: str = "float64", tolerance: Tolerance | None = None,
    finite_differences_check: bool = True,
):
    """Check every ∂L/∂p of a graph model against autograd of its own module (a `verify.CheckReport`)."""
    from verify.check_report import FD, SYMBOLIC, CheckReport, _row

    require_device(device)
    # a module that rounds to float32 in its forward is judged at float32's tolerance (derive's exact values
    # differ from its own by that rounding)
    tol = tolerance or (policy(dtype) if model.precision == "float64" else policy(dtype) | policy("float32"))
    derivation = Derivation(model)
    opinions = {"derived": {p.name: p.gradient for p in derivation.parameters}}
    opinions["numpy"] = compiled(derivation, "numpy", dtype)
    opinions["torch"] = compiled(derivation, "torch", dtype, device)
    loss, reference = autograd(model, device=device, dtype=dtype)
    scale = magnitude(list(reference.values()))
    fd_scale = magnitude([scale, loss])
    fd = None
    if finite_differences_check:
        fd_tol = FINITE_DIFFERENCES | tol
        fd = finite_differences(model, device=device,
                                judge={n: (v, fd_tol.bound(v, fd_scale)) for n, v in reference.items()})
        stopped = detached_parameters(model)
        fd = {n: None if n in stopped else v for n, v in fd.items()}
    rows = []
    for name, value in reference.items():
        row_opinions: dict[str, float | None] = {o: opinions[o][name] for o in SYMBOLIC}
        row_opinions["autograd"] = value
        if fd is not None:
            row_opinions[FD] = fd[name]
        rows.append(_row(name, row_opinions, tol, scale, fd_scale))
    loss_ok = tol.allows(derivation.loss, loss, fd_scale)
    title = f"{model.name} ({model.loss}, {model.reduction}, batch {model.batch})"
    hint = f"verify.check(derive.from_torch({type(_module(model)).__name__}(), …), device={device!r}, dtype={dtype!r})"
    return CheckReport(title, tuple(rows), device, dtype, tol, scale, fd_scale, derivation.loss, loss, loss_ok,
                       (), hint)
