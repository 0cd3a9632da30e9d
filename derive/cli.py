"""The ``derive`` command: one subcommand per module in `derive.commands`, sharing source and data options.

Exit status: 0 success; 2 bad input (a one-line message naming what is wrong, no traceback).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from derive.commands import grads, report, verify
from derive.errors import DeriveError
from derive.network import Network
from derive.ops import LOSSES, REDUCTIONS
from derive.progress import Progress
from derive.sources.examples import EXAMPLES, example
from derive.sources.spec import load_spec

#: Each command module has ``add_parser(subparsers) -> parser`` and sets ``run`` as the parser's default:
#: ``run(network, args) -> str | tuple[str, int]`` (output, and an exit status when it is not 0). `main`
#: builds the network from the common source and data options; a command that can do without one (it sets
#: ``needs_source=False``) gets ``network=None`` when no source is given.
COMMANDS = (grads, report, verify)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        with Progress(f"derive {args.command}"):
            network = _network(args)
            result = args.run(network, args)
    except DeriveError as err:
        print(f"derive: error: {err}", file=sys.stderr)
        return 2
    output, status = result if isinstance(result, tuple) else (result, 0)
    sys.stdout.write(output)
    return status


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="derive", description="Exact symbolic gradients of neural networks, with numbers."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        add_source(command.add_parser(subparsers))
    return parser


def add_source(parser: argparse.ArgumentParser) -> None:
    source = parser.add_argument_group("source (one of)").add_mutually_exclusive_group()
    source.add_argument("--example", metavar="NAME", help=f"a built-in network: {', '.join(EXAMPLES)}")
    source.add_argument("--spec", metavar="FILE", help="a spec file (.toml or .json)")
    source.add_argument(
        "--torch", metavar="FILE.py:CLASS", help="a torch.nn.Module class, made with no arguments (runs FILE.py)"
    )
    data = parser.add_argument_group("data (override the source's)")
    data.add_argument("--x", metavar="ROWS", help="inputs: values separated by ',', samples by ';'")
    data.add_argument("--y", metavar="ROWS", help="targets, like --x")
    data.add_argument("--loss", metavar="NAME", help=f"one of {', '.join(LOSSES)}")
    data.add_argument("--reduction", choices=REDUCTIONS)
    data.add_argument("--lr", metavar="A", type=float, help="learning rate")
    data.add_argument("--freeze", metavar="NAMES", help="parameters kept in updates, e.g. 'b1,b2' (adds to the source's)")


def _network(args: argparse.Namespace) -> Network | None:
    if args.example:
        network = example(args.example)
    elif args.spec:
        network = load_spec(args.spec)
    elif getattr(args, "torch", None):
        network = _torch_network(args)
    elif getattr(args, "needs_source", True):
        raise DeriveError("no network given: use --example NAME, --spec FILE or --torch FILE.py:CLASS")
    else:
        return None
    freeze = None
    if getattr(args, "freeze", None) is not None:
        freeze = (*network.freeze, *(name.strip() for name in args.freeze.split(",") if name.strip()))
    return network.replace(
        x=_rows(args.x, "--x"), y=_rows(args.y, "--y"), loss=args.loss, reduction=args.reduction, lr=args.lr,
        freeze=freeze,
    )


def _torch_network(args: argparse.Namespace) -> Network:
    """A network from ``--torch FILE.py:CLASS``: the data and loss must come from the options."""
    from derive.sources.torch_fx import from_torch, load_module

    missing = [option for option in ("x", "y", "loss") if getattr(args, option) is None]
    if missing:
        needed = ", ".join(f"--{option}" for option in missing)
        raise DeriveError(f"--torch gives the model only: give {needed} too")
    module = load_module(args.torch)
    return from_torch(
        module, loss=args.loss, x=_rows(args.x, "--x"), y=_rows(args.y, "--y"), lr=args.lr or 1.0,
        reduction=args.reduction,
    )


def _rows(text: str | None, option: str) -> list[list[float]] | None:
    """``"1,2;3,4"`` as ``[[1.0, 2.0], [3.0, 4.0]]``; no ``eval``, only ``float``."""
    if text is None:
        return None
    try:
        return [[float(v) for v in row.split(",")] for row in text.split(";")]
    except ValueError:
        raise DeriveError(f"{option} {text!r}: expected numbers separated by ',' (samples by ';')") from None


def _version() -> str:
    from derive import __version__

    return __version__
