"""The scalar computation graph of a network: one SymPy symbol per quantity, with its definition.

Every pre-activation ``z``, activation ``a`` and the loss ``L`` is a `Node`: its symbol, its defining
expression over earlier symbols, and the local partial derivative of that expression with respect to each
symbol it uses. Local partials come from the structure (a weighted sum) or from the op registry (an
activation's or a loss's textbook derivative): nothing here calls ``diff`` on a sum, so building the graph
costs time linear in the number of parameters.

Names follow the textbook (see DESIGN.md): weights W1, W2, … row-major, layer after layer; biases b1, …;
inputs x1, …; targets y (one output) or y1, …; units z1, z2, … numbered across layers. In a batch of more
than one sample, per-sample quantities get the sample number as a suffix: ``x1_2`` is x₁ of sample 2.

>>> from derive.network import Architecture
>>> g = build_graph(Architecture((2, 1), ("sigmoid",), "bce", "mean", 1))
>>> [(str(n.symbol), str(n.expr)) for n in g.nodes]
[('z1', 'W1*x1 + W2*x2 + b1'), ('a1', 'sigmoid(z1)'), ('L', '-y*log(a1) - (1 - y)*log(1 - a1)')]
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import sympy as sp

from derive.network import Architecture
from derive.ops import activation, loss as lookup_loss
from derive.progress import stage
from derive.terms import product, total


@dataclass(frozen=True)
class Node:
    """One computed quantity: ``symbol = expr``, with ∂expr/∂s for each symbol ``s`` it uses."""

    symbol: sp.Symbol
    expr: sp.Expr
    partials: tuple[tuple[sp.Symbol, sp.Expr], ...]
    kind: str  # "z" (pre-activation), "a" (activation) or "loss"
    layer: int  # 1-based Linear layer; 0 for the loss
    unit: int  # 0-based unit within its layer
    sample: int  # 0-based sample in the batch


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
    """Build the scalar graph of an architecture (cached: weights do not change the graph)."""
    stage("building the graph")
    batch, sizes = arch.batch, arch.sizes
    names: dict[sp.Symbol, str] = {}

    def symbol(name: str, latex: str, sample: int | None = None) -> sp.Symbol:
        s = sp.Symbol(name if sample is None or batch == 1 else f"{name}_{sample + 1}")
        names[s] = latex if sample is None or batch == 1 else f"{latex}^{{({sample + 1})}}"
        return s

    inputs = tuple(
        tuple(symbol(f"x{i + 1}", f"x_{{{i + 1}}}", n) for i in range(sizes[0])) for n in range(batch)
    )
    one_output = sizes[-1] == 1
    targets = tuple(
        tuple(
            symbol("y" if one_output else f"y{k + 1}", "y" if one_output else f"y_{{{k + 1}}}", n)
            for k in range(sizes[-1])
        )
        for n in range(batch)
    )
    weights, biases = [], []
    w = b = 0
    for n_in, n_out in zip(sizes, sizes[1:]):
        rows = []
        for _ in range(n_out):
            rows.append(tuple(symbol(f"W{w + j + 1}", f"W_{{{w + j + 1}}}") for j in range(n_in)))
            w += n_in
        weights.append(tuple(rows))
        biases.append(tuple(symbol(f"b{b + i + 1}", f"b_{{{b + i + 1}}}") for i in range(n_out)))
        b += n_out

    nodes: list[Node] = []
    pre, post = [], []
    previous = inputs
    unit = 0
    for l, act_name in enumerate(arch.activations):
        act = activation(act_name)
        W, bias = weights[l], biases[l]
        layer_z, layer_a = [], []
        for n in range(batch):
            zs, as_ = [], []
            for i in range(len(W)):
                g = unit + i + 1
                z = symbol(f"z{g}", f"z_{{{g}}}", n)
                a = symbol(f"a{g}", f"{act.output_letter}_{{{g}}}", n)
                ins = previous[n]
                expr = total([*(product(W[i][j], ins[j]) for j in range(len(ins))), bias[i]])
                partials = [(ins[j], W[i][j]) for j in range(len(ins))]
                partials += [(W[i][j], ins[j]) for j in range(len(ins))] + [(bias[i], sp.S.One)]
                nodes.append(Node(z, expr, tuple(partials), "z", l + 1, i, n))
                if not act.vector:
                    nodes.append(Node(a, act(z), ((z, act.derivative(z, a)),), "a", l + 1, i, n))
                zs.append(z)
                as_.append(a)
            if act.vector:  # every output uses every z of its layer (softmax): a_i after all the z
                for i, (a, expr) in enumerate(zip(as_, act.outputs(zs))):
                    jacobian = tuple((zj, act.jacobian(i, j, as_)) for j, zj in enumerate(zs))
                    nodes.append(Node(a, expr, jacobian, "a", l + 1, i, n))
            layer_z.append(tuple(zs))
            layer_a.append(tuple(as_))
        unit += len(W)
        pre.append(tuple(layer_z))
        post.append(tuple(layer_a))
        previous = tuple(layer_a)

    loss = lookup_loss(arch.loss)
    scale = sp.S.One
    if arch.reduction == "mean":
        scale = sp.Rational(1, loss.term_count(batch, sizes[-1]))
    terms, partials = [], []
    for yhat, y in zip(previous, targets):
        terms += loss.terms(yhat, y)
        partials += [(p, scale * d) for p, d in zip(yhat, loss.derivative(yhat, y))]
    L = sp.Symbol("L")
    names[L] = r"\mathcal{L}"
    expr = scale * sp.Add(*terms)
    by_name = {s.name: s for layer in weights for row in layer for s in row} | {
        s.name: s for layer in biases for s in layer}
    penalties = []
    for which, chosen in arch.penalty:  # L = loss + λ₂ Σ p² + λ₁ Σ |p|: a penalty is part of the function
        lam = sp.Symbol(f"lambda_{which[1]}")
        names[lam] = rf"\lambda_{{{which[1]}}}"
        penalties.append(lam)
        params = [by_name[n] for n in chosen]
        if which == "l2":
            expr += lam * sp.Add(*(p**2 for p in params))
            partials += [(p, 2 * lam * p) for p in params]
        else:
            expr += lam * sp.Add(*(sp.Abs(p) for p in params))
            partials += [(p, lam * sp.sign(p)) for p in params]
    nodes.append(Node(L, expr, tuple(partials), "loss", 0, 0, 0))

    return Graph(
        architecture=arch,
        inputs=inputs,
        targets=targets,
        weights=tuple(weights),
        biases=tuple(biases),
        nodes=tuple(nodes),
        pre=tuple(pre),
        post=tuple(post),
        loss=L,
        latex_names=names,
        penalties=tuple(penalties),
    )
