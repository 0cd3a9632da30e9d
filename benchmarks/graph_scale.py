"""How graph models scale: lowering, reverse mode and evaluation time per scalar operation.

Residual blocks h ← h + W₂ tanh(LayerNorm(W₁ h + b₁)) over a batch, built in Python (no torch), from about
1k to 100k scalar operations. For each size it prints the operations of the straight-line program (forward
and gradient), the time to lower the model graph to scalars, to derive the adjoints, and to evaluate every
value, each in microseconds per operation: flat means linear. Medians over repetitions, caches cleared.

Run: ``python benchmarks/graph_scale.py`` (``--quick`` for the small sizes, ``--json`` for machine output).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from derive.backprop import Backprop, operation_count  # noqa: E402
from derive.derivation import Derivation  # noqa: E402
from derive.model.build import ModelBuilder  # noqa: E402
from derive.model.lower import _lower, backpropagate_model, lower  # noqa: E402
from derive.terms import gc_paused  # noqa: E402

#: (width, residual blocks, batch)
SIZES = [(3, 1, 2), (4, 2, 4), (8, 4, 4), (16, 4, 8), (24, 8, 8), (32, 8, 16)]


def residual_model(width: int, blocks: int, batch: int):
    rng = np.random.default_rng(0)
    b = ModelBuilder()
    h = b.input("x", (batch, width))
    for k in range(blocks):
        w1 = b.parameter(f"block{k}.fc1.weight", rng.normal(0, 0.3, (width, width)))
        b1 = b.parameter(f"block{k}.fc1.bias", np.zeros(width))
        w2 = b.parameter(f"block{k}.fc2.weight", rng.normal(0, 0.3, (width, width)))
        z = b.op("linear", h, w1, b1, name=f"z{k}")
        mean = b.op("mean", z, dims=(-1,), keepdim=True, name=f"mu{k}")
        centered = b.op("sub", z, mean, name=f"c{k}")
        var = b.op("mean", b.op("pow", centered, exponent=2.0, name=f"sq{k}"), dims=(-1,), keepdim=True, name=f"var{k}")
        normed = b.op("div", centered, b.op("sqrt", b.op("add", var, 1e-5, name=f"ve{k}"), name=f"sd{k}"), name=f"n{k}")
        a = b.op("activate", normed, activation="tanh", name=f"a{k}")
        h = b.op("add", h, b.op("linear", a, w2, name=f"r{k}"), name=f"h{k}")
    head = b.parameter("head.weight", rng.normal(0, 0.3, (1, width)))
    out = b.op("linear", h, head, name="out")
    return b.model(out, x=rng.normal(0, 1, (batch, width)), y=rng.normal(0, 1, (batch, 1)), loss="mse")


def measure(width: int, blocks: int, batch: int, repeats: int) -> dict:
    model = residual_model(width, blocks, batch)
    lowering, reverse, evaluation = [], [], []
    for _ in range(repeats):
        lower.cache_clear()
        backpropagate_model.cache_clear()
        start = time.perf_counter()
        with gc_paused():
            graph = _lower(model.structure)
        lowering.append(time.perf_counter() - start)
        start = time.perf_counter()
        with gc_paused():
            backprop = Backprop(graph)
        reverse.append(time.perf_counter() - start)
        start = time.perf_counter()
        Derivation(model)  # lowers and derives again (cached now), then evaluates every value
        evaluation.append(time.perf_counter() - start)
    count = operation_count(backprop)
    operations = count.forward + count.gradient
    per = 1e6 / operations
    return {
        "width": width, "blocks": blocks, "batch": batch, "parameters": len(model.parameters()),
        "operations": operations, "lower_us_per_op": statistics.median(lowering) * per,
        "reverse_us_per_op": statistics.median(reverse) * per, "evaluate_us_per_op": statistics.median(evaluation) * per,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    sizes = SIZES[:3] if args.quick else SIZES
    rows = [measure(*size, repeats=args.repeats) for size in sizes]
    if args.json:
        print(json.dumps({"machine": platform.platform(), "rows": rows}, indent=2))
        return
    print(f"{'width':>5} {'blocks':>6} {'batch':>5} {'params':>7} {'ops':>9} {'lower µs/op':>12} "
          f"{'reverse µs/op':>14} {'evaluate µs/op':>15}")
    for r in rows:
        print(f"{r['width']:>5} {r['blocks']:>6} {r['batch']:>5} {r['parameters']:>7} {r['operations']:>9,} "
              f"{r['lower_us_per_op']:>12.2f} {r['reverse_us_per_op']:>14.2f} {r['evaluate_us_per_op']:>15.2f}")


if __name__ == "__main__":
    main()
