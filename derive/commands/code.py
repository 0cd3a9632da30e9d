"""``derive code``: print the derived gradient as readable, self-contained Python (NumPy or torch)."""

from __future__ import annotations

import argparse
import textwrap

from derive import naming
from derive.code import BACKENDS, code
from derive.commands.options import HelpFormatter


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "code", help="the derived gradient as Python: gradients(x, y, W1, b1, …)", formatter_class=HelpFormatter,
    )
    parser.add_argument("--backend", choices=BACKENDS, default="numpy", help="the array library of the code")
    parser.set_defaults(run=run)
    return parser


def run(network, args: argparse.Namespace) -> str:
    note = naming.note(network, "code")  # W1 here is a layer; derive grads' W1 is one weight
    header = "".join(f"# {line}\n" for line in textwrap.wrap(note, 108, subsequent_indent="  ")) if note else ""
    return header + code(network, backend=args.backend)
