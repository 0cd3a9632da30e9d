r"""The tensor form of ``derive grads``: the program's definitions as JSON (``"form": "tensor"``) or LaTeX.

JSON: ``"loss"``; ``"leaves"``, each tensor the program starts from with its shape: data ``X``, targets ``T``,
constants and literals with their values, parameters with their torch key (their values are the model's);
``"definitions"`` in evaluation order, each ``symbol``, ``shape``, ``expression`` (the notation of
`derive.tensor.expr`, which `derive.tensor.expr.parse` reads back) and ``latex``; ``"parameters"``, one per parameter tensor: its ``torch`` key, ``name``, ``shape``,
``gradient`` (nested lists, torch's layout) and ``expression`` (the symbol of its definition).

>>> import derive
>>> doc = tensor_document(derive.examples.seed())
>>> doc["form"], [p["name"] for p in doc["parameters"]], doc["parameters"][2]["shape"]
('tensor', ['W_1', 'b_1', 'W_2', 'b_2'], [1, 2])
"""

from __future__ import annotations

from typing import Any

import numpy as np

from derive.tensor.latex import latex
from derive.tensor.program import as_model, program


def _nested(value: Any) -> Any:
    array = np.asarray(value.detach().cpu().numpy() if hasattr(value, "detach") else value)
    return array.astype(np.float64).tolist() if array.dtype.kind in "fb" else array.tolist()


def tensor_document(network: Any) -> dict[str, Any]:
    """The tensor program of a model (or chain) with every value, as a JSON-ready document."""
    p = program(network)
    model = as_model(network)
    values = p.values(model)
    names = p.latex_names
    leaves = {"T": values["T"]} if "T" in values else {}
    leaves.update({name: values[name] for name in p.leaves.values() if name in values})
    definitions = []
    for d in p.definitions:
        value = values[d.symbol]
        definitions.append({"symbol": d.symbol, "shape": list(np.shape(value)), "expression": str(d.expr),
                            "latex": latex(d.expr, names)})
    parameters = []
    by_key = {model.structure.nodes[i].name: name for i, name in p.leaves.items()
              if getattr(model.structure.nodes[i], "kind", "") == "parameter"}
    keys = _torch_keys(network)
    for key, symbol in p.gradients.items():
        parameters.append({"torch": keys.get(key, key), "name": by_key[key], "shape": list(np.shape(values[symbol])),
                           "gradient": _nested(values[symbol]), "expression": symbol})
    parameter_leaves = {name: key for key, name in by_key.items()}
    return {"form": "tensor", "loss": float(values["L"]),
            "leaves": {name: {"shape": list(np.shape(v)), "parameter": keys.get(parameter_leaves[name],
                                                                              parameter_leaves[name])}
                       if name in parameter_leaves else {"shape": list(np.shape(v)), "values": _nested(v)}
                       for name, v in leaves.items()},
            "definitions": definitions, "parameters": parameters}


def _torch_keys(network: Any) -> dict[str, str]:
    """A chain's tensors ("0.weight") by the key of its module (``fc1.weight``, or the Sequential's)."""
    from derive.network import Network, _torch_key

    if not network.textbook:
        return {}
    return {f"{l}.{tensor}": _torch_key(layer, l + 1, tensor)
            for l, layer in enumerate(network.layers) for tensor in ("weight", "bias")}


def tensor_latex(network: Any) -> str:
    """The program's equations as one LaTeX ``align*`` block, in evaluation order."""
    p = program(network)
    lines = [rf"{d.latex_name} &= {latex(d.expr, p.latex_names)}" for d in p.definitions]
    return "\\begin{align*}\n" + " \\\\\n".join(lines) + "\n\\end{align*}\n"
