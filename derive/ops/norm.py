r"""Normalisation: layer norm, group norm and batch norm (instance norm arrives as batch norm of a reshaped
input), each one primitive with torch's semantics.

Each group of elements (a row for layer norm; a sample's group of channels; a channel over the batch) is
normalised with its own statistics, written out as named scalars in textbook steps:

    μ = Σ x / n,   σ² = Σ (x − μ)² / n (biased, as torch normalises),   r = 1/√(σ² + ε),
    x̂ = (x − μ) r,   y = γ x̂ + β,

with local partials ∂μ/∂x = 1/n, ∂σ²/∂x = 2(x − μ)/n (its partial in μ, −2Σ(x − μ)/n, is 0 and left out),
∂r/∂σ² = −r³/2, ∂x̂/∂x = r, ∂x̂/∂μ = −r, ∂x̂/∂r = x − μ. Batch norm in eval mode uses the running
statistics, constants of the model. The tensor rules are torch's own backward kernels.

>>> import numpy as np, sympy as sp
>>> from derive.model.lower import Lowering
>>> low = Lowering()
>>> x = np.array([sp.symbols("a b")], dtype=object)
>>> y = LayerNorm(1, 0.5).lower(low, x)
>>> [str(n.expr) for n in low.nodes]
['a/2 + b/2', '(a - v_mean_1)**2/2 + (b - v_mean_1)**2/2', '1/sqrt(v_var_1 + 1/2)', 'v_rstd_1*(a - v_mean_1)', 'v_rstd_1*(b - v_mean_1)']
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp

from derive.errors import ShapeError
from derive.ops.tensor import Sample, TensorOp, exact, register, symbols_only, torch_module
from derive.terms import total


def _statistics(lowering: Any, groups: list[list[sp.Expr]], eps: float) -> tuple[np.ndarray, np.ndarray]:
    """μ and r = 1/√(σ² + ε) of each group, as named scalars."""
    means, variances, rstds = (lowering.new((len(groups),), part) for part in ("mean", "var", "rstd"))
    for k, elements in enumerate(groups):
        n = len(elements)
        mu, var, r = means[k], variances[k], rstds[k]
        lowering.define(mu, total([e / n for e in elements]), symbols_only([(e, sp.Rational(1, n)) for e in elements]))
        lowering.define(var, total([(e - mu) ** 2 / n for e in elements]),
                        symbols_only([(e, 2 * (e - mu) / n) for e in elements]))
        lowering.define(r, 1 / sp.sqrt(var + exact(eps)), ((var, -(r**3) / 2),))
    return means, rstds


def _normalized(lowering: Any, x: np.ndarray, group_of: np.ndarray, means: Sequence[sp.Expr],
                rstds: Sequence[sp.Expr], part: str = "hat") -> np.ndarray:
    """x̂ = (x − μ) r for every element, μ and r of its group (``group_of``: each element's group)."""
    hat = lowering.new(x.shape, part)
    for index in np.ndindex(x.shape):
        mu, r, e = means[group_of[index]], rstds[group_of[index]], x[index]
        lowering.define(hat[index], (e - mu) * r, symbols_only(((e, r), (mu, -r), (r, e - mu))))
    return hat


def _normalized_rows(lowering: Any, x: np.ndarray, rows: np.ndarray, eps: float) -> np.ndarray:
    """x̂ of ``x`` whose elements, in row-major order, form the groups ``rows`` (one statistic per row)."""
    means, rstds = _statistics(lowering, [list(r) for r in rows], eps)
    group_of = np.arange(rows.shape[0]).repeat(rows.shape[1]).reshape(x.shape)
    return _normalized(lowering, x, group_of, means, rstds)


def _affine(lowering: Any, hat: np.ndarray, weight: np.ndarray | None, bias: np.ndarray | None) -> np.ndarray:
    """y = γ x̂ + β (``weight`` and ``bias`` broadcast against x̂), or x̂ itself when both are absent."""
    if weight is None and bias is None:
        return hat
    out = lowering.new(hat.shape)
    gammas = np.broadcast_to(weight, hat.shape) if weight is not None else None
    betas = np.broadcast_to(bias, hat.shape) if bias is not None else None
    for index in np.ndindex(hat.shape):
        h, terms, partials = hat[index], [], []
        if gammas is not None:
            g = gammas[index]
            terms.append(g * h)
            partials += [(h, g), (g, h)]
        else:
            terms.append(h)
            partials.append((h, sp.S.One))
        if betas is not None:
            terms.append(betas[index])
            partials.append((betas[index], sp.S.One))
        lowering.define(out[index], sp.Add(*terms), symbols_only(partials))
    return out


def _random(seed: int, *shape: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.5, 1.5, shape)


@register
@dataclass(frozen=True)
class LayerNorm(TensorOp):
    """``nn.LayerNorm``: each row over the last ``dims`` dims normalised, then γ x̂ + β (γ, β of those dims)."""

    proof_shrinks = True

    dims: int = 1
    eps: float = 1e-5
    key = "layer_norm"
    aten = ("native_layer_norm.default",)

    @classmethod
    def read(cls, call: Any) -> Any:
        out = call.op("layer_norm", call.input("input"), call.input("weight"), call.input("bias"),
                      dims=len(call.arg("normalized_shape")), eps=float(call.arg("eps")))
        return out, None, None

    @classmethod
    def samples(cls) -> Iterable[Sample]:
        return [Sample(cls(1, 1e-5), (_random(1, 2, 3, 4), _random(2, 4), _random(3, 4))),
                Sample(cls(2, 0.1), (_random(4, 2, 2, 3), _random(5, 2, 3), None))]

    def lower(self, lowering, x: np.ndarray, weight=None, bias=None) -> np.ndarray:
        if x.ndim < self.dims:
            raise ShapeError(f"layer_norm: a tensor of shape {x.shape} has fewer than {self.dims} dims")
        rows = x.reshape(-1, int(np.prod(x.shape[x.ndim - self.dims:], dtype=int)))
        return _affine(lowering, _normalized_rows(lowering, x, rows, self.eps), weight, bias)

    def _shape(self, x: Any) -> list[int]:
        return list(x.shape[x.dim() - self.dims:])

    def reads(self) -> tuple[bool, bool]:
        return True, False  # torch's backward kernel reads x and the saved statistics, not the output

    def forward_saving(self, x: Any, weight: Any = None, bias: Any = None) -> tuple[Any, Any]:
        out, mean, rstd = torch_module().native_layer_norm(x, self._shape(x), weight, bias, self.eps)
        return out, (mean, rstd)

    def forward(self, x: Any, weight: Any = None, bias: Any = None) -> Any:
        return self.forward_saving(x, weight, bias)[0]

    def backward(self, g: Any, inputs: Sequence[Any], out: Any, wanted: Sequence[bool], saved: Any = None) -> list:
        x, weight, bias = (list(inputs) + [None, None])[:3]
        mean, rstd = saved if saved is not None else self.forward_saving(x, weight, bias)[1]
        return list(torch_module().ops.aten.native_layer_norm_backward(
            g, x, self._shape(x), mean, rstd, weight, bias, [True, weight is not None, bias is not None]))

    def describe(self, *inputs: str) -> str:
        return rf"\operatorname{{LayerNorm}}\left({inputs[0]}\right)"


@register
@dataclass(frozen=True)
class GroupNorm(TensorOp):
    """``nn.GroupNorm``: each sample's channels in ``groups`` groups, normalised over the group's channels and
    positions, then γ x̂ + β per channel."""

    groups: int = 1
    eps: float = 1e-5
    key = "group_norm"
    aten = ("native_group_norm.default",)

    @classmethod
    def read(cls, call: Any) -> Any:
        out = call.op("group_norm", call.input("input"), call.input("weight"), call.input("bias"),
                      groups=int(call.arg("group")), eps=float(call.arg("eps")))
        return out, None, None

    @classmethod
    def samples(cls) -> Iterable[Sample]:
        return [Sample(cls(2, 1e-5), (_random(1, 2, 4, 3), _random(2, 4), _random(3, 4))),
                Sample(cls(1, 0.1), (_random(4, 2, 2, 2, 2), None, None))]

    def lower(self, lowering, x: np.ndarray, weight=None, bias=None) -> np.ndarray:
        N, C = x.shape[:2]
        if C % self.groups:
            raise ShapeError(f"group_norm: {C} channels do not split into {self.groups} groups")
        per_channel = (-1,) + (1,) * (x.ndim - 2)
        return _affine(lowering, _normalized_rows(lowering, x, x.reshape(N * self.groups, -1), self.eps),
                       None if weight is None else weight.reshape(per_channel),
                       None if bias is None else bias.reshape(per_channel))

    def _sizes(self, x: Any) -> tuple[int, int, int]:
        return x.shape[0], x.shape[1], int(np.prod(x.shape[2:], dtype=int))

    def reads(self) -> tuple[bool, bool]:
        return True, False  # torch's backward kernel reads x and the saved statistics, not the output

    def forward_saving(self, x: Any, weight: Any = None, bias: Any = None) -> tuple[Any, Any]:
        out, mean, rstd = torch_module().ops.aten.native_group_norm(x, weight, bias, *self._sizes(x), self.groups,
                                                                    self.eps)
        return out, (mean, rstd)

    def forward(self, x: Any, weight: Any = None, bias: Any = None) -> Any:
        return self.forward_saving(x, weight, bias)[0]

    def backward(self, g: Any, inputs: Sequence[Any], out: Any, wanted: Sequence[bool], saved: Any = None) -> list:
        x, weight, bias = (list(inputs) + [None, None])[:3]
        mean, rstd = saved if saved is not None else self.forward_saving(x, weight, bias)[1]
        gamma = weight if weight is not None else x.new_ones(x.shape[1])  # torch's kernel needs one
        dx, dw, db = torch_module().ops.aten.native_group_norm_backward(
            g.contiguous(), x.contiguous(), mean, rstd, gamma, *self._sizes(x), self.groups,
            [True, weight is not None, bias is not None])
        return [dx, dw, db]

    def describe(self, *inputs: str) -> str:
        return rf"\operatorname{{GroupNorm}}_{{{self.groups}}}\left({inputs[0]}\right)"


@register
@dataclass(frozen=True)
class BatchNorm(TensorOp):
    """``nn.BatchNorm1d/2d`` (and ``InstanceNorm``, which torch runs as batch norm of a reshaped input):
    each channel (dim 1) normalised over the batch and positions in training mode, by its running
    statistics (constants) in eval mode; then γ x̂ + β per channel. Inputs: x, γ, β, running mean and var."""

    proof_shrinks = True

    training: bool = True
    eps: float = 1e-5
    key = "batch_norm"
    aten = ("_native_batch_norm_legit_functional.default", "_native_batch_norm_legit_no_training.default",
            "_native_batch_norm_legit.no_stats", "_native_batch_norm_legit.default")

    @classmethod
    def read(cls, call: Any) -> Any:
        training = bool(call.arg("training", False)) or call.name == "_native_batch_norm_legit.no_stats"
        stats = (None, None) if training else (call.input("running_mean"), call.input("running_var"))
        out = call.op("batch_norm", call.input("input"), call.input("weight"), call.input("bias"), *stats,
                      training=training, eps=float(call.arg("eps")))
        return (out,) + (None,) * (len(call.real) - 1)

    @classmethod
    def samples(cls) -> Iterable[Sample]:
        x = _random(1, 3, 2, 2, 2)
        return [Sample(cls(True, 1e-5), (x, _random(2, 2), _random(3, 2))),
                Sample(cls(True, 0.1), (_random(4, 4, 3), None, None)),
                Sample(cls(False, 1e-5), (x, _random(5, 2), _random(6, 2), np.array([0.1, -0.2]), np.array([1.5, 0.5])),
                       (3, 4))]

    def proof_domains(self, count: int) -> list[tuple[float, float]]:
        return [(-1.5, 1.5)] * 4 + [(0.5, 2.0)]  # the running variance is positive

    def lower(self, lowering, x: np.ndarray, weight=None, bias=None, mean=None, var=None) -> np.ndarray:
        if x.ndim < 2:
            raise ShapeError(f"batch_norm: an input of shape {x.shape} has no channel dim")
        C = x.shape[1]
        channels = np.moveaxis(x, 1, 0).reshape(C, -1)
        group_of = np.broadcast_to(np.arange(C).reshape((1, C) + (1,) * (x.ndim - 2)), x.shape)
        if self.training:
            means, rstds = _statistics(lowering, [list(c) for c in channels], self.eps)
        else:
            if mean is None or var is None:
                raise ShapeError("batch_norm in eval mode needs the running mean and variance")
            means = list(mean)
            rstds = lowering.new((C,), "rstd")
            for k in range(C):
                lowering.define(rstds[k], 1 / sp.sqrt(var[k] + exact(self.eps)),
                                symbols_only(((var[k], -(rstds[k] ** 3) / 2),)))
        per_channel = (-1,) + (1,) * (x.ndim - 2)
        return _affine(lowering, _normalized(lowering, x, group_of, means, rstds),
                       None if weight is None else weight.reshape(per_channel),
                       None if bias is None else bias.reshape(per_channel))

    def reads(self) -> tuple[bool, bool]:
        return True, False  # torch's backward kernel reads x and the saved statistics, not the output

    def forward_saving(self, x: Any, weight: Any = None, bias: Any = None, mean: Any = None, var: Any = None):
        aten = torch_module().ops.aten
        out, save_mean, save_invstd = aten.native_batch_norm(x, weight, bias, mean, var, self.training, 0.0, self.eps)
        return out, (save_mean, save_invstd)

    def forward(self, x: Any, weight: Any = None, bias: Any = None, mean: Any = None, var: Any = None) -> Any:
        return self.forward_saving(x, weight, bias, mean, var)[0]

    def backward(self, g: Any, inputs: Sequence[Any], out: Any, wanted: Sequence[bool], saved: Any = None) -> list:
        x, weight, bias, mean, var = (list(inputs) + [None] * 4)[:5]
        save_mean, save_invstd = saved if saved is not None else self.forward_saving(x, weight, bias, mean, var)[1]
        dx, dw, db = torch_module().ops.aten.native_batch_norm_backward(
            g, x, weight, mean, var, save_mean, save_invstd, self.training, self.eps,
            [True, weight is not None, bias is not None])
        return [dx, dw, db, None, None]

    def describe(self, *inputs: str) -> str:
        return rf"\operatorname{{BatchNorm}}\left({inputs[0]}\right)"
