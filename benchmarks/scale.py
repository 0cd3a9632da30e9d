"""How derive's cost grows with the network: derivation, compile, program size and gradient speed.

For each size (9 to ~100k parameters) it prints: parameters; derivation time (graph + reverse mode, no
cache); compile time of the matrix-form gradient code (torch); operations per parameter and the gradient/
forward operation ratio of the straight-line program; gradient evaluation time at batch 1 and 256 (matrix
form, torch and NumPy) against torch autograd forward+backward measured in the same run; the gradient/forward
time ratio of the generated code; the largest error against float64 autograd relative to each tensor's largest entry; and the time of the
naive peer (SymPy ``diff`` of the fully inlined loss) where it finishes within its budget.

Times are medians over repetitions; the claims are the ratios. The machine may be loaded: torch runs on one
thread, and the functions compared are called in turn within each repetition (interleaved), so a burst of
load hits both alike. ``--batches`` sweeps the matrix form against autograd over batch sizes in float32 and
float64. Run: ``python benchmarks/scale.py`` (``--json`` for machine output, ``--quick`` for the small sizes
only, ``--batches`` for the batch sweep alone).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from derive.backprop import Backprop, operation_count  # noqa: E402
from derive.graph import backpropagate  # noqa: E402
from derive.graph import build_graph  # noqa: E402
from derive.network import Linear, Network  # noqa: E402
from verify import compile as compile_gradients  # noqa: E402

SIZES = [
    (2, 2, 1),
    (4, 8, 8, 1),
    (16, 32, 32, 32, 1),
    (32, 64, 64, 64, 1),
    (64, 128, 128, 1),
    (128, 256, 256, 1),
]
NAIVE_BUDGET_S = 60.0
NAIVE_MAX_PARAMETERS = 121


def network(sizes: tuple[int, ...], batch: int, seed: int = 0) -> Network:
    """A tanh MLP with a sigmoid output and BCE, weights scaled like torch's default initialisation."""
    rng = np.random.default_rng(seed)
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        bound = 1 / np.sqrt(n_in)
        act = "sigmoid" if i == len(sizes) - 2 else "tanh"
        layers.append(Linear(rng.uniform(-bound, bound, (n_out, n_in)), rng.uniform(-bound, bound, n_out), act))
    x = rng.uniform(-1, 1, (batch, sizes[0]))
    y = rng.uniform(0, 1, (batch, sizes[-1]))
    return Network(tuple(layers), x, y, loss="bce")


def median_time(fn, repeats: int, *, budget_s: float = 2.0) -> float:
    return interleaved([fn], repeats, budget_s=budget_s)[0]


def interleaved(fns, repeats: int, *, budget_s: float = 2.0) -> list[float]:
    """Median seconds per call of each function, calling them in turn in every repetition (after a warm-up)."""
    for fn in fns:
        fn()
    times: list[list[float]] = [[] for _ in fns]
    start = time.perf_counter()
    for _ in range(repeats):
        for fn, row in zip(fns, times):
            t = time.perf_counter()
            fn()
            row.append(time.perf_counter() - t)
        if time.perf_counter() - start > budget_s * len(fns) and len(times[0]) >= 5:
            break
    return [statistics.median(row) for row in times]


def torch_parts(net: Network, batch: int, dtype: torch.dtype = torch.float64):
    """Tensors for the generated code, and torch's own fwd+bwd closure on the same values."""
    rng = np.random.default_rng(1)
    x = torch.tensor(rng.uniform(-1, 1, (batch, net.layers[0].in_features)), dtype=dtype)
    y = torch.tensor(rng.uniform(0, 1, (batch, net.layers[-1].out_features)), dtype=dtype)
    tensors = []
    for layer in net.layers:
        tensors += [torch.tensor(layer.weight, dtype=dtype), torch.tensor(layer.bias, dtype=dtype)]
    leaves = [t.clone().requires_grad_(True) for t in tensors]
    acts = {"tanh": torch.tanh, "sigmoid": torch.sigmoid}
    loss_fn = torch.nn.BCELoss()

    def autograd():
        for t in leaves:
            t.grad = None
        a = x
        for (W, b), layer in zip(zip(leaves[0::2], leaves[1::2]), net.layers):
            a = acts[layer.activation](a @ W.T + b)
        loss_fn(a, y).backward()
        return [t.grad for t in leaves]

    return x, y, tensors, autograd


def naive_peer(sizes: tuple[int, ...]) -> float | None:
    """Seconds for SymPy diff of the inlined loss w.r.t. every parameter, or None past the budget."""
    code = f"""
import sys, time; sys.path.insert(0, {str(Path(__file__).resolve().parent.parent)!r})
import sympy as sp
from derive.graph import backpropagate
from derive.network import Architecture
from derive.printing import elementary
arch = Architecture({sizes!r}, {tuple(['tanh'] * (len(sizes) - 2) + ['sigmoid'])!r}, "bce", "mean", 1)
bp = backpropagate(arch)
loss = elementary(bp.closed_loss())
t = time.perf_counter()
for p in bp.graph.parameters:
    sp.diff(loss, p)
print(time.perf_counter() - t)
"""
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=NAIVE_BUDGET_S, check=True)
    except subprocess.TimeoutExpired:
        return None
    return float(out.stdout.strip())


def measure(sizes: tuple[int, ...], repeats: int) -> dict:
    net = network(sizes, batch=1)
    arch = net.architecture
    n = len(net.parameters())
    def derivation() -> Backprop:
        build_graph.cache_clear()
        backpropagate.cache_clear()
        return backpropagate(arch)

    derive_s = median_time(derivation, max(1, repeats // 4), budget_s=30)
    ops = operation_count(derivation())
    t = time.perf_counter()
    grad_torch = compile_gradients(net, backend="torch", form="matrix")
    compile_s = time.perf_counter() - t
    grad_numpy = compile_gradients(net, backend="numpy", form="matrix")
    row = {
        "parameters": n,
        "sizes": "x".join(map(str, sizes)),
        "derive_s": derive_s,
        "derive_us_per_param": 1e6 * derive_s / n,
        "compile_s": compile_s,
        "ops_per_param": ops.per_parameter,
        "grad_to_forward_ops": ops.gradient_to_forward,
    }
    errors = []
    for batch in (1, 256):
        x, y, tensors, autograd = torch_parts(net, batch)
        arrays = [t.numpy() for t in tensors]
        ours = grad_torch(x, y, *tensors)
        reference = autograd()
        for g, r in zip(ours, reference):
            # per tensor: the largest error relative to the largest entry (elementwise relative error
            # of an entry near 0 measures cancellation in the reference as much as in ours)
            errors.append(float((g - r).abs().max() / r.abs().max().clamp_min(1e-300)))
        t_auto, t_ours, t_fwd, t_np = interleaved(
            [
                autograd,
                lambda: grad_torch(x, y, *tensors),
                lambda: grad_torch.forward(x, y, *tensors),
                lambda: grad_numpy(x.numpy(), y.numpy(), *arrays),
            ],
            repeats,
        )
        row[f"autograd_us_b{batch}"] = 1e6 * t_auto
        row[f"torch_us_b{batch}"] = 1e6 * t_ours
        row[f"numpy_us_b{batch}"] = 1e6 * t_np
        row[f"torch_vs_autograd_b{batch}"] = t_ours / t_auto
        row[f"grad_to_forward_time_b{batch}"] = t_ours / t_fwd
    row["max_rel_error"] = max(errors)
    row["naive_diff_s"] = naive_peer(sizes) if n <= NAIVE_MAX_PARAMETERS else None
    return row


COLUMNS = [
    ("parameters", "params", "{:>7d}"),
    ("derive_s", "derive s", "{:>8.3f}"),
    ("derive_us_per_param", "us/param", "{:>8.1f}"),
    ("compile_s", "compile s", "{:>9.4f}"),
    ("ops_per_param", "ops/param", "{:>9.2f}"),
    ("grad_to_forward_ops", "grad/fwd ops", "{:>12.2f}"),
    ("torch_vs_autograd_b1", "vs autograd b1", "{:>14.2f}"),
    ("torch_vs_autograd_b256", "vs autograd b256", "{:>16.2f}"),
    ("numpy_us_b256", "numpy us b256", "{:>13.0f}"),
    ("autograd_us_b256", "autograd us b256", "{:>16.0f}"),
    ("grad_to_forward_time_b256", "grad/fwd time b256", "{:>18.2f}"),
    ("max_rel_error", "max rel err", "{:>11.1e}"),
    ("naive_diff_s", "naive diff s", "{:>12}"),
]


def table(rows: list[dict]) -> str:
    lines = [" | ".join(title for _, title, _ in COLUMNS)]
    for row in rows:
        cells = []
        for key, title, fmt in COLUMNS:
            value = row[key]
            if key == "naive_diff_s":
                limit = "(not run)" if row["parameters"] > NAIVE_MAX_PARAMETERS else f">{NAIVE_BUDGET_S:.0f}"
                value = f"{value:.2f}" if value is not None else limit
            cells.append(fmt.format(value).rjust(len(title)))
        lines.append(" | ".join(cells))
    return "\n".join(lines)


BATCH_SIZES = (1, 16, 256, 1024, 4096)
BATCH_NETWORK = (32, 64, 64, 64, 1)


def batch_sweep(repeats: int, sizes: tuple[int, ...] = BATCH_NETWORK) -> list[dict]:
    """The matrix-form torch gradient over autograd's forward + backward, per batch size and dtype."""
    net = network(sizes, batch=1)
    grad_torch = compile_gradients(net, backend="torch", form="matrix")
    rows = []
    for dtype in (torch.float32, torch.float64):
        for batch in BATCH_SIZES:
            x, y, tensors, autograd = torch_parts(net, batch, dtype)
            t_auto, t_ours = interleaved([autograd, lambda: grad_torch(x, y, *tensors)], repeats)
            rows.append({"dtype": str(dtype).split(".")[-1], "batch": batch, "autograd_us": 1e6 * t_auto,
                         "matrix_us": 1e6 * t_ours, "ratio": t_ours / t_auto})  # fmt: skip
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--quick", action="store_true", help="only the sizes up to ~2.7k parameters")
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--batches", action="store_true", help="only the batch sweep of the matrix form")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.batches:
        rows = batch_sweep(args.repeats)
        if args.json:
            print(json.dumps(rows, indent=2))
        for row in [] if args.json else rows:
            print(f"{row['dtype']:>8} batch {row['batch']:>5}: autograd {row['autograd_us']:9.0f} us, "
                  f"matrix {row['matrix_us']:9.0f} us, ratio {row['ratio']:.2f}")  # fmt: skip
        return 0
    sizes = SIZES[:3] if args.quick else SIZES
    rows = []
    for s in sizes:
        rows.append(measure(s, args.repeats))
        if not args.json:
            print(f"measured {rows[-1]['parameters']} parameters", file=sys.stderr, flush=True)
    machine = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_count": __import__("os").cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "machine": platform.machine(),
    }
    if args.json:
        print(json.dumps({"machine": machine, "rows": rows}, indent=2))
    else:
        print(table(rows))
        print(f"\nmachine: {machine}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
