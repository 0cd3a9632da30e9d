"""How recurrent models scale with the sequence: derivation time per time step, 4 to 64 steps.

An nn.RNN (8 inputs, 16 hidden units, tanh) over T steps, batch 4, its last output through a Linear layer
(MSE). For each T: the time to read the module (trace and run), to lower, derive and evaluate (caches
cleared), per step; flat means linear in the sequence length. Then the tensor program (`derive grads --form
tensor`): its definitions, which do not grow with T (the layer is one op), and the time to build it and
compute every gradient (caches cleared). Medians over repetitions.

Run: ``python benchmarks/rnn_scale.py`` (``--json`` for machine output).
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

import torch

import derive
from derive.backprop import operation_count
from derive.model.lower import backpropagate_model, lower
from derive.tensor.program import build, gradient_values

STEPS = (4, 8, 16, 32, 64)


class Sequence(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.rnn = torch.nn.RNN(8, 16, batch_first=True)
        self.fc = torch.nn.Linear(16, 1)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.fc(out[:, -1])


def measure(steps: int, repeats: int) -> dict:
    x, y = torch.randn(4, steps, 8, generator=torch.Generator().manual_seed(1)), torch.zeros(4, 1)
    reading, deriving, tensor = [], [], []
    for _ in range(repeats):
        start = time.perf_counter()
        model = derive.from_torch(Sequence(), loss="mse", x=x, y=y)
        reading.append(time.perf_counter() - start)
        lower.cache_clear()
        backpropagate_model.cache_clear()
        start = time.perf_counter()
        d = derive.derive(model)
        deriving.append(time.perf_counter() - start)
        build.cache_clear()
        start = time.perf_counter()
        program = build(model.structure)
        gradient_values(program, model)
        tensor.append(time.perf_counter() - start)
    count = operation_count(d.backprop)
    return {"steps": steps, "parameters": len(d.parameters), "operations": count.forward + count.gradient,
            "read_ms_per_step": 1e3 * statistics.median(reading) / steps,
            "derive_ms_per_step": 1e3 * statistics.median(deriving) / steps,
            "tensor_definitions": len(program.definitions), "tensor_ms": 1e3 * statistics.median(tensor)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows = [measure(t, args.repeats) for t in STEPS]
    if args.json:
        print(json.dumps({"machine": platform.platform(), "rows": rows}, indent=2))
        return
    print(f"{'steps':>5} {'params':>7} {'ops':>9} {'read ms/step':>13} {'derive ms/step':>15} {'tensor defs':>12} "
          f"{'tensor ms':>10}")
    for r in rows:
        print(f"{r['steps']:>5} {r['parameters']:>7} {r['operations']:>9,} {r['read_ms_per_step']:>13.1f} "
              f"{r['derive_ms_per_step']:>15.1f} {r['tensor_definitions']:>12} {r['tensor_ms']:>10.1f}")


if __name__ == "__main__":
    main()
