"""The torch reference of a network or model: its module in a dtype on a device, one watched forward pass of its
loss, and autograd's gradients.

The module is a chain's equivalent ``nn.Sequential`` (`torch_model`), or a copy of the very module a graph model
was read from (a misread model fails). Forward hooks on its leaf modules watch one pass: every output (kept with
``retain_grad``: the largest adjoint is the scale of rounding), which side of its kinks each input of a kinked
activation module lies on (finite differences do not judge across a kink), each Linear's output (a chain's
pre-activations), and the logits before a final ``nn.Sigmoid``. torch is imported here, lazily by `verify`
users: ``import derive`` never imports it.

**BCE where torch clamps.** ``nn.BCELoss`` is not the exact BCE everywhere: its log is clamped at −100 (the
loss of a prediction below e⁻¹⁰⁰ is 100), and its backward divides by ``max(ŷ(1 − ŷ), 1e-12)``, which shrinks
the gradient once |z| > 27.6 before the sigmoid (in float32 once ŷ rounds to 0 or 1). derive derives the exact
function. Where the clamp is active, the reference is therefore the same function computed without the clamp:
``nn.BCEWithLogitsLoss`` on the logits after a sigmoid, else the formula itself; the result says so.

>>> import derive
>>> grads = autograd_gradients(derive.examples.seed())
>>> round(grads["W5"], 9)
0.27273792
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Self

import numpy as np

from derive.errors import DeriveError, require
from derive.model.graph import OWN_LOSS, Model
from derive.network import Network, Parameter
from derive.ops import ACTIVATIONS, activation
from derive.ops import loss as lookup_loss
from derive.sources.torch_export import default_dtype
from verify.tolerances import policy

DEVICES = ("cpu", "cuda")
#: torch's BCELoss: the log is clamped at this value, and ŷ(1 − ŷ) at BCE_EPSILON in its backward.
BCE_LOG_CLAMP = -100.0
BCE_EPSILON = 1e-12


def _torch() -> Any:
    return require("torch", "verification against autograd")  # without torch: which extra to install


def require_device(device: str) -> None:
    """Raise `DeriveError` for an unknown device, or ``cuda`` where torch sees no GPU."""
    if device not in DEVICES:
        raise DeriveError(f"unknown device {device!r}; use one of {', '.join(DEVICES)}")
    if device == "cuda" and not _torch().cuda.is_available():
        raise DeriveError("device 'cuda' is not available (torch.cuda.is_available() is false); use cpu")


def torch_model(network: Network, *, device: str = "cpu", dtype: str = "float64") -> Any:
    """An ``nn.Sequential`` of Linear layers and activation modules holding the network's weights."""
    torch = _torch()
    require_device(device)
    policy(dtype)
    kind = getattr(torch, dtype)
    layers = []
    for layer in network.layers:
        linear = torch.nn.Linear(layer.in_features, layer.out_features, device=device, dtype=kind)
        with torch.no_grad():  # float64 values, rounded once to ``dtype``
            linear.weight.copy_(torch.tensor(layer.weight, dtype=torch.float64))
            linear.bias.copy_(torch.tensor(layer.bias, dtype=torch.float64))
        act = activation(layer.activation)
        layers += [linear, getattr(torch.nn, act.torch_module)(**_kwargs(act))]
    return torch.nn.Sequential(*layers)


def _kwargs(act: Any) -> dict:
    return act.torch_kwargs() if hasattr(act, "torch_kwargs") else {}


def torch_loss(network: Network | Model) -> Any:
    """The torch loss function of the network's loss and reduction: ``fn(prediction, target)``."""
    return lookup_loss(network.loss).torch_function(_torch(), network.reduction)


def class_indices(network: Network, y: Any) -> Any:
    """Class targets (cross_entropy, nll) that are one-hot rows as class indices: torch's class-index path."""
    one_hot = all(sorted(row) == [0.0] * (len(row) - 1) + [1.0] for row in network.y)
    return y.argmax(dim=1) if lookup_loss(network.loss).class_targets and one_hot else y


def module_of(network: Network | Model, *, device: str = "cpu", dtype: str = "float64") -> Any:
    """The module to differentiate, in ``dtype`` on ``device``: a chain's `torch_model`, or a copy of the module
    a graph model was read from."""
    if network.textbook:
        return torch_model(network, device=device, dtype=dtype)
    if network.module is None:
        raise DeriveError("this graph model has no torch module to check against (read it with from_torch)")
    require_device(device)
    return copy.deepcopy(network.module).to(device=device, dtype=getattr(_torch(), dtype))


def data_of(network: Network | Model, *, device: str = "cpu", dtype: str = "float64") -> tuple[Any, Any]:
    """``x`` and ``y`` as the module and its loss take them: float data in ``dtype`` (float64 values rounded
    once), integer data (ids, class indices) as integers; a chain's one-hot class targets as indices."""
    torch = _torch()
    kind = getattr(torch, dtype)
    if network.textbook:
        x = torch.tensor(network.x, dtype=torch.float64).to(device=device, dtype=kind)
        return x, class_indices(network, torch.tensor(network.y, dtype=torch.float64).to(device=device, dtype=kind))
    x = torch.as_tensor(network.x).to(device)
    y = torch.as_tensor(np.asarray(network.y)).to(device)
    return (x.to(kind) if x.is_floating_point() else x), (y.to(kind) if y.is_floating_point() else y)


def inputs_of(network: Network | Model, *, device: str = "cpu", dtype: str = "float64") -> dict[str, Any]:
    """A graph model's more keyword arguments of ``forward`` (an attention mask), as ``data_of`` makes ``x``."""
    torch = _torch()
    extra = {}
    for key, value in getattr(network, "inputs", {}).items():
        tensor = torch.as_tensor(np.asarray(value)).to(device)
        extra[key] = tensor.to(getattr(torch, dtype)) if tensor.is_floating_point() else tensor
    return extra


def parameter_tensors(network: Network | Model, module: Any) -> list[tuple[Parameter, Any]]:
    """Every scalar parameter with the module's tensor that holds it (the entry is ``tensor[p.index]``)."""
    if not network.textbook:
        tensors = dict(module.named_parameters())
        return [(p, tensors[p.torch]) for p in network.parameters()]
    linears = [m for m in module if isinstance(m, _torch().nn.Linear)]
    return [(p, getattr(linears[p.layer - 1], p.tensor)) for p in network.parameters()]


@dataclass
class Forward:
    """One forward pass: the loss to differentiate, every Linear output, a note, and the loss to compare.

    ``value`` is what derive's loss value should match: torch's own loss, except for BCE after a sigmoid,
    where derive takes log σ(z) = −softplus(−z) (finite and exact where σ(z) rounds to 1) and the reference
    is ``BCEWithLogitsLoss`` on the logits, and where torch's log clamp at −100 changes the value.
    """

    loss: Any
    pre_activations: list[Any]
    note: str = ""
    value: float = 0.0
    #: every leaf module's output, kept with ``retain_grad`` so that backward leaves the adjoints ∂L/∂v
    intermediates: list[Any] = field(default_factory=list)
    #: for each input of a kinked activation module and each kink, which side of it its entries lie on
    #: (above, at: a boolean tensor); compared with `same_sides`
    sides: tuple = ()


def same_sides(a: tuple, b: tuple) -> bool:
    """Whether two passes put every watched input on the same side of every kink."""
    torch = _torch()
    return len(a) == len(b) and all(torch.equal(p, q) for p, q in zip(a, b))


def _kinks() -> dict[str, tuple[float, ...]]:
    """Kinks by torch module class name, from the activations' classes."""
    return {cls.torch_module: cls.kinks for cls in ACTIVATIONS.values() if cls.kinks}


class _Watch:
    """Forward hooks on a module's leaf modules (see the module note), removed on exit."""

    def __init__(self, module: Any) -> None:
        self.module = module
        self.pre: list[Any] = []
        self.intermediates: list[Any] = []
        self.sides: list[tuple] = []
        self.sigmoid: tuple[Any, Any] | None = None  # (input, output) of the last nn.Sigmoid called

    def __enter__(self) -> Self:
        torch = _torch()
        kinks = _kinks()
        leaves = [m for m in self.module.modules() if not next(m.children(), None)]

        def hook(module: Any, inputs: tuple, output: Any) -> None:
            if not isinstance(output, torch.Tensor):
                return
            if output.requires_grad:
                output.retain_grad()
                self.intermediates.append(output)
            if isinstance(module, torch.nn.Linear):
                self.pre.append(output)
            name = type(module).__name__
            if isinstance(module, torch.nn.Sigmoid):
                self.sigmoid = (inputs[0], output)
            if name in kinks and inputs and isinstance(inputs[0], torch.Tensor):
                z = inputs[0].detach()
                self.sides += [torch.stack([z > k, z == k]) for k in kinks[name]]

        self.handles = [m.register_forward_hook(hook) for m in leaves]
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self.handles:
            handle.remove()


def forward(network: Network | Model, module: Any, x: Any, y: Any, *, exact_bce: bool = True) -> Forward:
    """Run ``module`` on ``x`` and the loss against ``y`` (see the module note on BCE), plus a chain's
    penalties (l2·Σ p² + l1·Σ |p| over its penalized parameters), as torch users write them."""
    result = _data_forward(network, module, x, y, exact_bce=exact_bce)
    if not getattr(network, "penalized", ()):
        return result
    penalty = penalty_of(network, module)
    result.loss = result.loss + penalty
    result.value += float(penalty.detach())
    return result


def penalty_of(network: Network, module: Any) -> Any:
    """``l2·Σ p² + l1·Σ |p|`` over the penalized parameters, from the torch module's own tensors."""
    chosen = set(network.penalized)
    total = 0
    for p, tensor in parameter_tensors(network, module):
        if p.name in chosen:
            value = tensor[p.index]
            total = total + network.l2 * value**2 + network.l1 * value.abs()
    return total


def _target(network: Network | Model, prediction: Any, y: Any) -> Any:
    """A graph model's targets shaped as torch's loss takes them (class indices as integers)."""
    if network.textbook:
        return y
    if lookup_loss(network.loss).class_targets and y.numel() == (prediction.shape[0] if prediction.dim() > 1 else 1):
        return y.reshape(-1).long() if prediction.dim() > 1 else y.reshape(()).long()
    return y.to(prediction.dtype).reshape(prediction.shape)


def _data_forward(network: Network | Model, module: Any, x: Any, y: Any, *, exact_bce: bool = True) -> Forward:
    """The data loss alone (see `forward`)."""
    torch = _torch()
    kind = next((p.dtype for p in module.parameters() if p.is_floating_point()), x.dtype)  # the module's dtype
    extra = inputs_of(network, device=x.device.type, dtype=str(kind).removeprefix("torch.")) if kind.is_floating_point \
        else inputs_of(network, device=x.device.type)
    with _Watch(module) as watch, default_dtype(torch, kind):  # torch.zeros(…) in forward: the module's dtype
        if network.loss == OWN_LOSS:  # forward(x, y) returns the loss itself
            own = module(x, y, **extra)
            return Forward(own, watch.pre, "", float(own.detach()), watch.intermediates, tuple(watch.sides))
        hidden = module(x, **extra)
    y = _target(network, hidden, y)
    pre, intermediates, sides = watch.pre, watch.intermediates, tuple(watch.sides)
    plain = torch_loss(network)(hidden, y)
    logits = watch.sigmoid[0] if watch.sigmoid is not None and watch.sigmoid[1] is hidden else None
    after_sigmoid = network.loss == "bce" and logits is not None
    value = float(plain.detach())
    if after_sigmoid and exact_bce:
        with torch.no_grad():
            value = float(torch.nn.BCEWithLogitsLoss(reduction=network.reduction)(logits, y))
    if not (exact_bce and bce_clamps(network, hidden)):
        return Forward(plain, pre, "", value, intermediates, sides)
    if after_sigmoid:
        exact = torch.nn.BCEWithLogitsLoss(reduction=network.reduction)(logits, y)
        instead = "BCEWithLogitsLoss on the logits"
        intermediates = [v for v in intermediates if v is not hidden]  # the prediction is not on this path
    else:
        terms = -(y * torch.log(hidden) + (1 - y) * torch.log1p(-hidden))
        exact = terms.mean() if network.reduction == "mean" else terms.sum()
        instead = "the BCE formula itself (log, log1p)"
    with torch.no_grad():
        log_clamped = bool((torch.minimum(torch.log(hidden), torch.log1p(-hidden)) < BCE_LOG_CLAMP).any())
    note = (
        "torch's BCELoss clamps here (ŷ(1 − ŷ) < 1e-12 in its backward"
        + (", a log below −100 in its value" if log_clamped else "")
        + f"), so the reference is {instead}: the same function without the clamp"
    )
    if not after_sigmoid:
        value = float((exact if log_clamped else plain).detach())
    return Forward(exact, pre, note, value, intermediates, sides)


def bce_clamps(network: Network | Model, prediction: Any) -> bool:
    """Whether torch's BCELoss would clamp for these predictions."""
    if network.loss != "bce":
        return False
    with _torch().no_grad():
        return bool(((prediction * (1 - prediction)) < BCE_EPSILON).any())


#: torch kernels whose float64 backward rounds more than float64 does: ATen op -> (relative error, why)
ROUNDED_BACKWARD = {
    "hardsigmoid": (3e-8, "torch's float64 hardsigmoid backward multiplies by float32's 1/6 (0.1666666716…)"),
}


def _ops_run(torch: Any) -> Any:
    """A dispatch mode that records the ATen ops a forward pass runs (their overload packets' names)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Record(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.seen: set[str] = set()

        def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: Any = None) -> Any:
            self.seen.add(func.overloadpacket.__name__)
            return func(*args, **(kwargs or {}))

    return Record()


@dataclass(frozen=True)
class AutogradResult:
    """Loss and ∂L/∂p by derive's name from torch autograd, with the device, dtype and any note.

    ``loss`` is the value derive's loss should match (see `Forward`).
    """

    loss: float
    gradients: dict[str, float]
    device: str = "cpu"
    dtype: str = "float64"
    note: str = ""
    pre_activations: list[list[list[float]]] = field(default_factory=list, compare=False)
    #: the largest adjoint |∂L/∂v| over the leaf modules' outputs v (z and a of every layer): the scale of rounding
    adjoint_scale: float = 0.0
    #: the kernels of `ROUNDED_BACKWARD` the module ran: (name, relative error, why)
    rounded: tuple[tuple[str, float, str], ...] = ()
    #: the dtype the module's loss came out in: lower than ``dtype`` where its forward computes the loss in
    #: float32 (a float32 target made in forward, ``(y > 0).float()``, takes torch's loss to float32)
    loss_dtype: str = "float64"

    def __getitem__(self, name: str) -> float:
        return self.gradients[name]


def autograd_gradients(
    network: Network | Model, *, device: str = "cpu", dtype: str = "float64", exact_bce: bool = True
) -> AutogradResult:
    """Loss and ∂L/∂p for every scalar parameter (by derive's name) from torch autograd of the module
    (`module_of`): a chain's equivalent ``nn.Sequential``, a graph model's own module.

    ``exact_bce=False`` keeps ``nn.BCELoss`` even where it clamps (to see torch's own numbers).
    """
    require_device(device)
    module = module_of(network, device=device, dtype=dtype)
    x, y = data_of(network, device=device, dtype=dtype)
    record = _ops_run(_torch())
    with record:
        result = forward(network, module, x, y, exact_bce=exact_bce)
    result.loss.backward()
    gradients = {}
    for p, tensor in parameter_tensors(network, module):
        gradients[p.name] = 0.0 if tensor.grad is None else float(tensor.grad[p.index].item())
    pre = [z.detach().double().cpu().tolist() for z in result.pre_activations]
    adjoints = [float(v.grad.abs().max()) for v in result.intermediates if v.grad is not None and v.grad.numel()]
    scale = max(adjoints, default=0.0)
    loss_dtype = str(result.loss.dtype).removeprefix("torch.")
    rounded = tuple((op, *ROUNDED_BACKWARD[op]) for op in sorted(record.seen) if op in ROUNDED_BACKWARD)
    return AutogradResult(result.value, gradients, device, dtype, result.note, pre, scale, rounded, loss_dtype)
