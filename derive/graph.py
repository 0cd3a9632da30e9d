"""The scalar computation graph of a network: one SymPy symbol per quantity, with its definition.

Every pre-activation ``z``, activation ``a`` and the loss ``L`` is a `Node`: its symbol, its defining
expression over earlier symbols, and the local partial derivative of that expression with respect to each
symbol it uses. Local partials come from the structure (a weighted sum) or from the op registry (an
activation's or a loss's textbook derivative): nothing here calls ``diff`` on a sum, so building the graph
costs time linear in the number of parameters.

Names follow the textbook (see DESIGN.md): weights W1, W2, … row-major, layer after layer; biases b1, …;
inputs x1, …; targets y (one output) or y1, …; units z1, z2, … numbered across layers. In a batch of more
than one sample, per-sample quantities get the sample number as a suffix: ``x1_2`` is x₁ of sample 2.

>>> from derive.parameter import Architecture
>>> g = build_graph(Architecture((2, 1), ("sigmoid",), "bce", "mean", 1))
>>> [(str(n.symbol), str(n.expr)) for n in g.nodes]
[('z1', 'W1*x1 + W2*x2 + b1'), ('a1', 'sigmoid(z1)'), ('L', '-y*log(a1) - (1 - y)*log(1 - a1)')]
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Any

import sympy as sp

from derive.parameter import Architecture
from derive.scalar import Node
from derive.progress import stage


@dataclass(frozen=True)
class Graph:
    """Symbols of a network's leaves and nodes, in forward (topological) order."""

    architecture: Architecture
    inputs: tuple[tuple[sp.Symbol, ...], ...]  # [sample][input]
    targets: tuple[tuple[sp.Symbol, ...], ...]  # [sample][output]
    weights: tuple[tuple[tuple[sp.Symbol, ...], ...], ...]  # [layer][out][in]
    biases: tuple[tuple[sp.Symbol, ...], ...]  # [layer][out]
    nodes: tuple[Node, ...]
    pre: tuple[tuple[tuple[sp.Symbol, ...], ...], ...]  # z: [layer][sample][unit]
    post: tuple[tuple[tuple[sp.Symbol, ...], ...], ...]  # a: [layer][sample][unit]
    loss: sp.Symbol
    latex_names: dict[sp.Symbol, str]
    #: the λ symbols of the penalties in the loss (λ₂, λ₁), whose values are the network's l2 and l1
    penalties: tuple[sp.Symbol, ...] = ()

    @property
    def parameters(self) -> tuple[sp.Symbol, ...]:
        """Parameter symbols in textbook order (the order of `Network.parameters`)."""
        weights = (w for layer in self.weights for row in layer for w in row)
        biases = (b for layer in self.biases for b in layer)
        return (*weights, *biases)

    @property
    def predictions(self) -> tuple[tuple[sp.Symbol, ...], ...]:
        """ŷ: the last layer's activations, [sample][output]."""
        return self.post[-1]

    @functools.cached_property
    def node(self) -> dict[sp.Symbol, Node]:
        return {n.symbol: n for n in self.nodes}


@functools.lru_cache(maxsize=64)
def build_graph(arch: Architecture) -> Graph:
    """The scalar graph of an architecture (cached: weights do not change the graph): the model's lowering
    of its chain of dense ops (`chain_structure`), with the textbook naming policy."""
    from derive.model.lower import lower

    stage("building the graph")
    return chain_view(lower(chain_structure(arch)), arch)


def chain_view(lowered: Any, arch: Architecture) -> Graph:
    """A chain model's lowering (`derive.model.lower.lower` of a `chain_structure`) seen as a `Graph`: its
    symbols by layer, sample and unit, as the walk-through reports read them."""
    structure = lowered.structure
    tensors = dict(zip((getattr(n, "name", "") for n in structure.nodes), lowered.tensors))
    keys = [(structure.nodes[n.args[1]].name, structure.nodes[n.args[2]].name) for n in structure.dense_layers]
    pre = [[[None] * n for _ in range(arch.batch)] for n in arch.sizes[1:]]
    post = [[[None] * n for _ in range(arch.batch)] for n in arch.sizes[1:]]
    for node in lowered.nodes:
        if node.kind in ("z", "a"):
            (pre if node.kind == "z" else post)[node.layer - 1][node.sample][node.unit] = node.symbol
    names = lowered.latex_names
    return Graph(
        architecture=arch,
        inputs=tuple(tuple(row) for row in tensors["x"]),
        targets=tuple(tuple(row) for row in lowered.targets),
        weights=tuple(tuple(tuple(row) for row in tensors[weight]) for weight, _ in keys),
        biases=tuple(tuple(tensors[bias]) for _, bias in keys),
        nodes=lowered.nodes,
        pre=tuple(tuple(tuple(row) for row in layer) for layer in pre),
        post=tuple(tuple(tuple(row) for row in layer) for layer in post),
        loss=lowered.loss,
        latex_names=names,
        penalties=tuple(s for s in names if s.name in {f"lambda_{which[1]}" for which, _ in arch.penalty}),
    )


def chain_structure(arch: Architecture, keys: tuple[tuple[str, str], ...] | None = None) -> Any:
    """The model structure of a chain: one ``dense`` op per layer (z = W x + b, a = f(z)), named as a textbook
    names it (W1, b1, z1, a1, …: `derive.model.lower.TextbookLowering`). ``keys``: each layer's (weight, bias)
    tensor keys (a chain's torch keys; default ``0.weight``, ``0.bias``, ``1.weight``, …)."""
    import numpy as np

    from derive.model.build import ModelBuilder

    b = ModelBuilder()
    h = b.input("x", (arch.batch, arch.sizes[0]))
    keys = keys or tuple((f"{l}.weight", f"{l}.bias") for l in range(len(arch.activations)))
    for l, (n_in, n_out, act) in enumerate(zip(arch.sizes, arch.sizes[1:], arch.activations)):
        weight, bias = b.parameter(keys[l][0], np.zeros((n_out, n_in))), b.parameter(keys[l][1], np.zeros(n_out))
        h = b.op("dense", h, weight, bias, activation=act, name=f"layer{l + 1}")
    structure = b.structure(h, loss=arch.loss, reduction=arch.reduction, target_shape=(arch.batch, arch.sizes[-1]),
                            output_shape=(arch.batch, arch.sizes[-1]))
    return dataclasses.replace(structure, naming="textbook", penalty=arch.penalty)


def backpropagate(arch: Architecture) -> Any:
    """The gradient program (`derive.backprop.Backprop`) of an architecture (`backpropagate_chain`, cached:
    hypothesis and SGD reuse it)."""
    return backpropagate_chain(chain_structure(arch))


@functools.lru_cache(maxsize=64)
def backpropagate_chain(structure: Any) -> Any:
    """The gradient program of a chain model's structure over its `chain_view` (cached, as `backpropagate`)."""
    from derive.backprop import Backprop
    from derive.model.lower import lower
    from derive.terms import gc_paused

    arch = _architecture(structure)
    with gc_paused():
        return Backprop(chain_view(lower(structure), arch))


def _architecture(structure: Any) -> Architecture:
    """The architecture of a chain structure (its dense ops' sizes and activations)."""
    dense = structure.dense_layers
    x = structure.nodes[0]
    sizes = (x.shape[1], *(structure.nodes[n.args[2]].shape[0] for n in dense))
    return Architecture(sizes, tuple(n.op.activation for n in dense), structure.loss, structure.reduction,
                        x.shape[0], structure.penalty)
