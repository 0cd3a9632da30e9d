r"""A graph model's compiled gradient as one generated Python function: the op-by-op plan of
`verify.graph_compile` written out line by line, so that a call runs no interpreter loop, list or dict.

Each op node becomes ``v7 = f7(v5, v6)`` in the forward pass (``v7, s7 = f7(…)`` where the op keeps something
for its backward: max pooling's winners, an addition's input shapes), followed by ``del`` of every value no
backward rule reads, after its last use, as autograd frees what it has not saved. The backward pass is, last
op first, ``r = b7(g7, [v5, v6], v7, (True, False), s7)`` and each contribution added to its input's adjoint,
then ``del`` of the values no later rule reads. The functions ``f7`` and ``b7`` are the ops' own (`TensorOp.forward`,
`TensorOp.backward`), bound once, so the generated code holds derive's own names only.

>>> import numpy as np
>>> from derive.model.build import ModelBuilder
>>> from verify.graph_compile import compile_model
>>> b = ModelBuilder()
>>> x = b.input("x", (1, 2))
>>> h = b.op("linear", x, b.parameter("fc.weight", np.eye(2)), b.parameter("fc.bias", np.zeros(2)))
>>> model = b.model(b.op("add", x, b.op("activate", h, activation="tanh")), x=np.ones((1, 2)), y=np.zeros((1, 2)),
...                 loss="mse")
>>> print(compile_model(model).source)
def run(x, y, p0, p1):
    v0 = x
    v1 = p0
    v2 = p1
    v3 = f3(v0, v1, v2)
    v4, s4 = f4(v3)
    del v3
    v5, s5 = f5(v0, v4)
    g5 = _loss_gradient(v5, y)
    del v5
    g1 = g2 = g3 = g4 = None
    if g5 is not None:
        r = b5(g5, [v0, v4], None, (False, True), s5)
        g4 = _add(g4, r[1])
        del r
    del g5, s5
    if g4 is not None:
        r = b4(g4, [None], v4, (True,), s4)
        g3 = _add(g3, r[0])
        del r
    del v4, g4, s4
    if g3 is not None:
        r = b3(g3, [v0, v1, v2], None, (False, True, True), None)
        g1 = _add(g1, r[1])
        g2 = _add(g2, r[2])
        del r
    del g3
    return [g1 if g1 is not None else _zeros_like(p0), g2 if g2 is not None else _zeros_like(p1)]
<BLANKLINE>
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from derive.model.graph import Leaf, OpNode, Structure
from derive.ops.tensor import TensorOp


def _add(total: Any, part: Any) -> Any:
    """An adjoint's running sum; a rule may give no contribution (None)."""
    if part is None:
        return total
    return part if total is None else total + part


def _drop(lines: list[str], indent: str, names: list[str]) -> None:
    if names:
        lines.append(f"{indent}del {', '.join(names)}")


def _arguments(node: OpNode) -> list[str]:
    """The op's inputs as names, absent trailing optional ones dropped (as the op's lowering takes them)."""
    names = ["None" if a is None else f"v{a}" for a in node.args]
    while names and names[-1] == "None":
        names.pop()
    return names


def straight_line(structure: Structure, parameter_nodes: Sequence[int], needs_gradient: Sequence[bool],
                  leaf: Callable[[int], Any], loss_gradient: Callable[[Any, Any], Any],
                  zeros_like: Callable[[Any], Any]) -> tuple[Callable[..., list[Any]], str]:
    """``run(x, y, *params) -> [∂L/∂p, …]`` and its source. ``leaf(i)`` gives a function ``(x) -> value`` of a
    constant leaf. An op's value is kept past its last use in the forward pass only where a backward rule reads
    it (`TensorOp.reads`), and deleted after the last rule that reads it, as autograd frees a saved tensor
    when the node that saved it has run."""
    nodes = structure.nodes
    namespace: dict[str, Any] = {"_add": _add, "_zeros_like": zeros_like, "_loss_gradient": loss_gradient}
    parameters = {index: k for k, index in enumerate(parameter_nodes)}
    lines = [f"def run(x, y, {', '.join(f'p{k}' for k in range(len(parameter_nodes)))}):"]
    readers: dict[int, set[int]] = {}  # the ops whose backward rule reads each op's value
    for i, node in enumerate(nodes):
        if isinstance(node, OpNode):
            reads_inputs, reads_output = node.op.reads()
            if reads_output:
                readers.setdefault(i, set()).add(i)
            for a in node.args if reads_inputs else ():
                if a is not None and isinstance(nodes[a], OpNode):
                    readers.setdefault(a, set()).add(i)
    alive: set[int] = set()
    last_use = {a: i for i, node in enumerate(nodes) if isinstance(node, OpNode) for a in node.args if a is not None}
    keeps: set[int] = set()
    for i, node in enumerate(nodes):
        if isinstance(node, Leaf):
            if node.kind == "input" and node.name in ("x", "y"):
                lines.append(f"    v{i} = {node.name}")
            elif node.kind == "parameter":
                lines.append(f"    v{i} = p{parameters[i]}")
            elif node.kind == "number":
                namespace[f"n{i}"] = int(node.name) if node.name.lstrip("-").isdigit() else float(node.name)
                lines.append(f"    v{i} = n{i}")
            else:
                namespace[f"c{i}"] = leaf(i)
                lines.append(f"    v{i} = c{i}(x)")
            alive.add(i)
            continue
        op: TensorOp = node.op
        call = f"({', '.join(_arguments(node))})"
        if type(op).forward_saving is not TensorOp.forward_saving:
            namespace[f"f{i}"] = op.forward_saving
            lines.append(f"    v{i}, s{i} = f{i}{call}")
            keeps.add(i)
        else:
            namespace[f"f{i}"] = op.forward
            lines.append(f"    v{i} = f{i}{call}")
        alive.add(i)
        done = sorted({a for a in node.args if a is not None and last_use[a] == i and a in alive
                       and isinstance(nodes[a], OpNode) and a not in readers and a != structure.output})
        _drop(lines, "    ", [f"v{a}" for a in done])
        alive -= set(done)
    output = structure.output
    adjoints = {output}  # nodes an adjoint reaches (a rule may still give one no contribution: None)
    for i in reversed(range(len(nodes))):
        if isinstance(nodes[i], OpNode) and i in adjoints:
            adjoints.update(a for a in nodes[i].args if a is not None and needs_gradient[a])
    lines.append(f"    g{output} = _loss_gradient(v{output}, y)")
    release: dict[int, list[int]] = {}  # after which rule each kept value is read for the last time
    for a in sorted(alive):
        if isinstance(nodes[a], OpNode):
            release.setdefault(min((j for j in readers.get(a, ()) if j in adjoints), default=-1), []).append(a)
    unread = release.pop(-1, [])  # kept for a rule that no adjoint reaches
    _drop(lines, "    ", [f"v{a}" for a in unread])
    alive -= set(unread)
    if len(adjoints) > 1:
        lines.append(f"    {' = '.join(f'g{a}' for a in sorted(adjoints - {output}))} = None")
    for i in reversed(range(len(nodes))):
        node = nodes[i]
        if not isinstance(node, OpNode) or i not in adjoints:
            continue
        wanted = tuple(a is not None and needs_gradient[a] for a in node.args)
        namespace[f"b{i}"] = node.op.backward
        inputs = ", ".join(name if name == "None" or int(name[1:]) in alive else "None" for name in _arguments(node))
        out = f"v{i}" if i in alive else "None"
        lines.append(f"    if g{i} is not None:")
        lines.append(f"        r = b{i}(g{i}, [{inputs}], {out}, {wanted!r}, {f's{i}' if i in keeps else 'None'})")
        lines.extend(f"        g{a} = _add(g{a}, r[{k}])" for k, (a, want) in enumerate(zip(node.args, wanted)) if want)
        lines.append("        del r")  # as soon as each contribution has its place: the peak stays autograd's
        done = release.pop(i, [])
        _drop(lines, "    ", [f"v{a}" for a in done] + [f"g{i}"] + ([f"s{i}"] if i in keeps else []))
        alive -= set(done)
    gradients = [f"_zeros_like(p{k})" if index not in adjoints else f"g{index} if g{index} is not None else "
                 f"_zeros_like(p{k})" for k, index in enumerate(parameter_nodes)]
    lines.append(f"    return [{', '.join(gradients)}]")
    source = "\n".join(lines) + "\n"
    exec(compile(source, "<derive compiled gradient>", "exec"), namespace)  # noqa: S102 - derive's own names only
    return namespace["run"], source

