"""Built-in example networks, each a chain `Model` (written as its `Network`).

>>> seed().loss, seed().lr, seed().x.tolist()
('bce', 1.0, [[1.0, 1.0]])
"""

from __future__ import annotations

from collections.abc import Callable

from derive.errors import DeriveError, did_you_mean
from derive.model.graph import Model
from derive.network import Linear, Network


def seed() -> Model:
    """The study note's 2-2-1 sigmoid network: x = [1, 1], y = 0, BCE, SGD with lr 1."""
    return Network(
        layers=(
            Linear([[0.4352, 0.3545], [0.1951, 0.4835]], [-0.1419, 0.0439], "sigmoid"),
            Linear([[-0.1725, 0.1129]], [-0.3043], "sigmoid"),
        ),
        x=[[1.0, 1.0]],
        y=[[0.0]],
        loss="bce",
        lr=1.0,
        name="seed",
    ).model()


def classic_2_2_2() -> Model:
    """The classic 2-2-2 sigmoid network with two outputs, ½·Σ(ŷ−y)² and lr 0.5."""
    return Network(
        layers=(
            Linear([[0.15, 0.20], [0.25, 0.30]], [0.35, 0.35], "sigmoid"),
            Linear([[0.40, 0.45], [0.50, 0.55]], [0.60, 0.60], "sigmoid"),
        ),
        x=[[0.05, 0.10]],
        y=[[0.01, 0.99]],
        loss="half_sse",
        lr=0.5,
        name="classic_2_2_2",
    ).model()


EXAMPLES: dict[str, Callable[[], Model]] = {"seed": seed, "classic_2_2_2": classic_2_2_2}


def example(name: str) -> Model:
    """A built-in example by name."""
    try:
        return EXAMPLES[name]()
    except KeyError:
        known = ", ".join(EXAMPLES)
        raise DeriveError(f"unknown example {name!r}; known: {known}.{did_you_mean(name, EXAMPLES)}") from None
