r"""How derive's outputs name the same things, so that each can say how its names map to the others'.

A chain's report keeps the study note's σ₁, σ₂, … for the outputs of sigmoid units, where ``derive grads``
and `Derivation.compact` write a1, a2, … (every unit's output, numbered across layers: a3 is the first unit of
layer 2 in the seed). All of them name parameters as scalars, W1, W2, … row by row across layers; ``derive
code`` takes each layer whole, its weight matrix W1 (out × in, torch's layout) and bias vector b1. Graph
models are named after their modules everywhere (``fc.weight`` → W^{fc}, with its torch key and index in the
JSON), so only chains carry a note.

>>> import derive
>>> print(note(derive.examples.seed(), "grads"))
names: a1, a2, a3 here are σ1, σ2, σ3 in derive report; derive code takes each layer whole: its W1 (2 × 2) holds W1 … W4, row by row, and b1 holds b1, b2; its W2 (1 × 2) holds W5, W6 and b2 holds b3
>>> units(derive.examples.seed())
{'a1': '\\sigma_{1}', 'a2': '\\sigma_{2}', 'a3': '\\sigma_{3}'}
"""

from __future__ import annotations

from typing import Any

_SUBSCRIPTS = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")


def units(network: Any) -> dict[str, str]:
    """``{grads name: report LaTeX}`` for each unit output the two name differently (a chain's sigmoid
    units: a1 → σ_1); empty for a graph model."""
    from derive.network import Network
    from derive.ops import activation

    if not network.textbook:
        return {}
    out, unit = {}, 0
    for layer in network.layers:
        letter = activation(layer.activation).output_letter
        for _ in range(layer.out_features):
            unit += 1
            if letter != "a":
                out[f"a{unit}"] = f"{letter}_{{{unit}}}"
    return out


def _range(prefix: str, first: int, last: int, text: bool) -> str:
    """``W1, W2`` or ``W1 … W4`` (subscript digits for text: W₁ … W₄)."""
    index = (lambda k: str(k).translate(_SUBSCRIPTS)) if text else str
    names = [f"{prefix}{index(k)}" for k in range(first, last + 1)]
    return ", ".join(names) if len(names) <= 3 else f"{names[0]} … {names[-1]}"


#: One layer of derive code over the scalar names, per language.
_LAYER = {
    "en": "W{l} ({shape}) holds {weights}{order} and b{l} holds {biases}",
    "ko": "W{l}({shape})은 {weights}를{order} b{l}은 {biases}를 담습니다",
}
_ORDER = {"en": ", row by row,", "ko": " 행 순서로,"}


def _layers(network: Any, text: bool = False, lang: str = "en") -> list[str]:
    """For each layer: ``W1 (2 × 2) holds W1 … W4, row by row, and b1 holds b1, b2``."""
    parts, w, b = [], 0, 0
    for l, layer in enumerate(network.layers, start=1):
        n_out, n_in = layer.out_features, layer.in_features
        order = _ORDER[lang] if n_out > 1 and n_in > 1 else ("," if lang == "ko" else "")
        parts.append(_LAYER[lang].format(l=l, shape=f"{n_out} × {n_in}", order=order,
                                         weights=_range("W", w + 1, w + n_out * n_in, text),
                                         biases=_range("b", b + 1, b + n_out, text)))
        w, b = w + n_out * n_in, b + n_out
    return parts


def _plain(latex: str) -> str:
    """``\\sigma_{1}`` as σ1."""
    return latex.replace("\\sigma", "σ").replace("_{", "").replace("}", "")


def note(network: Any, output: str) -> str:
    """One line on how ``output``'s names ("grads": its text, JSON and LaTeX; "code") map to the other
    outputs'; ``""`` for a graph model. The report's own paragraph is `report_fields` (in its language)."""
    from derive.network import Network

    if not network.textbook:
        return ""
    named = units(network)
    layers = "; ".join(_layers(network))
    if output == "code":
        units_text = (f"; a1, a2, … here are whole layers' outputs, where derive grads numbers single units across "
                      f"layers ({', '.join(named)}, which derive report writes {', '.join(map(_plain, named.values()))})"
                      if named else "; a1, a2, … here are whole layers' outputs, where derive grads numbers single "
                      "units across layers")
        return (f"names: W1, b1, W2, … here are whole layers (torch's layout), whose elements derive grads and "
                f"derive report name as scalars: {layers}{units_text}")
    batch = " (a1_1, a1_2, … per sample)" if network.batch > 1 else ""
    units_text = (f"{', '.join(named)}{batch} here are {', '.join(map(_plain, named.values()))} in derive report; "
                  if named else "")
    return f"names: {units_text}derive code takes each layer whole: its {layers.replace('; ', '; its ')}"


def report_fields(network: Any, lang: str = "en") -> dict[str, str] | None:
    """The fields of the report's names paragraph (labels ``names`` and ``names_layers``), or None for a graph
    model: the report's σ₁ … with the grads names, and derive code's layers over the report's scalar names."""
    from derive.network import Network

    if not network.textbook:
        return None
    named = units(network)
    report = [_plain(v)[0] + _plain(v)[1:].translate(_SUBSCRIPTS) for v in named.values()]
    return {"report": ", ".join(report), "grads": ", ".join(named),
            "layers": "; ".join(_layers(network, text=True, lang=lang))}


__all__ = ["note", "report_fields", "units"]
