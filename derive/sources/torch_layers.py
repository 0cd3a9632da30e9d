"""Torch layers read as several ops or as none: LayerNorm and BatchNorm1d/2d as their textbook steps (mean,
centring, variance, normalisation, scale and shift, each a named node), dropout (refused where it can drop),
and Embedding (rows picked by token ids).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from derive.model.build import Ref
from derive.sources.torch_fx import UnsupportedModelError

if TYPE_CHECKING:
    from derive.sources.torch_ops import Call


def _normalize(call: Call, x: Any, dims: tuple[int, ...], eps: float, mean: Any = None, var: Any = None) -> Ref:
    """(x − μ)/√(σ² + ε) with μ, σ² over ``dims`` (batch statistics), or the given constants."""
    name = call.node.name
    if mean is None:
        mean = call.op("mean", x, name=f"{name}_mean", dims=dims, keepdim=True)
        centered = call.op("sub", x, mean, name=f"{name}_centered")
        squared = call.op("pow", centered, name=f"{name}_squared", exponent=2.0)
        var = call.op("mean", squared, name=f"{name}_var", dims=dims, keepdim=True)
    else:
        centered = call.op("sub", x, mean, name=f"{name}_centered")
    std = call.op("sqrt", call.op("add", var, float(eps), name=f"{name}_var_eps"), name=f"{name}_std")
    return call.op("div", centered, std, name=f"{name}_hat")


def _affine(call: Call, hat: Ref, weight: Ref | None, bias: Ref | None) -> Ref:
    name = call.node.name
    if weight is not None:
        hat = call.op("mul", hat, weight, name=f"{name}_scaled" if bias is not None else name)
    if bias is not None:
        hat = call.op("add", hat, bias, name=name)
    return hat


def layer_norm(call: Call) -> Ref:
    module, path = call.module, call.node.target
    dims = tuple(range(-len(module.normalized_shape), 0))
    hat = _normalize(call, call.args[0], dims, module.eps)
    return _affine(call, hat, call.reader.parameter(path, "weight"), call.reader.parameter(path, "bias"))


#: the input ranks each batch norm takes, and how it says so
_BATCH_NORM_RANKS = {"BatchNorm1d": ((2, 3), "N × C or N × C × L"), "BatchNorm2d": ((4,), "N × C × H × W")}


def batch_norm(call: Call) -> Ref:
    """BatchNorm1d/2d: statistics over every dim but the channels' (dim 1), per-channel γ, β as (C, 1, …)."""
    module, path, x = call.module, call.node.target, call.args[0]
    ndim = x.real.dim()
    ranks, takes = _BATCH_NORM_RANKS[type(module).__name__]
    if ndim not in ranks:
        call.refuse(f"a {ndim}-D input ({type(module).__name__} takes {takes})")
    dims = (0, *range(2, ndim))

    def per_channel(ref: Ref | None, what: str) -> Ref | None:
        if ref is None or ndim == 2:
            return ref
        return call.op("reshape", ref, name=f"{call.node.name}_{what}", shape=(-1, *(1,) * (ndim - 2)))

    if module.training or module.running_mean is None:  # batch statistics: part of the function
        hat = _normalize(call, x, dims, module.eps)
    else:  # eval mode: the running statistics are constants
        mean = per_channel(call.reader.constant(path, "running_mean"), "running_mean")
        var = per_channel(call.reader.constant(path, "running_var"), "running_var")
        hat = _normalize(call, x, dims, module.eps, mean, var)
    weight = per_channel(call.reader.parameter(path, "weight"), "weight")
    return _affine(call, hat, weight, per_channel(call.reader.parameter(path, "bias"), "bias"))


_DROPOUT_HINT = (
    "(it drops at random): call self.eval() at the end of __init__ (or model.eval() before from_torch; "
    "--eval on the command line), or use p=0"
)


def dropout_module(call: Call) -> None:
    if call.module.training and call.module.p > 0:
        raise UnsupportedModelError(
            f"Dropout {call.reader.where(call.node)} is in train mode {_DROPOUT_HINT}"
        )
    return None


def dropout_function(call: Call) -> None:
    if bool(call.arg(2, "training", True)) and float(call.arg(1, "p", 0.5)) > 0:
        raise UnsupportedModelError(
            f"F.dropout {call.reader.where(call.node)} has training=True {_DROPOUT_HINT}; "
            "pass training=self.training"
        )
    return None


def embedding(call: Call) -> Ref:
    module = call.module
    if module.padding_idx is not None or module.max_norm is not None:
        call.refuse("padding_idx or max_norm")
    if call.args[0].real.is_floating_point():
        call.refuse("float indices")
    return call.op("embedding", call.reader.parameter(call.node.target, "weight"), call.args[0])
