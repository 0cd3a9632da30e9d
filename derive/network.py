"""`Network`: layers with numeric parameters, data, loss and learning rate, validated on construction.

A network is a frozen value. Its *architecture* (sizes, activations, loss, reduction, batch size) decides
the symbolic derivation; its numbers (weights, biases, data, learning rate) only the values.

>>> net = Network(
...     layers=[Linear([[0.5, -0.5]], [0.1], "sigmoid")], x=[1, 2], y=1, loss="bce")
>>> [p.name for p in net.parameters()]
['W1', 'W2', 'b1']
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from derive.errors import DeriveError, ShapeError, ValueDomainError, did_you_mean
from derive.model.graph import Model
from derive.ops import REDUCTIONS, activation, loss as lookup_loss
from derive.parameter import Architecture, Parameter

Matrix = tuple[tuple[float, ...], ...]


def _number(value: Any, where: str) -> float:
    """A finite float from a user's number, or a clear error naming ``where``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise DeriveError(f"{where} must be a number, got {value!r}")
    result = float(value)
    if not math.isfinite(result):
        raise ValueDomainError(f"{where} is {result!r}; every value must be finite")
    return result


def _finite_floats(values: Any, ndim: int) -> bool:
    """Whether ``values`` is a NumPy float array of ``ndim`` dims, non-empty, every entry finite."""
    return isinstance(values, np.ndarray) and values.dtype.kind == "f" and values.ndim == ndim and values.size > 0 \
        and bool(np.isfinite(values).all())


def _vector(values: Any, where: str) -> tuple[float, ...]:
    if _finite_floats(values, 1):
        return tuple(values.tolist())
    values = values.tolist() if hasattr(values, "tolist") else values
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise DeriveError(f"{where} must be a list of numbers, got {values!r}")
    return tuple(_number(v, f"{where}[{i}]") for i, v in enumerate(values))


def _matrix(rows: Any, where: str) -> Matrix:
    if _finite_floats(rows, 2):  # a module's weight: checked at once
        return tuple(map(tuple, rows.tolist()))
    rows = rows.tolist() if hasattr(rows, "tolist") else rows
    if isinstance(rows, (str, bytes)) or not isinstance(rows, Sequence):
        raise DeriveError(f"{where} must be a list of rows, got {rows!r}")
    matrix = tuple(_vector(row, f"{where}[{i}]") for i, row in enumerate(rows))
    if not matrix or not matrix[0]:
        raise ShapeError(f"{where} is empty")
    width = len(matrix[0])
    for i, row in enumerate(matrix):
        if len(row) != width:
            raise ShapeError(f"{where} is ragged: row 0 has {width} values, row {i} has {len(row)}")
    return matrix


def _rows(values: Any, width: int, where: str) -> Matrix:
    """Data as rows: a scalar or a flat list is one sample (or one column when ``width`` is 1)."""
    if values is None:
        raise DeriveError(f"no {where} data: give {where} (a spec's [data] {where}, or --{where})")
    if hasattr(values, "tolist"):
        values = values.tolist()
    if isinstance(values, numbers.Real) and not isinstance(values, bool):
        values = [[values]]
    elif isinstance(values, Sequence) and values and all(
        isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values
    ):
        values = [list(values)] if width != 1 or len(values) == width else [[v] for v in values]
    return _matrix(values, where)


@dataclass(frozen=True)
class Linear:
    """A fully connected layer ``a = f(W x + b)``; ``weight`` in torch layout (out × in).

    >>> Linear([[1, 2], [3, 4]], [0, 0], "tanh").out_features
    2
    """

    weight: Matrix
    bias: tuple[float, ...]
    activation: str = "identity"
    #: the torch module path it was read from (``"fc1"``; ``""`` for the root), or None (then its place in
    #: the equivalent ``nn.Sequential``)
    module: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        weight = _matrix(self.weight, "weight")
        bias = _vector(self.bias, "bias")
        if len(bias) != len(weight):
            raise ShapeError(f"bias has {len(bias)} values but weight has {len(weight)} rows (out × in)")
        object.__setattr__(self, "activation", activation(self.activation).key)  # "leaky_relu(0.1)"
        object.__setattr__(self, "weight", weight)
        object.__setattr__(self, "bias", bias)

    @property
    def in_features(self) -> int:
        return len(self.weight[0])

    @property
    def out_features(self) -> int:
        return len(self.weight)


@dataclass(frozen=True)
class Network:
    """Layers, data (one row per sample), loss, reduction and learning rate.

    ``x`` is batch × inputs; ``y`` is batch × outputs. A scalar or a flat list is taken as one sample
    (for one output, a flat list of one value per sample is a column). For ``cross_entropy`` a flat list or
    a column holds class indices, one per sample, kept as one-hot rows. ``freeze`` names parameters that
    keep their values in updates (``["b1", "b2"]``).
    """

    layers: tuple[Linear, ...]
    x: Matrix
    y: Matrix
    loss: str = "mse"
    reduction: str = "mean"
    lr: float = 1.0
    name: str = field(default="network", compare=False)
    freeze: tuple[str, ...] = ()
    #: the optimizer of `derive.train` and reports when none is named (a spec's ``[optimizer]``, or
    #: ``from_torch(optimizer=…)``); None: plain SGD
    optimizer: Any = field(default=None, compare=False)
    #: penalties added to the loss, L = loss + l2·Σ p² + l1·Σ |p| over ``penalized`` (default: every weight)
    l2: float = 0.0
    l1: float = 0.0
    penalized: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        from derive.training.optimizers import Optimizer

        if self.optimizer is not None and not isinstance(self.optimizer, Optimizer):
            raise DeriveError(f"optimizer must be a derive optimizer, got {type(self.optimizer).__name__}")
        layers = tuple(self.layers)
        if not layers:
            raise ShapeError("a network needs at least one layer")
        for i, layer in enumerate(layers, start=1):
            if not isinstance(layer, Linear):
                raise DeriveError(f"layer {i} must be a Linear, got {type(layer).__name__}")
        for i, (a, b) in enumerate(zip(layers, layers[1:]), start=1):
            if a.out_features != b.in_features:
                raise ShapeError(
                    f"layers {i} and {i + 1} do not chain: layer {i} has {a.out_features} outputs, "
                    f"layer {i + 1} takes {b.in_features} inputs (weight is out × in)"
                )
        loss = lookup_loss(self.loss)
        if self.reduction not in REDUCTIONS:
            raise DeriveError(f"unknown reduction {self.reduction!r}; known: {', '.join(REDUCTIONS)}")
        x = _rows(self.x, layers[0].in_features, "x")
        y = _rows(self.y, 1 if loss.class_targets else layers[-1].out_features, "y")
        y = _matrix(loss.prepare_targets(y, layers[-1].out_features), "y")
        if len(x[0]) != layers[0].in_features:
            raise ShapeError(f"x has {len(x[0])} values per sample; layer 1 takes {layers[0].in_features}")
        if len(y[0]) != layers[-1].out_features:
            raise ShapeError(
                f"y has {len(y[0])} values per sample; the last layer gives {layers[-1].out_features}"
            )
        if len(x) != len(y):
            raise ShapeError(f"x has {len(x)} samples but y has {len(y)}")
        lr = _number(self.lr, "lr")
        if lr <= 0:
            raise ValueDomainError(f"lr must be positive, got {lr!r}")
        for i, layer in enumerate(layers[:-1], start=1):
            if getattr(activation(layer.activation), "vector", False):
                raise DeriveError(
                    f"layer {i}: {layer.activation!r} is supported on the last layer only "
                    f"(it mixes the units of a layer); use an element-wise activation here"
                )
        last = activation(layers[-1].activation)
        if loss.prediction_range is not None:
            lo, hi = loss.prediction_range
            out_lo, out_hi = last.output_range
            if out_lo < lo or out_hi > hi:
                raise ValueDomainError(
                    f"loss {loss.key!r} needs predictions in [{lo:g}, {hi:g}], but the last activation "
                    f"{last.key!r} ranges over [{out_lo:g}, {out_hi:g}]; use sigmoid on the last layer"
                )
        loss.check_targets(y)
        object.__setattr__(self, "layers", layers)
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "y", y)
        object.__setattr__(self, "lr", lr)
        if not (self.freeze or self.penalized or self.l1 or self.l2):  # nothing to check names against
            object.__setattr__(self, "freeze", _freeze(self.freeze, ()))
            object.__setattr__(self, "l1", _number(self.l1, "l1"))
            object.__setattr__(self, "l2", _number(self.l2, "l2"))
            return
        known = [p.name for p in (*_weights(layers), *_biases(layers))]
        object.__setattr__(self, "freeze", _freeze(self.freeze, known))
        for which in ("l1", "l2"):
            value = _number(getattr(self, which), which)
            if value < 0:
                raise ValueDomainError(f"{which} must be ≥ 0 (a penalty's weight λ), got {value!r}")
            object.__setattr__(self, which, value)
        if self.penalized and not (self.l1 or self.l2):
            raise DeriveError("penalized names parameters, but neither l1 nor l2 is set (--l2 λ, --l1 λ)")
        if self.l1 or self.l2:
            chosen = self.penalized or [p.name for p in _weights(layers)]
            for name in chosen:
                if name not in known:
                    raise DeriveError(f"penalized: no parameter {name!r}; parameters: {', '.join(known)}."
                                      f"{did_you_mean(str(name), known)}")
            object.__setattr__(self, "penalized", tuple(n for n in known if n in chosen))

    @property
    def batch(self) -> int:
        return len(self.x)

    @property
    def textbook(self) -> bool:
        """A chain is named as the textbook names it (as its `model` is: `Model.textbook`)."""
        return True

    @property
    def chain(self) -> Network:
        """The chain itself (as `Model.chain` gives a chain model's)."""
        return self

    @property
    def architecture(self) -> Architecture:
        sizes = (self.layers[0].in_features, *(layer.out_features for layer in self.layers))
        penalty = tuple((which, self.penalized) for which in ("l2", "l1") if getattr(self, which))
        return Architecture(
            sizes, tuple(layer.activation for layer in self.layers), self.loss, self.reduction, self.batch, penalty
        )

    def parameters(self) -> list[Parameter]:
        """Every scalar parameter in textbook order: all weights (row-major, layer by layer), then biases."""
        params = list(_weights(self.layers)) + list(_biases(self.layers))
        if self.freeze:
            params = [dataclasses.replace(p, frozen=p.name in self.freeze) for p in params]
        return params

    def torch_keys(self) -> list[tuple[str, str]]:
        """Each layer's (weight, bias) key in its torch module (`Parameter.torch`)."""
        return [(_torch_key(layer, l, "weight"), _torch_key(layer, l, "bias")) for l, layer in enumerate(self.layers, 1)]

    def model(self) -> ChainModel:
        """This chain as a `derive.model.Model`: one ``dense`` op per layer under its torch keys, named by the
        textbook naming policy (W1, b1, z1, a1, …), with every number, option and penalty of the network.

        >>> net = Network([Linear([[0.5, -0.5]], [0.1], "sigmoid")], x=[1, 2], y=1, loss="bce")
        >>> [(p.name, p.torch) for p in net.model().parameters()]
        [('W1', '0.weight'), ('W2', '0.weight'), ('b1', '0.bias')]
        """
        return chain_model(self)

    def replace(self, **changes: Any) -> Network:
        """A copy with some fields changed (and validated again); ``None`` values are ignored."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def with_parameters(self, values: Mapping[str, float]) -> Network:
        """A copy with the named parameters set to new values (others unchanged)."""
        current = {p.name: p.value for p in self.parameters()}
        unknown = set(values) - set(current)
        if unknown:
            raise DeriveError(f"unknown parameters: {', '.join(sorted(unknown))}")
        current.update(values)
        layers = []
        for params, layer in zip(_by_layer(self.parameters()), self.layers):
            weight = [list(row) for row in layer.weight]
            bias = list(layer.bias)
            for p in params:
                if p.tensor == "weight":
                    weight[p.index[0]][p.index[1]] = current[p.name]
                else:
                    bias[p.index[0]] = current[p.name]
            layers.append(Linear(weight, bias, layer.activation, layer.module))
        return dataclasses.replace(self, layers=tuple(layers))


def _freeze(names: Any, known: Sequence[str]) -> tuple[str, ...]:
    """Frozen parameter names, checked and in textbook order."""
    if isinstance(names, (str, bytes)) or not isinstance(names, Iterable):
        raise DeriveError(f"freeze must be a list of parameter names such as ['b1', 'b2'], got {names!r}")
    names = list(names)
    for name in names:
        if name not in known:
            hint = did_you_mean(str(name), known) if isinstance(name, str) else ""
            raise DeriveError(f"freeze: no parameter {name!r}; parameters: {', '.join(known)}.{hint}")
    return tuple(name for name in known if name in names)


def _weights(layers: Sequence[Linear]) -> Iterator[Parameter]:
    k = 0
    for l, layer in enumerate(layers, start=1):
        for i, row in enumerate(layer.weight):
            for j, value in enumerate(row):
                k += 1
                yield Parameter(f"W{k}", l, "weight", (i, j), value, torch=_torch_key(layer, l, "weight"))


def _biases(layers: Sequence[Linear]) -> Iterator[Parameter]:
    k = 0
    for l, layer in enumerate(layers, start=1):
        for i, value in enumerate(layer.bias):
            k += 1
            yield Parameter(f"b{k}", l, "bias", (i,), value, torch=_torch_key(layer, l, "bias"))


def _torch_key(layer: Linear, number: int, tensor: str) -> str:
    """The parameter's torch key: the module it was read from, or the equivalent ``nn.Sequential``'s
    (Linear and activation modules alternate there: layer 1 is ``0``, layer 2 is ``2``)."""
    prefix = str(2 * (number - 1)) if layer.module is None else layer.module
    return f"{prefix}.{tensor}" if prefix else tensor


def _by_layer(params: Sequence[Parameter]) -> list[list[Parameter]]:
    layers: dict[int, list[Parameter]] = {}
    for p in params:
        layers.setdefault(p.layer, []).append(p)
    return [layers[l] for l in sorted(layers)]


@dataclass(frozen=True, eq=False)
class ChainModel(Model):
    """A chain as a `Model` (what every source gives for one): one ``dense`` op per layer under its torch keys,
    named as the textbook names it, that also shows the `Network` it is built from (`chain`: its layers, data
    and options, as the walk-through presents them).

    >>> net = Network([Linear([[0.5, -0.5]], [0.1], "sigmoid")], x=[1, 2], y=1, loss="bce")
    >>> model = net.model()
    >>> model.textbook, model.chain == net, model.replace(lr=0.5).lr
    (True, True, 0.5)
    """

    @functools.cached_property
    def chain(self) -> Network:
        return chain_network(self)

    @property
    def layers(self) -> tuple[Linear, ...]:
        return self.chain.layers

    @property
    def architecture(self) -> Architecture:
        return self.chain.architecture

    def torch_keys(self) -> list[tuple[str, str]]:
        return self.chain.torch_keys()

    def replace(self, **changes: Any) -> ChainModel:
        """A copy with any field of its `Network` changed (layers, data, loss, …; ``None`` values ignored)."""
        return self.chain.replace(**changes).model()

    def __eq__(self, other: object) -> bool:
        """Equal to a chain (model or `Network`) with the same layers, data and options."""
        if isinstance(other, (ChainModel, Network)):
            return self.chain == other.chain
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.chain)


def chain_model(network: Network) -> ChainModel:
    """The chain `Network` as a `ChainModel`: its `chain_structure` under the network's torch keys, with its
    numbers, learning rate, frozen parameters, penalties and optimizer (`Network.model`)."""
    from derive.graph import chain_structure

    keys = network.torch_keys()
    if len({k for pair in keys for k in pair}) < 2 * len(keys):  # layers given the same module: their places
        keys = [(f"{2 * l}.weight", f"{2 * l}.bias") for l in range(len(network.layers))]
    values = {}
    for (weight, bias), layer in zip(keys, network.layers):
        values[weight] = np.array(layer.weight, dtype=np.float64)
        values[bias] = np.array(layer.bias, dtype=np.float64)
    return ChainModel(chain_structure(network.architecture, tuple(keys)), values,
                      np.array(network.x, dtype=np.float64), np.array(network.y, dtype=np.float64), network.lr,
                      network.name, freeze=network.freeze, optimizer=network.optimizer, l2=network.l2, l1=network.l1)


def chain_network(model: Model) -> Network:
    """A chain model as the `Network` it was built from (`chain_model`'s inverse): its layers under their torch
    module paths, its data and options. ``chain_network(chain_model(net)) == net``."""
    nodes = model.structure.nodes
    layers = []
    for node in model.structure.dense_layers:
        weight, bias = nodes[node.args[1]].name, nodes[node.args[2]].name
        layers.append(Linear(model.values[weight].tolist(), model.values[bias].tolist(), node.op.activation,
                             weight.rpartition(".")[0]))
    return Network(tuple(layers), model.x.tolist(), model.y.tolist(), model.loss, model.reduction, model.lr,
                   model.name, model.freeze, model.optimizer, model.l2, model.l1, model.penalized)

