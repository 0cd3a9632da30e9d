"""Shape ops: they rearrange elements and define nothing new (``view``, ``transpose``, ``cat``, indexing …).

The adjoint of an element flows straight through them, so they cost nothing in the derivation. Their tensor
rules move the gradient back: reshape it, invert the permutation, add it into the selected places.

>>> import numpy as np
>>> x = np.arange(6, dtype=object).reshape(2, 3)
>>> Reshape((3, -1)).lower(None, x).shape, Permute((1, 0)).lower(None, x)[2, 1]
((3, 2), 5)
>>> Index((("int", 1), ("slice", None, None, 2))).lower(None, x).tolist()
[3, 5]
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp

from derive.errors import ShapeError
from derive.ops.tensor import Sample, TensorOp, exact, register, symbols_only, torch_module, unbroadcast


def _dim(dim: int, ndim: int, what: str) -> int:
    if not -ndim <= dim < max(ndim, 1):
        raise ShapeError(f"{what}: dim {dim} is out of range for a tensor of {ndim} dimensions")
    return dim % max(ndim, 1)


def _random(seed: int, *shape: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.5, 1.5, shape)


@dataclass(frozen=True)
class _Move(TensorOp):
    """A shape op whose gradient is the output's gradient reshaped to the input (reshape, squeeze …)."""

    def reads(self) -> tuple[bool, bool]:
        return True, False

    def backward(self, g: Any, inputs: Sequence[Any], out: Any, wanted: Sequence[bool], saved: Any = None) -> list:
        return [g.reshape(inputs[0].shape)]

    def numpy_forward(self, x: Any) -> Any:
        return self.lower(None, np.asarray(x))

    def tensor_rule(self, g, inputs, parts, wanted, shapes, shape) -> list[Any]:
        """The output's adjoint reshaped back to the input's shape."""
        from derive.tensor.expr import call

        return [call("reshape", g, shape=tuple(shapes[0]))]


@register
@dataclass(frozen=True)
class Reshape(_Move):
    """``view``/``reshape`` (one -1 allowed), row-major as torch."""

    shape: tuple[int, ...] = ()
    key = "reshape"
    aten = ("view.default", "_unsafe_view.default", "reshape.default", "view_copy.default")

    @classmethod
    def read(cls, call: Any) -> Any:
        return call.op("reshape", call.input("self"), shape=tuple(int(s) for s in call.arg("size")))

    @classmethod
    def samples(cls) -> Iterable[Sample]:
        return [Sample(cls((3, -1)), (_random(1, 2, 3),)), Sample(cls((6,)), (_random(2, 2, 3),))]

    def lower(self, lowering, x: np.ndarray) -> np.ndarray:
        known = math.prod(s for s in self.shape if s != -1)
        if self.shape.count(-1) > 1 or (-1 in self.shape and (known == 0 or x.size % known)) or (
            -1 not in self.shape and known != x.size
        ):
            raise ShapeError(f"view/reshape: shape {list(self.shape)} is invalid for {x.size} elements {x.shape}")
        return x.reshape(self.shape)

    def forward(self, x: Any) -> Any:
        return x.reshape(self.shape)

    def describe(self, *inputs: str) -> str:
        return rf"\operatorname{{reshape}}\left({inputs[0]}, {tuple(self.shape)}\right)"


@register
@dataclass(frozen=True)
class Flatten(_Move):
    """``flatten(start_dim, end_dim)`` / ``nn.Flatten()`` (which starts at dim 1)."""

    start: int = 0
    end: int = -1
    key = "flatten"

    @classmethod
    def samples(cls) -> Iterable[Sample]:
        return [Sample(cls(1, -1), (_random(1, 2, 2, 3),))]

    def lower(self, lowering, x: np.ndarray) -> np.ndarray:
        if x.ndim == 0:
            return x.reshape(1)
        start, end = _dim(self.start, x.ndim, "flatten"), _dim(self.end, x.ndim, "flatten")
        if start > end:
            raise ShapeError(f"flatten: start_dim {self.start} comes after end_dim {self.end}")
        return x.reshape(x.shape[:start] + (-1,) + x.shape[end + 1 :])

    def forward(self, x: Any) -> Any:
        return x.flatten(self.start, self.end) if x.dim() else x.reshape(1)


@register
@dataclass(frozen=True)
class Permute(TensorOp):
    """``permute(dims)``, ``transpose(d0, d1)``, ``.T`` and ``.t()`` (as the permutation they make)."""

    dims: tuple[int, ...] = ()
    key = "permute"
    aten = ("permute.default", "transpose.int", "t.default", "permute_copy.default")

    @classmethod
    def read(cls, call: Any) -> Any:
        ndim = len(call.shape("self"))
        if call.name == "permute.default" or call.name == "permute_copy.default":
            dims = tuple(int(d) for d in call.arg("dims"))
        else:
            dims = list(range(ndim))
            d0, d1 = (int(call.arg("dim0")) % ndim, int(call.arg("dim1")) % ndim) if call.name == "transpose.int" \
                else (0, min(1, ndim - 1))
            dims[d0], dims[d1] = dims[d1], dims[d0]
            dims = tuple(dims)
        return call.op("permute", call.input("self"), dims=dims)

    @classmethod
    def samples(cls) -> Iterable[Sample]:
        return [Sample(cls((1, 0)), (_random(1, 2, 3),)), Sample(cls((2, 0, 1)), (_random(2, 2, 3, 2),))]

    def lower(self, lowering, x: np.ndarray) -> np.ndarray:
        if sorted(d % max(x.ndim, 1) for d in self.dims) != list(range(x.ndim)):
            raise ShapeError(f"permute: {list(self.dims)} is not a permutation of the {x.ndim} dims of {x.shape}")
        return np.transpose(x, [d % x.ndim for d in self.dims])

    def reads(self) -> tuple[bool, bool]:
        return False, False  # the inverse permutation is in the op itself

    def forward(self, x: Any) -> Any:
        return x.permute(*[d % x.dim() for d in self.dims])

    def backward(self, g: Any, inputs: Sequence[Any], out: Any, wanted: Sequence[bool], saved: Any = None) -> list:
        dims = [d % len(self.dims) for d in self.dims]
        inverse = [0] * len(dims)
        for position, d in enumerate(dims):
            inverse[d] = position
        return [g.permute(*inverse)]

    def numpy_forward(self, x: Any) -> Any:
        return self.lower(None, np.asarray(x))

    def tensor_forward(self, inputs: list[Any]) -> Any:
        from derive.tensor.expr import call

        if len(self.dims) == 2 and tuple(d % 2 for d in self.dims) == (1, 0):
            return call("transpose", inputs[0])
        return call("permute", inputs[0], dims=self.dims)

    def tensor_rule(self, g, inputs, parts, wanted, shapes, shape) -> list[Any]:
        """The output's adjoint permuted back (the inverse permutation)."""
        from derive.tensor.expr import call

        dims = [d % len(shapes[0]) for d in self.dims]
        if len(dims) == 2 and dims == [1, 0]:
            return [call("transpose", g)]
        return [call("permute", g, dims=tuple(int(d) for d in np.argsort(dims)))]

    def describe(self, *inputs: str) -> str:
        if self.dims in ((1, 0), (-1, -2)):
            return f"{{{inputs[0]}}}^\\top"
        return rf"\operatorname{{permute}}\left({inputs[0]}, {tuple(self.dims)}\right)"


@register
@dataclass(frozen=True)
class Squeeze(_Move):
    """``squeeze()`` (every size-1 dim), ``squeeze(dim)`` or ``squeeze(dims)`` (those of size 1)."""

    dim: int | None = None
    dims: tuple[int, ...] | None = None
    key = "squeeze"
    aten = ("squeeze.dims", "squeeze.dim", "squeeze.default")

    @classmethod
    def read(cls, call: Any) -> Any:
        if call.name == "squeeze.dims":
            return call.op("squeeze", call.input("self"), dims=tuple(int(d) for d in call.arg("dim")))
        dim = call.arg("dim") if call.name == "squeeze.dim" else None
        return call.op("squeeze", call.input("self"), dim=None if dim is None else int(dim))

    @classmethod
    def samples(cls) -> Iterable[Sample]:
        x = _random(1, 2, 1, 3, 1)
        return [Sample(cls(), (x,)), Sample(cls(1), (x,)), Sample(cls(None, (1, 3)), (x,))]

    def lower(self, lowering, x: np.ndarray) -> np.ndarray:
        if self.dims is not None:
            dims = {_dim(d, x.ndim, "squeeze") for d in self.dims}
            return x.reshape(tuple(s for i, s in enumerate(x.shape) if not (i in dims and s == 1)))
        if self.dim is None:
            return x.reshape(tuple(s for s in x.shape if s != 1))
        dim = _dim(self.dim, x.ndim, "squeeze")
        return x.reshape(x.shape[:dim] + x.shape[dim + 1 :]) if x.ndim and x.shape[dim] == 1 else x

    def forward(self, x: Any) -> Any:
        if self.dims is not None:
            return x.squeeze(tuple(self.dims))
        return x.squeeze() if self.dim is None else x.squeeze(self.dim)


@register
@dataclass(frozen=True)
class Unsqueeze(_Move):
    """``unsqueeze(dim)``: a size-1 dim added."""

    dim: int = 0
    key = "unsqueeze"
    aten = ("unsqueeze.default",)

    @classmethod
    def read(cls, call: Any) -> Any:
        return call.op("unsqueeze", call.input("self"), dim=int(call.arg("dim")))

    @classmethod
    def samples(cls) -> Iterable[Sample]:
        return [Sample(cls(1), (_random(1, 2, 3),)), Sample(cls(-1), (_random(2, 3),))]

    def lower(self, lowering, x: np.ndarray) -> np.ndarray:
        dim = _dim(self.dim, x.ndim + 1, "unsqueeze")
        return x.reshape(x.shape[:dim] + (1,) + x.shape[dim:])

    def forward(self, x: Any) -> Any:
        return x.unsqueeze(self.dim)


@register
@dataclass(frozen=True)
class Cat(TensorOp):
    """``torch.cat(tensors, dim)``."""

    dim: int = 0
    key = "cat"
    aten = ("cat.default", "concat.default")

    @classmethod
    def read(cls, call: Any) -> Any:
        parts = [(ref, value) for ref, value in zip(call.tensors("tensors"), call.arg("tensors")) if value.numel()]
        return call.op("cat", *(ref for ref, _ in parts), dim=int(call.arg("dim")))

    @classmethod
    def samples(cls) -> Iterable[Sample]:
        return [Sample(cls(1), (_random(1, 2, 3), _random(2, 2, 1))), Sample(cls(0), (_random(3, 1, 2), _random(4, 2, 2)))]

    def lower(self, lowering, *xs: np.ndarray) -> np.ndarray:
        dim = _dim(self.dim, xs[0].ndim, "cat")
        try:
            return np.concatenate(xs, axis=dim)
        except ValueError:
            raise ShapeError(f"cat: shapes {[x.shape for x in xs]} do not join along dim {self.dim}") from None

    def reads(self) -> tuple[bool, bool]:
        return True, False

    def forward(self, *xs: Any) -> Any:
        return torch_module().cat(xs, dim=self.dim)

    def backward(self, g: Any, inputs: Sequence[Any], out: Any, wanted: Sequence[bool], saved: Any = None) -> list:
        return list(torch_module().split(g, [t.shape[self.dim] for t in inputs], dim=self.dim))

    def describe(self, *inputs: str) -> str:
        return rf"\left[{', '.join(inputs)}\right]"


@register
@dataclass(frozen=True)
class Stack(TensorOp):
    """``torch.stack(tensors, dim)``."""

    dim: int = 0
    key = "stack"
    aten = ("stack.default",)

    @classmethod
    def read(cls, call: Any) -> Any:
        return call.op("stack", *call.tensors("tensors"), dim=int(call.arg("dim")))

    @classmethod
    def samples(cls) -> Iterable[Sample]:
        return [Sample(cls(1), (_random(1, 2, 3), _random(2, 2, 3)))]

    def lower(self, lowering, *xs: np.ndarray) -> np.ndarray:
        dim = _dim(self.dim, xs[0].ndim + 1, "stack")
        if len({x.shape for x in xs}) != 1:
            raise ShapeError(f"stack: shapes {[x.shape for x in xs]} differ")
        return np.stack(xs, axis=dim)

    def reads(self) -> tuple[bool, bool]:
        return True, False

    def forward(self, *xs: Any) -> Any:
        return torch_module().stack(xs, dim=self.dim)

    def backward(self, g: Any, inputs: Sequence[Any], out: Any, wanted: Sequence[bool], saved: Any = None) -> list:
        return list(torch_module().unbind(g, dim=self.dim % g.dim()))


def _python_key(items: tuple) -> tuple:
    key = []
    for item in items:
        key.append(item[1] if item[0] == "int" else slice(*item[1:]) if item[0] == "slice"
                   else None if item[0] == "none" else Ellipsis)
    return tuple(key)


@register
@dataclass(frozen=True)
class Index(TensorOp):
    """Basic indexing ``x[i, a:b, None, ...]``: ``items`` as ("int", i), ("slice", start, stop, step),
    ("none",) or ("ellipsis",) (hashable, unlike Python's slices); torch's ``slice``, ``select``, ``narrow``,
    ``split`` and ``chunk`` are read as it."""

    items: tuple[tuple, ...] = ()
    key = "index"
    aten = ("slice.Tensor", "select.int", "narrow.default", "split_with_sizes.default", "split.Tensor",
            "unbind.int", "slice_copy.Tensor", "select_copy.int")

    @classmethod
    def read(cls, call: Any) -> Any:
        shape = call.shape("self")
        dim = int(call.arg("dim", 0)) % max(len(shape), 1)
        lead = (("slice", None, None, None),) * dim
        x = call.input("self")
        if call.name.startswith("slice"):
            start, end, step = call.arg("start"), call.arg("end"), call.arg("step", 1)
            return call.op("index", x, items=(*lead, ("slice", start, end, step)))
        if call.name.startswith("select"):
            return call.op("index", x, items=(*lead, ("int", int(call.arg("index")))))
        if call.name == "narrow.default":
            start = int(call.arg("start")) % shape[dim]
            return call.op("index", x, items=(*lead, ("slice", start, start + int(call.arg("length")), None)))
        if call.name == "unbind.int":
            return tuple(call.op("index", x, items=(*lead, ("int", i)), name=f"{call.node.name}_{i}")
                         for i in range(shape[dim]))
        sizes = call.arg("split_sizes") if call.name == "split_with_sizes.default" else None
        if sizes is None:
            size = int(call.arg("split_size"))
            sizes = [min(size, shape[dim] - at) for at in range(0, shape[dim], size)]
        pieces, at = [], 0
        for i, size in enumerate(sizes):
            pieces.append(call.op("index", x, items=(*lead, ("slice", at, at + int(size), None)),
                                  name=f"{call.node.name}_{i}"))
            at += int(size)
        return tuple(pieces)

    @classmethod
    def samples(cls) -> Iterable[Sample]:
        x = _random(1, 3, 4)
        return [Sample(cls((("int", 1), ("slice", None, None, 2))), (x,)), Sample(cls((("slice", 1, 3, None),)), (x,)),
                Sample(cls((("ellipsis",), ("int", -1), ("none",))), (x,))]

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

    def reads(self) -> tuple[bool, bool]:
        return True, False

    def forward(self, x: Any) -> Any:
        return x[_python_key(self.items)]

    def backward(self, g: Any, inputs: Sequence[Any], out: Any, wanted: Sequence[bool], saved: Any = None) -> list:
        gx = torch_module().zeros_like(inputs[0])
        gx[_python_key(self.items)] += g
        return [gx]

    def numpy_forward(self, x: Any) -> Any:
        return np.asarray(x)[_python_key(self.items)]

    def tensor_rule(self, g, inputs, parts, wanted, shapes, shape) -> list[Any]:
        """The output's adjoint put back where the index took its elements, zeros elsewhere."""
        from derive.tensor.expr import call

        return [call("index.put", g, items=self.items, shape=tuple(shapes[0]))]

    @classmethod
    def tensor_function(cls, rule: str, args: list[Any], options: dict[str, Any], backend: str) -> Any:
        if rule != "put":
            return super().tensor_function(rule, args, options, backend)
        (g,) = args
        key = _python_key(options["items"])
        if backend == "torch":
            out = g.new_zeros(tuple(options["shape"]))
        else:
            out = np.zeros(tuple(options["shape"]), dtype=np.asarray(g).dtype)
        out[key] = out[key] + g
        return out

    @classmethod
    def tensor_latex(cls, rule: str, args: list[str], options: dict[str, Any]) -> str:
        if rule != "put":
            return super().tensor_latex(rule, args, options)
        return rf"\operatorname{{put}}_{{{cls(options['items']).describe('')}}}\left({args[0]}\right)"

    def describe(self, *inputs: str) -> str:
        parts = []
        for item in self.items:
            if item[0] == "int":
                parts.append(str(item[1]))
            elif item[0] == "slice":
                start, stop, step = ("" if v is None else str(v) for v in item[1:])
                parts.append(f"{start}:{stop}" + (f":{step}" if step and step != "1" else ""))
            else:
                parts.append("\\text{None}" if item[0] == "none" else r"\ldots")
        return f"{inputs[0]}\\left[{', '.join(parts)}\\right]"


def _integers(indices: np.ndarray, what: str) -> np.ndarray:
    """Integer indices from a tensor of SymPy integers (data, not symbols)."""
    try:
        return np.vectorize(int, otypes=[int])(indices) if indices.size else indices.astype(int)
    except TypeError:
        raise ShapeError(f"{what}: the indices must be integers known when the model is read") from None


@register
@dataclass(frozen=True)
class Gather(TensorOp):
    """``torch.gather(x, dim, index)`` (and ``take_along_dim``): x's elements picked by integer data."""

    dim: int = 0
    key = "gather"
    aten = ("gather.default",)

    @classmethod
    def read(cls, call: Any) -> Any:
        return call.op("gather", call.input("self"), call.input("index"), dim=int(call.arg("dim")))

    @classmethod
    def samples(cls) -> Iterable[Sample]:
        return [Sample(cls(1), (_random(1, 2, 3), np.array([[2, 0, 2], [1, 1, 0]])))]

    def lower(self, lowering, x: np.ndarray, index: np.ndarray) -> np.ndarray:
        return np.take_along_axis(x, _integers(index, "gather"), axis=self.dim)

    def forward(self, x: Any, index: Any) -> Any:
        return torch_module().gather(x, self.dim, index.long())

    def backward(self, g: Any, inputs: Sequence[Any], out: Any, wanted: Sequence[bool], saved: Any = None) -> list:
        x, index = inputs
        return [torch_module().zeros_like(x).scatter_add_(self.dim, index.long(), g), None]

    def describe(self, *inputs: str) -> str:
        return rf"\operatorname{{gather}}_{{{self.dim}}}\left({inputs[0]}, {inputs[1]}\right)"


@register
@dataclass(frozen=True)
class ScatterAdd(TensorOp):
    """``x.scatter_add(dim, index, src)``: each element of src added to x where index puts it along dim (several
    may land on one place); ∂/∂x = 1, and each src element's gradient is g where it landed (gather)."""

    dim: int = 0
    key = "scatter_add"
    aten = ("scatter_add.default",)

    @classmethod
    def read(cls, call: Any) -> Any:
        if tuple(call.shape("index")) != tuple(call.shape("src")):  # torch's own backward fails there
            call.refuse(f"an index of shape {list(call.shape('index'))} smaller than src's {list(call.shape('src'))}")
        return call.op("scatter_add", call.input("self"), call.input("index"), call.input("src"),
                       dim=int(call.arg("dim")))

    @classmethod
    def samples(cls) -> Iterable[Sample]:
        index = np.array([[1, 0, 2], [1, 1, 0]])  # two land on [1, 0] and on [1, 1]
        return [Sample(cls(0), (_random(2, 3, 3), index, _random(3, 2, 3))),
                Sample(cls(1), (_random(4, 2, 4), np.array([[3, 3], [0, 2]]), _random(5, 2, 2)))]

    def lower(self, lowering, x: np.ndarray, index: np.ndarray, src: np.ndarray) -> np.ndarray:
        indices = _integers(index, "scatter_add")
        parts: dict[tuple[int, ...], list[sp.Expr]] = {p: [x[p]] for p in np.ndindex(x.shape)}
        dim = self.dim % max(x.ndim, 1)
        for p in np.ndindex(indices.shape):
            target = p[:dim] + (int(indices[p]),) + p[dim + 1:]
            if target not in parts:
                raise ShapeError(f"scatter_add: index {int(indices[p])} is out of range for dim {dim} of {x.shape}")
            parts[target].append(src[p])
        out = lowering.new(x.shape)
        for p, terms in parts.items():
            lowering.define(out[p], sp.Add(*terms), symbols_only([(t, sp.S.One) for t in terms]))
        return out

    def reads(self) -> tuple[bool, bool]:
        return False, False

    def forward(self, x: Any, index: Any, src: Any) -> Any:
        return x.scatter_add(self.dim, index.long(), src)

    def backward(self, g: Any, inputs: Sequence[Any], out: Any, wanted: Sequence[bool], saved: Any = None) -> list:
        """g for x; for each src element, g where it landed."""
        return [g, None, torch_module().gather(g, self.dim, inputs[1].long())]

    def describe(self, *inputs: str) -> str:
        return rf"\operatorname{{scatter\_add}}_{{{self.dim}}}\left({', '.join(inputs)}\right)"


@register
@dataclass(frozen=True)
class IndexTensor(TensorOp):
    """Indexing by integer tensors known when the model is read (``x[ids]``, ``x[mask]``, ``index_select``):
    ``present`` says which dims have an index tensor (the inputs after x), in torch's advanced indexing."""

    present: tuple[bool, ...] = (True,)
    key = "index_tensor"
    aten = ("index.Tensor", "index_select.default")

    @classmethod
    def read(cls, call: Any) -> Any:
        torch = torch_module()
        if call.name == "index_select.default":
            dim = int(call.arg("dim")) % max(len(call.shape("self")), 1)
            return call.op("index_tensor", call.input("self"), call.input("index"), present=(False,) * dim + (True,))
        indices, present = [], []
        for value in call.arguments["indices"]:
            real = None if value is None else value.real
            if real is not None and real.dtype == torch.bool:  # a mask: its positions, one index per dim it spans
                for positions in real.nonzero(as_tuple=True):
                    indices.append(call.node_of(call.literal(positions)))
                    present.append(True)
            elif real is None:
                present.append(False)
            else:
                indices.append(call.node_of(value))
                present.append(True)
        return call.op("index_tensor", call.input("self"), *indices, present=tuple(present))

    @classmethod
    def samples(cls) -> Iterable[Sample]:
        x = _random(1, 3, 4)
        return [Sample(cls((True,)), (x, np.array([2, 0, 2]))), Sample(cls((False, True)), (x, np.array([[3, 1]]))),
                Sample(cls((True, True)), (x, np.array([0, 2]), np.array([1, 1])))]

    def _key(self, indices: Sequence[Any], convert: Any) -> tuple:
        it = iter(indices)
        return tuple(convert(next(it)) if p else slice(None) for p in self.present)

    def lower(self, lowering, x: np.ndarray, *indices: np.ndarray) -> np.ndarray:
        return np.asarray(x[self._key(indices, lambda i: _integers(i, "indexing"))], dtype=object)

    def forward(self, x: Any, *indices: Any) -> Any:
        return x[self._key(indices, lambda i: i.long())]

    def backward(self, g: Any, inputs: Sequence[Any], out: Any, wanted: Sequence[bool], saved: Any = None) -> list:
        x, *indices = inputs
        key = self._key(indices, lambda i: i.long())
        return [_index_add(torch_module().zeros_like(x), key, g), *([None] * len(indices))]

    def describe(self, *inputs: str) -> str:
        it = iter(inputs[1:])
        return f"{inputs[0]}\\left[{', '.join(next(it) if p else ':' for p in self.present)}\\right]"


def _index_add(gx: Any, key: tuple, g: Any) -> Any:
    """``gx[key] += g`` with repeated indices summed (advanced indexing mixed with full slices)."""
    torch = torch_module()
    grid = torch.arange(gx.numel(), device=gx.device).reshape(gx.shape)[key]
    flat = gx.reshape(-1)
    flat.index_add_(0, grid.reshape(-1), g.reshape(-1))
    return flat.reshape(gx.shape)


@register
@dataclass(frozen=True)
class Flip(TensorOp):
    """``torch.flip(x, dims)``: the elements in reverse order along ``dims``."""

    dims: tuple[int, ...] = ()
    key = "flip"
    aten = ("flip.default",)

    @classmethod
    def read(cls, call: Any) -> Any:
        return call.op("flip", call.input("self"), dims=tuple(int(d) for d in call.arg("dims")))

    @classmethod
    def samples(cls) -> Iterable[Sample]:
        return [Sample(cls((1,)), (_random(1, 2, 3),)), Sample(cls((0, 2)), (_random(2, 2, 2, 3),))]

    def lower(self, lowering, x: np.ndarray) -> np.ndarray:
        return np.flip(x, axis=self.dims)

    def reads(self) -> tuple[bool, bool]:
        return False, False

    def forward(self, x: Any) -> Any:
        return torch_module().flip(x, self.dims)

    def backward(self, g: Any, inputs: Sequence[Any], out: Any, wanted: Sequence[bool], saved: Any = None) -> list:
        return [torch_module().flip(g, self.dims)]


@register
@dataclass(frozen=True)
class Repeat(TensorOp):
    """``x.repeat(*repeats)``: the tensor tiled; each element's gradient is the sum over its copies."""

    repeats: tuple[int, ...] = ()
    key = "repeat"
    aten = ("repeat.default",)

    @classmethod
    def read(cls, call: Any) -> Any:
        return call.op("repeat", call.input("self"), repeats=tuple(int(r) for r in call.arg("repeats")))

    @classmethod
    def samples(cls) -> Iterable[Sample]:
        return [Sample(cls((2, 3)), (_random(1, 2, 2),)), Sample(cls((2, 1, 2)), (_random(2, 3),))]

    def lower(self, lowering, x: np.ndarray) -> np.ndarray:
        return np.tile(x, self.repeats)

    def reads(self) -> tuple[bool, bool]:
        return True, False

    def forward(self, x: Any) -> Any:
        return x.repeat(*self.repeats)

    def backward(self, g: Any, inputs: Sequence[Any], out: Any, wanted: Sequence[bool], saved: Any = None) -> list:
        x = inputs[0]
        shape = (1,) * (len(self.repeats) - x.dim()) + tuple(x.shape)
        split = [d for r, s in zip(self.repeats, shape) for d in (r, s)]
        summed = g.reshape(split).sum(dim=tuple(range(0, len(split), 2)))
        return [summed.reshape(x.shape)]


@register
@dataclass(frozen=True)
class ConstantPad(TensorOp):
    """``F.pad(x, pad, value=v)`` (constant mode): ``pad`` as torch gives it, last dim first (before, after)."""

    pad: tuple[int, ...] = ()
    value: float = 0.0
    key = "constant_pad"
    aten = ("constant_pad_nd.default",)

    @classmethod
    def read(cls, call: Any) -> Any:
        return call.op("constant_pad", call.input("self"), pad=tuple(int(p) for p in call.arg("pad")),
                       value=float(call.arg("value", 0.0)))

    @classmethod
    def samples(cls) -> Iterable[Sample]:
        return [Sample(cls((1, 2)), (_random(1, 2, 3),)), Sample(cls((1, 0, 0, 1), 0.5), (_random(2, 2, 3),)),
                Sample(cls((-1, 1),), (_random(3, 2, 3),))]

    def _slices(self, shape: tuple[int, ...]) -> tuple[tuple[slice, ...], tuple[slice, ...], tuple[int, ...]]:
        """Where the input lands in the output, which part of the input is kept, and the output's shape."""
        into, keep, out = [], [], list(shape)
        for k in range(len(self.pad) // 2):
            d = len(shape) - 1 - k
            before, after = self.pad[2 * k], self.pad[2 * k + 1]
            out[d] = shape[d] + before + after
            into.append((d, slice(max(before, 0), max(before, 0) + shape[d] + min(before, 0) + min(after, 0))))
            keep.append((d, slice(max(-before, 0), shape[d] - max(-after, 0))))
        full_into = [slice(None)] * len(shape)
        full_keep = [slice(None)] * len(shape)
        for d, s in into:
            full_into[d] = s
        for d, s in keep:
            full_keep[d] = s
        return tuple(full_into), tuple(full_keep), tuple(out)

    def lower(self, lowering, x: np.ndarray) -> np.ndarray:
        into, keep, shape = self._slices(x.shape)
        out = np.full(shape, exact(self.value), dtype=object)
        out[into] = x[keep]
        return out

    def reads(self) -> tuple[bool, bool]:
        return True, False

    def forward(self, x: Any) -> Any:
        return torch_module().nn.functional.pad(x, list(self.pad), value=self.value)

    def backward(self, g: Any, inputs: Sequence[Any], out: Any, wanted: Sequence[bool], saved: Any = None) -> list:
        into, keep, _ = self._slices(tuple(inputs[0].shape))
        gx = torch_module().zeros_like(inputs[0])
        gx[keep] = g[into]
        return [gx]


@register
@dataclass(frozen=True)
class Diagonal(TensorOp):
    """``torch.diagonal(x, offset, dim1, dim2)``: the diagonal moved to the last dim."""

    offset: int = 0
    dim1: int = 0
    dim2: int = 1
    key = "diagonal"
    aten = ("diagonal.default", "diagonal_copy.default")

    @classmethod
    def read(cls, call: Any) -> Any:
        return call.op("diagonal", call.input("self"), offset=int(call.arg("offset")), dim1=int(call.arg("dim1")),
                       dim2=int(call.arg("dim2")))

    @classmethod
    def samples(cls) -> Iterable[Sample]:
        return [Sample(cls(), (_random(1, 3, 3),)), Sample(cls(1, 1, 2), (_random(2, 2, 3, 4),))]

    def lower(self, lowering, x: np.ndarray) -> np.ndarray:
        return np.diagonal(x, self.offset, self.dim1, self.dim2).copy()

    def reads(self) -> tuple[bool, bool]:
        return True, False

    def forward(self, x: Any) -> Any:
        return torch_module().diagonal(x, self.offset, self.dim1, self.dim2)

    def backward(self, g: Any, inputs: Sequence[Any], out: Any, wanted: Sequence[bool], saved: Any = None) -> list:
        gx = torch_module().zeros_like(inputs[0])
        gx.diagonal(self.offset, self.dim1, self.dim2).copy_(g)
        return [gx]


@register
@dataclass(frozen=True)
class Embedding(TensorOp):
    """``nn.Embedding``: rows of the weight picked by integer indices (the indices are data, not symbols);
    the row ``padding_idx`` gets no gradient, as torch's."""

    padding_idx: int | None = None
    key = "embedding"
    aten = ("embedding.default",)

    @classmethod
    def read(cls, call: Any) -> Any:
        if call.arg("scale_grad_by_freq") or call.arg("sparse"):
            call.refuse("scale_grad_by_freq or sparse")
        padding = int(call.arg("padding_idx", -1))
        rows = call.shape("weight")[0]
        return call.op("embedding", call.input("weight"), call.input("indices"),
                       padding_idx=None if padding == -1 else padding % rows)

    @classmethod
    def samples(cls) -> Iterable[Sample]:
        ids = np.array([[0, 3, 4], [2, 2, 1]])
        return [Sample(cls(), (_random(1, 5, 3), ids)), Sample(cls(2), (_random(2, 5, 3), ids))]

    def stops_gradient(self, arg: int) -> Any:
        if arg != 0 or self.padding_idx is None:
            return False
        return lambda index: index[0] == self.padding_idx  # the padding row: no gradient, though it is read

    def lower(self, lowering, weight: np.ndarray, indices: np.ndarray) -> np.ndarray:
        rows = _integers(indices, "embedding")
        if indices.size and (rows.min() < 0 or rows.max() >= weight.shape[0]):
            raise ShapeError(f"embedding: indices must lie in 0 to {weight.shape[0] - 1}, got {rows.min()} to {rows.max()}")
        out = weight[rows]
        if self.padding_idx is not None and (rows == self.padding_idx).any():
            padded = lowering.new(weight.shape[1:])  # the padding row's values, with no path back to it
            for k, symbol in enumerate(padded.reshape(-1)):
                lowering.define(symbol, weight[self.padding_idx].reshape(-1)[k], ())
            out[rows == self.padding_idx] = padded
        return out

    def reads(self) -> tuple[bool, bool]:
        return True, False

    def forward(self, weight: Any, indices: Any) -> Any:
        return torch_module().nn.functional.embedding(indices.long(), weight, self.padding_idx)

    def backward(self, g: Any, inputs: Sequence[Any], out: Any, wanted: Sequence[bool], saved: Any = None) -> list:
        W, ids = inputs
        ids = ids.reshape(-1).long()
        rows = g.reshape(-1, W.shape[1])
        if self.padding_idx is not None:
            rows = rows * (ids != self.padding_idx).unsqueeze(1).to(rows.dtype)
        return [torch_module().zeros_like(W).index_add_(0, ids, rows), None]

    def describe(self, *inputs: str) -> str:
        return f"{inputs[0]}\\left[{inputs[1]}\\right]"


@register
@dataclass(frozen=True)
class Expand(TensorOp):
    """``expand(*sizes)``/``expand_as``: size-1 dims repeated (the same element used several times: its
    adjoint is the sum over the copies); -1 keeps a dim."""

    shape: tuple[int, ...] = ()
    key = "expand"
    aten = ("expand.default", "expand_copy.default")

    @classmethod
    def read(cls, call: Any) -> Any:
        return call.op("expand", call.input("self"), shape=tuple(int(s) for s in call.arg("size")))

    @classmethod
    def samples(cls) -> Iterable[Sample]:
        return [Sample(cls((2, 3, 3)), (_random(1, 3, 1),)), Sample(cls((-1, 4)), (_random(2, 2, 1),))]

    def lower(self, lowering, x: np.ndarray) -> np.ndarray:
        lead = len(self.shape) - x.ndim
        if lead < 0:
            raise ShapeError(f"expand: {list(self.shape)} has fewer dims than the tensor {x.shape}")
        shape = tuple(x.shape[i - lead] if s == -1 and i >= lead else s for i, s in enumerate(self.shape))
        try:
            return np.broadcast_to(x, shape)
        except ValueError:
            raise ShapeError(f"expand: a tensor of shape {x.shape} cannot expand to {list(self.shape)}") from None

    def reads(self) -> tuple[bool, bool]:
        return True, False

    def forward(self, x: Any) -> Any:
        return x.expand(*self.shape)

    def backward(self, g: Any, inputs: Sequence[Any], out: Any, wanted: Sequence[bool], saved: Any = None) -> list:
        return [unbroadcast(g, tuple(inputs[0].shape))]

    def numpy_forward(self, x: Any) -> Any:
        return self.lower(None, np.asarray(x))

    def tensor_rule(self, g, inputs, parts, wanted, shapes, shape) -> list[Any]:
        """The sum over the copies: the output's adjoint summed back to the input's shape."""
        from derive.tensor.expr import call

        return [call("sum_to", g, shape=tuple(shapes[0]))]


@register
@dataclass(frozen=True)
class Alias(TensorOp):
    """Ops that give their input back as it is (``clone``, ``contiguous``, ``alias``, a cast between float
    dtypes, ``native_dropout`` in eval mode or with p = 0): no node of their own. A cast to float32 is read as
    the exact value (the model remembers that the module rounds there: `Model.precision`)."""

    key = "alias"
    aten = ("clone.default", "alias.default", "_to_copy.default", "lift_fresh_copy.default", "contiguous.default",
            "native_dropout.default", "dropout.default", "feature_dropout.default", "to.dtype", "copy.default")

    @classmethod
    def read(cls, call: Any) -> Any:
        torch = torch_module()
        if "dropout" in call.name:
            p, train = float(call.arg("p")), bool(call.arg("train"))
            if train and p > 0:
                call.fail(f"Dropout {{where}} is in train mode (it drops at random, p={p:g}): call self.eval() at "
                          "the end of __init__ (or model.eval() before from_torch; --eval on the command line), "
                          "or use p=0")
            return (call.input("input"), None) if call.name == "native_dropout.default" else call.input("input")
        x = call.input("src") if "src" in call.arguments else call.input("self")  # copy(self, src) is src
        if not _floating(call.real, torch):
            call.refuse("a result that is not floating point (it has no gradient)")
        if call.real.dtype != torch.float64:  # the module rounds to float32 here: derive keeps the exact value
            call.rounds_to(str(call.real.dtype).removeprefix("torch."))
        return x

    @classmethod
    def samples(cls) -> Iterable[Sample]:
        return [Sample(cls(), (_random(1, 2, 3),))]

    def lower(self, lowering, x: np.ndarray) -> np.ndarray:
        return x

    def reads(self) -> tuple[bool, bool]:
        return False, False

    def forward(self, x: Any) -> Any:
        return x

    numpy_forward = forward

    def tensor_forward(self, inputs: list[Any]) -> Any:
        return inputs[0]

    def tensor_rule(self, g, inputs, parts, wanted, shapes, shape) -> list[Any]:
        return [g]

    def backward(self, g: Any, inputs: Sequence[Any], out: Any, wanted: Sequence[bool], saved: Any = None) -> list:
        return [g]


def _floating(real: Any, torch: Any) -> bool:
    return isinstance(real, torch.Tensor) and real.is_floating_point()


@register
@dataclass(frozen=True)
class Detach(TensorOp):
    """``x.detach()``: the same values, with no gradient flowing back (a stop-gradient)."""

    key = "detach"
    differentiable = False
    aten = ("detach.default",)

    @classmethod
    def read(cls, call: Any) -> Any:
        return call.op("detach", call.input("self"))

    @classmethod
    def samples(cls) -> Iterable[Sample]:
        return [Sample(cls(), (_random(1, 2, 3),))]

    def lower(self, lowering, x: np.ndarray) -> np.ndarray:
        out = lowering.new(x.shape)
        for index in np.ndindex(x.shape):
            lowering.define(out[index], x[index] if isinstance(x[index], sp.Basic) else exact(x[index]), ())
        return out

    def reads(self) -> tuple[bool, bool]:
        return False, False

    def stops_gradient(self, arg: int) -> bool:
        return True

    def forward(self, x: Any) -> Any:
        return x.detach()

    def backward(self, g: Any, inputs: Sequence[Any], out: Any, wanted: Sequence[bool], saved: Any = None) -> list:
        return [None]


@register
@dataclass(frozen=True)
class SliceScatter(TensorOp):
    """``slice_scatter``/``select_scatter`` (how torch writes circular padding and in-place slice updates): the
    first tensor with the part ``items`` selects replaced by the second. Elements move; nothing new is defined."""

    items: tuple[tuple, ...] = ()
    key = "slice_scatter"
    aten = ("slice_scatter.default", "select_scatter.default")

    @classmethod
    def read(cls, call: Any) -> Any:
        shape = call.shape("self")
        dim = int(call.arg("dim", 0)) % max(len(shape), 1)
        lead = (("slice", None, None, None),) * dim
        if call.name == "select_scatter.default":
            item = ("int", int(call.arg("index")))
        else:
            item = ("slice", call.arg("start"), call.arg("end"), call.arg("step", 1))
        return call.op("slice_scatter", call.input("self"), call.input("src"), items=(*lead, item))

    @classmethod
    def samples(cls) -> Iterable[Sample]:
        return [Sample(cls((("slice", None, None, None), ("slice", 1, 3, None))), (_random(1, 2, 4), _random(2, 2, 2))),
                Sample(cls((("int", 0),)), (_random(3, 2, 3), _random(4, 3)))]

    def lower(self, lowering, x: np.ndarray, src: np.ndarray) -> np.ndarray:
        out = np.array(x, dtype=object)
        out[_python_key(self.items)] = src
        return out

    def reads(self) -> tuple[bool, bool]:
        return False, False

    def forward(self, x: Any, src: Any) -> Any:
        out = x.clone()
        out[_python_key(self.items)] = src
        return out

    def backward(self, g: Any, inputs: Sequence[Any], out: Any, wanted: Sequence[bool], saved: Any = None) -> list:
        key = _python_key(self.items)
        gx = g.clone()
        gx[key] = 0
        return [gx, g[key]]
