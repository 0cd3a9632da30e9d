"""Checks torch makes on data values, lifted while torch.export records the ops (the reader's own shims).

Some of torch's functions check their arguments' values before computing (``gaussian_nll_loss``: ``var ≥ 0``;
``torch.distributions``: a scale > 0, a value in the support). A check on a value is a branch that
torch.export cannot record. The reader runs the module eagerly on the same data first
(`derive.sources.torch_export._run_eagerly`), where every such check is made and a failing one is refused in
one line; while the ops are recorded, `lifted` replaces those checks by nothing, and the values and gradients
stay torch's own.

>>> import torch
>>> F = torch.nn.functional
>>> mu, y, var = torch.tensor([0.5, 1.0]), torch.tensor([0.0, 2.0]), torch.tensor([0.25, 4.0])
>>> with lifted(torch):
...     value = F.gaussian_nll_loss(mu, y, var, full=True)
>>> bool(torch.isclose(value, F.gaussian_nll_loss(mu, y, var, full=True)))
True
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def lifted(torch: Any) -> Iterator[None]:
    """Inside: ``F.gaussian_nll_loss`` without its ``var ≥ 0`` check, and distributions without validation."""
    F = torch.nn.functional
    original = F.gaussian_nll_loss
    validate = torch.distributions.Distribution._validate_args
    F.gaussian_nll_loss = _gaussian_nll_loss
    torch.distributions.Distribution.set_default_validate_args(False)
    try:
        yield
    finally:
        F.gaussian_nll_loss = original
        torch.distributions.Distribution.set_default_validate_args(validate)


def _gaussian_nll_loss(input: Any, target: Any, var: Any, full: bool = False, eps: float = 1e-6,
                       reduction: str = "mean") -> Any:
    """torch's ``gaussian_nll_loss`` as torch computes it, less the check that ``var ≥ 0``.

    torch clamps ``var`` to ``eps`` in place under ``no_grad``: the value is max(var, eps), the gradient
    passes to ``var`` unchanged. Written here as var + (max(var, eps) − var) with the difference detached.
    """
    import torch

    if isinstance(var, float):
        var = var * torch.ones_like(input)
    if var.size() != input.size():
        if input.size()[:-1] == var.size():  # one dimension short: one variance per row
            var = torch.unsqueeze(var, -1)
        elif not (input.ndim == var.ndim and sum(
                v for i, v in zip(input.size(), var.size(), strict=True) if i != v) == 1):
            raise ValueError("var is of incorrect size")
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(reduction + " is not valid")
    var = var + (var.clamp(min=eps) - var).detach()
    loss = 0.5 * (torch.log(var) + (input - target) ** 2 / var)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return loss.mean() if reduction == "mean" else loss.sum() if reduction == "sum" else loss
