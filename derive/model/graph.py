"""The model graph: a DAG of tensor ops over named leaves (inputs, parameter tensors, constants).

`Structure` is what the symbolic derivation depends on (ops, shapes, the loss; no numbers but integer ids), a
hashable value that `lower` caches on. `Model` adds the numbers: parameter tensors (by their torch
``named_parameters()`` key), constants (buffers such as running statistics), data, learning rate, frozen
parameters, and optionally the torch module it was read from (for verification against the module itself).

>>> import numpy as np
>>> from derive.model.build import ModelBuilder
>>> b = ModelBuilder()
>>> x, w = b.input("x", (1, 2)), b.parameter("w", np.array([0.5, -1.0]))
>>> model = b.model(b.op("matmul", x, w, name="z"), x=[[1.0, 2.0]], y=[0.0], loss="mse")
>>> [p.name for p in model.parameters()], model.batch
(['w_1', 'w_2'], 1)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from derive.errors import DeriveError, ShapeError, ValueDomainError, did_you_mean
from derive.model.names import indexed_names, parameter_base
from derive.parameter import Parameter
from derive.ops import REDUCTIONS, loss as lookup_loss
from derive.ops.tensor import TensorOp
from derive.terms import gc_paused

#: the loss of a model whose ``forward(x, y)`` returns the loss itself (any loss built from supported ops)
OWN_LOSS = "forward"


@dataclass(frozen=True)
class Leaf:
    """An input (``x``), a parameter tensor (by its torch key), a constant tensor, or a literal, with its shape.

    ``integers`` holds the values of integer data (token or class ids): they choose elements, so they
    are part of the structure, not symbols. A ``"literal"`` is a tensor of numbers that are part of the
    structure too (a causal mask, ``torch.zeros(x.shape[0], H)``): its ``numbers`` (−∞ allowed) and ``dtype``
    (``"float64"``, ``"int64"``, ``"bool"``).
    """

    kind: str  # "input" | "parameter" | "constant" | "number" | "literal"
    name: str
    shape: tuple[int, ...]
    integers: tuple[int, ...] | None = None
    numbers: tuple[float, ...] | None = None
    dtype: str = "float64"


@dataclass(frozen=True)
class OpNode:
    """One op applied to earlier nodes (indices into `Structure.nodes`; None for an absent optional input)."""

    name: str
    op: TensorOp
    args: tuple[int | None, ...]
    where: str = field(default="", compare=False)
    #: what the node is to the model, where a report needs it: ``"state:rnn"`` for a recurrent hidden state
    role: str = ""
    #: the torch module the op ran in (``enc.self_attn``; '' for the top module or a model built in Python)
    path: str = field(default="", compare=False)


@dataclass(frozen=True)
class OpGroup:
    """The nodes a reader unrolled from one call (a recurrent layer's steps through time) that the tensor
    program keeps as one op: ``op`` applied to the nodes ``args`` defines the nodes ``outputs`` (the last
    of the group, given by `TensorOp.tensor_outputs` from the op's value, whose adjoint `TensorOp.tensor_scatter`
    gives from theirs); the op nodes from ``first`` to the last output, but for ``args``, are its inner steps."""

    op: TensorOp
    args: tuple[int | None, ...]
    outputs: tuple[int, ...]
    first: int
    #: what the program calls its value (``lstm``: ``lstm_states``)
    name: str

    def inner(self, structure: Structure) -> frozenset[int]:
        """The op nodes the group stands for (its outputs among them)."""
        return frozenset(i for i in range(self.first, max(self.outputs) + 1)
                         if isinstance(structure.nodes[i], OpNode) and i not in self.args)


@dataclass(frozen=True)
class Structure:
    """What the derivation depends on: the nodes, the output, the loss, and how scalars are named."""

    nodes: tuple[Leaf | OpNode, ...]
    output: int
    loss: str
    reduction: str
    target_shape: tuple[int, ...]
    #: "graph" (elements after their op, parameters after their torch key) or "textbook" (a chain: W1, z1, a1)
    naming: str = "graph"
    #: penalties added to the loss: (("l2", (names…)), ("l1", (…))), their λ values of the model
    penalty: tuple[tuple[str, tuple[str, ...]], ...] = ()
    #: calls the tensor program keeps as one op (a recurrent layer), their steps in ``nodes`` all the same
    groups: tuple[OpGroup, ...] = ()
    #: the output's shape, recorded when the model is built (the loss's targets are laid out from it)
    output_shape: tuple[int, ...] | None = field(default=None, compare=False)

    @property
    def parameter_leaves(self) -> list[Leaf]:
        return [n for n in self.nodes if isinstance(n, Leaf) and n.kind == "parameter"]

    @property
    def dense_layers(self) -> list[OpNode]:
        """A chain's layers: its ``dense`` op nodes, first to last (their args: input, weight, bias)."""
        return [n for n in self.nodes if isinstance(n, OpNode) and n.op.key == "dense"]


def target_layout(structure: Structure) -> tuple[int, int, bool]:
    """The loss's targets as (rows, columns, class targets): samples × values of the output, and whether y
    holds class indices (kept as one-hot rows). A model that computes its own loss: y's own rows."""
    if structure.loss == OWN_LOSS:
        y = next(n for n in structure.nodes if isinstance(n, Leaf) and n.kind == "input" and n.name == "y")
        rows = y.shape[0] if len(y.shape) > 1 else 1
        return rows, math.prod(y.shape) // max(rows, 1), False
    spec = lookup_loss(structure.loss)
    shape = structure.output_shape
    if shape is None:
        raise DeriveError("the model's output shape was not recorded when it was built")
    size = math.prod(shape)
    if len(shape) > 1:
        batch, width = shape[0], size // shape[0]
    elif spec.class_targets or not shape:
        batch, width = 1, size
    else:
        batch, width = size, 1
    return batch, width, spec.class_targets and math.prod(structure.target_shape) == batch and width > 1


def target_rows(structure: Structure, y: Any) -> list[list[float]]:
    """Target values as rows (`target_layout`; class indices as one-hot rows)."""
    y = np.asarray(y)
    batch, width, class_targets = target_layout(structure)
    if structure.loss == OWN_LOSS:
        if y.size != batch * width:
            raise ShapeError(f"y has {y.size} values; the model was read with y of {batch * width}")
        return y.astype(np.float64).reshape(batch, width).tolist()
    if class_targets:
        spec = lookup_loss(structure.loss)
        return spec.prepare_targets([[float(v)] for v in y.reshape(-1)], width)
    if y.size != batch * width:
        raise ShapeError(f"y has {y.size} values but the loss takes {batch * width} ({batch} × {width})")
    return y.astype(np.float64).reshape(batch, width).tolist()


def _array(values: Any, where: str) -> np.ndarray:
    """Finite float64 (or integer) data from lists, arrays or tensors, with a clear error."""
    if hasattr(values, "detach"):
        values = values.detach().cpu()
        values = values.numpy() if not values.is_floating_point() else values.double().numpy()
    try:
        array = np.asarray(values)
    except ValueError:
        raise ShapeError(f"{where} is ragged (rows of different lengths)") from None
    if array.dtype == object or array.dtype.kind not in "biuf":
        raise DeriveError(f"{where} must be numbers, got {array.dtype} values")
    if array.dtype.kind == "b":
        array = array.astype(np.int64)
    if array.dtype.kind == "f":
        array = array.astype(np.float64)
        if not np.isfinite(array).all():
            raise ValueDomainError(f"{where} has a NaN or infinite value; every value must be finite")
    return array


@dataclass(frozen=True, eq=False)
class Model:
    """A graph model with its numbers: the counterpart of `Network` for any graph of tensor ops.

    ``values`` maps each parameter's torch key and each constant's name to its float64 tensor.
    ``x`` and ``y`` are arrays of any rank (integer ``x``: ids for an embedding; class indices for
    ``cross_entropy``/``nll`` stay integers). ``frozen`` names parameter tensors kept in updates.
    """

    structure: Structure
    values: Mapping[str, np.ndarray]
    x: np.ndarray
    y: np.ndarray
    lr: float = 1.0
    name: str = "model"
    frozen: tuple[str, ...] = ()
    freeze: tuple[str, ...] = ()
    module: Any = field(default=None, repr=False)
    #: the optimizer of `derive.train` and reports when none is named (``from_torch(optimizer=…)``)
    optimizer: Any = field(default=None, repr=False)
    #: more keyword arguments of the module's ``forward`` (an attention mask), as data
    inputs: Mapping[str, np.ndarray] = field(default_factory=dict, repr=False)
    #: whether the graph depends on the data's values, not only on their shapes (a mask made from the data)
    data_dependent: bool = False
    #: the lowest precision the module computes in: "float32" where its forward rounds a value that depends on
    #: parameters to float32 (Llama's RMSNorm); derive derives the exact function, without that rounding
    precision: str = "float64"
    #: the weights λ₂, λ₁ of the structure's penalties (``Structure.penalty``)
    l2: float = 0.0
    l1: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.lr, (int, float)) or isinstance(self.lr, bool) or not math.isfinite(self.lr):
            raise DeriveError(f"lr must be a finite number, got {self.lr!r}")
        if self.lr <= 0:
            raise ValueDomainError(f"lr must be positive, got {self.lr!r}")
        for leaf in self.structure.nodes:
            if isinstance(leaf, Leaf) and leaf.kind in ("parameter", "constant"):
                value = self.values.get(leaf.name)
                if value is None or tuple(np.shape(value)) != leaf.shape:
                    raise ShapeError(f"{leaf.kind} {leaf.name!r} needs values of shape {leaf.shape}")
                _array(value, f"{leaf.kind} {leaf.name!r}")
        if self.loss != OWN_LOSS:
            lookup_loss(self.loss).check_targets(self.target_rows())
        known = [p.name for p in self.parameters()] if self.freeze else []
        unknown = [n for n in self.freeze if n not in known and n not in self.tensor_keys]
        if unknown:
            hint = did_you_mean(str(unknown[0]), [*self.tensor_keys, *known])
            raise DeriveError(f"freeze: no parameter {unknown[0]!r}; parameter tensors: "
                              f"{', '.join(self.tensor_keys)}.{hint}")

    @property
    def loss(self) -> str:
        return self.structure.loss

    @property
    def textbook(self) -> bool:
        """Whether this is a chain, named as the textbook names it (W1, …, z, a, δ): a `derive.network.ChainModel`."""
        return self.structure.naming == "textbook"

    def model(self) -> Model:
        """The model itself (as `Network.model` gives a chain's)."""
        return self

    @property
    def penalized(self) -> tuple[str, ...]:
        """The parameters the penalties take (``Structure.penalty``)."""
        return next((names for _, names in self.structure.penalty), ())

    @property
    def reduction(self) -> str:
        return self.structure.reduction

    @property
    def batch(self) -> int:
        return int(self.x.shape[0]) if self.x.ndim else 1

    @property
    def tensor_keys(self) -> list[str]:
        """The parameter tensors' torch keys, in ``named_parameters()`` order."""
        return [leaf.name for leaf in self.structure.parameter_leaves]

    def target_rows(self) -> list[list[float]]:
        """The targets as rows of floats (class indices as one-hot rows), as the loss takes them."""
        return target_rows(self.structure, self.y)

    def parameters(self) -> list[Parameter]:
        """Every scalar parameter: tensor by tensor (``named_parameters()`` order), each row-major.

        Frozen: a tensor read with ``requires_grad=False``, or named in ``freeze`` by its key or element name.
        """
        with gc_paused():  # tens of thousands of small objects for a CNN, no cycles
            return self._parameters()

    def _parameters(self) -> list[Parameter]:
        if self.structure.naming == "textbook":
            return self._textbook_parameters()
        params = []
        for leaf in self.structure.parameter_leaves:
            values = np.asarray(self.values[leaf.name], dtype=np.float64).reshape(-1).tolist()
            whole = leaf.name in self.frozen or leaf.name in self.freeze
            tensor = leaf.name.rpartition(".")[2]
            names = indexed_names(*parameter_base(leaf.name), leaf.shape)
            for index, (name, _), value in zip(np.ndindex(leaf.shape), names, values):
                frozen = whole or name in self.freeze
                params.append(Parameter(name, 0, tensor, index, value, frozen, leaf.name))
        return params

    def _textbook_parameters(self) -> list[Parameter]:
        """A chain's parameters as the textbook names them: all weights, layer by layer and row-major (W1, W2,
        …), then all biases (b1, …)."""
        nodes = self.structure.nodes
        params: dict[str, list[Parameter]] = {"weight": [], "bias": []}
        for layer, node in enumerate(self.structure.dense_layers, start=1):
            for tensor, at in (("weight", 1), ("bias", 2)):
                leaf = nodes[node.args[at]]
                whole = leaf.name in self.frozen or leaf.name in self.freeze
                values = np.asarray(self.values[leaf.name], dtype=np.float64).reshape(-1).tolist()
                for index, value in zip(np.ndindex(leaf.shape), values):
                    found = params[tensor]
                    name = f"{'W' if tensor == 'weight' else 'b'}{len(found) + 1}"
                    found.append(Parameter(name, layer, tensor, index, value, whole or name in self.freeze, leaf.name))
        return params["weight"] + params["bias"]

    def replace(self, **changes: Any) -> Model:
        """A copy with ``lr``, ``name`` or ``freeze`` changed (``None`` values are ignored).

        The data and the loss are part of how the model was read: the same values are accepted, other
        values are refused (read the model again with ``from_torch``).
        """
        changes = {k: v for k, v in changes.items() if v is not None}
        for field_name in ("x", "y", "loss", "reduction"):
            if field_name in changes:
                new, old = changes.pop(field_name), getattr(self, field_name)
                same = new == old if isinstance(old, str) else np.array_equal(
                    np.asarray(new, dtype=float).reshape(-1), np.asarray(old, dtype=float).reshape(-1))
                if not same:
                    raise DeriveError(
                        f"a graph model is read for its data and loss: to change {field_name}, read it again "
                        "(from_torch(module, x=…, y=…, loss=…))"
                    )
        if "freeze" in changes:
            changes["freeze"] = tuple(changes["freeze"])
        return dataclasses.replace(self, **changes)

    def with_parameters(self, values: Mapping[str, float]) -> Model:
        """A copy with the named scalar parameters set to new values."""
        tensors = {k: np.array(v, dtype=np.float64) for k, v in self.values.items()}
        by_name = {p.name: p for p in self.parameters()}
        for name, value in values.items():
            if name not in by_name:
                raise DeriveError(f"unknown parameter {name!r}")
            p = by_name[name]
            tensors[p.torch][p.index] = value
        return dataclasses.replace(self, values=tensors)


def check_reduction(reduction: str) -> str:
    if reduction not in REDUCTIONS:
        raise DeriveError(f"unknown reduction {reduction!r}; known: {', '.join(REDUCTIONS)}")
    return reduction
