"""The ``derive`` command: one subcommand per module in `derive.commands`, sharing source and data options.

Exit status (`EXIT_STATUSES`): 0 success; 1 verification mismatch (``derive verify``); 2 bad input (a
one-line message naming what is wrong, no traceback); 3 the output could not be written (a full disk, a
missing folder); 130 interrupted (Ctrl-C); 141 standard output closed early (a broken pipe, as
``derive … | head``). Every failure ends with one line on standard error, never a traceback.
"""

from __future__ import annotations

from derive.startup import INTERRUPTED, INTERRUPTED_MESSAGE, interruptible_start

with interruptible_start():  # see derive.startup
    import argparse
    import os
    import sys
    from collections.abc import Sequence
    from pathlib import Path

    import numpy as np

    from derive.commands import check, code, grads, report, verify
    from derive.commands.options import HelpFormatter, Parser
    from derive.errors import DeriveError, decode_utf8, did_you_mean, printable
    from derive.model.graph import Model
    from derive.ops import LOSSES, REDUCTIONS
    from derive.progress import Progress
    from derive.terms import gc_paused
    from derive.sources.data import SUFFIXES, check_rank, load_data
    from derive.sources.examples import EXAMPLES, example
    from derive.sources.spec import load_spec, loads_spec

#: Each command module has ``add_parser(subparsers) -> parser`` and sets ``run`` as the parser's default:
#: ``run(network, args) -> str | tuple[str, int]`` (output, and an exit status when it is not 0). `main`
#: builds the network from the common source and data options; a command that can do without one (it sets
#: ``needs_source=False``) gets ``network=None`` when no source is given.
COMMANDS = (grads, report, verify, check, code)

EXIT_OK, EXIT_MISMATCH, EXIT_BAD_INPUT, EXIT_OUTPUT = 0, 1, 2, 3
EXIT_INTERRUPTED, EXIT_BROKEN_PIPE = INTERRUPTED, 141  # 128 + SIGINT, 128 + SIGPIPE: what a shell reports
EXIT_STATUSES = {
    EXIT_OK: "success",
    EXIT_MISMATCH: "verification mismatch (derive verify)",
    EXIT_BAD_INPUT: "bad input: a one-line message names what is wrong",
    EXIT_OUTPUT: "the output could not be written (full disk, missing folder, no permission)",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C)",
    EXIT_BROKEN_PIPE: "standard output was closed early (broken pipe)",
}
#: Options whose value may start with '-' (a negative first number: --x "-1,2").
_DATA_OPTIONS = ("--x", "--y")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (`EXIT_STATUSES`)."""
    try:
        return _main(list(sys.argv[1:] if argv is None else argv))
    except KeyboardInterrupt:
        _detach_stdout()
        print(INTERRUPTED_MESSAGE, file=sys.stderr)
        return EXIT_INTERRUPTED


def run() -> None:
    """The ``derive`` command itself: `main`, then the process ends without tearing down its objects.

    Deriving a CNN leaves millions of objects (symbols, sums, strings) alive in caches; Python's own exit
    frees them one by one and runs a last collection over them, 6 s after a LeNet's 20 s of work. The output
    is written and flushed by then, so the process ends at once (``os._exit``) with `main`'s status.
    """
    status = main()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # already reported by main, or closed
            pass
    os._exit(status if isinstance(status, int) else EXIT_OK)


def _main(argv: list[str]) -> int:
    parser = _parser()
    if not argv:  # `derive` alone: what there is to run
        parser.print_help()
        return EXIT_OK
    typo = _unknown_command(argv)
    if typo:
        print(f"derive: error: {typo}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        args = _parse(parser, _attach_negative_values(argv))
    except SystemExit as done:  # --help, --version, or an option error already printed in one line
        return done.code if isinstance(done.code, int) else EXIT_BAD_INPUT
    # one command, then the process ends: the cyclic collector's passes over millions of derived objects
    # (seconds for a CNN) would free nothing that reference counting does not
    with gc_paused():
        try:
            with Progress(f"derive {args.command}"):
                network = _network(args)
                result = args.run(network, args)
        except DeriveError as err:
            print(f"derive: error: {printable(str(err))}", file=sys.stderr)
            return getattr(err, "exit_status", EXIT_BAD_INPUT)
        output, status = result if isinstance(result, tuple) else (result, EXIT_OK)
        return _write_stdout(output) or status


def _write_stdout(output: str) -> int:
    """Write and flush standard output; a failure is one line on stderr and its exit status (else 0)."""
    try:
        sys.stdout.write(output)
        sys.stdout.flush()
    except BrokenPipeError:
        _detach_stdout()
        print("derive: standard output was closed before the end (broken pipe)", file=sys.stderr)
        return EXIT_BROKEN_PIPE
    except OSError as err:
        _detach_stdout()
        print(f"derive: error: cannot write standard output: {err.strerror or err}", file=sys.stderr)
        return EXIT_OUTPUT
    return EXIT_OK


def _detach_stdout() -> None:
    """Point the process's standard output at /dev/null, so the flush at exit cannot fail a second time."""
    if sys.stdout is not sys.__stdout__:  # captured or replaced (tests): not ours to redirect
        return
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def _parser() -> argparse.ArgumentParser:
    statuses = "\n".join(f"  {code:<4} {meaning}" for code, meaning in EXIT_STATUSES.items())
    parser = Parser(
        prog="derive",
        description="Exact symbolic gradients of neural networks, with numbers.",
        epilog=f"'derive COMMAND --help' describes a command and its defaults.\n\nexit status:\n{statuses}",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        add_source(command.add_parser(subparsers))
    parser.commands = subparsers.choices  # type: ignore[attr-defined]  # name -> its parser, for its errors
    return parser


def _parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """The options; an error is one line from the command's own parser, pointing to its help (exit 2)."""
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        command = parser.commands[args.command]
        options = [o for action in command._actions for o in action.option_strings]
        hint = next((did_you_mean(u.split("=")[0], options) for u in unknown if u.startswith("-")), "")
        command.error(f"unrecognized arguments: {' '.join(unknown)}.{hint}")
    return args


def _unknown_command(argv: list[str]) -> str:
    """The message for a first word that is no command ("did you mean 'grads'?"), or ``""``."""
    first = next((a for a in argv if not a.startswith("-")), None)
    if first is None or any(a in ("-h", "--help", "--version") for a in argv[: argv.index(first)]):
        return ""
    names = [command.__name__.rsplit(".", 1)[-1] for command in COMMANDS]
    if first in names:
        return ""
    return f"unknown command {first!r}; commands: {', '.join(names)}.{did_you_mean(first, names)}"


def _attach_negative_values(argv: list[str]) -> list[str]:
    """``--x -1,2`` as ``--x=-1,2``: argparse would read a value starting with '-' as an option."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        if argv[i] in _DATA_OPTIONS and i + 1 < len(argv) and argv[i + 1][:2].rstrip("0123456789.") == "-":
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def add_source(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("source (one of)")
    source = group.add_mutually_exclusive_group()
    source.add_argument("--example", metavar="NAME", help=f"a built-in network: {', '.join(EXAMPLES)}")
    source.add_argument("--spec", metavar="FILE", help="a spec file (.toml or .json; '-' reads standard input)")
    source.add_argument(
        "--torch", metavar="FILE.py:CLASS", help="a torch.nn.Module class, made with no arguments (runs FILE.py)"
    )
    group.add_argument(
        "--eval", action="store_true", help="with --torch: call model.eval() before reading it (Dropout off)"
    )
    group.add_argument(
        "--input", metavar="NAME=FILE", action="append", default=[],
        help="with --torch: one more keyword argument of forward (an attention mask), as data (like --x); repeatable",
    )
    files = ", ".join(SUFFIXES)
    data = parser.add_argument_group("data (override the source's)")
    data.add_argument(
        "--x", metavar="ROWS|FILE",
        help=f"inputs: values separated by ',', samples by ';' (\"-1,2;3,4\"), or a file {files}",
    )  # fmt: skip
    data.add_argument("--y", metavar="ROWS|FILE", help="targets, like --x (cross_entropy: class indices)")
    data.add_argument("--loss", metavar="NAME", help=f"one of {', '.join(LOSSES)} (default: the source's)")
    data.add_argument("--reduction", choices=REDUCTIONS, help="default: the source's, else mean")
    data.add_argument("--lr", metavar="A", type=float, help="learning rate (default: the source's, else 1)")
    data.add_argument("--freeze", metavar="NAMES", help="parameters kept in updates, e.g. 'b1,b2' (adds to the source's)")
    data.add_argument("--l2", type=float, metavar="λ", help="add λ·Σ p² to the loss (an L2 penalty, derived as part of L)")
    data.add_argument("--l1", type=float, metavar="λ", help="add λ·Σ |p| to the loss (an L1 penalty)")
    data.add_argument("--penalize", metavar="NAMES", help="the parameters --l2/--l1 penalize (default: every weight)")


def _network(args: argparse.Namespace) -> Model | None:
    """The model (a chain's, `Model.textbook`, or a graph model's) of the source and data options."""
    x, y = _data(args.x, "--x"), _data(args.y, "--y")
    if args.eval and not args.torch:
        raise DeriveError("--eval puts a torch model in eval mode: use it with --torch FILE.py:CLASS")
    if getattr(args, "input", None) and not args.torch:
        raise DeriveError("--input gives a torch model's forward more data: use it with --torch FILE.py:CLASS")
    if args.example:
        network = example(args.example)
    elif args.spec:
        network = _spec(args.spec, x, y)  # a chain spec refuses rank > 2 itself; a graph spec takes any
    elif getattr(args, "torch", None):
        network = _torch_network(args, x, y)
    elif getattr(args, "needs_source", True):
        raise DeriveError("no network given: use --example NAME, --spec FILE or --torch FILE.py:CLASS")
    else:
        return None
    _check_size(network, args)
    if network.textbook:  # a chain takes rows of features
        x, y = _rows(x, "--x"), _rows(y, "--y")
    freeze = None
    if getattr(args, "freeze", None) is not None:
        freeze = (*network.freeze, *(name.strip() for name in args.freeze.split(",") if name.strip()))
    penalty = {key: getattr(args, key, None) for key in ("l2", "l1")}
    if getattr(args, "penalize", None) is not None:
        penalty["penalized"] = tuple(name.strip() for name in args.penalize.split(",") if name.strip())
    if any(v is not None for v in penalty.values()):
        if not network.textbook:
            raise DeriveError("--l2/--l1 are for chains; for a graph model, add the penalty in forward(x, y)")
        network = network.replace(**penalty)
    network = network.replace(x=x, y=y, loss=args.loss, reduction=args.reduction, lr=args.lr, freeze=freeze)
    _check_samples(network, args)
    return network


def _data(value: str | None, option: str) -> np.ndarray | None:
    """``--x``/``--y`` as an array of any rank (`load_data`), or ``None`` when not given."""
    return None if value is None else load_data(value, option)


def _rows(array: np.ndarray | None, option: str) -> list | None:
    """Data for a chain network: nested lists of rank 1 or 2 (a clear error for higher ranks)."""
    return None if array is None else check_rank(array, option).tolist()


def _spec(path: str, x: np.ndarray | None, y: np.ndarray | None) -> Model:
    """A spec file, or standard input for ``-`` (JSON when it starts with '{', else TOML)."""
    data = {"x": x, "y": y}
    if path != "-":
        return load_spec(path, data=data)
    stdin = getattr(sys.stdin, "buffer", None)  # bytes, so that text that is not UTF-8 is one line, not a traceback
    text = decode_utf8(stdin.read(), "stdin") if stdin is not None else sys.stdin.read()
    return loads_spec(text, format="json" if text.lstrip().startswith("{") else "toml", where="stdin", data=data)


def _check_size(network: Model, args: argparse.Namespace) -> None:
    """Refuse a network over ``--max-params`` before any work that grows with it."""
    limit = getattr(args, "max_params", None)
    if limit is None or getattr(args, "form", None) == "tensor":  # the tensor form grows with the ops, not the count
        return
    count = _parameter_count(network)
    if count > limit and args.command in ("grads", "report") and getattr(args, "form", None) == "auto":
        args.form = "tensor"  # past the scalar forms' limit, auto takes the tensor form
        return
    if count > limit:
        raise DeriveError(
            f"the network has {count:,} parameters; derive {args.command} is limited to {limit:,} "
            f"before it starts, as the time grows with the count (raise the limit with --max-params {count})"
        )


def _parameter_count(network: Model) -> int:
    """Counted from the shapes: no parameter objects for a large network."""
    from derive.report import _count

    return _count(network)


def _check_samples(network: Model, args: argparse.Namespace) -> None:
    """Refuse data over ``--max-sample-params`` (samples × parameters) before the scalar forms are built: each
    gradient sums over every sample."""
    limit = getattr(args, "max_sample_params", None)
    if limit is None or getattr(args, "form", None) == "tensor":  # the tensor form does not sum scalar terms
        return
    samples, parameters = network.batch, _parameter_count(network)
    if samples * parameters > limit:
        raise DeriveError(
            f"{samples:,} samples × {parameters:,} parameters = {samples * parameters:,}; derive {args.command} "
            f"is limited to {limit:,} before it starts, as each gradient sums over every sample (give fewer "
            f"samples, or raise the limit with --max-sample-params {samples * parameters})"
        )


def _torch_network(args: argparse.Namespace, x: np.ndarray | None, y: np.ndarray | None) -> Model:
    """A network from ``--torch FILE.py:CLASS``: the data and loss must come from the options."""
    from derive.sources.torch_module import from_torch, load_module

    missing = [option for option in ("x", "y") if getattr(args, option) is None]
    if missing:
        needed = ", ".join(f"--{option}" for option in missing)
        raise DeriveError(f"--torch gives the model only: give {needed} (and --loss, unless forward(x, y) "
                          "returns the loss) too")
    inputs = {}
    for item in args.input:
        name, _, value = item.partition("=")
        if not name.isidentifier() or not value:
            raise DeriveError(f"--input {item!r}: expected NAME=FILE (a keyword argument of forward, and its data)")
        inputs[name] = load_data(value, f"--input {name}")
    module = load_module(args.torch)
    if args.eval:
        module.eval()
    # no --loss: forward(x, y) computes the loss itself (refused with a clear message if it does not)
    try:
        return from_torch(module, loss=args.loss, x=x, y=y, lr=args.lr or 1.0, reduction=args.reduction,
                          inputs=inputs or None)
    except DeriveError as err:
        if x is not None and x.dtype.kind == "f" and _wants_indices(str(err)):
            raise DeriveError(_indices_message(args.x, x, type(module).__name__)) from None
        raise


def _wants_indices(message: str) -> bool:
    """Whether torch refused float data where it takes integer indices (an embedding, gather, one_hot)."""
    text = message.lower()
    return ("indices" in text or "index" in text) and any(kind in text for kind in ("long", "int64", "int32", "integer"))


def _indices_message(given: str, x: np.ndarray, model: str) -> str:
    floats = "the text form of --x gives floats" if not Path(given).suffix else f"these are floats ({x.dtype})"
    sample = np.array2string(x.reshape(-1)[:3].astype(np.int64), separator=", ")
    return (f"--x {given}: {model} takes integer indices (as an nn.Embedding does), but {floats}: save the indices "
            f"as an integer array, e.g. numpy.save('x.npy', numpy.array({sample}, dtype=numpy.int64)), and give "
            "--x x.npy (or a .json file of whole numbers)")


def _version() -> str:
    from derive import __version__

    return __version__


__all__ = ["COMMANDS", "EXIT_STATUSES", "add_source", "main"]
