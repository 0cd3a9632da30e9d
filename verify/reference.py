"""The equivalent torch model of a `derive.Network`, and its autograd gradients.

torch is imported here, lazily by `verify` users: ``import derive`` never imports it.

>>> import derive
>>> grads = autograd_gradients(derive.examples.seed())
>>> round(grads["W5"], 9)
0.27273792
"""

from __future__ import annotations

from dataclasses import dataclass

from derive.network import Network
from derive.ops import activation, loss as lookup_loss


def _torch():
    try:
        import torch
    except ImportError:  # pragma: no cover - exercised only without torch
        from derive.errors import DeriveError

        raise DeriveError("verification needs torch: pip install 'derive[torch]'") from None
    return torch


def torch_model(network: Network, *, device: str = "cpu", dtype: str = "float64"):
    """An ``nn.Sequential`` of Linear layers and activation modules holding the network's weights."""
    torch = _torch()
    kind = getattr(torch, dtype)
    layers = []
    for layer in network.layers:
        linear = torch.nn.Linear(layer.in_features, layer.out_features, device=device, dtype=kind)
        with torch.no_grad():  # float64 values, rounded once to ``dtype``
            linear.weight.copy_(torch.tensor(layer.weight, dtype=torch.float64))
            linear.bias.copy_(torch.tensor(layer.bias, dtype=torch.float64))
        layers += [linear, getattr(torch.nn, activation(layer.activation).torch_module)()]
    return torch.nn.Sequential(*layers)


def torch_loss(network: Network):
    """The torch loss function of the network's loss and reduction: ``fn(prediction, target)``."""
    torch = _torch()
    spec = lookup_loss(network.loss)
    if spec.key == "half_sse":
        reduce = torch.mean if network.reduction == "mean" else torch.sum
        return lambda p, t: reduce(0.5 * ((p - t) ** 2).sum(dim=1))
    return getattr(torch.nn, spec.torch_module)(reduction=network.reduction)


@dataclass(frozen=True)
class AutogradResult:
    loss: float
    gradients: dict[str, float]

    def __getitem__(self, name: str) -> float:
        return self.gradients[name]


def autograd_gradients(network: Network, *, device: str = "cpu", dtype: str = "float64") -> AutogradResult:
    """Loss and ∂L/∂p for every scalar parameter (by textbook name) from torch autograd."""
    torch = _torch()
    model = torch_model(network, device=device, dtype=dtype)
    kind = getattr(torch, dtype)
    x = torch.tensor(network.x, dtype=kind, device=device)
    y = torch.tensor(network.y, dtype=kind, device=device)
    loss = torch_loss(network)(model(x), y)
    loss.backward()
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    gradients = {}
    for p in network.parameters():
        tensor = getattr(linears[p.layer - 1], p.tensor)
        gradients[p.name] = float(tensor.grad[p.index].item())
    return AutogradResult(float(loss.item()), gradients)
