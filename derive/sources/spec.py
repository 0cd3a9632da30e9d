"""Spec files: a network described in TOML or JSON, read without evaluating any user text.

The structure (DESIGN.md): top-level ``loss``, ``reduction``, ``lr``; a ``[data]`` table with ``x`` and
``y`` (one row per sample); one ``[[layers]]`` table per Linear layer with ``weight`` (out × in), ``bias``
and ``activation``. Values are numbers; names are looked up in the op registry; nothing is ``sympify``-ed.

>>> net = loads_spec('''
... loss = "mse"
... [data]
... x = [[1, 2]]
... y = [[3]]
... [[layers]]
... weight = [[0.5, -0.5]]
... bias = [0.0]
... ''', format="toml")
>>> net.layers[0].activation, net.loss
('identity', 'mse')
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from derive.errors import DeriveError, SpecError, printable, read_text_file
from derive.model.graph import Model
from derive.network import Linear, Network

_TOP = {"loss", "reduction", "lr", "data", "layers", "name", "freeze", "optimizer", "regularization"}
_REGULARIZATION = {"l2", "l1", "parameters"}
_DATA = {"x", "y"}
_LAYER = {"weight", "bias", "activation"}


def load_spec(path: str | Path, *, data: dict[str, Any] | None = None) -> Model:
    """Read a network from a ``.toml`` or ``.json`` spec file; ``data`` as in `from_document`."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".json"):
        raise SpecError(f"{path}: spec files end in .toml or .json, got {suffix or 'no suffix'!r}")
    text = read_text_file(path, "spec file")
    return loads_spec(text, format=suffix[1:], where=str(path), data=data)


def loads_spec(text: str, *, format: str, where: str = "spec", data: dict[str, Any] | None = None) -> Model:
    """Read a network from spec text in ``format`` ``"toml"`` or ``"json"``; ``data`` as in `from_document`.

    A key given twice in a table is an error in both formats (JSON would otherwise keep the last one):

    >>> loads_spec('{"loss": "mse", "loss": "bce", "layers": []}', format="json")
    Traceback (most recent call last):
    ...
    derive.errors.SpecError: spec: key 'loss' appears twice in one object
    """
    if format == "toml":
        try:
            document = tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            raise SpecError(f"{where}: malformed TOML: {err}") from None
    elif format == "json":
        try:
            document = json.loads(text, object_pairs_hook=lambda pairs: _unique(pairs, where))
        except json.JSONDecodeError as err:
            raise SpecError(f"{where}: malformed JSON: {err}") from None
    else:
        raise SpecError(f"{where}: unknown spec format {format!r}; use 'toml' or 'json'")
    return from_document(document, where=where, data=data)


def from_document(document: Any, *, where: str = "spec", data: dict[str, Any] | None = None) -> Model:
    """Build a network from a parsed spec document (dicts, lists, numbers, strings).

    A document with an ``ops`` list is a graph model (`derive.sources.graph_spec`). ``data``
    (``{"x": …, "y": …}``, ``None`` entries ignored) replaces the document's ``[data]`` entries: the command
    line's ``--x``/``--y``, so that a spec without ``[data]`` is complete with them.
    """
    overrides = {key: value for key, value in (data or {}).items() if value is not None}
    if isinstance(document, dict) and "ops" in document:
        from derive.sources.graph_spec import from_graph_document

        if overrides and isinstance(document.get("data", {}), dict):
            given = document.get("data", {})
            document = document | {"data": given | {k: _plain(v) for k, v in overrides.items()}}
        return from_graph_document(document, where=where)
    _table(document, where, _TOP, required=("layers", "loss"))
    layers = document["layers"]
    if not isinstance(layers, list) or not layers:
        raise SpecError(f"{where}: 'layers' must be a non-empty list of tables ([[layers]])")
    built = []
    for i, layer in enumerate(layers, start=1):
        at = f"{where}: layers[{i}]"
        _table(layer, at, _LAYER, required=("weight", "bias"))
        activation = layer.get("activation", "identity")
        if not isinstance(activation, str):
            raise SpecError(f"{at}: 'activation' must be a string, got {activation!r}")
        built.append(_build(lambda: Linear(layer["weight"], layer["bias"], activation), at))
    given = document.get("data", {})
    _table(given, f"{where}: data", _DATA, required=())
    data = given | {key: _chain_rows(value, f"--{key}") for key, value in overrides.items()}
    for key in ("loss", "reduction", "name"):
        if key in document and not isinstance(document[key], str):
            raise SpecError(f"{where}: {key!r} must be a string, got {document[key]!r}")
    return _build(
        lambda: Network(
            layers=tuple(built),
            x=data.get("x"),
            y=data.get("y"),
            loss=document["loss"],
            reduction=document.get("reduction", "mean"),
            lr=document.get("lr", 1.0),
            name=printable(document.get("name", Path(where).stem if where != "spec" else "network")),
            freeze=document.get("freeze", ()),
            optimizer=_optimizer(document.get("optimizer"), where),
            **_regularization(document.get("regularization"), where),
        ).model(),
        where,
    )


def _regularization(table: Any, where: str) -> dict[str, Any]:
    """A spec's ``[regularization]`` table: ``l2``, ``l1`` (λ) and ``parameters`` (default: every weight)."""
    if table is None:
        return {}
    _table(table, f"{where}: regularization", _REGULARIZATION, required=())
    return {"l2": table.get("l2", 0.0), "l1": table.get("l1", 0.0), "penalized": tuple(table.get("parameters", ()))}


def _optimizer(table: Any, where: str) -> Any:
    """A spec's ``[optimizer]`` table: ``name`` (sgd, adam, adamw, rmsprop, adagrad) and torch's options."""
    if table is None:
        return None
    from derive.training.optimizers import optimizer

    if not isinstance(table, dict) or not isinstance(table.get("name"), str):
        raise SpecError(f"{where}: [optimizer] must be a table with a 'name' (sgd, adam, adamw, rmsprop, adagrad)")
    options = {k: tuple(v) if isinstance(v, list) else v for k, v in table.items() if k != "name"}
    try:
        return optimizer(table["name"], **options)
    except DeriveError as err:
        raise SpecError(f"{where}: [optimizer]: {err}") from None


def to_document(network: Network | Model) -> dict[str, Any]:
    """The spec document of a chain (what `from_document` reads back)."""
    network = network.chain
    return {
        "loss": network.loss,
        "reduction": network.reduction,
        "lr": network.lr,
        "data": {"x": [list(row) for row in network.x], "y": [list(row) for row in network.y]},
        "layers": [
            {"weight": [list(row) for row in layer.weight], "bias": list(layer.bias), "activation": layer.activation}
            for layer in network.layers
        ],
    } | ({"freeze": list(network.freeze)} if network.freeze else {}) | (
        {"optimizer": {"name": network.optimizer.name, **_plain_options(network.optimizer)}}
        if network.optimizer is not None else {}
    ) | (
        {"regularization": {"l2": network.l2, "l1": network.l1, "parameters": list(network.penalized)}}
        if network.penalized else {}
    )


def _plain_options(opt: Any) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in opt.options().items() if v is not None}


def dumps_spec(network: Network | Model, *, format: str = "toml") -> str:
    """Spec text of a network in ``format`` ``"toml"`` or ``"json"``; floats are written exactly (repr)."""
    document = to_document(network)
    if format == "json":
        return json.dumps(document, indent=2) + "\n"
    if format != "toml":
        raise SpecError(f"unknown spec format {format!r}; use 'toml' or 'json'")
    lines = [f"{key} = {_toml(document[key])}" for key in ("loss", "reduction", "lr", "freeze") if key in document]
    lines += ["", "[data]", f"x = {_toml(document['data']['x'])}", f"y = {_toml(document['data']['y'])}"]
    for layer in document["layers"]:
        lines += ["", "[[layers]]"] + [f"{key} = {_toml(value)}" for key, value in layer.items()]
    for table in ("optimizer", "regularization"):
        if table in document:
            lines += ["", f"[{table}]"] + [f"{key} = {_toml(value)}" for key, value in document[table].items()]
    return "\n".join(lines) + "\n"


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return repr(float(value))


def _plain(value: Any) -> Any:
    """An array as nested lists (integers stay integers); anything else as it is."""
    return value.tolist() if hasattr(value, "tolist") else value


def _chain_rows(value: Any, option: str) -> Any:
    """Data for a chain of Linear layers: an array must be of rank 1 or 2 (`check_rank`)."""
    if hasattr(value, "ndim"):
        from derive.sources.data import check_rank

        return check_rank(value, option).tolist()
    return value


def _unique(pairs: list[tuple[str, Any]], where: str) -> dict[str, Any]:
    """A JSON object's pairs as a dict, refusing a key given twice."""
    document: dict[str, Any] = {}
    for key, value in pairs:
        if key in document:
            raise SpecError(f"{where}: key {key!r} appears twice in one object")
        document[key] = value
    return document


def _table(value: Any, where: str, allowed: set[str], required: tuple[str, ...]) -> None:
    if not isinstance(value, dict):
        raise SpecError(f"{where}: expected a table of keys, got {type(value).__name__}")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise SpecError(f"{where}: unknown key {unknown[0]!r}; allowed: {', '.join(sorted(allowed))}")
    for key in required:
        if key not in value:
            raise SpecError(f"{where}: missing {key!r}")


def _build(make, where: str):
    try:
        return make()
    except SpecError:
        raise
    except DeriveError as err:
        raise type(err)(f"{where}: {err}") from None
