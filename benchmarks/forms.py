"""Seconds for what a person waits on: ``derive grads --format json`` of the issue's networks, a 499-parameter
report, and the derivation's cost per parameter·sample from batch 1 to 256 (it should stay flat).

Each case runs in a fresh process (no cache shared between cases); times are medians of ``--repeats`` runs.
Run: ``python benchmarks/forms.py`` (``--json`` for machine output).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: (name, sizes, activations, loss, batch, class targets)
GRADS = [
    ("4-8-3 ReLU cross-entropy, batch 30", (4, 8, 3), ("relu", "identity"), "cross_entropy", 30, True),
    ("3-4-4-3 tanh/ReLU classifier, batch 3", (3, 4, 4, 3), ("tanh", "relu", "identity"), "cross_entropy", 3, True),
    ("1-6-6-6-1 tanh regressor, batch 16", (1, 6, 6, 6, 1), ("tanh", "tanh", "tanh", "identity"), "mse", 16, False),
]
DERIVATION_SIZES = (8, 16, 16, 1)
BATCHES = (1, 16, 64, 256)

_SETUP = f"""
import sys, time, json; sys.path.insert(0, {str(ROOT)!r}); sys.path.insert(0, {str(ROOT / 'benchmarks')!r})
import numpy as np, derive
def net(sizes, acts, loss, batch, classes):
    rng = np.random.default_rng(0)
    layers = [derive.Linear(rng.uniform(-1, 1, (o, i)), rng.uniform(-1, 1, o), a) for i, o, a in zip(sizes, sizes[1:], acts)]
    y = [[int(rng.integers(sizes[-1]))] for _ in range(batch)] if classes else rng.uniform(0, 1, (batch, sizes[-1])).tolist()
    return derive.Network(layers, x=rng.uniform(-1, 1, (batch, sizes[0])).tolist(), y=y, loss=loss)
"""


def _run(code: str) -> float:
    out = subprocess.run([sys.executable, "-c", _SETUP + code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def grads_seconds(case: tuple, repeats: int) -> float:
    _, sizes, acts, loss, batch, classes = case
    code = f"""
from derive.sources.spec import dumps_spec
import tempfile, os, subprocess
path = os.path.join(tempfile.mkdtemp(), "net.toml")
open(path, "w").write(dumps_spec(net({sizes!r}, {acts!r}, {loss!r}, {batch}, {classes})))
t = time.perf_counter()
subprocess.run([sys.executable, "-m", "derive", "grads", "--spec", path, "--format", "json"], check=True,
               capture_output=True, cwd={str(ROOT)!r})
print(time.perf_counter() - t)
"""
    return statistics.median(_run(code) for _ in range(repeats))


def report_seconds(repeats: int) -> float:
    code = """
from scale import network
n = network((4, 83, 1), batch=1)
assert len(n.parameters()) == 499
t = time.perf_counter(); derive.report(n, format="md"); print(time.perf_counter() - t)
"""
    return statistics.median(_run(code) for _ in range(repeats))


def derivation_us(batch: int, repeats: int) -> float:
    code = f"""
from scale import network
n = network({DERIVATION_SIZES!r}, batch={batch})
t = time.perf_counter(); derive.derive(n); s = time.perf_counter() - t
print(1e6 * s / (len(n.parameters()) * {batch}))
"""
    return statistics.median(_run(code) for _ in range(repeats))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    result = {
        "grads_json_s": {case[0]: grads_seconds(case, args.repeats) for case in GRADS},
        "report_499_s": report_seconds(args.repeats),
        "derivation_us_per_param_sample": {b: derivation_us(b, args.repeats) for b in BATCHES},
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    for name, s in result["grads_json_s"].items():
        print(f"derive grads --format json, {name}: {s:.2f} s")
    print(f"report (md) of a 4-83-1 network, 499 parameters: {result['report_499_s']:.2f} s")
    sizes = "x".join(map(str, DERIVATION_SIZES))
    for b, us in result["derivation_us_per_param_sample"].items():
        print(f"derivation of {sizes}, batch {b:>3}: {us:.1f} us per parameter·sample")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
