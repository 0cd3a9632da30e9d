r"""The loss of the tensor program: its value and ∂L/∂Ŷ on whole tensors, in NumPy or torch, from the loss's
class (`derive.ops.losses.Loss.tensor_sum` and ``tensor_derivative``: an element-wise loss's own term and
derivative, lambdified; cross-entropy and nll row by row). ``mean`` divides by the number of terms.

>>> import numpy as np
>>> value, grad = loss_value_and_gradient(np.array([[0.5]]), np.array([[0.0]]), "mse", "mean", "numpy")
>>> float(value), grad.tolist()
(0.25, [[1.0]])
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import sympy as sp

from derive.ops import loss as lookup_loss


def loss_value_and_gradient(rows: Any, targets: Any, key: str, reduction: str, backend: str) -> tuple[Any, Any]:
    """L and ∂L/∂rows for predictions ``rows`` and targets ``targets`` (both samples × values)."""
    return loss_value(rows, targets, key, reduction, backend), loss_gradient(rows, targets, key, reduction, backend)


def loss_value(rows: Any, targets: Any, key: str, reduction: str, backend: str) -> Any:
    """L for predictions ``rows`` and targets ``targets`` (both samples × values)."""
    return reduced(lookup_loss(key).tensor_sum(rows, targets, backend), rows, key, reduction)


def loss_gradient(rows: Any, targets: Any, key: str, reduction: str, backend: str) -> Any:
    """∂L/∂rows alone (a compiled gradient needs no L): softmax(ŷ)·Σy − y for cross-entropy, −y for nll, the
    loss's own derivative for an element-wise loss; ÷ the number of terms for a mean.

    >>> import numpy as np
    >>> loss_gradient(np.array([[0.0, 0.0]]), np.array([[1.0, 0.0]]), "cross_entropy", "sum", "numpy").tolist()
    [[-0.5, 0.5]]
    """
    return reduced(lookup_loss(key).tensor_derivative(rows, targets, backend), rows, key, reduction)


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

    >>> import numpy as np
    >>> output_rule("bce", "sigmoid", "numpy")(None, np.array([[0.25]]), np.array([[1.0]])).tolist()
    [[-0.75]]
    """
    from derive.lambdify import lambdify

    found = _output_delta(key, activation_name)
    return lambdify([Z, A, T], found[0], backend) if found is not None and found[1] else None
