"""Build a model graph in Python: inputs, parameter tensors, constants and ops, then a `Model`.

>>> import numpy as np
>>> b = ModelBuilder()
>>> x = b.input("x", (2, 3))
>>> h = b.op("linear", x, b.parameter("fc.weight", np.zeros((2, 3))), b.parameter("fc.bias", np.zeros(2)))
>>> out = b.op("add", h, b.op("activate", h, activation="tanh"), name="residual")
>>> model = b.model(out, x=np.ones((2, 3)), y=np.zeros((2, 2)), loss="mse")
>>> model.tensor_keys, len(model.parameters())
(['fc.weight', 'fc.bias'], 8)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from derive.errors import DeriveError, ShapeError, UnknownOpError, did_you_mean
from derive.model.graph import OWN_LOSS, Leaf, Model, OpGroup, OpNode, Structure, _array, check_reduction
from derive.ops import loss as lookup_loss
from derive.ops.tensor import OPS, TensorOp


@dataclass(frozen=True)
class Ref:
    """A node of the graph being built (what every `ModelBuilder` method returns)."""

    index: int


class ModelBuilder:
    """Collects the nodes of a model graph; each method returns a `Ref` to the new node."""

    def __init__(self) -> None:
        self.nodes: list[Leaf | OpNode] = []
        self.values: dict[str, np.ndarray] = {}
        self._parameters: dict[str, Ref] = {}
        self._names: set[str] = set()
        self.groups: list[OpGroup] = []

    def _add(self, node: Leaf | OpNode) -> Ref:
        self.nodes.append(node)
        return Ref(len(self.nodes) - 1)

    def input(self, name: str, shape: tuple[int, ...], integers: Any = None) -> Ref:
        """The data input ``name`` of ``shape``; ``integers``: its values when they are ids (embedding)."""
        ids = None if integers is None else tuple(int(v) for v in np.asarray(integers).reshape(-1))
        return self._add(Leaf("input", name, tuple(shape), ids))

    def parameter(self, key: str, values: Any) -> Ref:
        """The parameter tensor ``key`` (its ``named_parameters()`` key); the same key twice is one tensor."""
        if key in self._parameters:
            return self._parameters[key]
        array = _array(values, f"parameter {key!r}").astype(np.float64)
        self.values[key] = array
        self._parameters[key] = self._add(Leaf("parameter", key, array.shape))
        return self._parameters[key]

    def constant(self, name: str, values: Any) -> Ref:
        """A constant tensor (a buffer such as a running mean): a symbol with a value, never updated."""
        array = _array(values, f"constant {name!r}").astype(np.float64)
        while name in self.values:
            name += "_"
        self.values[name] = array
        return self._add(Leaf("constant", name, array.shape))

    def literal(self, name: str, values: Any) -> Ref:
        """A tensor of numbers that is part of the structure (a mask, ``torch.zeros(…)``): exact, −∞ allowed."""
        array = np.asarray(values)
        dtype = {"b": "bool", "i": "int64", "u": "int64"}.get(array.dtype.kind, "float64")
        numbers = tuple(array.astype(np.float64 if dtype == "float64" else np.int64).reshape(-1).tolist())
        return self._add(Leaf("literal", name, tuple(array.shape), numbers=numbers, dtype=dtype))

    def number(self, value: float | int) -> Ref:
        """A Python number used by an op (``x * 2``), kept exact in the expressions."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise DeriveError(f"expected a number, got {value!r}")
        return self._add(Leaf("number", repr(value), ()))

    def op(self, op: str | TensorOp, *args: Ref | float | None, name: str | None = None, where: str = "",
           role: str = "", path: str = "", **attributes: Any) -> Ref:
        """Apply ``op`` (a key of `OPS` with its attributes, or an op instance) to earlier nodes or numbers."""
        if isinstance(op, str):
            if op not in OPS:
                raise UnknownOpError(f"unknown op {op!r}; known: {', '.join(sorted(OPS))}.{did_you_mean(op, OPS)}")
            op = OPS[op](**attributes)
        refs = tuple(None if a is None else (a if isinstance(a, Ref) else self.number(a)).index for a in args)
        name = name or op.key
        base, k = name, 1
        while name in self._names:
            k += 1
            name = f"{base}_{k}"
        self._names.add(name)
        return self._add(OpNode(name, op, refs, where, role, path))

    def group(self, op: TensorOp, args: list[Ref], outputs: list[Ref], first: int, name: str) -> None:
        """Record that the nodes from index ``first`` to ``outputs`` are ``op`` applied to ``args`` (`OpGroup`)."""
        self.groups.append(OpGroup(op, tuple(a.index for a in args), tuple(o.index for o in outputs), first, name))

    def structure(self, output: Ref, *, loss: str, reduction: str = "mean", target_shape: tuple[int, ...],
                  output_shape: tuple[int, ...] | None = None) -> Structure:
        """The structure of the graph so far; ``output_shape`` when the source knows it (else lowered to see)."""
        if loss != OWN_LOSS:
            lookup_loss(loss)
        structure = Structure(tuple(self.nodes), output.index, loss, check_reduction(reduction), tuple(target_shape),
                              groups=tuple(self.groups))
        if output_shape is None:
            from derive.model.lower import lower

            output_shape = lower(structure).tensors[output.index].shape
        return dataclasses.replace(structure, output_shape=tuple(output_shape))

    def model(self, output: Ref, *, x: Any, y: Any, loss: str, reduction: str = "mean", lr: float = 1.0,
              name: str = "model", frozen: tuple[str, ...] = (), freeze: Any = (), module: Any = None,
              output_shape: tuple[int, ...] | None = None) -> Model:
        """The `Model` of this graph with data ``x`` (for the one input) and targets ``y``."""
        if x is None or y is None:
            raise DeriveError(f"no {'x' if x is None else 'y'} data: give x and y")
        x_array, y_array = _array(x, "x"), _array(y, "y")
        inputs = [i for i, n in enumerate(self.nodes) if isinstance(n, Leaf) and n.kind == "input" and n.name == "x"]
        if len(inputs) != 1:
            raise ShapeError(f"a model takes one input tensor x; this graph has {len(inputs)}")
        targets = [n for n in self.nodes if isinstance(n, Leaf) and n.kind == "input" and n.name == "y"]
        if targets and (loss != OWN_LOSS or targets[0].shape != y_array.shape):
            raise ShapeError("a model that takes y computes its own loss: give no loss, and y of the shape it was read for")
        leaf = self.nodes[inputs[0]]
        if leaf.shape != x_array.shape:
            raise ShapeError(f"x has shape {x_array.shape}; the model was read for shape {leaf.shape}")
        if x_array.dtype.kind in "iu" and leaf.integers is None:
            self.nodes[inputs[0]] = Leaf("input", leaf.name, leaf.shape, tuple(int(v) for v in x_array.reshape(-1)))
        if isinstance(freeze, (str, bytes)):
            raise DeriveError(f"freeze must be a list of parameter names, got {freeze!r}")
        structure = self.structure(output, loss=loss, reduction=reduction, target_shape=y_array.shape,
                                   output_shape=output_shape)
        return Model(structure, dict(self.values), x_array.astype(np.float64) if x_array.dtype.kind == "f" else x_array,
                     y_array, float(lr) if not isinstance(lr, bool) and isinstance(lr, (int, float)) else lr,
                     name, tuple(frozen), tuple(freeze), module)
