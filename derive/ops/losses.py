"""Losses: one class per loss, with torch's semantics and reductions.

A loss is a sum of *terms*: one per output element (bce, mse, as torch counts them) or one per sample
(half_sse). ``reduction="mean"`` divides the sum by the number of terms, as torch does; ``"sum"`` does not.
Each class gives its terms in SymPy, its derivative in textbook form, and what targets and predictions it
accepts. Adding a loss means adding one class here and decorating it with `register`.

>>> import sympy as sp
>>> yhat, y = sp.symbols("yhat y")
>>> BCE().derivative([yhat], [y])
[(-y + yhat)/(yhat*(1 - yhat))]
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import sympy as sp

from derive.errors import ShapeError, UnknownOpError, ValueDomainError, did_you_mean
from derive.ops.activations import Sigmoid, Softplus
from derive.ops.softmax import LogSumExp, Softmax

LOSSES: dict[str, type[Loss]] = {}
REDUCTIONS = ("mean", "sum")


def register(cls: type[Loss]) -> type[Loss]:
    """Add a loss class to the registry under its ``key``."""
    LOSSES[cls.key] = cls
    return cls


def loss(name: str) -> Loss:
    """Look a loss up by name, with a clear error for unknown names.

    >>> loss("bce").key
    'bce'
    """
    try:
        return LOSSES[name]()
    except (KeyError, TypeError):
        known = ", ".join(sorted(LOSSES))
        raise UnknownOpError(
            f"unknown loss {name!r}; known: {known}.{did_you_mean(str(name), LOSSES)}"
        ) from None


class Loss:
    """A loss L(ŷ, y) over a batch: the sum of its terms, divided by their number for ``mean``."""

    key: ClassVar[str]
    #: LaTeX for the name of the loss in reports.
    title: ClassVar[str]
    #: torch.nn module class name (a string: derive imports torch only where torch is the point).
    torch_module: ClassVar[str]
    #: True: one term per sample; False: one term per output element.
    per_sample: ClassVar[bool] = False
    #: the interval the predictions must lie in (checked against the last activation), or None.
    prediction_range: ClassVar[tuple[float, float] | None] = None
    #: the closed interval targets must lie in.
    target_range: ClassVar[tuple[float, float]] = (-math.inf, math.inf)

    def terms(self, yhat: Sequence[sp.Expr], y: Sequence[sp.Expr]) -> list[sp.Expr]:
        """The terms of one sample, given its predictions and targets."""
        raise NotImplementedError

    def derivative(self, yhat: Sequence[sp.Expr], y: Sequence[sp.Expr]) -> list[sp.Expr]:
        """∂(sum of one sample's terms)/∂ŷ_k for every output k, in textbook form."""
        raise NotImplementedError

    #: True when targets may be given as class indices, one per sample (cross_entropy).
    class_targets: ClassVar[bool] = False

    def prepare_targets(self, y: Sequence[Sequence[float]], outputs: int) -> list[list[float]]:
        """The targets as one row of ``outputs`` values per sample (class indices become one-hot rows)."""
        return [list(row) for row in y]

    def term_count(self, batch: int, outputs: int) -> int:
        """How many terms a batch has: what ``mean`` divides by."""
        return batch if self.per_sample else batch * outputs

    def tensor_sum(self, rows: Any, targets: Any, backend: str) -> Any:
        """The sum of the terms of whole tensors (samples × values; NumPy arrays or torch tensors): an
        element-wise loss's own term, lambdified to ``backend``."""
        return _lambdified(self.key, backend)[0](rows, targets).sum()

    def tensor_derivative(self, rows: Any, targets: Any, backend: str) -> Any:
        """∂(sum of the terms)/∂rows on whole tensors: an element-wise loss's own `derivative`, lambdified."""
        return _lambdified(self.key, backend)[1](rows, targets)

    def torch_function(self, torch: Any, reduction: str) -> Any:
        """torch's own loss, ``fn(prediction, target)``, with this ``reduction`` (``torch``: the module)."""
        return getattr(torch.nn, self.torch_module)(reduction=reduction)

    def check_targets(self, y: Sequence[Sequence[float]]) -> None:
        """Raise `ValueDomainError` for a target this loss cannot take."""
        lo, hi = self.target_range
        for n, row in enumerate(y):
            for k, value in enumerate(row):
                if not lo <= value <= hi:
                    raise ValueDomainError(
                        f"loss {self.key!r} needs targets in [{lo:g}, {hi:g}], "
                        f"got y[{n}][{k}] = {value!r}"
                    )


@functools.lru_cache(maxsize=32)
def _lambdified(key: str, backend: str) -> tuple[Callable, Callable]:
    """One element's term and its derivative of an element-wise loss, as ``fn(rows, targets)``."""
    from derive.lambdify import lambdify

    p, t = sp.symbols("p t")
    spec = loss(key)
    return lambdify([p, t], spec.terms([p], [t])[0], backend), lambdify([p, t], spec.derivative([p], [t])[0], backend)


def _exp(values: Any) -> Any:
    import numpy as np

    return np.exp(values)


def _log_softmax(rows: Any, backend: str) -> Any:
    if backend != "numpy":
        return rows.log_softmax(dim=1)
    import numpy as np

    top = rows.max(axis=1, keepdims=True)
    return rows - top - np.log(np.exp(rows - top).sum(axis=1, keepdims=True))


@register
class BCE(Loss):
    r"""Binary cross-entropy, $-(y \log \hat y + (1 - y) \log(1 - \hat y))$ per element (torch ``BCELoss``)."""

    key = "bce"
    title = r"\text{BCE}"
    torch_module = "BCELoss"
    prediction_range = (0.0, 1.0)
    target_range = (0.0, 1.0)

    def terms(self, yhat: Sequence[sp.Expr], y: Sequence[sp.Expr]) -> list[sp.Expr]:
        return [-(t * sp.log(p) + (1 - t) * sp.log(1 - p)) for p, t in zip(yhat, y)]

    def derivative(self, yhat: Sequence[sp.Expr], y: Sequence[sp.Expr]) -> list[sp.Expr]:
        return [(p - t) / (p * (1 - p)) for p, t in zip(yhat, y)]


@register
class MSE(Loss):
    r"""Mean squared error, $(\hat y - y)^2$ per element (torch ``MSELoss``)."""

    key = "mse"
    title = r"\text{MSE}"
    torch_module = "MSELoss"

    def terms(self, yhat: Sequence[sp.Expr], y: Sequence[sp.Expr]) -> list[sp.Expr]:
        return [(p - t) ** 2 for p, t in zip(yhat, y)]

    def derivative(self, yhat: Sequence[sp.Expr], y: Sequence[sp.Expr]) -> list[sp.Expr]:
        return [2 * (p - t) for p, t in zip(yhat, y)]


@register
class HalfSSE(Loss):
    r"""The classic textbook error, $\tfrac12 \sum_k (\hat y_k - y_k)^2$ per sample."""

    key = "half_sse"
    title = r"E"
    torch_module = "HalfSSE"
    per_sample = True

    def terms(self, yhat: Sequence[sp.Expr], y: Sequence[sp.Expr]) -> list[sp.Expr]:
        return [sp.Rational(1, 2) * sp.Add(*[(p - t) ** 2 for p, t in zip(yhat, y)])]

    def derivative(self, yhat: Sequence[sp.Expr], y: Sequence[sp.Expr]) -> list[sp.Expr]:
        return [p - t for p, t in zip(yhat, y)]

    def torch_function(self, torch: Any, reduction: str) -> Any:
        """½·Σ(ŷ − y)² per sample, as torch writes it (torch has no module for it)."""
        reduce = torch.mean if reduction == "mean" else torch.sum
        return lambda p, t: reduce(0.5 * ((p - t) ** 2).sum(dim=1))


@register
class BCEWithLogits(Loss):
    r"""BCE on logits, $\operatorname{softplus}(\hat y) - y \hat y$ per element (torch ``BCEWithLogitsLoss``).

    Equal to BCE of $\sigma(\hat y)$, without its rounding: the derivative is $\sigma(\hat y) - y$.
    """

    key = "bce_with_logits"
    title = r"\text{BCE}"
    torch_module = "BCEWithLogitsLoss"
    target_range = (0.0, 1.0)

    def terms(self, yhat: Sequence[sp.Expr], y: Sequence[sp.Expr]) -> list[sp.Expr]:
        return [Softplus(p) - t * p for p, t in zip(yhat, y)]

    def derivative(self, yhat: Sequence[sp.Expr], y: Sequence[sp.Expr]) -> list[sp.Expr]:
        return [Sigmoid(p) - t for p, t in zip(yhat, y)]


@register
class L1(Loss):
    r"""Absolute error, $|\hat y - y|$ per element (torch ``L1Loss``).

    Its derivative is $\operatorname{sign}(\hat y - y)$, which is 0 at the kink $\hat y = y$, as in torch.
    """

    key = "l1"
    title = r"\text{L1}"
    torch_module = "L1Loss"

    def terms(self, yhat: Sequence[sp.Expr], y: Sequence[sp.Expr]) -> list[sp.Expr]:
        return [sp.Abs(p - t) for p, t in zip(yhat, y)]

    def derivative(self, yhat: Sequence[sp.Expr], y: Sequence[sp.Expr]) -> list[sp.Expr]:
        return [sp.sign(p - t) for p, t in zip(yhat, y)]


@register
class CrossEntropy(Loss):
    r"""Cross-entropy of logits, $-\sum_k y_k \log \operatorname{softmax}_k(\hat y)$ per sample (torch ``CrossEntropyLoss``).

    That is log-softmax then NLL. Targets are class indices (one per sample: ``y = [2, 0, 1]``), taken as
    one-hot rows, or class probabilities (one row per sample). Written as
    $\operatorname{LSE}(\hat y) \sum_k y_k - \sum_k y_k \hat y_k$, its derivative is
    $\operatorname{softmax}_k(\hat y) \sum_j y_j - y_k$: softmax − y for one-hot targets.
    """

    key = "cross_entropy"
    title = r"\text{CE}"
    torch_module = "CrossEntropyLoss"
    per_sample = True
    class_targets = True
    target_range = (0.0, 1.0)

    def terms(self, yhat: Sequence[sp.Expr], y: Sequence[sp.Expr]) -> list[sp.Expr]:
        return [LogSumExp(*yhat) * sp.Add(*y) - sp.Add(*(t * p for p, t in zip(yhat, y)))]

    def derivative(self, yhat: Sequence[sp.Expr], y: Sequence[sp.Expr]) -> list[sp.Expr]:
        mass = sp.Add(*y)
        return [Softmax(k + 1, *yhat) * mass - t for k, t in enumerate(y)]

    def prepare_targets(self, y: Sequence[Sequence[float]], outputs: int) -> list[list[float]]:
        if outputs < 2:
            raise ShapeError(f"loss {self.key!r} needs at least 2 outputs (one logit per class), got {outputs}")
        if all(len(row) == outputs for row in y):
            return [list(row) for row in y]  # class probabilities
        if any(len(row) != 1 for row in y):
            raise ShapeError(
                f"loss {self.key!r} takes a class index per sample or {outputs} class probabilities per sample, "
                f"got rows of {len(y[0])} values"
            )
        rows = []
        for n, (value,) in enumerate(y):
            if value != int(value) or not 0 <= value < outputs:
                raise ValueDomainError(
                    f"loss {self.key!r} needs class indices 0 to {outputs - 1}, got y[{n}] = {value!r}"
                )
            rows.append([1.0 if k == int(value) else 0.0 for k in range(outputs)])
        return rows

    def tensor_sum(self, rows: Any, targets: Any, backend: str) -> Any:
        return -(targets * _log_softmax(rows, backend)).sum()

    def tensor_derivative(self, rows: Any, targets: Any, backend: str) -> Any:
        """softmax(ŷ)·Σy − y, row by row."""
        total = targets.sum(axis=1, keepdims=True) if backend == "numpy" else targets.sum(dim=1, keepdim=True)
        log_soft = _log_softmax(rows, backend)
        return (log_soft.exp() if backend != "numpy" else _exp(log_soft)) * total - targets


@register
class NLL(CrossEntropy):
    r"""Negative log-likelihood of log-probabilities, $-\sum_k y_k \hat y_k$ per sample (torch ``NLLLoss``).

    Used after ``log_softmax`` (the MNIST example's ending): together they are `CrossEntropy`. Targets as
    for cross_entropy: class indices (one-hot rows) or one row per sample.
    """

    key = "nll"
    title = r"\text{NLL}"
    torch_module = "NLLLoss"

    def terms(self, yhat: Sequence[sp.Expr], y: Sequence[sp.Expr]) -> list[sp.Expr]:
        return [-sp.Add(*(t * p for p, t in zip(yhat, y)))]

    def derivative(self, yhat: Sequence[sp.Expr], y: Sequence[sp.Expr]) -> list[sp.Expr]:
        return [-t for t in y]

    def tensor_sum(self, rows: Any, targets: Any, backend: str) -> Any:
        return -(targets * rows).sum()

    def tensor_derivative(self, rows: Any, targets: Any, backend: str) -> Any:
        return -targets
