"""The command line's own errors: one line that points to the command's help, never argparse's usage block,
and `main` returns their status (2) as it does every other; --help states the ranges, and what an option's
parser accepts no later check refuses."""

from __future__ import annotations

import pytest

import derive
from derive.cli import main

BAD = [
    (["report", "--example", "seed", "--steps", "x"], "derive report",
     "argument --steps: expected a whole number from 1 to 200, got 'x'"),
    (["report", "--example", "seed", "--digits", "0"], "derive report",
     "argument --digits: expected a whole number from 1 to 15, got '0'"),
    (["grads", "--exmple", "seed"], "derive grads", "unrecognized arguments: --exmple seed. Did you mean '--example'?"),
    (["grads", "--example", "seed", "--format", "yaml"], "derive grads",
     "argument --format: invalid choice: 'yaml' (choose from 'text', 'latex', 'json')"),
    (["check"], "derive check", "the following arguments are required: FILE.py:FUNCTION, --sizes, --activations"),
    (["verify", "--random", "0"], "derive verify", "argument --random: expected a whole number >= 1, got '0'"),
    (["code", "--example", "seed", "--backend", "jax"], "derive code", "argument --backend: invalid choice: 'jax'"),
    (["--verbose"], "derive", "the following arguments are required: COMMAND"),
]


@pytest.mark.parametrize("argv, prog, message", BAD)
def test_an_option_error_is_one_line_pointing_to_the_help(capsys, argv, prog, message):
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and "usage:" not in err
    [line] = err.strip().splitlines()
    assert line.startswith(f"{prog}: error: {message}") and line.endswith(f"(see '{prog} --help')")


@pytest.mark.parametrize("command, pieces", [
    ("report", ["--steps N optimizer steps, from 1 to 200", "--digits N precision, from 1 to 15: decimal places, significant digits below 1, scientific notation below 1e-4 and from 1e6"]),
    ("check", ["--examples N networks to draw, >= 1", "--timeout S"]),
    ("verify", ["check N randomly drawn networks instead (N >= 1)"]),
])
def test_help_states_the_ranges(capsys, command, pieces):
    assert main([command, "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for piece in pieces:
        assert piece in text


@pytest.mark.parametrize("option, low, high", [("--steps", 1, 200), ("--digits", 1, 15)])
def test_what_the_parser_accepts_no_later_check_refuses(capsys, option, low, high):
    from derive.report.build import MAX_STEPS
    from derive.report.numformat import MAX_DIGITS

    assert (MAX_STEPS, MAX_DIGITS) == (200, 15)  # the ranges --help states are the report's own
    for value in (low, high):  # the edges are accepted and run
        net = derive.examples.seed()
        if option == "--steps":
            derive.report(net, format="md", steps=value)
        else:
            derive.report(net, format="md", digits=value)
    for value in (low - 1, high + 1):  # and just outside, the one message states the range (not '>= 0' and then a refusal)
        assert main(["report", "--example", "seed", option, str(value)]) == 2
        err = capsys.readouterr().err
        assert f"expected a whole number from {low} to {high}, got '{value}'" in err and ">= 0" not in err
