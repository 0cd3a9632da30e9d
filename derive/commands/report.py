"""``derive report``: the walk-through of a network as LaTeX, Markdown or HTML (or a PDF via pdflatex)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from derive.errors import DeriveError
from derive.network import Network
from derive.report import FORMATS, LANGUAGES, MAX_PARAMETERS, compile_pdf, report


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("report", help="the forward and backward pass written out, with numbers")
    parser.add_argument("--format", choices=FORMATS, default="tex")
    parser.add_argument("--steps", type=int, default=1, metavar="N", help="SGD steps (later ones as a table)")
    parser.add_argument("--digits", type=int, default=4, metavar="N", help="decimal places shown (default 4)")
    parser.add_argument("--lang", choices=LANGUAGES, default="en", help="language of the prose")
    parser.add_argument("-o", "--output", metavar="FILE", help="write here instead of standard output")
    parser.add_argument("--pdf", action="store_true", help="compile the LaTeX with pdflatex (needs -o FILE.pdf)")
    parser.add_argument(
        "--max-params", type=int, default=MAX_PARAMETERS, metavar="N",
        help=f"refuse networks with more parameters (default {MAX_PARAMETERS})",
    )  # fmt: skip
    parser.set_defaults(run=run)
    return parser


def run(network: Network, args: argparse.Namespace) -> str:
    if args.pdf:
        if args.format != "tex":
            raise DeriveError("--pdf compiles the LaTeX report: use it with --format tex (the default)")
        if not args.output:
            raise DeriveError("--pdf writes a binary file: give -o FILE.pdf")
        options = dict(steps=args.steps, digits=args.digits, lang=args.lang, max_parameters=args.max_params)
        pdf = compile_pdf(report(network, "tex", **options))
        _write(args.output, pdf)
        return ""
    text = report(
        network, args.format, steps=args.steps, digits=args.digits, lang=args.lang, max_parameters=args.max_params
    )
    if args.output:
        _write(args.output, text.encode("utf-8"))
        return ""
    return text


def _write(path: str, data: bytes) -> None:
    try:
        Path(path).write_bytes(data)
    except OSError as err:
        raise DeriveError(f"cannot write {path}: {err.strerror}") from None
    print(f"wrote {path}", file=sys.stderr)
