"""An independent torch reference for tests: a chain as an ``nn.Sequential`` built from torch's own modules."""

from __future__ import annotations

import pytest

import derive


def torch_sequential(net: derive.Network):
    """The network as a float64 ``nn.Sequential`` built here from torch modules (independent of derive's code)."""
    torch = pytest.importorskip("torch")
    layers = []
    for layer in net.layers:
        linear = torch.nn.Linear(layer.in_features, layer.out_features, dtype=torch.float64)
        with torch.no_grad():
            linear.weight.copy_(torch.tensor(layer.weight, dtype=torch.float64))
            linear.bias.copy_(torch.tensor(layer.bias, dtype=torch.float64))
        name, _, slope = layer.activation.partition("(")
        module = {"sigmoid": torch.nn.Sigmoid(), "tanh": torch.nn.Tanh(), "relu": torch.nn.ReLU(),
                  "identity": torch.nn.Identity(), "softplus": torch.nn.Softplus(), "gelu": torch.nn.GELU(),
                  "softmax": torch.nn.Softmax(dim=1), "elu": torch.nn.ELU(), "silu": torch.nn.SiLU(),
                  "hardtanh": torch.nn.Hardtanh(), "gelu_tanh": torch.nn.GELU(approximate="tanh"),
                  "leaky_relu": torch.nn.LeakyReLU(float(slope.rstrip(")")) if slope else 0.01)}[name]  # fmt: skip
        layers += [linear, module]
    return torch.nn.Sequential(*layers)


def autograd_of(net: derive.Network) -> dict[str, float]:
    """float64 torch autograd of a network, built here from torch modules (independent of derive's code)."""
    torch = pytest.importorskip("torch")
    model = torch_sequential(net)
    out = model(torch.tensor(net.x, dtype=torch.float64))
    y = torch.tensor(net.y, dtype=torch.float64)
    if net.loss == "half_sse":
        loss = (torch.mean if net.reduction == "mean" else torch.sum)(0.5 * ((out - y) ** 2).sum(dim=1))
    elif net.loss == "cross_entropy":
        loss = torch.nn.CrossEntropyLoss(reduction=net.reduction)(out, y.argmax(dim=1))  # one-hot rows: classes
    else:
        modules = {"bce": torch.nn.BCELoss, "mse": torch.nn.MSELoss, "l1": torch.nn.L1Loss,
                   "bce_with_logits": torch.nn.BCEWithLogitsLoss}  # fmt: skip
        loss = modules[net.loss](reduction=net.reduction)(out, y)
    loss.backward()
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    return {p.name: getattr(linears[p.layer - 1], p.tensor).grad[p.index].item() for p in net.parameters()}
