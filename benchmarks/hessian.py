"""The Hessian's cost: derive.hessian for chains of 100 to ~1,300 parameters (tanh, sigmoid, BCE, batch 4).

Prints the parameters, the derivation time and the Hessian time (seconds, median of 3) and the largest
asymmetry before mirroring. Run: ``python benchmarks/hessian.py``.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

import derive  # noqa: E402
from derive.hessian import _Sweep  # noqa: E402

SIZES = [(4, 10, 1), (10, 20, 10, 1), (10, 40, 20, 1)]


def network(sizes):
    rng = np.random.default_rng(0)
    acts = ["tanh"] * (len(sizes) - 2) + ["sigmoid"]
    layers = [derive.Linear(rng.uniform(-0.5, 0.5, (o, i)), rng.uniform(-0.5, 0.5, o), a)
              for i, o, a in zip(sizes, sizes[1:], acts)]
    return derive.Network(layers, x=rng.uniform(-1, 1, (4, sizes[0])).tolist(),
                          y=rng.uniform(0, 1, (4, sizes[-1])).tolist(), loss="bce")


def main() -> None:
    print(f"{'params':>7} {'derive s':>9} {'hessian s':>10} {'asymmetry':>10}")
    for sizes in SIZES:
        net = network(sizes)
        derive_times, hessian_times = [], []
        for _ in range(3):
            start = time.perf_counter()
            d = derive.derive(net)
            derive_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            derive.hessian(d)
            hessian_times.append(time.perf_counter() - start)
        columns = _Sweep(d).run(np.eye(len(d.parameters)))
        print(f"{len(d.parameters):>7} {statistics.median(derive_times):>9.2f} {statistics.median(hessian_times):>10.2f} "
              f"{np.abs(columns - columns.T).max():>10.1e}")


if __name__ == "__main__":
    main()
