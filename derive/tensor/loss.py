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
    return loss_value(rows, targets, key, reduction, backend), loss_gradient(rows, targets, key, reduction, backend)


def loss_value(rows: Any, targets: Any, key: str, reduction: str, backend: str) -> Any:
    """L for predictions ``rows`` and targets ``targets`` (both samples × values)."""
    if key == "nll":
        total = -(targets * rows).sum()
    elif key == "cross_entropy":
        total = -(targets * _log_softmax(rows, backend)).sum()
    else:
        total = _elementwise(key, backend)[0](rows, targets).sum()
    return reduced(total, rows, key, reduction)


def loss_gradient(rows: Any, targets: Any, key: str, reduction: str, backend: str) -> Any:
    """∂L/∂rows alone (a compiled gradient needs no L): softmax(ŷ)·Σy − y for cross-entropy, −y for nll, the
    loss's own derivative for an element-wise loss; ÷ the number of terms for a mean.

    >>> loss_gradient(np.array([[0.0, 0.0]]), np.array([[1.0, 0.0]]), "cross_entropy", "sum", "numpy").tolist()
    [[-0.5, 0.5]]
    """
    if key == "nll":
        gradient = -targets
    elif key == "cross_entropy":
        total = targets.sum(axis=1, keepdims=True) if backend == "numpy" else targets.sum(dim=1, keepdim=True)
        log_soft = _log_softmax(rows, backend)
        gradient = (np.exp(log_soft) if backend == "numpy" else log_soft.exp()) * total - targets
    else:
        gradient = _elementwise(key, backend)[1](rows, targets)
    return reduced(gradient, rows, key, reduction)


def reduced(value: Any, rows: Any, key: str, reduction: str) -> Any:
    """``value`` ÷ the number of loss terms for ``mean`` (none for ``sum``, nor for one term)."""
    count = lookup_loss(key).term_count(*rows.shape) if reduction == "mean" else 1
    return value / count if count != 1 else value


#: the symbols of `output_delta`: the output's pre-activation z, the output a = f(z) and its target t
Z, A, T = sp.symbols("z a t")


@functools.lru_cache(maxsize=64)
def _output_delta(key: str, activation_name: str) -> tuple[sp.Expr, bool] | None:
    from derive.ops import activation

    act = activation(activation_name)
    other_a, other_t = sp.symbols("a_other t_other")
    spec = lookup_loss(key)
    if getattr(act, "vector", False) or not spec.derivative([A, other_a], [T, other_t])[0].free_symbols <= {A, T}:
        return None
    derivative, slope = spec.derivative([A], [T])[0], act.derivative(Z, A)
    rule = sp.cancel(derivative * slope)
    apart = sp.count_ops(derivative) + (0 if slope == 1 else sp.count_ops(slope) + 1)
    return (rule, True) if sp.count_ops(rule) < apart else (derivative * slope, False)


def output_delta(key: str, activation_name: str) -> sp.Expr | None:
    """∂(one term)/∂z of an output a = f(z) under an element-wise loss, over `Z`, `A` and `T`: the loss's
    derivative times f′, cancelled by SymPy where that takes fewer operations (bce after σ: a − t); None for a
    vector activation or a loss over rows (an output's derivative that reads other outputs).

    >>> output_delta("bce", "sigmoid"), output_delta("mse", "identity"), output_delta("cross_entropy", "identity")
    (a - t, 2*a - 2*t, None)
    """
    found = _output_delta(key, activation_name)
    return None if found is None else found[0]


@functools.lru_cache(maxsize=64)
def output_rule(key: str, activation_name: str, backend: str) -> Callable[[Any, Any, Any], Any] | None:
    """``(Z, A, T) -> ∂(Σ terms)/∂Z``: `output_delta` lambdified, where it cancels; None where it does not.

    >>> output_rule("bce", "sigmoid", "numpy")(None, np.array([[0.25]]), np.array([[1.0]])).tolist()
    [[-0.75]]
    """
    from derive.lambdify import lambdify

    found = _output_delta(key, activation_name)
    return lambdify([Z, A, T], found[0], backend) if found is not None and found[1] else None


def _log_softmax(rows: Any, backend: str) -> Any:
    if backend != "numpy":
        return rows.log_softmax(dim=1)
    top = rows.max(axis=1, keepdims=True)
    return rows - top - np.log(np.exp(rows - top).sum(axis=1, keepdims=True))
