"""Graph models in spec files: named parameter tensors and a list of ops, read as data (no evaluation).

A spec with an ``[[ops]]`` list describes a graph model. Each op names its ``op`` (a key of the tensor-op
registry, docs/ops.md), its ``inputs`` (``"x"``, a parameter's key, an earlier op's ``name``, or a number)
and the op's attributes as keys (``activation = "tanh"``, ``dims = [1]``, ``keepdim = true``). The last op
is the model's output, unless ``output`` names another.

>>> model = loads_graph_spec('''
... loss = "mse"
... [data]
... x = [[1.0, 2.0]]
... y = [[0.5, 0.0]]
... [parameters]
... "fc.weight" = [[0.1, 0.2], [0.3, 0.4]]
... [[ops]]
... name = "fc"
... op = "linear"
... inputs = ["x", "fc.weight"]
... [[ops]]
... name = "residual"
... op = "add"
... inputs = ["x", "fc"]
... ''')
>>> model.tensor_keys, [n.name for n in model.structure.nodes if hasattr(n, "op")]
(['fc.weight'], ['fc', 'residual'])
"""

from __future__ import annotations

import dataclasses
import tomllib
from typing import Any

from derive.errors import DeriveError, SpecError, did_you_mean
from derive.model.build import ModelBuilder, Ref
from derive.model.graph import Model
from derive.ops.tensor import OPS

_TOP = {"loss", "reduction", "lr", "data", "parameters", "constants", "ops", "output", "name", "freeze"}
_OP = {"name", "op", "inputs"}


def loads_graph_spec(text: str, *, where: str = "spec") -> Model:
    """A graph model from TOML spec text (JSON specs go through `derive.loads_spec`)."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise SpecError(f"{where}: malformed TOML: {err}") from None
    return from_graph_document(document, where=where)


def from_graph_document(document: dict, *, where: str = "spec") -> Model:
    """Build a graph model from a parsed spec document with an ``ops`` list."""
    unknown = sorted(set(document) - _TOP)
    if unknown:
        raise SpecError(f"{where}: unknown key {unknown[0]!r}; known: {', '.join(sorted(_TOP))}."
                        f"{did_you_mean(unknown[0], _TOP)}")
    ops = document.get("ops")
    if not isinstance(ops, list) or not ops or not all(isinstance(o, dict) for o in ops):
        raise SpecError(f"{where}: 'ops' must be a non-empty list of tables ([[ops]])")
    data = document.get("data", {})
    if not isinstance(data, dict) or "x" not in data or "y" not in data:
        raise SpecError(f"{where}: a graph spec needs [data] with x and y")
    builder = ModelBuilder()
    import numpy as np

    try:
        x = np.asarray(data["x"])
    except ValueError:
        raise SpecError(f"{where}: data.x is ragged") from None
    names: dict[str, Ref] = {"x": builder.input("x", x.shape)}
    for table in ("parameters", "constants"):
        entries = document.get(table, {})
        if not isinstance(entries, dict):
            raise SpecError(f"{where}: [{table}] must be a table of tensors")
        for key, values in entries.items():
            add = builder.parameter if table == "parameters" else builder.constant
            names[key] = _built(lambda: add(key, values), f"{where}: {table}.{key}")
    last = None
    for i, table in enumerate(ops, start=1):
        at = f"{where}: ops[{i}]"
        if "op" not in table or not isinstance(table["op"], str):
            raise SpecError(f"{at}: give 'op', one of {', '.join(sorted(OPS))}")
        key = table["op"]
        if key not in OPS:
            raise SpecError(f"{at}: unknown op {key!r}; known: {', '.join(sorted(OPS))}.{did_you_mean(key, OPS)}")
        attributes = _attributes(OPS[key], {k: v for k, v in table.items() if k not in _OP}, at)
        inputs = table.get("inputs", [])
        if not isinstance(inputs, list):
            raise SpecError(f"{at}: 'inputs' must be a list")
        refs = []
        for item in inputs:
            if isinstance(item, str):
                if item not in names:
                    raise SpecError(_order_problem(ops, i, item, at) or
                                    f"{at}: no input {item!r}; known: {', '.join(names)}.{did_you_mean(item, names)}")
                refs.append(names[item])
            elif isinstance(item, (int, float)) and not isinstance(item, bool):
                refs.append(item)
            else:
                raise SpecError(f"{at}: an input must be a name or a number, got {item!r}")
        name = table.get("name", f"{key}_{i}")
        if not isinstance(name, str) or not name.isidentifier():
            raise SpecError(f"{at}: 'name' must be an identifier, got {name!r}")
        last = names[name] = _built(lambda: builder.op(OPS[key](**attributes), *refs, name=name), at)
    output = document.get("output")
    if output is not None and output not in names:
        raise SpecError(f"{where}: output {output!r} is not an op name")
    return _built(
        lambda: builder.model(
            names[output] if output else last, x=data["x"], y=data["y"], loss=document.get("loss", "mse"),
            reduction=document.get("reduction", "mean"), lr=document.get("lr", 1.0),
            name=document.get("name", "model"), freeze=document.get("freeze", ()),
        ),
        where,
    )


def _order_problem(ops: list[dict], i: int, item: str, at: str) -> str:
    """The message for an input that names an op at or after ``ops[i]`` (1-based): a cycle, or an op listed
    after its user; ``""`` when no op has that name."""
    named = {op.get("name", f"{op.get('op')}_{k}"): op for k, op in enumerate(ops, start=1)}
    if item not in named:
        return ""
    me = list(named)[i - 1]
    stack, seen = [[item]], set()  # paths from item through the ops' inputs, looking for this op: a cycle
    while stack:
        trail = stack.pop()
        if trail[-1] == me:
            return f"{at}: the ops form a cycle: {' → '.join([me, *trail])}; an op cannot depend on itself"
        if trail[-1] in seen or trail[-1] not in named:
            continue
        seen.add(trail[-1])
        inputs = named[trail[-1]].get("inputs", [])
        stack += [[*trail, n] for n in inputs if isinstance(n, str)] if isinstance(inputs, list) else []
    position = list(named).index(item) + 1
    return (f"{at}: input {item!r} is the op ops[{position}], listed after this one: list each op after the ops "
            "it takes as inputs")


def _attributes(cls: type, given: dict[str, Any], at: str) -> dict[str, Any]:
    """An op's attributes from the spec: only its declared fields; lists become tuples (ops are hashable)."""
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(given) - fields)
    if unknown:
        known = ", ".join(sorted(fields)) or "none"
        raise SpecError(f"{at}: op {cls.key!r} has no attribute {unknown[0]!r}; its attributes: {known}")
    return {k: tuple(tuple(i) if isinstance(i, list) else i for i in v) if isinstance(v, list) else v
            for k, v in given.items()}


def _built(make, at: str):
    try:
        return make()
    except DeriveError as err:
        raise SpecError(f"{at}: {err}") from None
    except (TypeError, ValueError) as err:
        raise SpecError(f"{at}: {err}") from None
