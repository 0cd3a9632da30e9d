"""Shape ops: they rearrange elements and define nothing new (``view``, ``transpose``, ``cat``, indexing …).

The adjoint of an element flows straight through them, so they cost nothing in the derivation.

>>> import numpy as np
>>> x = np.arange(6, dtype=object).reshape(2, 3)
>>> Reshape((3, -1)).lower(None, x).shape, Permute((1, 0)).lower(None, x)[2, 1]
((3, 2), 5)
>>> Index((("int", 1), ("slice", None, None, 2))).lower(None, x).tolist()
[3, 5]
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from derive.errors import ShapeError
from derive.ops.tensor import TensorOp, register


def _dim(dim: int, ndim: int, what: str) -> int:
    if not -ndim <= dim < max(ndim, 1):
        raise ShapeError(f"{what}: dim {dim} is out of range for a tensor of {ndim} dimensions")
    return dim % max(ndim, 1)


@register
@dataclass(frozen=True)
class Reshape(TensorOp):
    """``view``/``reshape`` (one -1 allowed), row-major as torch."""

    shape: tuple[int, ...] = ()
    key = "reshape"

    def lower(self, lowering, x: np.ndarray) -> np.ndarray:
        known = math.prod(s for s in self.shape if s != -1)
        if self.shape.count(-1) > 1 or (-1 in self.shape and (known == 0 or x.size % known)) or (
            -1 not in self.shape and known != x.size
        ):
            raise ShapeError(f"view/reshape: shape {list(self.shape)} is invalid for {x.size} elements {x.shape}")
        return x.reshape(self.shape)

    def describe(self, *inputs: str) -> str:
        return rf"\operatorname{{reshape}}\left({inputs[0]}, {tuple(self.shape)}\right)"


@register
@dataclass(frozen=True)
class Flatten(TensorOp):
    """``flatten(start_dim, end_dim)`` / ``nn.Flatten()`` (which starts at dim 1)."""

    start: int = 0
    end: int = -1
    key = "flatten"

    def lower(self, lowering, x: np.ndarray) -> np.ndarray:
        if x.ndim == 0:
            return x.reshape(1)
        start, end = _dim(self.start, x.ndim, "flatten"), _dim(self.end, x.ndim, "flatten")
        if start > end:
            raise ShapeError(f"flatten: start_dim {self.start} comes after end_dim {self.end}")
        return x.reshape(x.shape[:start] + (-1,) + x.shape[end + 1 :])


@register
@dataclass(frozen=True)
class Permute(TensorOp):
    """``permute(dims)``, ``transpose(d0, d1)``, ``.T`` and ``.t()`` (as the permutation they make)."""

    dims: tuple[int, ...] = ()
    key = "permute"

    def lower(self, lowering, x: np.ndarray) -> np.ndarray:
        if sorted(d % max(x.ndim, 1) for d in self.dims) != list(range(x.ndim)):
            raise ShapeError(f"permute: {list(self.dims)} is not a permutation of the {x.ndim} dims of {x.shape}")
        return np.transpose(x, [d % x.ndim for d in self.dims])

    def describe(self, *inputs: str) -> str:
        if self.dims in ((1, 0), (-1, -2)):
            return f"{{{inputs[0]}}}^\\top"
        return rf"\operatorname{{permute}}\left({inputs[0]}, {tuple(self.dims)}\right)"


@register
@dataclass(frozen=True)
class Squeeze(TensorOp):
    """``squeeze()`` (every size-1 dim) or ``squeeze(dim)`` (that dim, if it has size 1)."""

    dim: int | None = None
    key = "squeeze"

    def lower(self, lowering, x: np.ndarray) -> np.ndarray:
        if self.dim is None:
            return x.reshape(tuple(s for s in x.shape if s != 1))
        dim = _dim(self.dim, x.ndim, "squeeze")
        return x.reshape(x.shape[:dim] + x.shape[dim + 1 :]) if x.ndim and x.shape[dim] == 1 else x


@register
@dataclass(frozen=True)
class Unsqueeze(TensorOp):
    dim: int = 0
    key = "unsqueeze"

    def lower(self, lowering, x: np.ndarray) -> np.ndarray:
        dim = _dim(self.dim, x.ndim + 1, "unsqueeze")
        return x.reshape(x.shape[:dim] + (1,) + x.shape[dim:])


@register
@dataclass(frozen=True)
class Cat(TensorOp):
    """``torch.cat(tensors, dim)``."""

    dim: int = 0
    key = "cat"

    def lower(self, lowering, *xs: np.ndarray) -> np.ndarray:
        dim = _dim(self.dim, xs[0].ndim, "cat")
        try:
            return np.concatenate(xs, axis=dim)
        except ValueError:
            raise ShapeError(f"cat: shapes {[x.shape for x in xs]} do not join along dim {self.dim}") from None

    def describe(self, *inputs: str) -> str:
        return rf"\left[{', '.join(inputs)}\right]"


@register
@dataclass(frozen=True)
class Stack(TensorOp):
    """``torch.stack(tensors, dim)``."""

    dim: int = 0
    key = "stack"

    def lower(self, lowering, *xs: np.ndarray) -> np.ndarray:
        dim = _dim(self.dim, xs[0].ndim + 1, "stack")
        if len({x.shape for x in xs}) != 1:
            raise ShapeError(f"stack: shapes {[x.shape for x in xs]} differ")
        return np.stack(xs, axis=dim)


@register
@dataclass(frozen=True)
class Index(TensorOp):
    """Basic indexing ``x[i, a:b, None, ...]``: ``items`` as ("int", i), ("slice", start, stop, step),
    ("none",) or ("ellipsis",) (hashable, unlike Python's slices)."""

    items: tuple[tuple, ...] = ()
    key = "index"

    def lower(self, lowering, x: np.ndarray) -> np.ndarray:
        key = []
        for item in self.items:
            if item[0] == "int":
                key.append(item[1])
            elif item[0] == "slice":
                if item[3] is not None and item[3] <= 0:
                    raise ShapeError("indexing: a negative step is not supported (torch refuses it too)")
                key.append(slice(*item[1:]))
            else:
                key.append(None if item[0] == "none" else Ellipsis)
        try:
            return np.asarray(x[tuple(key)], dtype=object)
        except IndexError as err:
            raise ShapeError(f"indexing a tensor of shape {x.shape}: {err}") from None

    def describe(self, *inputs: str) -> str:
        parts = []
        for item in self.items:
            if item[0] == "int":
                parts.append(str(item[1]))
            elif item[0] == "slice":
                start, stop, step = ("" if v is None else str(v) for v in item[1:])
                parts.append(f"{start}:{stop}" + (f":{step}" if step else ""))
            else:
                parts.append("\\text{None}" if item[0] == "none" else r"\ldots")
        return f"{inputs[0]}\\left[{', '.join(parts)}\\right]"


@register
@dataclass(frozen=True)
class Embedding(TensorOp):
    """``nn.Embedding``: rows of the weight picked by integer indices (the indices are data, not symbols)."""

    key = "embedding"

    def lower(self, lowering, weight: np.ndarray, indices: np.ndarray) -> np.ndarray:
        try:
            rows = np.vectorize(int, otypes=[int])(indices) if indices.size else indices.astype(int)
        except TypeError:
            raise ShapeError("embedding: the indices must be integers (class or token ids)") from None
        if indices.size and (rows.min() < 0 or rows.max() >= weight.shape[0]):
            raise ShapeError(f"embedding: indices must lie in 0 to {weight.shape[0] - 1}, got {rows.min()} to {rows.max()}")
        return weight[rows]

    def describe(self, *inputs: str) -> str:
        return f"{inputs[0]}\\left[{inputs[1]}\\right]"


@register
@dataclass(frozen=True)
class Expand(TensorOp):
    """``expand(*sizes)``/``expand_as``: size-1 dims repeated (the same element used several times: its
    adjoint is the sum over the copies); -1 keeps a dim."""

    shape: tuple[int, ...] = ()
    key = "expand"

    def lower(self, lowering, x: np.ndarray) -> np.ndarray:
        lead = len(self.shape) - x.ndim
        if lead < 0:
            raise ShapeError(f"expand: {list(self.shape)} has fewer dims than the tensor {x.shape}")
        shape = tuple(x.shape[i - lead] if s == -1 and i >= lead else s for i, s in enumerate(self.shape))
        try:
            return np.broadcast_to(x, shape)
        except ValueError:
            raise ShapeError(f"expand: a tensor of shape {x.shape} cannot expand to {list(self.shape)}") from None
