r"""The tensor program: reverse mode over the model graph at the tensor level, from each op's tensor rule.

One definition per op output (its forward), then the loss and ∂L/∂Ŷ, then one definition per tensor
adjoint ∂L/∂v, last op first, each the sum of what the ops using v contribute (`TensorOp.tensor_rule`), and
one per parameter tensor's gradient: a straight-line program whose size grows with the number of ops, not
with batch, width or image size. A tensor used several times (a residual, a tied weight) gets its
contributions summed once. Values are computed in float64 by NumPy (torch where an op has no NumPy form).

>>> import derive
>>> p = program(derive.examples.seed().replace(x=[[1, 1], [0, 1]], y=[[0], [1]]))
>>> [d.symbol for d in p.definitions][:4]
['Z_1', 'A_1', 'Z_2', 'A_2']
>>> [str(d.expr) for d in p.definitions if d.symbol == "dL_dW_2"]
['transpose(dL_dZ_2) @ A_1']
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from derive.errors import DeriveError
from derive.model.graph import OWN_LOSS, Leaf, Model, OpGroup, OpNode, Structure, target_layout
from derive.model.names import _identifier, latex_text, parameter_base
from derive.tensor.expr import Num, Ref, TExpr, call, substitute
from derive.tensor.functions import evaluate


@dataclass(frozen=True)
class Definition:
    """``symbol = expr``: a tensor of the program, with its shape and LaTeX name; ``kind`` is "forward",
    "loss", "adjoint" or "gradient"."""

    symbol: str
    expr: TExpr
    shape: tuple[int, ...]
    kind: str
    latex_name: str
    #: the structure node it belongs to (-1: the loss)
    node: int = -1


@dataclass
class TensorProgram:
    """The definitions of one structure, and what each leaf is called."""

    structure: Structure
    definitions: list[Definition]
    #: each leaf's tensor name, by structure index
    leaves: dict[int, str]
    #: each parameter tensor's gradient symbol, by torch key
    gradients: dict[str, str]
    #: the model's output (what the loss takes)
    output_symbol: str
    latex_names: dict[str, str] = field(default_factory=dict)

    def values(self, model: Any, backend: str = "numpy") -> dict[str, Any]:
        """Every tensor of the program, computed from the model's (or chain network's) numbers (float64)."""
        env = leaf_values(self, as_model(model), backend)
        for d in self.definitions:
            env[d.symbol] = evaluate(d.expr, env, backend)
        return env


def leaf_values(p: TensorProgram, model: Model, backend: str = "numpy") -> dict[str, Any]:
    """The leaves' tensors: data, parameters, constants, literals and numbers."""
    env: dict[str, Any] = {"none": None}
    if p.structure.loss != OWN_LOSS:  # the loss's targets as rows (class indices one-hot)
        targets = np.asarray(model.target_rows(), dtype=np.float64)
        env["T"] = targets if backend == "numpy" else _to_torch(targets)
    for index, name in p.leaves.items():
        leaf = p.structure.nodes[index]
        if leaf.kind == "number":
            continue
        if leaf.kind == "literal":
            value = np.array(leaf.numbers, dtype=np.float64 if leaf.dtype == "float64" else (
                bool if leaf.dtype == "bool" else np.int64)).reshape(leaf.shape)
        elif leaf.integers is not None:
            value = np.array(leaf.integers, dtype=np.int64).reshape(leaf.shape)
        elif leaf.kind == "input":
            value = np.asarray(model.x if leaf.name == "x" else model.y)
            value = value.astype(np.float64) if value.dtype.kind == "f" else value
        else:
            value = np.asarray(model.values[leaf.name], dtype=np.float64)
        env[name] = value if backend == "numpy" else _to_torch(value)
    return env


def _to_torch(value: np.ndarray) -> Any:
    import torch

    return torch.from_numpy(np.ascontiguousarray(value))


@functools.lru_cache(maxsize=32)
def build(structure: Structure) -> TensorProgram:
    """The tensor program of a structure (cached: values do not change it)."""
    return _Builder(structure).build()


def program(network: Any) -> TensorProgram:
    """The tensor program of a model, or of a chain `Network` (its dense ops, with the textbook's names)."""
    return build(as_structure(network))


def as_model(network: Any) -> Model:
    """A model, or a `Network` as its `ChainModel` (`Network.model`)."""
    if network.textbook and (network.l1 or network.l2):
        raise DeriveError("the tensor form does not take penalties (--l2, --l1) yet: use the closed or program form")
    return network.model()


def as_structure(network: Any) -> Structure:
    if not hasattr(network, "textbook"):
        raise DeriveError(f"a tensor program needs a model or a network, got {type(network).__name__}")
    return network.model().structure


class _Builder:
    def __init__(self, structure: Structure) -> None:
        self.structure = structure
        self.textbook = structure.naming == "textbook"
        self.names: dict[int, str] = {}
        self.latex: dict[str, str] = {}
        self.definitions: list[Definition] = []
        self.parts: dict[int, dict[str, str]] = {}
        #: adjoint parts an op names itself (a recurrence's states through time): (symbol, LaTeX) by part
        self.own_parts: dict[int, dict[str, tuple[str, str]]] = {}
        self.taken: set[str] = {"none", "L", "T"}
        self.layer = 0

    def unique(self, name: str) -> str:
        while name in self.taken:
            name += "_"
        self.taken.add(name)
        return name

    def leaf_name(self, index: int, leaf: Leaf) -> str:
        if leaf.kind == "input":
            name, latex = ("X", "X") if leaf.name == "x" else ("Y", "Y") if leaf.name == "y" else (
                _identifier(leaf.name), latex_text(leaf.name))
        elif leaf.kind == "parameter":
            if self.textbook:
                layer = self.layer + 1  # a chain's weight and bias come just before their dense op
                letter = "W" if leaf.name.endswith("weight") else "b"
                name, latex = f"{letter}_{layer}", f"{letter}^{{({layer})}}"
            else:
                name, latex = parameter_base(leaf.name)
        else:
            name, latex = _identifier(leaf.name), latex_text(leaf.name)
        name = self.unique(name)
        self.latex[name] = latex
        return name

    def op_name(self, node: OpNode, part: str = "") -> tuple[str, str]:
        if self.textbook and node.op.key == "dense":
            letter = {"z": "Z", "": "A"}.get(part, part)
            return f"{letter}_{self.layer}", f"{letter}^{{({self.layer})}}"
        base = _identifier(node.name) + (f"_{part}" if part else "")
        return base, latex_text(node.name + (f"_{part}" if part else ""))

    def build(self) -> TensorProgram:
        s = self.structure
        needs = needs_gradient(s)
        shapes = structure_shapes(s)
        inner = inner_nodes(s)
        for i, node in enumerate(s.nodes):
            if isinstance(node, Leaf):
                if node.kind != "number":
                    self.names[i] = self.leaf_name(i, node)
                continue
            if i in inner:  # a group's steps: the group's op, once, where its outputs are
                for group in s.groups:
                    if i == min(group.outputs):
                        self.forward_group(group, shapes)
                continue
            if node.op.key == "dense":
                self.layer += 1
            inputs = [self.ref(a) for a in node.args]
            while inputs and inputs[-1] is None:
                inputs.pop()
            inputs = [Ref("none") if e is None else e for e in inputs]
            forward = node.op.tensor_forward(inputs)
            steps = forward if isinstance(forward, list) else [("", forward)]
            parts: dict[str, str] = {}
            for part, expr in steps:
                expr = substitute(expr, {f"@{p}": Ref(n) for p, n in parts.items()})  # earlier parts by name
                name, latex = self.op_name(node, part)
                name = self.unique(name)
                self.latex[name] = latex
                self.definitions.append(Definition(name, expr, shapes[i] if part == "" else (), "forward", latex, i))
                parts[part] = name
            self.names[i] = parts[""]
            self.parts[i] = parts
        out = self.names[s.output]
        if s.loss == OWN_LOSS:  # forward(x, y) returns L itself
            loss, gradient = Ref(out), call("ones", shape=shapes[s.output])
        else:
            batch, width, _ = target_layout(s)
            options = {"loss": s.loss, "reduction": s.reduction, "rows": (batch, width)}
            loss, gradient = call("loss", Ref(out), Ref("T"), **options), call("loss_grad", Ref(out), Ref("T"), **options)
            self.latex["T"] = "T"
        self.definitions.append(Definition("L", loss, (), "loss", r"\mathcal{L}"))
        self.latex["L"] = r"\mathcal{L}"
        contributions: dict[int, list[TExpr]] = {s.output: [gradient]}  # ∂L/∂Ŷ: the loss's own derivative
        for i in reversed(range(len(s.nodes))):
            node = s.nodes[i]
            if i in inner:
                for group in s.groups:
                    if i == max(group.outputs):
                        self.backward_group(group, contributions, needs, shapes)
                continue
            if not isinstance(node, OpNode) or i not in contributions or not needs[i]:
                continue
            adjoint = self.adjoint(i, contributions.pop(i), shapes[i])
            self.apply_rule(i, node.op, node.args, adjoint, shapes[i], needs, shapes, contributions)
        gradients: dict[str, str] = {}
        for i, node in enumerate(s.nodes):
            if isinstance(node, Leaf) and node.kind == "parameter":
                terms = contributions.get(i) or [call("zeros", shape=shapes[i])]
                name = self.unique(f"dL_d{self.names[i]}")
                latex = rf"\frac{{\partial \mathcal{{L}}}}{{\partial {self.latex[self.names[i]]}}}"
                self.latex[name] = latex
                self.definitions.append(Definition(name, _total(terms), shapes[i], "gradient", latex, i))
                gradients[node.name] = name
        leaves = {i: n for i, n in self.names.items() if isinstance(s.nodes[i], Leaf)}
        return TensorProgram(s, self.definitions, leaves, gradients, out, self.latex)

    def apply_rule(self, i: int, op: Any, args: tuple[int | None, ...], adjoint: str, shape: tuple[int, ...],
                   needs: list[bool], shapes: dict[int, tuple[int, ...]], contributions: dict[int, list[TExpr]]) -> None:
        """The op's adjoint parts and its contribution to each input's adjoint, from its output's ``adjoint``."""
        wanted = [a is not None and needs[a] for a in args]
        inputs = [self.ref(a) or Ref("none") for a in args]
        arg_shapes = [shapes[a] if a is not None else None for a in args]
        parts: dict[str, TExpr] = {part: Ref(name) for part, name in self.parts[i].items()}
        for part, expr in op.tensor_adjoint_parts(Ref(adjoint), inputs, parts, arg_shapes, shape):
            expr = substitute(expr, {f"@{p}": r for p, r in parts.items()})  # earlier adjoints by name
            symbol, symbol_latex = self.own_parts.get(i, {}).get(part) or (self.parts[i][part],
                                                                           self.latex[self.parts[i][part]])
            name = self.unique(f"dL_d{symbol}")
            latex = rf"\frac{{\partial \mathcal{{L}}}}{{\partial {symbol_latex}}}"
            self.latex[name] = latex
            self.definitions.append(Definition(name, expr, (), "adjoint", latex, i))
            parts["d" + part] = Ref(name)
        rules = op.tensor_rule(Ref(adjoint), inputs, parts, wanted, arg_shapes, shape)
        for a, rule in zip(args, rules):
            if a is not None and rule is not None and needs[a]:
                contributions.setdefault(a, []).append(rule)

    def forward_group(self, group: OpGroup, shapes: dict[int, tuple[int, ...]]) -> None:
        """The group's op as one definition (a recurrent layer's states), then each of its outputs from it."""
        inputs = [self.ref(a) or Ref("none") for a in group.args]
        anchor = min(group.outputs)
        states = self.unique(_identifier(f"{group.name}_states"))
        self.latex[states] = latex_text(f"{group.name}_states")
        self.definitions.append(Definition(states, group.op.tensor_forward(inputs), group_shape(group, shapes),
                                           "forward", self.latex[states], anchor))
        self.parts[anchor] = {"": states}
        self.own_parts[anchor] = {part: (f"{group.name}_{part}", latex_text(f"{group.name}_{part}"))
                                  for part in ("h", "z")}
        for index, expr in zip(group.outputs, group.op.tensor_outputs(Ref(states))):
            name, latex = self.op_name(self.structure.nodes[index])
            name = self.unique(name)
            self.latex[name] = latex
            self.definitions.append(Definition(name, expr, shapes[index], "forward", latex, index))
            self.names[index] = name

    def backward_group(self, group: OpGroup, contributions: dict[int, list[TExpr]], needs: list[bool],
                       shapes: dict[int, tuple[int, ...]]) -> None:
        """The adjoints of the group's outputs, the adjoint of its op's value from them, then its op's rule."""
        adjoints: list[TExpr] = []
        for index in group.outputs:
            terms = contributions.pop(index, None)
            adjoints.append(Ref(self.adjoint(index, terms, shapes[index])) if terms and needs[index] else Ref("none"))
        if all(a == Ref("none") for a in adjoints):
            return
        anchor = min(group.outputs)
        states = self.parts[anchor][""]
        name = self.unique(f"dL_d{states}")
        latex = rf"\frac{{\partial \mathcal{{L}}}}{{\partial {self.latex[states]}}}"
        self.latex[name] = latex
        shape = group_shape(group, shapes)
        self.definitions.append(Definition(name, group.op.tensor_scatter(Ref(states), adjoints), shape, "adjoint",
                                           latex, anchor))
        self.apply_rule(anchor, group.op, group.args, name, shape, needs, shapes, contributions)

    def ref(self, index: int | None) -> TExpr | None:
        if index is None:
            return None
        node = self.structure.nodes[index]
        if isinstance(node, Leaf) and node.kind == "number":
            return Num(float(node.name))
        return Ref(self.names[index])

    def adjoint(self, index: int, terms: list[TExpr], shape: tuple[int, ...]) -> str:
        symbol = self.names[index]
        name = self.unique(f"dL_d{symbol}")
        latex = rf"\frac{{\partial \mathcal{{L}}}}{{\partial {self.latex[symbol]}}}"
        self.latex[name] = latex
        self.definitions.append(Definition(name, _total(terms), shape, "adjoint", latex, index))
        return name


def _total(terms: list[TExpr]) -> TExpr:
    total = terms[0]
    for term in terms[1:]:
        total = call("add", total, term)
    return total


def inner_nodes(structure: Structure) -> frozenset[int]:
    """The op nodes the program leaves to their groups (a recurrent layer's steps, `OpGroup.inner`)."""
    return frozenset().union(*(g.inner(structure) for g in structure.groups))


def op_count(structure: Structure) -> int:
    """How many ops the program has: a group (a recurrent layer call) is one.

    >>> import derive
    >>> op_count(program(derive.examples.seed()).structure)
    2
    """
    inner = inner_nodes(structure)
    return sum(isinstance(n, OpNode) and i not in inner for i, n in enumerate(structure.nodes)) + len(structure.groups)


def group_shape(group: OpGroup, shapes: dict[int, tuple[int, ...]]) -> tuple[int, ...]:
    """The shape of a group op's value, from its inputs' shapes."""
    return group.op.proof_output_shape([shapes[a] if a is not None else None for a in group.args])


def structure_shapes(structure: Structure) -> dict[int, tuple[int, ...]]:
    """Every node's shape, from one forward pass in NumPy on stand-in values (0.5; the data that chooses
    elements as it is): no scalar lowering, whatever the model's size."""
    return _stand_in(structure)[0]


@functools.lru_cache(maxsize=32)
def _stand_in(structure: Structure) -> tuple[dict[int, tuple[int, ...]], frozenset[int]]:
    """Every node's shape, and the nodes whose values are real numbers (not masks or indices)."""
    values: list[Any] = []
    shapes: dict[int, tuple[int, ...]] = {}
    real: set[int] = set()
    with np.errstate(all="ignore"):
        for i, node in enumerate(structure.nodes):
            if isinstance(node, Leaf):
                if node.kind == "number":
                    value: Any = float(node.name)
                elif node.kind == "literal":
                    value = np.array(node.numbers, dtype=np.float64 if node.dtype == "float64" else (
                        bool if node.dtype == "bool" else np.int64)).reshape(node.shape)
                elif node.integers is not None:
                    value = np.array(node.integers, dtype=np.int64).reshape(node.shape)
                else:
                    value = np.full(node.shape, 0.5)
            else:
                inputs = [None if a is None else values[a] for a in node.args]
                while inputs and inputs[-1] is None:
                    inputs.pop()
                value = node.op.numpy_forward(*inputs)
            values.append(value)
            shapes[i] = tuple(np.shape(value))
            if np.asarray(value).dtype.kind in "fc":
                real.add(i)
    return shapes, frozenset(real)


def needs_gradient(structure: Structure) -> list[bool]:
    """Which nodes' adjoints the program defines: parameters, and the real-valued ops that use them (a
    comparison's mask has no gradient)."""
    real = _stand_in(structure)[1]
    needs: list[bool] = []
    for i, node in enumerate(structure.nodes):
        needs.append(node.kind == "parameter" if isinstance(node, Leaf) else
                     i in real and node.op.differentiable and any(a is not None and needs[a] for a in node.args))
    return needs


def gradient_values(p: TensorProgram, model: Model, backend: str = "numpy") -> dict[str, np.ndarray]:
    """∂L/∂p of every parameter tensor, by torch key."""
    values = p.values(model, backend)
    return {key: values[name] for key, name in p.gradients.items()}


__all__ = ["Definition", "TensorProgram", "build", "gradient_values", "leaf_values", "program"]

