"""A tensor op's value and gradients from the scalar engine, on a small instance: the ground truth its
tensor rule is checked against (tests/test_registry.py).

The instance is built as a model: its float inputs are parameters (differentiated), its integer and boolean
inputs and the inputs named as data are literal tensors, and the loss is Σ g ⊙ op(inputs) for a given
tensor g, so that ∂L/∂input is exactly what the op's tensor backward rule computes from g.

>>> import numpy as np
>>> from derive.ops.elementwise import Mul
>>> from derive.ops.tensor import Sample
>>> value, grads = scalar_reference(Sample(Mul(), (np.array([2.0, 3.0]), np.array([5.0, 7.0]))), np.array([1.0, 10.0]))
>>> value.tolist(), grads[0].tolist(), grads[1].tolist()
([10.0, 21.0], [5.0, 70.0], [2.0, 30.0])
"""

from __future__ import annotations

from typing import Any

import numpy as np

from derive.model.build import ModelBuilder
from derive.model.graph import OWN_LOSS
from derive.ops.tensor import Sample


def differentiated(sample: Sample) -> list[bool]:
    """Which inputs of a sample are differentiated: float tensors not named as data."""
    return [isinstance(v, np.ndarray) and v.dtype.kind == "f" and k not in sample.data
            for k, v in enumerate(sample.inputs)]


def scalar_reference(sample: Sample, g: np.ndarray) -> tuple[np.ndarray, list[np.ndarray | None]]:
    """The op's output and ∂(Σ g ⊙ output)/∂input for each input (None where not differentiated), from
    the scalar derivation in float64."""
    from derive.derivation import Derivation
    from derive.model.lower import lower
    from derive.numeric import evaluate

    b = ModelBuilder()
    b.input("x", (1,))
    b.input("y", (1,))
    wanted = differentiated(sample)
    refs: list[Any] = []
    for k, (value, want) in enumerate(zip(sample.inputs, wanted)):
        if value is None or isinstance(value, (int, float)):
            refs.append(value)
        elif want:
            refs.append(b.parameter(f"input{k}", value))
        else:
            refs.append(b.literal(f"data{k}", value))
    out = b.op(sample.op, *refs, name="out")
    weighted = b.op("mul", out, b.literal("g", np.asarray(g, dtype=np.float64)), name="weighted")
    model = b.model(b.op("sum", weighted, name="total"), x=[0.0], y=[0.0], loss=OWN_LOSS)
    derivation = Derivation(model)
    graph = lower(model.structure)
    elements = graph.tensors[out.index]
    value = np.array([evaluate(e, derivation.values) if not _number(e) else float(e) for e in elements.reshape(-1)],
                     dtype=np.float64).reshape(elements.shape)
    grads: list[np.ndarray | None] = []
    by_tensor: dict[str, np.ndarray] = {}
    for p in derivation.parameters:
        tensor = by_tensor.setdefault(p.parameter.torch, np.zeros(model.values[p.parameter.torch].shape))
        tensor[p.parameter.index] = p.gradient
    for k, want in enumerate(wanted):
        grads.append(by_tensor.get(f"input{k}") if want else None)
    return value, grads


def _number(expr: Any) -> bool:
    return getattr(expr, "is_Number", False)
