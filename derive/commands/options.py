"""Pieces the commands share: the help formatter that states defaults, and checked option types.

>>> count("12")
12
>>> count("-1")
Traceback (most recent call last):
...
argparse.ArgumentTypeError: expected a whole number >= 0, got '-1'
"""

from __future__ import annotations

import argparse


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Help that states each option's default (unless the help already does) and keeps the epilog's lines."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or action.default in (None, False, argparse.SUPPRESS) or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)" if text else "default: %(default)s"


def count(text: str) -> int:
    """An ``int`` option that must be >= 0: limits, steps, digits (argparse reports the message, exit 2)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value


def add_max_params(parser: argparse.ArgumentParser, default: int, why: str) -> None:
    """``--max-params N``: the command refuses larger networks up front, before any work that grows with them."""
    parser.add_argument(
        "--max-params", type=count, default=default, metavar="N",
        help=f"refuse networks with more parameters, before any work ({why}; default {default:,})",
    )  # fmt: skip
