"""``derive verify``: check the derived gradients against torch autograd and finite differences.

``derive verify SOURCE [DATA] [--device cpu|cuda|all] [--dtype float64|float32|all]`` prints the
per-parameter table of each device and dtype; ``derive verify --random N [--seed S]`` checks N drawn networks
and prints a summary. Exit status 0 when everything agrees, 1 on a mismatch, 2 on bad input. torch and
`verify` are imported only when the command runs (``import derive`` never imports them).
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import time
from typing import Any

from derive.commands.options import HelpFormatter, add_max_params, add_max_sample_params, whole
from derive.errors import DeriveError, require
from derive.model.graph import Model

DEVICES = ("cpu", "cuda", "all")
DTYPES = ("float64", "float32", "all")
#: Networks over this many parameters are refused up front (--max-params raises it).
MAX_PARAMETERS = 10_000
#: Data whose samples × parameters exceed this are refused up front (--max-sample-params raises it).
MAX_SAMPLE_PARAMETERS = 100_000


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "verify", help="check the derived gradients against torch autograd (exit 1 on a mismatch)",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--device", choices=DEVICES, default="cpu", help="all: cpu, and cuda where present")
    parser.add_argument("--dtype", choices=DTYPES, default="float64", help="all: float64 and float32")
    parser.add_argument("--rtol", type=float, metavar="R", help="relative tolerance (default: per dtype)")
    parser.add_argument("--atol", type=float, metavar="A", help="absolute tolerance before scaling")
    parser.add_argument("--random", type=whole(1), metavar="N", help="check N randomly drawn networks instead (N >= 1)")
    add_max_params(parser, MAX_PARAMETERS, "each is compiled and checked one by one")
    add_max_sample_params(parser, MAX_SAMPLE_PARAMETERS)
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="seed of --random (default 0)")
    parser.set_defaults(run=run, needs_source=False)
    return parser


def run(network: Model | None, args: argparse.Namespace) -> tuple[str, int]:
    require("torch", "derive verify (it compares with torch autograd)")  # without torch: which extra to install
    import verify
    from verify.reference import require_device

    devices, skipped = _devices(args.device)
    for device in devices:
        require_device(device)
    dtypes = ["float64", "float32"] if args.dtype == "all" else [args.dtype]
    tolerances = {dtype: _tolerance(verify.policy(dtype), args) for dtype in dtypes}
    if args.random is not None:
        if network is not None or any(getattr(args, o) is not None for o in ("x", "y", "loss", "reduction")):
            raise DeriveError(
                "--random draws its own networks: give no --example, --spec or data options with it"
            )
        return _random(args, devices, tolerances, skipped)
    if network is None:
        raise DeriveError("no network given: use --example NAME, --spec FILE, or --random N")
    reports = _check(network, devices, tolerances, args)
    text = "\n\n".join(map(str, reports)) + "\n" + skipped
    return text, 0 if all(r.ok for r in reports) else 1


def _check(network: Model, devices: list[str], tolerances: dict, args: argparse.Namespace) -> list:
    import verify

    return [
        _keep_tolerance(verify.check(network, device=d, dtype=t, tolerance=tol), args)
        for d in devices
        for t, tol in tolerances.items()
    ]


def _keep_tolerance(report: Any, args: argparse.Namespace) -> Any:
    """The report with ``--rtol``/``--atol`` added to its command-line reproducer, so that it reruns this check."""
    given = "".join(f" --{o} {getattr(args, o)!r}" for o in ("rtol", "atol") if getattr(args, o) is not None)
    if not given or not report.reproducer.startswith("derive verify "):
        return report
    command, sep, comment = report.reproducer.partition("   # ")
    return dataclasses.replace(report, reproducer=f"{command}{given}{sep}{comment}")


def _devices(choice: str) -> tuple[list[str], str]:
    if choice != "all":
        return [choice], ""
    import torch

    if torch.cuda.is_available():
        return ["cpu", "cuda"], ""
    return ["cpu"], "cuda: skipped (torch.cuda.is_available() is false)\n"


def _tolerance(default: Any, args: argparse.Namespace) -> Any:
    for option in ("rtol", "atol"):
        value = getattr(args, option)
        if value is not None and not value >= 0:
            raise DeriveError(f"--{option} must be a number >= 0, got {value!r}")
    if args.rtol is None and args.atol is None:
        return None  # the check's own: the dtype's (a module that rounds to float32 in forward: float32's)
    return type(default)(
        rtol=default.rtol if args.rtol is None else args.rtol,
        atol=default.atol if args.atol is None else args.atol,
    )


def _random(args: argparse.Namespace, devices: list[str], tolerances: dict, skipped: str) -> tuple[str, int]:
    from verify.sampling import random_network

    count, seed = args.random, args.seed
    if count < 1:
        raise DeriveError(f"--random needs a number of networks >= 1, got {count}")
    start = time.perf_counter()
    rng = random.Random(seed)
    where = ", ".join(f"{d} {t}" for d in devices for t in tolerances)
    lines = [
        f"{count} random networks (seed {seed}), each checked on {where}",
        f"{'#':>3}  {'sizes':<12} {'activations':<30} {'loss':<22} {'batch':>5}  {'result':<8} worst error",
    ]
    failures, worst = [], 0.0
    for i in range(1, count + 1):
        net = random_network(rng, name=f"random #{i} (seed {seed})")
        reports = _check(net, devices, tolerances, args)
        error = max(r.worst_relative_error for r in reports)
        worst = max(worst, error)
        ok = all(r.ok for r in reports)
        failures += [r for r in reports if not r.ok]
        sizes = "-".join(str(layer.in_features) for layer in net.layers) + f"-{net.layers[-1].out_features}"
        acts = ",".join(layer.activation for layer in net.layers)
        lines.append(
            f"{i:>3}  {sizes:<12} {acts:<30} {net.loss + ' (' + net.reduction + ')':<22} {net.batch:>5}  "
            f"{'ok' if ok else 'MISMATCH':<8} {error:.2e}"
        )
    agreed = count - len({r.network for r in failures})
    lines.append(
        f"{agreed} of {count} networks agree; worst error {worst:.2e} (relative to max(|g|, scale)); "
        f"{time.perf_counter() - start:.1f} s"
    )
    text = "\n".join(lines) + "\n" + skipped
    if failures:
        text += "\n" + "\n\n".join(map(str, failures)) + "\n"
    return text, 0 if not failures else 1
