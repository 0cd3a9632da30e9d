"""The equivalent torch model of a `derive.Network`, and its autograd gradients on a device and dtype.

torch is imported here, lazily by `verify` users: ``import derive`` never imports it.

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

from dataclasses import dataclass, field
from typing import Any

from derive.errors import DeriveError, require
from derive.network import Network
from derive.ops import activation, loss as lookup_loss
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


def torch_loss(network: Network) -> Any:
    """The torch loss function of the network's loss and reduction: ``fn(prediction, target)``."""
    torch = _torch()
    spec = lookup_loss(network.loss)
    if spec.key == "half_sse":
        reduce = torch.mean if network.reduction == "mean" else torch.sum
        return lambda p, t: reduce(0.5 * ((p - t) ** 2).sum(dim=1))
    return getattr(torch.nn, spec.torch_module)(reduction=network.reduction)


def class_indices(network: Network, y: Any) -> Any:
    """Class targets (cross_entropy, nll) that are one-hot rows as class indices: torch's class-index path."""
    one_hot = all(sorted(row) == [0.0] * (len(row) - 1) + [1.0] for row in network.y)
    return y.argmax(dim=1) if lookup_loss(network.loss).class_targets and one_hot else y


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
    #: every layer output (z and a), kept with ``retain_grad`` so that backward leaves the adjoints ∂L/∂v
    intermediates: list[Any] = field(default_factory=list)


def forward(network: Network, model: Any, x: Any, y: Any, *, exact_bce: bool = True) -> Forward:
    """Run ``model`` on ``x`` and the network's loss against ``y`` (see the module note on BCE), plus the
    network's penalties (l2·Σ p² + l1·Σ |p| over its penalized parameters), as torch users write them."""
    result = _data_forward(network, model, x, y, exact_bce=exact_bce)
    if not network.penalized:
        return result
    penalty = penalty_of(network, model)
    result.loss = result.loss + penalty
    result.value += float(penalty.detach())
    return result


def penalty_of(network: Network, model: Any) -> Any:
    """``l2·Σ p² + l1·Σ |p|`` over the penalized parameters, from the torch model's own tensors."""
    torch = _torch()
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    chosen = set(network.penalized)
    total = 0
    for p in network.parameters():
        if p.name in chosen:
            value = getattr(linears[p.layer - 1], p.tensor)[p.index]
            total = total + network.l2 * value**2 + network.l1 * value.abs()
    return total


def _data_forward(network: Network, model: Any, x: Any, y: Any, *, exact_bce: bool = True) -> Forward:
    """The data loss alone (see `forward`)."""
    torch = _torch()
    pre, hidden, intermediates = [], x, []
    for module in model:
        hidden = module(hidden)
        if hidden.requires_grad:
            hidden.retain_grad()
            intermediates.append(hidden)
        if isinstance(module, torch.nn.Linear):
            pre.append(hidden)
    plain = torch_loss(network)(hidden, y)
    after_sigmoid = network.loss == "bce" and network.layers[-1].activation == "sigmoid"
    value = float(plain.detach())
    if after_sigmoid and exact_bce:
        with torch.no_grad():
            value = float(torch.nn.BCEWithLogitsLoss(reduction=network.reduction)(pre[-1], y))
    if not (exact_bce and bce_clamps(network, hidden)):
        return Forward(plain, pre, "", value, intermediates)
    if after_sigmoid:
        exact = torch.nn.BCEWithLogitsLoss(reduction=network.reduction)(pre[-1], y)
        instead = "BCEWithLogitsLoss on the logits"
        intermediates = intermediates[:-1]  # the prediction is not on this path
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
    return Forward(exact, pre, note, value, intermediates)


def bce_clamps(network: Network, prediction: Any) -> bool:
    """Whether torch's BCELoss would clamp for these predictions."""
    if network.loss != "bce":
        return False
    with _torch().no_grad():
        return bool(((prediction * (1 - prediction)) < BCE_EPSILON).any())


@dataclass(frozen=True)
class AutogradResult:
    """Loss and ∂L/∂p by textbook name from torch autograd, with the device, dtype and any note.

    ``loss`` is the value derive's loss should match (see `Forward`).
    """

    loss: float
    gradients: dict[str, float]
    device: str = "cpu"
    dtype: str = "float64"
    note: str = ""
    pre_activations: list[list[list[float]]] = field(default_factory=list, compare=False)
    #: the largest adjoint |∂L/∂v| over the intermediates v (z and a of every layer): the scale of rounding
    adjoint_scale: float = 0.0

    def __getitem__(self, name: str) -> float:
        return self.gradients[name]


def autograd_gradients(
    network: Network, *, device: str = "cpu", dtype: str = "float64", exact_bce: bool = True
) -> AutogradResult:
    """Loss and ∂L/∂p for every scalar parameter (by textbook name) from torch autograd.

    ``exact_bce=False`` keeps ``nn.BCELoss`` even where it clamps (to see torch's own numbers).
    """
    torch = _torch()
    model = torch_model(network, device=device, dtype=dtype)
    kind = getattr(torch, dtype)
    x = torch.tensor(network.x, dtype=torch.float64).to(device=device, dtype=kind)
    y = class_indices(network, torch.tensor(network.y, dtype=torch.float64).to(device=device, dtype=kind))
    result = forward(network, model, x, y, exact_bce=exact_bce)
    result.loss.backward()
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    gradients = {}
    for p in network.parameters():
        tensor = getattr(linears[p.layer - 1], p.tensor)
        gradients[p.name] = float(tensor.grad[p.index].item())
    pre = [z.detach().double().cpu().tolist() for z in result.pre_activations]
    adjoints = [float(v.grad.abs().max()) for v in result.intermediates if v.grad is not None]
    scale = max(adjoints, default=0.0)
    return AutogradResult(result.value, gradients, device, dtype, result.note, pre, scale)
