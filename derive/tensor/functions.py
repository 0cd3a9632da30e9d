r"""The vocabulary of tensor expressions: each function's NumPy and torch implementations and its LaTeX.

- **the loss**: ``loss(Ŷ, T; loss=…, reduction=…, rows=[N, K])`` and its gradient ``loss_grad(Ŷ, T; …)``
  (T: the targets as N × K rows, class indices one-hot); ``zeros(; shape=[…])``;
- **arithmetic** with torch's broadcasting: ``add``, ``sub``, ``mul``, ``div``, ``neg``, ``pow`` (a
  constant exponent), ``matmul`` (``@``), ``transpose`` (the last two dims), ``permute``, ``reshape``,
  ``expand``, ``unsqueeze``, ``sum`` (over dims), ``sum_to`` (a broadcast tensor summed back to a shape);
- **element-wise functions**: every function derive's scalar expressions use (``exp``, ``log``, ``tanh``,
  ``sigmoid``, ``step``, ``Phi``, …), each evaluated as its own SymPy definition lambdified for the backend;
- **ops**: every op of the registry by its key (``linear(X, W, b)``, ``conv(X, K; stride=[1, 1], …)``),
  and the rule functions an op's tensor rule uses (``op_grad``), evaluated by the op's class.

`evaluate` interprets an expression with NumPy (float64) or torch; `latex` writes it.

>>> import numpy as np
>>> from derive.tensor.expr import parse
>>> evaluate(parse("sum(X * X; dims=[1], keepdim=false) + 1"), {"X": np.array([[1.0, 2.0]])}, "numpy").tolist()
[6.0]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from derive.errors import DeriveError
from derive.tensor.elementwise import elementwise_function, is_elementwise
from derive.tensor.expr import Call, Num, Ref, TExpr

#: NumPy (float64), torch, and NumPy object arrays of exact Fractions ("object") or of 60-digit mpmath
#: numbers ("mpmath"), for proofs
BACKENDS = ("numpy", "torch", "object", "mpmath")


def _torch() -> Any:
    import torch

    return torch


# --- arithmetic --------------------------------------------------------------------------------------------

def _sum_to(a: Any, shape: tuple[int, ...], backend: str) -> Any:
    """``a`` summed over the dims broadcasting added or stretched, down to ``shape``."""
    shape = tuple(shape)
    lead = a.ndim - len(shape)
    dims = tuple(range(lead)) + tuple(lead + i for i, s in enumerate(shape) if s == 1 and a.shape[lead + i] != 1)
    if not dims:
        return a
    if backend != "torch":
        return np.sum(a, axis=dims).reshape(shape)
    return a.sum(dim=dims).reshape(shape)


def _sum(a: Any, dims: Any, keepdim: bool, backend: str) -> Any:
    ndim = a.ndim
    axes = tuple(range(ndim)) if dims is None or dims == () else tuple(d % max(ndim, 1) for d in dims)
    if backend != "torch":
        return np.sum(a, axis=axes, keepdims=bool(keepdim))
    return a.sum(dim=axes, keepdim=bool(keepdim)) if axes else a


def _permute(a: Any, dims: Any, backend: str) -> Any:
    dims = [d % a.ndim for d in dims]
    return np.transpose(a, dims) if backend != "torch" else a.permute(*dims)


def _unsqueeze(a: Any, dims: Any, backend: str) -> Any:
    dims = dims if isinstance(dims, (tuple, list)) else (dims,)
    final = a.ndim + len(dims)  # dims count in the result, as torch's unsqueeze and NumPy's expand_dims take them
    for d in sorted(int(d) % final for d in dims):
        a = np.expand_dims(a, d) if backend != "torch" else a.unsqueeze(d)
    return a


def _expand(a: Any, shape: Any, backend: str) -> Any:
    shape = tuple(shape)
    lead = len(shape) - a.ndim
    full = tuple(a.shape[i - lead] if s == -1 and i >= lead else s for i, s in enumerate(shape))
    return np.broadcast_to(a, full) if backend != "torch" else a.expand(*full)


def _matmul(a: Any, b: Any, backend: str) -> Any:
    return np.matmul(a, b) if backend != "torch" else a @ b


def _transpose(a: Any, backend: str) -> Any:
    return np.swapaxes(a, -1, -2) if backend != "torch" else a.transpose(-1, -2)


def _where(c: Any, a: Any, b: Any, backend: str) -> Any:
    if backend != "torch":
        return np.where(np.asarray(c) != 0, a, b)
    torch = _torch()
    like = a if hasattr(a, "dim") else b
    condition = c.bool() if hasattr(c, "dim") else torch.as_tensor(bool(c))
    return torch.where(condition, _as(a, like), _as(b, like))


def _as(value: Any, like: Any) -> Any:
    return value if hasattr(value, "dim") else _torch().as_tensor(value, dtype=like.dtype, device=like.device)


def _loss(backend: str, out: Any, targets: Any, loss: str, reduction: str, rows: Any, gradient: bool = False) -> Any:
    from derive.tensor.loss import loss_gradient, loss_value

    if gradient:
        return loss_gradient(out.reshape(tuple(rows)), targets, loss, reduction, backend).reshape(out.shape)
    return loss_value(out.reshape(tuple(rows)), targets, loss, reduction, backend)


_ARITHMETIC: dict[str, Callable[..., Any]] = {
    "loss": lambda b, out, t, **o: _loss(b, out, t, **o),
    "loss_grad": lambda b, out, t, **o: _loss(b, out, t, **o, gradient=True),
    "zeros": lambda b, shape: np.zeros(tuple(shape)) if b != "torch" else _torch().zeros(tuple(shape), dtype=_torch().float64),
    "ones": lambda b, shape: np.ones(tuple(shape)) if b != "torch" else _torch().ones(tuple(shape), dtype=_torch().float64),
    "add": lambda b, x, y: x + y, "sub": lambda b, x, y: x - y, "mul": lambda b, x, y: x * y,
    "div": lambda b, x, y: x / y, "neg": lambda b, x: -x, "pow": lambda b, x, exponent: x ** exponent,
    "matmul": lambda b, x, y: _matmul(x, y, b), "transpose": lambda b, x: _transpose(x, b),
    "permute": lambda b, x, dims: _permute(x, dims, b), "reshape": lambda b, x, shape: x.reshape(tuple(shape)),
    "expand": lambda b, x, shape: _expand(x, shape, b),
    "unsqueeze": lambda b, x, dims=None, dim=None: _unsqueeze(x, dim if dims is None else dims, b),
    "sum": lambda b, x, dims=None, keepdim=False: _sum(x, dims, keepdim, b),
    "sum_to": lambda b, x, shape: _sum_to(x, shape, b), "where": lambda b, c, x, y: _where(c, x, y, b),
}  # fmt: skip


# --- evaluation ----------------------------------------------------------------------------------------------

def evaluate(expr: TExpr, env: Mapping[str, Any], backend: str = "numpy") -> Any:
    """The value of ``expr`` with the tensors ``env`` (NumPy arrays or torch tensors), in ``backend``."""
    memo: dict[int, Any] = {}
    return _evaluate(expr, env, backend, memo)


def constant(value: float, backend: str) -> Any:
    """A float in a backend's arithmetic: itself (NumPy, torch), or for a proof the rational its shortest repr
    names (``"object"``: 0.1 is 1/10; ±∞ stays a float) or that number at mpmath's working precision.

    >>> constant(0.1, "object")
    Fraction(1, 10)
    """
    if backend == "object":
        import fractions

        return fractions.Fraction(repr(value)) if math.isfinite(value) else value
    if backend == "mpmath":
        import mpmath

        return mpmath.mpf(repr(value))
    return value


def _evaluate(expr: TExpr, env: Mapping[str, Any], backend: str, memo: dict[int, Any]) -> Any:
    if isinstance(expr, Ref):
        try:
            return env[expr.name]
        except KeyError:
            raise DeriveError(f"the tensor {expr.name!r} is used before it is defined") from None
    if isinstance(expr, Num):
        return constant(expr.value, backend)
    assert isinstance(expr, Call)
    key = id(expr)
    if key in memo:
        return memo[key]
    args = [_evaluate(a, env, backend, memo) for a in expr.args]
    value = apply(expr.fn, args, dict(expr.options), backend)
    memo[key] = value
    return value


def apply(fn: str, args: list[Any], options: dict[str, Any], backend: str = "numpy") -> Any:
    """The function ``fn`` of the notation on evaluated arguments (what a `Call` computes)."""
    if fn in _ARITHMETIC:
        return _ARITHMETIC[fn](backend, *args, **options)
    if is_elementwise(fn):
        return elementwise_function(fn, backend)(*args) if backend in ("numpy", "torch") else \
            _exact_elementwise(fn, args[0])
    return _op_function(fn, args, options, backend)


def bind(fn: str, options: dict[str, Any], backend: str) -> Callable[..., Any]:
    """``fn`` with its options fixed, as a plain function of its tensor arguments (compiled programs)."""
    if fn in _ARITHMETIC:
        arithmetic = _ARITHMETIC[fn]
        return lambda *args: arithmetic(backend, *args, **options)
    if is_elementwise(fn):
        if backend in ("numpy", "torch"):
            return elementwise_function(fn, backend)
        return lambda a: _exact_elementwise(fn, a)
    from derive.ops.tensor import OPS

    key, _, rule = fn.partition(".")
    cls = OPS.get(key)
    if cls is None:
        raise DeriveError(f"tensor expressions have no function {fn!r}")
    return cls.tensor_callable(rule, dict(options), backend)


def _exact_elementwise(name: str, a: Any) -> Any:
    """An element-wise function on an object array: Fractions stay exact where the result is a whole number
    (a step), mpmath numbers stay 60-digit; an inexact result of Fractions cannot be exact (TypeError)."""
    import fractions

    import mpmath

    f = elementwise_function(name, "mpmath")

    def one(v: Any) -> Any:
        if isinstance(v, fractions.Fraction):
            result = f(mpmath.mpf(v.numerator) / v.denominator)
            if float(result) != int(float(result)):
                raise TypeError(f"{name} of a rational is not rational")
            return fractions.Fraction(int(float(result)))
        with mpmath.workdps(60):
            return f(v)

    return np.vectorize(one, otypes=[object])(np.asarray(a, dtype=object))


def _op_function(name: str, args: list[Any], options: dict[str, Any], backend: str) -> Any:
    """An op's forward (its key) or one of its rule functions (``key.rule``), by the op's class."""
    from derive.ops.tensor import OPS

    key, _, rule = name.partition(".")
    cls = OPS.get(key)
    if cls is None:
        raise DeriveError(f"tensor expressions have no function {name!r}")
    return cls.tensor_function(rule, args, options, backend)
