"""Hypothesis strategies for graph models: torch modules drawn from a small grammar of blocks, read by derive.

A drawn model chains blocks over a batch of samples: Linear layers, activations, residual blocks
(h + Linear(f(h))), LayerNorm, BatchNorm1d in training mode, a parameter broadcast over the batch, one
Linear used twice (shared weights), and two branches concatenated. Weights lie on the grid of
`verify.sampling` (exact in float32, so the module and derive hold the same numbers).

>>> from hypothesis import given, settings
>>> import verify
>>> @settings(max_examples=2, deadline=None)
... @given(graph_models())
... def test_graphs_agree_with_their_module(model):
...     assert verify.check(model, finite_differences_check=False).ok
>>> test_graphs_agree_with_their_module()
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from verify.strategies import values

BLOCKS = ("linear", "activation", "residual", "layer_norm", "batch_norm", "broadcast", "shared", "branches")
ACTIVATIONS = ("tanh", "sigmoid", "relu", "silu", "softplus", "elu", "gelu")
LOSSES = ("mse", "half_sse", "bce_with_logits", "cross_entropy")


def _module(recipe: list[tuple], width: int, outputs: int) -> Any:
    """A torch module running ``recipe`` on inputs of ``width`` features, ending in a Linear to ``outputs``."""
    import torch
    from torch import nn

    F = nn.functional

    class Drawn(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.steps = recipe
            self.layers = nn.ModuleList()
            w = width
            for block, *arguments in recipe:
                if block == "linear":
                    self.layers.append(nn.Linear(w, arguments[0]))
                    w = arguments[0]
                elif block in ("residual", "shared"):
                    self.layers.append(nn.Linear(w, w))
                elif block == "layer_norm":
                    self.layers.append(nn.LayerNorm(w))
                elif block == "batch_norm":
                    self.layers.append(nn.BatchNorm1d(w))
                elif block == "broadcast":
                    self.layers.append(_Scale(w))
                else:
                    self.layers.append(nn.Identity())
                if block == "branches":
                    w *= 2
            self.head = nn.Linear(w, outputs)

        def forward(self, h: Any) -> Any:
            for (block, *arguments), layer in zip(self.steps, self.layers):
                if block == "activation":
                    h = getattr(F, arguments[0])(h)
                elif block == "residual":
                    h = h + layer(getattr(F, arguments[0])(h))
                elif block == "shared":
                    h = layer(torch.tanh(layer(h)))
                elif block == "branches":
                    h = torch.cat([h * torch.sigmoid(h), torch.tanh(h) / 2], dim=1)
                else:
                    h = layer(h)
            return self.head(h)

    class _Scale(nn.Module):
        def __init__(self, w: int) -> None:
            super().__init__()
            self.scale = nn.Parameter(torch.ones(w))

        def forward(self, h: Any) -> Any:
            return h * self.scale + 0.5

    return Drawn()


@st.composite
def recipes(draw: st.DrawFn, max_blocks: int = 3) -> list[tuple]:
    """A list of blocks (each a tuple: its kind and its arguments)."""
    recipe = []
    for _ in range(draw(st.integers(1, max_blocks))):
        block = draw(st.sampled_from(BLOCKS))
        if block == "linear":
            recipe.append((block, draw(st.integers(1, 3))))
        elif block in ("activation", "residual"):
            recipe.append((block, draw(st.sampled_from(ACTIVATIONS))))
        else:
            recipe.append((block,))
    return recipe


@st.composite
def graph_models(draw: st.DrawFn, max_blocks: int = 3) -> Any:
    """A `derive.model.Model` read from a drawn torch module, with drawn weights, data and loss."""
    import torch

    import derive

    recipe = draw(recipes(max_blocks))
    width, batch = draw(st.integers(1, 3)), draw(st.integers(2, 3))
    loss = draw(st.sampled_from(LOSSES))
    outputs = draw(st.integers(2, 3)) if loss == "cross_entropy" else draw(st.integers(1, 2))
    module = _module(recipe, width, outputs)
    with torch.no_grad():
        for parameter in module.parameters():
            drawn = [draw(values()) for _ in range(parameter.numel())]
            parameter.copy_(torch.tensor(drawn, dtype=torch.float64).reshape(parameter.shape))
    x = [[draw(values()) for _ in range(width)] for _ in range(batch)]
    if loss == "cross_entropy":
        y: Any = [draw(st.integers(0, outputs - 1)) for _ in range(batch)]
    elif loss == "bce_with_logits":
        y = [[draw(st.sampled_from([0.0, 0.25, 1.0])) for _ in range(outputs)] for _ in range(batch)]
    else:
        y = [[draw(values()) for _ in range(outputs)] for _ in range(batch)]
    reduction = draw(st.sampled_from(["mean", "sum"]))
    return derive.from_torch(module, loss=loss, x=x, y=y, reduction=reduction, name=f"drawn {recipe}")
