"""``derive report``: the walk-through of a network as LaTeX, Markdown or HTML (or a PDF via pdflatex).

The format comes from ``--format``, else from the suffix of ``-o FILE`` (``.tex``, ``.md``, ``.html``,
``.pdf``), else LaTeX. A suffix that names another format than the one asked for is refused, so no file ever
holds one format under another's name.

>>> _format(None, "seed.md", False), _format(None, "seed.pdf", False), _format(None, None, False)
(('md', False), ('tex', True), ('tex', False))
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from derive.commands.options import (
    HelpFormatter,
    add_max_params,
    add_max_sample_params,
    add_optimizer,
    optimizer_from,
    whole,
)
from derive.errors import DeriveError, OutputError
from derive.model.graph import Model
from derive.report import FORMATS, FORMS, LANGUAGES, MAX_PARAMETERS, compile_pdf, report
from derive.report.build import MAX_STEPS
from derive.report.numformat import MAX_DIGITS

#: Data whose samples × parameters exceed this are refused up front (--max-sample-params raises it): a report
#: writes every sample's forward pass (the seed at 3,000 samples: 2 MB of Markdown in 27 s).
MAX_SAMPLE_PARAMETERS = 20_000
#: Output suffixes and the format each names ("pdf": LaTeX compiled with --pdf).
SUFFIXES = {".tex": "tex", ".md": "md", ".markdown": "md", ".html": "html", ".htm": "html", ".pdf": "pdf"}


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "report", help="the forward and backward pass written out, with numbers", formatter_class=HelpFormatter
    )
    parser.add_argument(
        "--format", choices=FORMATS, default=None, help="default: from -o FILE's suffix, else tex"
    )
    parser.add_argument("--steps", type=whole(1, MAX_STEPS), default=1, metavar="N",
                        help=f"optimizer steps, from 1 to {MAX_STEPS} (later ones as a table)")
    parser.add_argument("--digits", type=whole(1, MAX_DIGITS), default=4, metavar="N",
                        help=f"precision, from 1 to {MAX_DIGITS}: decimal places, significant digits below 1, "
                             "scientific notation below 1e-4 and from 1e6")
    parser.add_argument("--lang", choices=LANGUAGES, default="en", help="language of the prose")
    parser.add_argument("-o", "--output", metavar="FILE", help="write here instead of standard output")
    parser.add_argument("--pdf", action="store_true", help="compile the LaTeX with pdflatex (needs -o FILE.pdf)")
    add_max_params(parser, MAX_PARAMETERS, "reports print every one")
    add_max_sample_params(parser, MAX_SAMPLE_PARAMETERS)
    add_optimizer(parser)
    parser.add_argument("--hessian", action="store_true", help="add the second-order section (the Hessian)")
    parser.add_argument("--form", choices=FORMS, default="auto",
                        help="scalar: the walk-through; tensor: the matrix form (the tensor program, its values and "
                        "the proofs of its rules); auto: the walk-through within --max-params (continued in matrix "
                        "form for a graph model), the matrix form past it")
    parser.set_defaults(run=run)
    return parser


def run(network: Model, args: argparse.Namespace) -> str:
    form, pdf = _format(args.format, args.output, args.pdf)
    options = dict(steps=args.steps, digits=args.digits, lang=args.lang, max_parameters=args.max_params,
                   optimizer=optimizer_from(args, getattr(network, "optimizer", None)), hessian=args.hessian,
                   form=args.form)
    if pdf:
        if not args.output:
            raise DeriveError("--pdf writes a binary file: give -o FILE.pdf")
        _write(args.output, compile_pdf(report(network, "tex", **options)))
        return ""
    text = report(network, form, **options)
    if args.output:
        _write(args.output, text.encode("utf-8"))
        return ""
    return text


def _format(given: str | None, output: str | None, pdf: bool) -> tuple[str, bool]:
    """The text format to render and whether to compile it to PDF; a ``-o`` suffix naming another is refused."""
    named = _suffix_format(output)
    if pdf or (given is None and named == "pdf"):
        if given not in (None, "tex"):
            raise DeriveError(f"--pdf compiles the LaTeX report: use it with --format tex, not {given}")
        if output and named != "pdf":
            raise DeriveError(f"--pdf writes a PDF: name the file FILE.pdf, not {output!r}")
        return "tex", True
    if named == "pdf":
        raise DeriveError(
            f"-o {output!r} names a PDF but --format {given} writes text: add --pdf (LaTeX only), "
            f"or name it FILE.{given}"
        )
    if output and named is None and given is None:  # never LaTeX under another name, unasked
        suffix = f"the suffix {Path(output).suffix}" if Path(output).suffix else "a name without a suffix"
        raise DeriveError(
            f"-o {output!r}: {suffix} names no report format ({', '.join(SUFFIXES)}): name the file so, "
            "or give --format"
        )
    if given and named and named != given:
        raise DeriveError(
            f"-o {output!r} names a .{named} file but --format is {given}: name it FILE.{given}, "
            f"or give --format {named}"
        )
    return given or named or "tex", False


def _suffix_format(output: str | None) -> str | None:
    return SUFFIXES.get(Path(output).suffix.lower()) if output else None


def _write(path: str, data: bytes) -> None:
    try:
        Path(path).write_bytes(data)
    except OSError as err:
        raise OutputError(f"cannot write {path}: {err.strerror or err}") from None
    print(f"wrote {path}", file=sys.stderr)
