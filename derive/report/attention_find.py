r"""Where a model attends: each scaled dot-product attention, with its Q, K, V, scores, weights and the
projections around it, as arrays of one sample, for the attention chapter of a report.

Two forms are recognised: the primitive ``attention`` (``F.scaled_dot_product_attention``, what
``nn.TransformerEncoderLayer`` runs), and the chain ``softmax(Q Kᵀ·c (+ mask)) V`` of matmuls written out,
which is what a hand-written block and ``nn.MultiheadAttention`` with ``need_weights=True`` (its default)
record. Around it: the linear layers that make Q, K and V (``in_proj_weight`` is one weight for the three:
each gets its own rows), the output projection, the residual addition and the LayerNorm after it.

Heads are found by following element ids through the shape ops (view, permute, select, …) between a
projection and the attention: each head's columns of the projection's output are whatever rows of the weight
made them, so no layout is assumed. Values are the tensor program's (`derive.tensor.program`), float64.

>>> import torch, derive
>>> class Block(torch.nn.Module):
...     def __init__(self):
...         super().__init__()
...         torch.manual_seed(0)
...         self.attn = torch.nn.MultiheadAttention(2, 1, batch_first=True)
...     def forward(self, x):
...         return self.attn(x, x, x)[0].mean(dim=1)
>>> model = derive.from_torch(Block(), loss="mse", x=[[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]], y=[[0.0, 1.0]])
>>> [(site.heads, site.tokens, site.width, site.q.key, site.q.rows) for site in sites(model)]
[(1, 3, 2, 'attn.in_proj_weight', (0, 1))]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from derive.model.graph import Leaf, Model, OpNode
from derive.ops.attention import softmax_rows
from derive.tensor.program import TensorProgram, program, structure_shapes

#: ops that only move elements (follow element ids through them)
SHAPE_OPS = frozenset({"reshape", "flatten", "permute", "squeeze", "unsqueeze", "index", "alias", "expand"})


@dataclass(frozen=True)
class Projection:
    """``P = X Wᵀ + b``: a linear layer's rows that make Q (or K, V), all heads side by side."""

    #: the weight's torch key, and which of its rows (0-based) the heads' columns come from, in head order
    key: str
    rows: tuple[int, ...]
    bias_key: str | None
    #: the input rows (tokens × in), the weight rows (width × in) and bias (width), the output (tokens × width)
    x: np.ndarray
    weight: np.ndarray
    bias: np.ndarray | None
    out: np.ndarray
    #: the node the input comes from, past shape ops (to tell whether Q, K and V read the same X)
    source: int
    #: ∂L/∂(this weight's rows) and ∂L/∂(bias's entries), from the program
    weight_grad: np.ndarray
    bias_grad: np.ndarray | None


@dataclass(frozen=True)
class Output:
    """``Y = O_cat W_Oᵀ + b_O``, the output projection of the concatenated heads."""

    key: str
    bias_key: str | None
    weight: np.ndarray  # its columns in head order
    bias: np.ndarray | None
    out: np.ndarray
    grad_out: np.ndarray  # ∂L/∂Y
    weight_grad: np.ndarray
    bias_grad: np.ndarray | None
    node: int


@dataclass(frozen=True)
class Norm:
    """``N = LayerNorm(H)`` after the residual ``H = R + Y``."""

    key: str
    bias_key: str | None
    eps: float
    gamma: np.ndarray
    beta: np.ndarray
    out: np.ndarray
    grad_out: np.ndarray  # ∂L/∂N
    gamma_grad: np.ndarray
    beta_grad: np.ndarray


@dataclass(frozen=True)
class Site:
    """One attention of one sample: ``heads`` slices of ``tokens`` queries, each head ``width`` wide."""

    node: int  # the node whose output is O
    form: str  # "primitive" or "chain"
    scale: float
    q_in: np.ndarray  # heads × tokens × width
    k_in: np.ndarray  # heads × keys × width
    v_in: np.ndarray  # heads × keys × width_v
    #: the scores with their mask: −∞ where masked (a float mask added)
    scores: np.ndarray
    grad_o: np.ndarray  # ∂L/∂O, heads × tokens × width_v
    loss: float
    q: Projection | None = None
    k: Projection | None = None
    v: Projection | None = None
    output: Output | None = None
    #: the residual: its other addend (tokens × width), its source node, H, ∂L/∂H
    residual: np.ndarray | None = None
    residual_source: int | None = None
    h: np.ndarray | None = None
    grad_h: np.ndarray | None = None
    norm: Norm | None = None
    #: the program's ∂L/∂Q, ∂L/∂K, ∂L/∂V in head layout (to check the section's own arithmetic against)
    program_grads: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def heads(self) -> int:
        return int(self.q_in.shape[0])

    @property
    def tokens(self) -> int:
        return int(self.q_in.shape[1])

    @property
    def width(self) -> int:
        return int(self.q_in.shape[2])


class _Graph:
    """The model's nodes, their consumers and the program's values of each node and its adjoint."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self.nodes = model.structure.nodes
        self.p: TensorProgram = program(model)
        self.values = self.p.values(model)
        self.shapes = structure_shapes(model.structure)
        self.forward: dict[int, str] = dict(self.p.leaves)
        self.adjoint: dict[int, str] = {}
        for d in self.p.definitions:
            if d.kind == "forward":
                self.forward[d.node] = d.symbol  # the last part of a node is its output
            elif d.kind == "adjoint" and d.node not in self.adjoint:
                self.adjoint[d.node] = d.symbol  # the first adjoint of a node is its output's
        self.users: dict[int, list[int]] = {}
        for i, node in enumerate(self.nodes):
            if isinstance(node, OpNode):
                for a in node.args:
                    if a is not None:
                        self.users.setdefault(a, []).append(i)

    def key(self, i: int | None) -> str:
        """The op key of node ``i`` ('' for a leaf or no node)."""
        node = None if i is None else self.nodes[i]
        return node.op.key if isinstance(node, OpNode) else ""

    def value(self, i: int) -> np.ndarray:
        node = self.nodes[i]
        if isinstance(node, Leaf) and node.kind == "number":
            return np.asarray(float(node.name))
        return np.asarray(self.values[self.forward[i]], dtype=float)

    def grad(self, i: int) -> np.ndarray | None:
        node = self.nodes[i]
        if isinstance(node, Leaf) and node.kind == "parameter":
            return np.asarray(self.values[self.p.gradients[node.name]], dtype=float)
        name = self.adjoint.get(i)
        return None if name is None else np.asarray(self.values[name], dtype=float)

    def number(self, i: int | None) -> float | None:
        node = None if i is None else self.nodes[i]
        return float(node.name) if isinstance(node, Leaf) and node.kind == "number" else None

    def up(self, i: int) -> tuple[int, list[int]]:
        """The first node above ``i`` that is not a shape op, and the shape ops from it down to ``i``."""
        path = []
        while self.key(i) in SHAPE_OPS and len([a for a in self.nodes[i].args if a is not None]) == 1:
            path.append(i)
            i = self.nodes[i].args[0]
        return i, path[::-1]

    def down(self, i: int) -> tuple[int | None, list[int]]:
        """The first node below ``i`` past shape ops with one user each, and those shape ops."""
        path = []
        while True:
            users = self.users.get(i, [])
            if len(users) != 1:
                return None, path
            if self.key(users[0]) not in SHAPE_OPS:
                return users[0], path
            i = users[0]
            path.append(i)

    def carry(self, ids: np.ndarray, path: list[int]) -> np.ndarray:
        """Element ids pushed through shape ops."""
        for i in path:
            ids = np.asarray(self.nodes[i].op.numpy_forward(ids))
        return ids


def _slices(value: np.ndarray) -> np.ndarray:
    """A (…, rows, columns) tensor as (slices, rows, columns)."""
    return value.reshape((-1,) + value.shape[-2:])


def _projection(g: _Graph, top: int, path: list[int], transposed: bool) -> Projection | None:
    """The linear layer making a Q, K or V (``transposed``: Kᵀ as the chain's matmul takes it)."""
    node = g.nodes[top]
    if g.key(top) != "linear":
        return None
    x_node, w_node, b_node = (list(node.args) + [None])[:3]
    out = g.value(top)
    features = out.shape[-1]
    ids = g.carry(np.arange(out.size, dtype=np.int64).reshape(out.shape), path)
    ids = _slices(np.swapaxes(ids, -1, -2) if transposed else ids)
    rows, columns = ids // features, ids % features
    if not ((rows == rows[:, :, :1]).all() and (rows == rows[:1]).all() and (columns == columns[:, :1]).all()):
        return None  # heads that do not share token rows, or a column that moves between tokens
    token_rows = rows[0, :, 0]
    order = tuple(int(c) for c in columns[:, 0, :].reshape(-1))
    x_all = g.value(x_node)
    x = x_all.reshape(-1, x_all.shape[-1])[token_rows]
    weight = g.value(w_node)[list(order)]
    bias = None if b_node is None else g.value(b_node)[list(order)]
    w_grad = g.grad(w_node)[list(order)]
    b_grad = None if b_node is None else g.grad(b_node)[list(order)]
    source = g.up(x_node)[0]
    out_rows = out.reshape(-1, features)[token_rows][:, list(order)]
    return Projection(g.nodes[w_node].name, order, None if b_node is None else g.nodes[b_node].name,
                      x, weight, bias, out_rows, source, w_grad, b_grad)


def _core(g: _Graph, i: int) -> dict[str, Any] | None:
    """The parts of an attention ending at node ``i`` (its O), in either form."""
    node = g.nodes[i]
    if g.key(i) == "attention":
        q, k, v = node.args[:3]
        mask = node.args[3] if len(node.args) > 3 else None
        Q, K = g.value(q), g.value(k)
        scale = node.op._scale(Q.shape[-1])
        scores = (Q @ np.swapaxes(K, -1, -2)) * scale
        L, S = scores.shape[-2:]
        keep = np.ones(scores.shape, dtype=bool)
        if node.op.causal:
            keep &= np.tril(np.ones((L, S), dtype=bool))
        if mask is not None:
            m = g.value(mask) if not node.op.boolean_mask else np.asarray(g.values[g.forward[mask]], dtype=bool)
            if node.op.boolean_mask:
                keep &= np.broadcast_to(m, scores.shape)
            else:
                scores = scores + m
        scores = np.where(keep, scores, -np.inf)
        return {"q": (q, False), "k": (k, False), "v": v, "scale": scale, "scores": scores, "form": "primitive"}
    if g.key(i) != "matmul" or g.key(g.up(node.args[0])[0]) != "softmax":
        return None
    weights = g.up(node.args[0])[0]
    soft = g.nodes[weights]
    if soft.op.dim not in (-1, len(g.shapes[weights]) - 1):
        return None
    scores = g.value(soft.args[0])
    scale, j = 1.0, soft.args[0]
    needs = _needs(g)
    while True:  # past masks, the scale and shape ops, up to the matmul Q Kᵀ
        j = g.up(j)[0]
        key, args = g.key(j), g.nodes[j].args if isinstance(g.nodes[j], OpNode) else ()
        numbers = [g.number(a) for a in args]
        if key in ("mul", "div") and len(args) == 2 and any(n is not None for n in numbers):
            c = next(n for n in numbers if n is not None)
            scale *= c if key == "mul" else 1 / c
            j = args[0] if numbers[1] is not None else args[1]
        elif key in ("where", "add", "alias") and sum(a is not None and needs[a] for a in args) == 1:
            j = next(a for a in args if a is not None and needs[a])
        else:
            break
    if g.key(j) != "matmul":
        return None
    left, right = g.nodes[j].args[:2]
    numbers = [g.number(a) for a in g.nodes[left].args] if g.key(left) == "mul" else []
    if any(n is not None for n in numbers):  # Q·c Kᵀ (nn.MultiheadAttention scales Q first)
        scale *= next(n for n in numbers if n is not None)
        left = g.nodes[left].args[0] if numbers[1] is not None else g.nodes[left].args[1]
    return {"q": (left, False), "k": (right, True), "v": node.args[1], "scale": scale, "scores": scores,
            "form": "chain"}


def _needs(g: _Graph) -> list[bool]:
    from derive.tensor.program import needs_gradient

    return needs_gradient(g.model.structure)


def _site(g: _Graph, i: int, core: dict[str, Any]) -> Site:
    (q, _), (k, k_t), v = core["q"], core["k"], core["v"]
    Q, V = _slices(g.value(q)), _slices(g.value(v))
    K = _slices(np.swapaxes(g.value(k), -1, -2) if k_t else g.value(k))
    scores = _slices(core["scores"])
    grad_o = _slices(g.grad(i))
    grads = {}
    for name, node, t in (("q", q, False), ("k", k, k_t), ("v", v, False)):
        value = g.grad(node)
        if value is not None:
            grads[name] = _slices(np.swapaxes(value, -1, -2) if t else value)
    parts: dict[str, Any] = {}
    for name, (node, t) in (("q", (q, False)), ("k", (k, k_t)), ("v", (v, False))):
        top, path = g.up(node)
        parts[name] = _projection(g, top, path, t)
    site = Site(i, core["form"], float(core["scale"]), Q, K, V, scores, grad_o, float(g.values["L"]),
                program_grads=grads, **parts)
    return _after(g, site)


def _after(g: _Graph, site: Site) -> Site:
    """The output projection, the residual addition and the LayerNorm after the attention, where present."""
    import dataclasses

    top, path = g.down(site.node)
    if top is None or g.key(top) != "linear" or g.nodes[top].args[0] != (path[-1] if path else site.node):
        return site
    o_node = path[-1] if path else site.node
    shape = g.shapes[site.node]  # where each O element lands in the projection's input:
    o_ids = np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape)
    carried = g.carry(o_ids, path).reshape(-1, g.shapes[o_node][-1])
    heads, tokens, width = site.grad_o.shape
    if carried.shape != (tokens, heads * width):
        return site
    h_of, rest = carried // (tokens * width), carried % (tokens * width)
    t_of, e_of = rest // width, rest % width
    if not (t_of == np.arange(tokens)[:, None]).all():
        return site
    column = np.empty(heads * width, dtype=np.int64)  # concatenation column (h, e) → the layer's input column
    column[(h_of * width + e_of)[0]] = np.arange(heads * width)
    _, w_node, b_node = (list(g.nodes[top].args) + [None])[:3]
    weight, w_grad = g.value(w_node)[:, column], g.grad(w_node)[:, column]
    out = g.value(top).reshape(tokens, -1)
    output = Output(g.nodes[w_node].name, None if b_node is None else g.nodes[b_node].name, weight,
                    None if b_node is None else g.value(b_node), out, g.grad(top).reshape(tokens, -1), w_grad,
                    None if b_node is None else g.grad(b_node), top)
    site = dataclasses.replace(site, output=output)
    add, _ = g.down(top)
    if add is None or g.key(add) != "add":
        return site
    others = [a for a in g.nodes[add].args if a is not None and g.up(a)[0] != top]
    if len(others) != 1 or np.size(g.value(others[0])) != out.size:
        return site
    source = g.up(others[0])[0]
    h, grad_h = g.value(add).reshape(tokens, -1), g.grad(add).reshape(tokens, -1)
    site = dataclasses.replace(site, residual=g.value(others[0]).reshape(tokens, -1), residual_source=source,
                               h=h, grad_h=grad_h)
    users = g.users.get(add, [])
    norms = [u for u in users if g.key(u) == "layer_norm" and g.nodes[u].args[0] == add and g.nodes[u].op.dims == 1]
    if len(norms) != 1 or None in g.nodes[norms[0]].args[1:3] or len(g.nodes[norms[0]].args) < 3:
        return site
    n = norms[0]
    _, gamma, beta = g.nodes[n].args[:3]
    norm = Norm(g.nodes[gamma].name, g.nodes[beta].name, float(g.nodes[n].op.eps), g.value(gamma), g.value(beta),
                g.value(n).reshape(tokens, -1), g.grad(n).reshape(tokens, -1), g.grad(gamma), g.grad(beta))
    return dataclasses.replace(site, norm=norm)


def sites(model: Model) -> list[Site]:
    """Every attention of ``model`` that the chapter can work through (batch 1), in forward order."""
    if model.batch != 1:
        return []
    g = _Graph(model)
    found = []
    for i in range(len(g.nodes)):
        core = _core(g, i)
        if core is not None and g.grad(i) is not None:
            found.append(_site(g, i, core))
    return found


def jacobian(a: np.ndarray) -> np.ndarray:
    """The softmax Jacobian of one row of weights, ∂a_i/∂s_j = a_i(δ_ij − a_j) = diag(a) − a aᵀ."""
    return np.diag(a) - np.outer(a, a)


@dataclass(frozen=True)
class Backward:
    """One site's attention backward, head by head: from ∂L/∂O to ∂L/∂Q, ∂L/∂K, ∂L/∂V."""

    weights: np.ndarray  # A
    out: np.ndarray  # O = A V
    grad_weights: np.ndarray  # ∂L/∂A = ∂L/∂O Vᵀ
    grad_v: np.ndarray  # Aᵀ ∂L/∂O
    rowsum: np.ndarray  # r = (A ⊙ ∂L/∂A) 1
    grad_scores: np.ndarray  # A ⊙ (∂L/∂A − r 1ᵀ)
    grad_q: np.ndarray  # ∂L/∂S K · scale
    grad_k: np.ndarray  # ∂L/∂Sᵀ Q · scale


def backward(site: Site) -> Backward:
    """The attention's tensor rule on the site's numbers."""
    A = softmax_rows(site.scores)
    dA = site.grad_o @ np.swapaxes(site.v_in, -1, -2)
    r = (A * dA).sum(axis=-1)
    dS = A * (dA - r[..., None])
    return Backward(A, A @ site.v_in, dA, np.swapaxes(A, -1, -2) @ site.grad_o, r, dS,
                    dS @ site.k_in * site.scale, np.swapaxes(dS, -1, -2) @ site.q_in * site.scale)
