"""Lowering: a model graph's `Structure` to the scalar graph that `Backprop` differentiates.

Every leaf element becomes a symbol (parameters ``W_fc_1_2`` for ``fc.weight[0, 1]``, shown W^{fc}_{1,2};
inputs ``x1`` … as in chains, ``x_1_2_3`` past rank 2); every element an op defines becomes a `Node` named
after the fx node, with every index (``add_1_2``: element [0, 1] of node ``add``). Shape ops define nothing. The loss is one node over the output's elements.
Cost is linear in the number of scalar operations.

>>> from derive.model.build import ModelBuilder
>>> import numpy as np
>>> b = ModelBuilder()
>>> x = b.input("x", (1, 2))
>>> h = b.op("activate", b.op("linear", x, b.parameter("fc.weight", np.ones((1, 2))), name="z"),
...          activation="sigmoid", name="a")
>>> g = lower(b.structure(h, loss="bce", reduction="mean", target_shape=(1, 1)))
>>> [(str(n.symbol), str(n.expr)) for n in g.nodes]
[('z_1_1', 'W_fc_1_1*x1 + W_fc_1_2*x2'), ('a_1_1', 'sigmoid(z_1_1)'), ('L', '-y*log(a_1_1) - (1 - y)*log(1 - a_1_1)')]
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp

from derive.errors import DeriveError, ShapeError
from derive.backprop import Backprop
from derive.model.names import _data_names, _identifier, indexed_names, latex_text, parameter_base
from derive.scalar import Node
from derive.model.graph import OWN_LOSS, Leaf, Model, Structure, target_rows
from derive.ops import loss as lookup_loss
from derive.ops.tensor import as_tensor, exact
from derive.progress import stage
from derive.terms import gc_paused


class Lowering:
    """Collects the scalar nodes of a lowering; ops call `new` and `define` (see `derive.ops.tensor`).

    Names come from the graph naming policy: every element after its op node (``fc_1_2``), parameters after
    their torch key (``W_fc_1_2``). `TextbookLowering` is the chain's policy.
    """

    def __init__(self) -> None:
        self.nodes: list[Node] = []
        self.latex_names: dict[sp.Symbol, str] = {}
        self._taken: set[str] = set()
        self._stem, self._latex, self._tensor = "v", "v", 0

    def begin(self, stem: str, latex: str, tensor: int) -> None:
        """Name the next new elements after tensor node ``tensor`` (``stem``, shown as ``latex``)."""
        self._stem, self._latex, self._tensor = stem, latex, tensor

    def symbol(self, name: str, latex: str) -> sp.Symbol:
        """A fresh symbol: ``name``, or ``name`` with primes appended until it is unique."""
        while name in self._taken:
            name += "_"
        self._taken.add(name)
        symbol = sp.Symbol(name)
        self.latex_names[symbol] = latex
        return symbol

    def new(self, shape: tuple[int, ...], part: str = "", letter: str = "") -> np.ndarray:
        """Fresh symbols for a new tensor of ``shape``, named after the current node (1-based indices);
        ``part`` names an intermediate of the op (a layer norm's ``mean``: ``ln_mean_1``; a dense layer's
        ``z`` and ``a``), ``letter`` how a textbook shows it (σ for a sigmoid's output)."""
        out = np.empty(shape, dtype=object)
        flat = out.reshape(-1)  # a view: filling it fills ``out``
        stem, latex = (f"{self._stem}_{part}", latex_text(f"{self._stem}_{part}")) if part else (self._stem, self._latex)
        for k, name in enumerate(indexed_names(stem, latex, shape)):
            flat[k] = self.symbol(*name)
        return out

    def define(self, symbol: sp.Symbol, expr: sp.Expr, partials: Sequence[tuple[sp.Symbol, sp.Expr]],
               kind: str = "op", unit: int = 0, sample: int = 0) -> None:
        """Define ``symbol = expr`` with its local partials (``kind``: a dense layer's ``"z"``/``"a"``, with
        the unit and sample; ``"op"`` for every other element)."""
        layer = self._tensor if kind == "op" else self._layer
        self.nodes.append(Node(symbol, expr, tuple(partials), kind, layer, unit if kind != "op" else len(self.nodes),
                               sample))

    #: the chain layer a dense op is (1-based), for its nodes' ``layer``
    _layer = 0

    def begin_op(self, node: Any, index: int) -> None:
        """Start lowering op node ``node`` (at ``index`` in the structure)."""
        if node.op.key == "dense":
            self._layer += 1
        self.begin(_identifier(node.name), latex_text(node.name), index)

    def leaf_names(self, leaf: Leaf) -> list[tuple[str, str]]:
        """Names (and LaTeX) of a leaf's elements, row-major."""
        if leaf.kind == "parameter":
            return list(indexed_names(*parameter_base(leaf.name), leaf.shape))
        stem = _identifier(leaf.name)
        latex = leaf.name if leaf.kind == "input" and len(leaf.name) == 1 else latex_text(leaf.name)
        return _data_names(stem, latex, leaf.shape) if leaf.kind == "input" else list(indexed_names(stem, latex, leaf.shape))


class TextbookLowering(Lowering):
    """The chain's naming policy, the textbook's (DESIGN.md's names): weights W1, W2, … row-major layer after
    layer, biases b1, …; inputs x1, …; a dense layer's units z1, a1, … numbered across layers (its outputs
    shown with the activation's letter, σ₁ for a sigmoid); in a batch the sample as a suffix (``x1_2``, x₁⁽²⁾)."""

    def __init__(self, batch: int) -> None:
        super().__init__()
        self.batch = batch
        self._weights = self._biases = self._units = 0
        self._width = 0

    def begin_op(self, node: Any, index: int) -> None:
        if node.op.key == "dense":
            self._units += self._width
            self._width = 0
        super().begin_op(node, index)

    def new(self, shape: tuple[int, ...], part: str = "", letter: str = "") -> np.ndarray:
        if part not in ("z", "a"):
            return super().new(shape, part, letter)
        batch, width = shape
        self._width = width
        out = np.empty(shape, dtype=object)
        for n in range(batch):
            for i in range(width):
                g = self._units + i + 1
                latex = f"{letter or part}_{{{g}}}"
                out[n, i] = self._sample_symbol(f"{part}{g}", latex, n)
        return out

    def _sample_symbol(self, name: str, latex: str, sample: int) -> sp.Symbol:
        if self.batch == 1:
            return self.symbol(name, latex)
        return self.symbol(f"{name}_{sample + 1}", f"{latex}^{{({sample + 1})}}")

    def leaf_names(self, leaf: Leaf) -> list[tuple[str, str]]:
        if leaf.kind != "parameter":
            return super().leaf_names(leaf)
        count = int(np.prod(leaf.shape, dtype=int))
        if leaf.name.rpartition(".")[2] == "weight":
            start, self._weights = self._weights, self._weights + count
            letter = "W"
        else:
            start, self._biases = self._biases, self._biases + count
            letter = "b"
        return [(f"{letter}{k}", f"{letter}_{{{k}}}") for k in range(start + 1, start + count + 1)]


@dataclass(frozen=True)
class LoweredGraph:
    """The scalar graph of a model: nodes in topological order, and every tensor's elements."""

    structure: Structure
    nodes: tuple[Node, ...]
    tensors: tuple[np.ndarray, ...]  # the elements of every structure node, in its order
    parameters: tuple[sp.Symbol, ...]  # every parameter element, tensor by tensor, row-major
    targets: np.ndarray
    class_targets: bool
    loss: sp.Symbol
    latex_names: dict[sp.Symbol, str]

    @functools.cached_property
    def node(self) -> dict[sp.Symbol, Node]:
        return {n.symbol: n for n in self.nodes}

    @property
    def inputs(self) -> tuple[tuple[sp.Expr, ...], ...]:
        """The data input's elements as rows, one per sample (as `Graph.inputs`)."""
        for node, tensor in zip(self.structure.nodes, self.tensors):
            if isinstance(node, Leaf) and node.kind == "input" and node.name == "x":
                rows = tensor.reshape(tensor.shape[0], -1) if tensor.ndim > 1 else tensor.reshape(1, -1)
                return tuple(tuple(row) for row in rows)
        return ()

    @property
    def output(self) -> np.ndarray:
        return self.tensors[self.structure.output]

    @property
    def predictions(self) -> tuple[tuple[sp.Expr, ...], ...]:
        """ŷ: the output's elements as rows, one per sample."""
        classes = self.structure.loss != OWN_LOSS and lookup_loss(self.structure.loss).class_targets
        return tuple(tuple(row) for row in _rows(self.output, classes))

    def target_values(self, y: np.ndarray) -> list[list[float]]:
        """Target values as rows matching `targets` (class indices as one-hot rows)."""
        return target_rows(dataclasses.replace(self.structure, output_shape=self.output.shape), y)


def _rows(output: np.ndarray, classes: bool) -> np.ndarray:
    """The output as samples × values: a vector is one value per sample, or one sample's class logits."""
    if output.ndim > 1:
        return output.reshape(output.shape[0], -1)
    return output.reshape(1, -1) if classes or output.ndim == 0 else output.reshape(-1, 1)


def _own_loss(low: Lowering, output: np.ndarray, targets: np.ndarray) -> tuple[sp.Symbol, np.ndarray, bool]:
    """L as the model's own output (``forward(x, y)`` returns the loss)."""
    if output.size != 1:
        raise ShapeError(f"a model that computes its own loss must return one number, got shape {output.shape}")
    value = output.reshape(-1)[0]
    L = low.symbol("L", r"\mathcal{L}")
    partials = ((value, sp.S.One),) if isinstance(value, sp.Symbol) else ()
    low.nodes.append(Node(L, value, partials, "loss", 0, 0, 0))
    return L, targets.reshape(targets.shape[0], -1) if targets.ndim > 1 else targets.reshape(1, -1), False


def _loss_node(low: Lowering, structure: Structure, output: np.ndarray,
               parameters: Sequence[sp.Symbol] = ()) -> tuple[sp.Symbol, np.ndarray, bool]:
    spec = lookup_loss(structure.loss)
    rows = _rows(output, spec.class_targets)
    batch, width = rows.shape
    target_shape = structure.target_shape
    class_targets = spec.class_targets and int(np.prod(target_shape)) == batch and width > 1
    if not class_targets and int(np.prod(target_shape)) != rows.size:
        raise ShapeError(
            f"y of shape {target_shape} does not fit the output of shape {output.shape} (loss {spec.key!r})"
        )
    if spec.class_targets and width < 2 and structure.naming != "textbook":  # a chain: the Network checks
        raise ShapeError(f"loss {spec.key!r} needs at least 2 outputs per sample (one per class), got {width}")
    names = _data_names("y", "y", (batch, width))
    targets = np.array([low.symbol(n, t) for n, t in names], dtype=object).reshape(batch, width)
    scale = sp.Rational(1, spec.term_count(batch, width)) if structure.reduction == "mean" else sp.S.One
    terms, partials = [], []
    for yhat, y in zip(rows, targets):
        terms += spec.terms(list(yhat), list(y))
        partials += [(p, scale * d) for p, d in zip(yhat, spec.derivative(list(yhat), list(y))) if p.is_Symbol]
    L = low.symbol("L", r"\mathcal{L}")
    expr = scale * sp.Add(*terms)
    by_name = {p.name: p for p in parameters}
    for which, chosen in structure.penalty:  # L = loss + λ₂ Σ p² + λ₁ Σ |p|: a penalty is part of the function
        lam = low.symbol(f"lambda_{which[1]}", rf"\lambda_{{{which[1]}}}")
        params = [by_name[n] for n in chosen]
        if which == "l2":
            expr += lam * sp.Add(*(p**2 for p in params))
            partials += [(p, 2 * lam * p) for p in params]
        else:
            expr += lam * sp.Add(*(sp.Abs(p) for p in params))
            partials += [(p, lam * sp.sign(p)) for p in params]
    low.nodes.append(Node(L, expr, tuple(partials), "loss", 0, 0, 0))
    return L, targets, class_targets


@functools.lru_cache(maxsize=32)
def lower(structure: Structure) -> LoweredGraph:
    """The scalar graph of a structure (cached: values do not change it)."""
    stage("lowering the model graph")
    with gc_paused():
        return _lower(structure)


def _lower(structure: Structure) -> LoweredGraph:
    low = TextbookLowering(_batch(structure)) if structure.naming == "textbook" else Lowering()
    tensors: list[np.ndarray] = []
    parameters: list[sp.Symbol] = []
    for i, node in enumerate(structure.nodes):
        if isinstance(node, Leaf):
            tensors.append(_leaf(low, node, parameters))
            continue
        low.begin_op(node, i)
        inputs = [None if a is None else tensors[a] for a in node.args]
        while inputs and inputs[-1] is None:
            inputs.pop()
        try:
            tensors.append(node.op.lower(low, *inputs))
        except DeriveError as err:
            where = f" {node.where}" if node.where else ""
            raise type(err)(f"{node.name}{where}: {err}") from None
    if structure.loss == OWN_LOSS:
        y = next(t for n, t in zip(structure.nodes, tensors) if isinstance(n, Leaf) and n.name == "y")
        loss, targets, class_targets = _own_loss(low, tensors[structure.output], y)
    else:
        loss, targets, class_targets = _loss_node(low, structure, tensors[structure.output], parameters)
    return LoweredGraph(
        structure, tuple(low.nodes), tuple(tensors), tuple(parameters), targets, class_targets, loss,
        low.latex_names,
    )


def _leaf(low: Lowering, leaf: Leaf, parameters: list[sp.Symbol]) -> np.ndarray:
    if leaf.kind == "number":  # our own repr of an int or a float
        return as_tensor(int(leaf.name) if leaf.name.lstrip("-").isdigit() else float(leaf.name))
    if leaf.integers is not None:
        return np.array([sp.Integer(v) for v in leaf.integers], dtype=object).reshape(leaf.shape)
    if leaf.kind == "literal":
        numbers = (sp.Integer(v) for v in leaf.numbers) if leaf.dtype != "float64" else map(exact, leaf.numbers)
        out = np.empty(len(leaf.numbers), dtype=object)
        out[:] = list(numbers)
        return out.reshape(leaf.shape)
    elements = [low.symbol(*name) for name in low.leaf_names(leaf)]
    if leaf.kind == "parameter":
        parameters.extend(elements)
    out = np.empty(len(elements), dtype=object)
    out[:] = elements
    return out.reshape(leaf.shape)


def _batch(structure: Structure) -> int:
    """The batch of a structure: its input x's first dim."""
    x = next(n for n in structure.nodes if isinstance(n, Leaf) and n.kind == "input" and n.name == "x")
    return x.shape[0] if len(x.shape) > 1 else 1


@functools.lru_cache(maxsize=32)
def backpropagate_model(structure: Structure) -> Backprop:
    """The gradient program of a model's structure (cached: values do not change it)."""
    graph = lower(structure)
    with gc_paused():
        return Backprop(graph)


def leaf_values(model: Model, graph: LoweredGraph) -> dict[sp.Symbol, float]:
    """The value of every leaf symbol: data, targets, parameters and constants."""
    point: dict[sp.Symbol, float] = {}
    for node, tensor in zip(graph.structure.nodes, graph.tensors):
        if not isinstance(node, Leaf) or node.integers is not None or node.kind in ("number", "literal"):
            continue
        values = (model.x if node.name == "x" else model.y) if node.kind == "input" else model.values[node.name]
        point.update(zip(tensor.reshape(-1), np.asarray(values, dtype=np.float64).reshape(-1).tolist()))
    targets = np.asarray(graph.target_values(model.y)).reshape(-1).tolist()
    point.update((t, v) for t, v in zip(graph.targets.reshape(-1), targets) if isinstance(t, sp.Symbol))
    if graph.structure.penalty:  # λ₂, λ₁: values of the model
        point.update((s, model.l2 if s.name == "lambda_2" else model.l1) for s in graph.latex_names
                     if s.name in ("lambda_2", "lambda_1"))
    return point
