r"""Through time: how the gradient of a recurrent model shrinks or grows from the last step to the first.

For every sequence of hidden states h₁ … h_T (one per recurrent layer, or one cell called at every step), a
table of each step's ‖∂L/∂h_t‖ (the norm of its error terms δ) and ‖∂h_T/∂h_t‖₂, the spectral norm of the
product of the step Jacobians ∂h_{t+1}/∂h_t — the vanishing (or exploding) gradient, in numbers. The
Jacobians are accumulated numerically from the derived local partials, in reverse from each element of h_T.

>>> import torch, derive
>>> class Net(torch.nn.Module):
...     def __init__(self):
...         super().__init__()
...         torch.manual_seed(0)
...         self.rnn = torch.nn.RNN(1, 2, batch_first=True)
...     def forward(self, x):
...         return self.rnn(x)[0][:, -1]
>>> model = derive.from_torch(Net(), loss="mse", x=[[[1.0], [0.5], [-1.0]]], y=[[0.0, 1.0]])
>>> rows = through_time(derive.derive(model))["state:rnn_l0"]
>>> [t for t, _, _ in rows], rows[-1][2]
([1, 2, 3], 1.0)
"""

from __future__ import annotations

import numpy as np

from derive.derivation import Derivation
from derive.model.graph import OpNode
from derive.numeric import evaluate
from derive.report.document import Heading, Paragraph, Table
from derive.report.labels import label

#: Jacobians are accumulated up to this many (seed elements × nodes) partial evaluations.
MAX_WORK = 2_000_000


def sequences(d: Derivation) -> dict[str, list[int]]:
    """The hidden-state nodes of each recurrent sequence, in step order (by the reader's ``role``)."""
    found: dict[str, list[int]] = {}
    for i, node in enumerate(d.graph.structure.nodes):
        if isinstance(node, OpNode) and node.role.startswith("state:"):
            found.setdefault(node.role, []).append(i)
    return {role: indices for role, indices in found.items() if len(indices) > 1}


def through_time(d: Derivation) -> dict[str, list[tuple[int, float, float]]]:
    """For each sequence: (t, ‖∂L/∂h_t‖, ‖∂h_T/∂h_t‖₂) for t = 1 … T."""
    g, values = d.graph, d.values
    position = {n.symbol: k for k, n in enumerate(g.nodes)}
    result = {}
    for role, indices in sequences(d).items():
        states = [list(g.tensors[i].reshape(-1)) for i in indices]
        last = states[-1]
        first = min(position[e] for e in states[0])
        if len(last) * (position[last[-1]] - first) > MAX_WORK:
            continue
        local = {k: [(dep, evaluate(p, values)) for dep, p in g.nodes[k].partials]
                 for k in range(first, max(position[e] for e in last) + 1)}
        rows = np.zeros((len(last), len(indices), len(states[0])))
        for r, seed in enumerate(last):
            adjoint = {seed: 1.0}
            for k in range(position[seed], first - 1, -1):
                a = adjoint.get(g.nodes[k].symbol)
                if a:
                    for dep, value in local[k]:
                        adjoint[dep] = adjoint.get(dep, 0.0) + a * value
            for t, elements in enumerate(states):
                rows[r, t] = [adjoint.get(e, 0.0) for e in elements]
        deltas = d.backprop.adjoint_symbols
        result[role] = [
            (t + 1, float(np.linalg.norm([values[deltas[e]] for e in elements])), float(np.linalg.norm(rows[:, t], 2)))
            for t, elements in enumerate(states)
        ]
    return result


def through_time_section(d: Derivation, lang: str, number) -> list:
    """The section (empty for a model without recurrent states)."""
    tables = through_time(d)
    if not tables:
        return []
    blocks: list = [Heading(2, label(lang, "through_time")), Paragraph(label(lang, "through_time_text"))]
    for role, rows in tables.items():
        blocks.append(Paragraph(label(lang, "through_time_of", name=role.removeprefix("state:"))))
        blocks.append(Table(
            ("t", r"\lVert \partial \mathcal{L} / \partial h_t \rVert", r"\lVert \partial h_T / \partial h_t \rVert_2"),
            ("t", "‖∂L/∂h_t‖", "‖∂h_T/∂h_t‖₂"),
            tuple((str(t), number(delta), number(jacobian)) for t, delta, jacobian in rows),
        ))
    return blocks
