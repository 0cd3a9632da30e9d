"""LeNet-5 (61,706 parameters, 1×32×32 images, examples/lenet5.py): derivation and compiled gradients.

Two measurements, each checked against torch autograd in float64:

1. ``derive grads --torch examples/lenet5.py:LeNet5 --format json`` at batch 2, as a user runs it (a fresh
   process: importing torch, tracing, lowering, reverse mode, evaluation, printing every definition and
   gradient): wall time, and the largest difference of the printed gradients from autograd's.
2. The compiled gradient (``verify.compile(model, "torch", "matrix")``) at batch 64 against autograd's
   forward + backward of the module itself, timed call by call interleaved, one thread, medians; and the
   largest difference of their gradients.

Run: ``python benchmarks/lenet.py`` (``--json`` for machine output, ``--repeats N``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import derive  # noqa: E402
import verify  # noqa: E402
from tests.models import example  # noqa: E402

LeNet5 = example("lenet5").LeNet5


def data(batch: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((batch, 1, 32, 32)), rng.integers(0, 10, batch)


def autograd(x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """∂L/∂p of every parameter tensor by torch autograd in float64, by torch key."""
    module = LeNet5().double()
    loss = torch.nn.functional.cross_entropy(module(torch.tensor(x)), torch.tensor(y))
    loss.backward()
    return {k: p.grad.numpy() for k, p in module.named_parameters()}


def derive_json(batch: int) -> dict:
    x, y = data(batch)
    with tempfile.TemporaryDirectory() as tmp:
        np.save(f"{tmp}/x.npy", x)
        np.save(f"{tmp}/y.npy", y)
        command = [sys.executable, "-m", "derive", "grads", "--torch", f"{ROOT}/examples/lenet5.py:LeNet5",
                   "--x", f"{tmp}/x.npy", "--y", f"{tmp}/y.npy", "--loss", "cross_entropy", "--format", "json",
                   "--max-params", "70000"]
        start = time.perf_counter()
        with open(f"{tmp}/out.json", "w") as out:
            subprocess.run(command, check=True, stdout=out, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
        seconds = time.perf_counter() - start
        size = os.path.getsize(f"{tmp}/out.json")
        document = json.loads(Path(f"{tmp}/out.json").read_text())
    reference = autograd(x, y)
    error = max(abs(p["gradient"] - float(reference[p["torch"]][tuple(p["index"])])) for p in document["parameters"])
    return {"batch": batch, "parameters": len(document["parameters"]), "definitions": len(document["definitions"]),
            "form": document["form"], "seconds": seconds, "json_mb": size / 1e6, "max_abs_error": error}


def compiled(batch: int, repeats: int) -> dict:
    torch.set_num_threads(1)
    x2, y2 = data(2)
    model = derive.from_torch(LeNet5(), loss="cross_entropy", x=x2, y=y2)
    fn = verify.compile(model, backend="torch", form="matrix")
    x, y = data(batch, seed=1)
    module = LeNet5().double()
    params = [p.detach().clone() for p in module.parameters()]
    xt, yt = torch.tensor(x), torch.tensor(y)

    def by_autograd() -> list:
        module.zero_grad()
        torch.nn.functional.cross_entropy(module(xt), yt).backward()
        return [p.grad for p in module.parameters()]

    ours, theirs = fn(xt, yt, *params), by_autograd()
    error = max(float((a - b).abs().max()) for a, b in zip(ours, theirs))
    times: dict[str, list[float]] = {"compiled": [], "autograd": []}
    for _ in range(repeats):  # interleaved: a slow moment of the machine hits both
        for name, call in (("compiled", lambda: fn(xt, yt, *params)), ("autograd", by_autograd)):
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    ms = {name: 1e3 * statistics.median(t) for name, t in times.items()}
    return {"batch": batch, "compiled_ms": ms["compiled"], "autograd_ms": ms["autograd"],
            "ratio": ms["compiled"] / ms["autograd"], "max_abs_error": error}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    result = {"machine": platform.platform(), "torch": torch.__version__,
              "derive": derive_json(2), "compiled": compiled(64, args.repeats)}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    d, c = result["derive"], result["compiled"]
    print(f"derive grads --format json, batch {d['batch']}: {d['seconds']:.1f} s, {d['parameters']:,} parameters, "
          f"{d['definitions']:,} definitions ({d['form']} form), {d['json_mb']:.0f} MB, "
          f"max |Δ| vs autograd {d['max_abs_error']:.1e}")
    print(f"compiled gradient, batch {c['batch']}: {c['compiled_ms']:.1f} ms vs autograd forward + backward "
          f"{c['autograd_ms']:.1f} ms ({c['ratio']:.2f}×), max |Δ| {c['max_abs_error']:.1e}")


if __name__ == "__main__":
    main()
