"""Pieces the commands share: the parser whose errors are one line, the help formatter that states defaults,
and checked option types that state their ranges.

>>> count("12"), whole(1, 200)("3")
(12, 3)
>>> whole(1, 200)("0")
Traceback (most recent call last):
...
argparse.ArgumentTypeError: expected a whole number from 1 to 200, got '0'
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from derive.errors import printable


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line that points to the help, not a usage block.

    >>> Parser(prog="derive report").format_error("argument --steps: expected a whole number from 1 to 200")
    "derive report: error: argument --steps: expected a whole number from 1 to 200 (see 'derive report --help')"
    """

    def format_error(self, message: str) -> str:
        return f"{self.prog}: error: {printable(message)} (see '{self.prog} --help')"

    def error(self, message: str):  # type: ignore[override]  # argparse's usage block and message: one line
        self.exit(2, self.format_error(message) + "\n")

    def exit(self, status: int = 0, message: str | None = None):  # type: ignore[override]
        if message:
            sys.stderr.write(message)
        raise SystemExit(status)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Help that states each option's default (unless the help already does) and keeps the epilog's lines."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or action.default in (None, False, argparse.SUPPRESS) or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)" if text else "default: %(default)s"


def whole(low: int, high: int | None = None) -> Callable[[str], int]:
    """An ``int`` option type from ``low`` to ``high`` (no bound above: None); its message states the range, so
    that no later check refuses what it accepted (argparse reports it, exit 2)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low or (high is not None and value > high):
            bounds = f"from {low} to {high}" if high is not None else f">= {low}"
            raise argparse.ArgumentTypeError(f"expected a whole number {bounds}, got {text!r}")
        return value

    parse.__name__ = "whole number"
    return parse


#: An ``int`` option that must be >= 0: limits.
count = whole(0)


def add_max_params(parser: argparse.ArgumentParser, default: int, why: str) -> None:
    """``--max-params N``: the command refuses larger networks up front, before any work that grows with them."""
    parser.add_argument(
        "--max-params", type=count, default=default, metavar="N",
        help=f"refuse networks with more parameters, before any work ({why}; default {default:,})",
    )  # fmt: skip


def add_max_sample_params(parser: argparse.ArgumentParser, default: int) -> None:
    """``--max-sample-params N``: refuse data whose samples × parameters exceed N, before any work: the scalar
    forms (closed, program) grow with every sample of every parameter's gradient."""
    parser.add_argument(
        "--max-sample-params", type=count, default=default, metavar="N",
        help=f"refuse data whose samples × parameters exceed N, before any work (each gradient sums over every "
             f"sample; the seed's 9 parameters at 11,000 samples take about 35 s; default {default:,})",
    )  # fmt: skip


def _betas(text: str) -> tuple[float, float]:
    """``--betas B1,B2``: two numbers."""
    try:
        b1, b2 = (float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected two numbers B1,B2, got {text!r}") from None
    return b1, b2


#: The optimizer options of the command line: (flag, torch's name, type, help).
OPTIMIZER_OPTIONS = (
    ("--momentum", "momentum", float, "momentum μ (sgd, rmsprop)"),
    ("--dampening", "dampening", float, "dampening τ of the momentum (sgd)"),
    ("--nesterov", "nesterov", None, "Nesterov momentum (sgd)"),
    ("--weight-decay", "weight_decay", float, "weight decay λ (adamw: decoupled; the others: added to the gradient)"),
    ("--betas", "betas", _betas, "B1,B2: the moments' decay rates (adam, adamw)"),
    ("--eps", "eps", float, "ε in the denominator (adam, adamw, rmsprop, adagrad)"),
    ("--alpha", "alpha", float, "decay rate of the mean square (rmsprop)"),
    ("--centered", "centered", None, "subtract the squared mean gradient (rmsprop)"),
    ("--amsgrad", "amsgrad", None, "use the running maximum of v (adam, adamw)"),
    ("--lr-decay", "lr_decay", float, "learning-rate decay η (adagrad)"),
    ("--initial-accumulator-value", "initial_accumulator_value", float, "the sum's start (adagrad)"),
    ("--maximize", "maximize", None, "ascend instead of descend (all)"),
)


def add_optimizer(parser: argparse.ArgumentParser) -> None:
    """``--optimizer NAME`` and its options, named as in torch.optim (the learning rate is ``--lr``)."""
    from derive.training.optimizers import OPTIMIZERS

    group = parser.add_argument_group("optimizer (torch.optim's semantics; the learning rate is --lr)")
    group.add_argument("--optimizer", metavar="NAME", help=f"one of {', '.join(OPTIMIZERS)} (default: sgd)")
    for flag, dest, kind, text in OPTIMIZER_OPTIONS:
        if kind is None:
            group.add_argument(flag, dest=dest, action="store_true", default=None, help=text)
        else:
            group.add_argument(flag, dest=dest, type=kind, default=None, metavar="B1,B2" if dest == "betas" else "V",
                               help=text)


def optimizer_from(args: argparse.Namespace, given=None):
    """The optimizer the options name (over ``given``, a source's own, if any); ``None``: plain SGD."""
    import dataclasses

    from derive.errors import DeriveError
    from derive.training.optimizers import optimizer

    options = {dest: getattr(args, dest) for _, dest, _, _ in OPTIMIZER_OPTIONS if getattr(args, dest, None) is not None}
    name = getattr(args, "optimizer", None)
    if given is not None and getattr(args, "lr", None) is not None:
        given = dataclasses.replace(given, lr=None)  # --lr (the network's rate) over the source's
    if given is not None and (name is None or name.lower() == given.name):
        try:
            return dataclasses.replace(given, **options)
        except TypeError:
            name = given.name  # refused below by name, with the optimizer's options
    if name is None and not options:
        return None
    flags = {dest: flag for flag, dest, _, _ in OPTIMIZER_OPTIONS}
    try:
        return optimizer(name or "sgd", **options)
    except DeriveError as err:
        for dest, flag in flags.items():
            err = DeriveError(str(err).replace(f"option {dest!r}", f"option {flag}"))
        raise err from None
