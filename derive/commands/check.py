"""``derive check FILE.py:FUNCTION``: grade a hand-written backward pass against derive's exact gradients.

``derive check student.py:backprop --sizes 2,3,1 --activations sigmoid,sigmoid --loss bce`` draws networks
of that architecture and compares ``backprop(x, y, W1, b1, W2, b2)`` with derive (`verify.check_backprop`).
Exit status 0 right, 1 wrong (the report; with ``--counterexample FILE`` the counterexample is also written
there, as a spec file: nothing is written unasked), 2 bad input (a function that cannot be called as
``fn(x, y, W1, b1, …)`` included), 3 the counterexample could not be written. Importing the file runs it.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from derive.commands.options import HelpFormatter, whole
from derive.errors import DeriveError, OutputError, require

#: seconds one call of the checked function may take (verify.backprop_check.TIMEOUT; not imported from there, so
#: that `derive --help` imports no verify)
TIMEOUT = 10.0


def _seconds(text: str) -> float:
    """A number of seconds > 0."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {text!r}")
    return value


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "check", help="grade a hand-written backward pass (exit 1 when it is wrong)", formatter_class=HelpFormatter,
    )
    parser.add_argument("function", metavar="FILE.py:FUNCTION",
                        help="fn(x, y, W1, b1, W2, b2, …) -> gradients in that order (NumPy arrays)")
    parser.add_argument("--sizes", required=True, metavar="N,N,…", help="layer sizes, e.g. 2,3,1")
    parser.add_argument("--activations", required=True, metavar="NAMES", help="one per layer, e.g. sigmoid,sigmoid")
    parser.add_argument("--examples", type=whole(1), default=100, metavar="N", help="networks to draw, >= 1 (default 100)")
    parser.add_argument("--seed", type=int, default=None, metavar="S", help="seed of the draws (default: random)")
    parser.add_argument("--counterexample", metavar="FILE.json",
                        help="when the pass is wrong, write the network it is wrong on here, as a spec file "
                             "(derive report --spec FILE.json walks through it); without it nothing is written")
    parser.add_argument("--timeout", type=_seconds, default=TIMEOUT, metavar="S",
                        help=f"seconds one call of FUNCTION may take before it is stopped and reported (default {TIMEOUT:g})")
    parser.set_defaults(run=run, needs_source=False)
    return parser


def run(network: object, args: argparse.Namespace) -> tuple[str, int]:
    from derive.sources.torch_module import load_from_file

    if network is not None:
        raise DeriveError("derive check draws its own networks: give no --example, --spec or --torch")
    if args.loss is None:
        raise DeriveError("derive check needs --loss (e.g. --loss bce)")
    if args.counterexample and Path(args.counterexample).suffix.lower() != ".json":
        raise DeriveError(f"--counterexample {args.counterexample!r}: the counterexample is a JSON spec file: name it "
                          "FILE.json")
    try:
        sizes = [int(s) for s in args.sizes.split(",")]
    except ValueError:
        raise DeriveError(f"--sizes {args.sizes!r}: expected whole numbers separated by ',' (e.g. 2,3,1)") from None
    activations = [a.strip() for a in args.activations.split(",") if a.strip()]

    def callable_or_refuse(found: object) -> object:
        if not callable(found):
            raise DeriveError(f"{args.function!r} is not a function")
        return found

    require("hypothesis", "derive check (it draws the networks with hypothesis)")
    fn = load_from_file(args.function, option="derive check", what="FUNCTION", make=callable_or_refuse)
    from verify.backprop_check import check_backprop
    from verify.compare import spec_json

    report = check_backprop(fn, sizes=sizes, activations=activations, loss=args.loss,
                            reduction=args.reduction or "mean", examples=args.examples, seed=args.seed,
                            timeout=args.timeout)
    if report.ok:
        return str(report) + "\n", 0
    if not args.counterexample:
        return f"{report}\n\n(--counterexample FILE.json writes this network as a spec file)\n", 1
    try:
        Path(args.counterexample).write_text(spec_json(report.network) + "\n", encoding="utf-8")
    except OSError as err:
        raise OutputError(f"cannot write {args.counterexample}: {err.strerror or err}") from None
    where = args.counterexample
    return f"{report}\n\nthe counterexample is in {where} (derive report --spec {shlex.quote(where)})\n", 1
