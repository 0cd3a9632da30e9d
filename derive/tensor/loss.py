r"""The loss of the tensor program: its value and ∂L/∂Ŷ on whole tensors, from the loss's own terms and
derivative (derive.ops.losses), in NumPy or torch.

Element-wise losses (bce, mse, l1, bce_with_logits, half_sse's ½(ŷ − y)² per element) take their term and
its derivative from the loss's class, lambdified; cross-entropy is Σ over rows of −Σₖ yₖ log softmax(ŷ)ₖ with
∂/∂ŷ = softmax(ŷ)·Σy − y, nll −Σₖ yₖ ŷₖ with −y. ``mean`` divides by the number of terms.

>>> import numpy as np
>>> value, grad = loss_value_and_gradient(np.array([[0.5]]), np.array([[0.0]]), "mse", "mean", "numpy")
>>> float(value), grad.tolist()
(0.25, [[1.0]])
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import sympy as sp

from derive.ops import loss as lookup_loss


@functools.lru_cache(maxsize=32)
def _elementwise(key: str, backend: str) -> tuple[Callable, Callable]:
    from derive.lambdify import lambdify

    p, t = sp.symbols("p t")
    spec = lookup_loss(key)
    term = (p - t) ** 2 / 2 if key == "half_sse" else spec.terms([p], [t])[0]
    derivative = spec.derivative([p], [t])[0]
    return lambdify([p, t], term, backend), lambdify([p, t], derivative, backend)


def loss_value_and_gradient(rows: Any, targets: Any, key: str, reduction: str, backend: str) -> tuple[Any, Any]:
    """L and ∂L/∂rows for predictions ``rows`` and targets ``targets`` (both samples × values)."""
    spec = lookup_loss(key)
    batch, width = rows.shape
    count = spec.term_count(batch, width) if reduction == "mean" else 1
    if key in ("cross_entropy", "nll"):
        if backend == "numpy":
            top = rows.max(axis=1, keepdims=True)
            log_soft = rows - top - np.log(np.exp(rows - top).sum(axis=1, keepdims=True))
            total = targets.sum(axis=1, keepdims=True)
        else:
            log_soft = rows.log_softmax(dim=1)
            total = targets.sum(dim=1, keepdim=True)
        if key == "nll":
            return -(targets * rows).sum() / count, -targets / count
        soft = np.exp(log_soft) if backend == "numpy" else log_soft.exp()
        return -(targets * log_soft).sum() / count, (soft * total - targets) / count
    term, derivative = _elementwise(key, backend)
    return term(rows, targets).sum() / count, derivative(rows, targets) / count
