"""What a new user hit with torch models, report files and graph specs: each one line with the right status.

A module with only buffers, or nothing at all, has nothing to differentiate; what the user's file prints
goes to standard error; a class whose constructor needs arguments is named as such (the file ran); float --x
into an embedding says how to give integer indices; -o with a suffix that names no format is refused unless
--format says; ops that form a cycle, or come before their inputs, are named as such."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import derive
from derive.cli import main

MODELS = '''
import torch
from torch import nn


class BuffersOnly(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("scale", torch.tensor([2.0, 3.0]))
        self.register_buffer("shift", torch.tensor([0.5]))

    def forward(self, x):
        return (x * self.scale).sum(1, keepdim=True) + self.shift


class Nothing(nn.Module):
    def forward(self, x):
        return x.sum(1, keepdim=True)


class NeedsArguments(nn.Module):
    def __init__(self, hidden, *, act="tanh"):
        super().__init__()
        self.fc = nn.Linear(2, hidden)

    def forward(self, x):
        return self.fc(x)


class FailsInInit(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 1)
        raise TypeError("unsupported operand type(s) for +: 'Linear' and 'int'")


class Bag(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.embedding = nn.Embedding(10, 3)
        self.head = nn.Linear(3, 2)

    def forward(self, x):
        return self.head(self.embedding(x)).mean(1)
'''


@pytest.fixture
def models(tmp_path):
    path = tmp_path / "mods.py"
    path.write_text(MODELS)
    return path


def run(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return status, out, err.strip()


@pytest.mark.parametrize("name", ["BuffersOnly", "Nothing"])
def test_a_module_with_buffers_only_or_nothing_has_nothing_to_differentiate(models, capsys, name):
    status, out, err = run(capsys, "grads", "--torch", f"{models}:{name}", "--x", "1,2", "--y", "0.5", "--loss", "mse",
                           "--format", "json")
    assert status == 2 and out == ""
    assert err == f"derive: error: {name} has no parameters: there is nothing to differentiate"


def test_buffers_are_constants_not_parameters_in_the_python_api():
    module = torch.nn.BatchNorm1d(2, affine=False).eval()  # running mean and variance: buffers only
    assert not list(module.parameters()) and len(list(module.buffers())) == 3
    with pytest.raises(derive.DeriveError, match=r"^BatchNorm1d has no parameters: there is nothing to differentiate$"):
        derive.from_torch(module, loss="mse", x=[[1.0, 2.0]], y=[[0.0, 1.0]])


def test_a_class_whose_constructor_needs_arguments_is_named(models, capsys):
    status, _, err = run(capsys, "grads", "--torch", f"{models}:NeedsArguments", "--x", "1,2", "--y", "0",
                         "--loss", "mse")
    assert status == 2 and len(err.splitlines()) == 1
    assert "NeedsArguments(hidden, *, act='tanh') needs arguments (hidden), and --torch makes the class with none" in err
    assert "give them defaults" in err and "running mods.py failed" not in err


CHATTY = """
import torch

print("chatty.py imported")


class Chatty(torch.nn.Module):
    def __init__(self):
        super().__init__()
        print("building Chatty")
        self.fc = torch.nn.Linear(2, 1)

    def forward(self, x):
        return self.fc(x)
"""


def test_what_the_file_and_the_constructor_print_goes_to_standard_error(tmp_path, capsys):
    (tmp_path / "chatty.py").write_text(CHATTY)
    status = main(["grads", "--torch", f"{tmp_path / 'chatty.py'}:Chatty", "--x", "1,2", "--y", "0", "--loss", "mse",
                   "--format", "json"])
    out, err = capsys.readouterr()
    assert status == 0 and json.loads(out)["parameters"]  # standard output is the JSON alone
    assert "chatty.py imported" in err and "building Chatty" in err


def test_a_constructor_that_fails_is_not_the_file_failing(models, capsys):
    status, _, err = run(capsys, "grads", "--torch", f"{models}:FailsInInit", "--x", "1,2", "--y", "0", "--loss", "mse")
    assert status == 2
    assert err.endswith("making FailsInInit() failed: TypeError: unsupported operand type(s) for +: 'Linear' and 'int'")


def test_float_indices_into_an_embedding_say_how_to_give_integers(models, capsys, tmp_path):
    status, _, err = run(capsys, "grads", "--torch", f"{models}:Bag", "--x", "0,7", "--y", "1",
                         "--loss", "cross_entropy")
    assert status == 2 and len(err.splitlines()) == 1
    assert "--x 0,7: Bag takes integer indices (as an nn.Embedding does), but the text form of --x gives floats" in err
    assert "numpy.array([0, 7], dtype=numpy.int64)" in err and "--x x.npy" in err
    np.save(tmp_path / "floats.npy", np.array([[0.0, 7.0]]))
    status, _, err = run(capsys, "grads", "--torch", f"{models}:Bag", "--x", str(tmp_path / "floats.npy"), "--y", "1",
                         "--loss", "cross_entropy")
    assert status == 2 and "but these are floats (float64)" in err
    np.save(tmp_path / "ids.npy", np.array([[0, 7]]))  # the way the message says: it works
    status, out, _ = run(capsys, "grads", "--torch", f"{models}:Bag", "--x", str(tmp_path / "ids.npy"), "--y", "1",
                         "--loss", "cross_entropy", "--format", "json")
    assert status == 0
    rows = {}
    for p in json.loads(out)["parameters"]:
        if p["torch"] == "embedding.weight":
            rows.setdefault(p["index"][0], []).append(p["gradient"])
    assert {r for r, g in rows.items() if any(g)} == {0, 7}  # only the rows looked up get a gradient


def test_an_output_suffix_that_names_no_format_is_refused_unless_format_is_given(capsys, tmp_path):
    for name in ("r.xyz", "report"):
        status, out, err = run(capsys, "report", "--example", "seed", "-o", str(tmp_path / name))
        assert status == 2 and out == "" and not (tmp_path / name).exists()
        assert "names no report format (.tex, .md, .markdown, .html, .htm, .pdf): name the file so, or give --format" in err
    status, _, err = run(capsys, "report", "--example", "seed", "-o", str(tmp_path / "r.xyz"), "--format", "md")
    assert status == 0 and (tmp_path / "r.xyz").read_text().startswith("# ")


GRAPH = """
loss = "mse"
[data]
x = [[1.0, 2.0]]
y = [[0.5, 0.0]]
[parameters]
"w" = [[0.1, 0.2], [0.3, 0.4]]
[[ops]]
name = "a"
op = "linear"
inputs = [{a}, "w"]
[[ops]]
name = "b"
op = "add"
inputs = ["x", {b}]
[[ops]]
name = "c"
op = "tanh"
inputs = ["b"]
"""


@pytest.mark.parametrize("a, b, message", [
    ('"b"', '"a"', "ops[1]: the ops form a cycle: a → b → a; an op cannot depend on itself"),
    ('"a"', '"x"', "ops[1]: the ops form a cycle: a → a"),
    ('"c"', '"a"', "ops[1]: the ops form a cycle: a → c → b → a"),
    ('"b"', '"x"', "ops[1]: input 'b' is the op ops[2], listed after this one: list each op after the ops it takes"),
])
def test_ops_in_a_cycle_or_out_of_order_are_named_so(capsys, tmp_path, a, b, message):
    path = tmp_path / "graph.toml"
    path.write_text(GRAPH.format(a=a, b=b).replace('op = "tanh"', 'op = "activate"\nactivation = "tanh"'))
    status, _, err = run(capsys, "grads", "--spec", str(path))
    assert status == 2 and message in err and "no input" not in err


def test_an_unknown_input_is_still_named_with_the_known_ones(capsys, tmp_path):
    path = tmp_path / "graph.toml"
    path.write_text(GRAPH.format(a='"x"', b='"aa"').replace('op = "tanh"', 'op = "activate"\nactivation = "tanh"'))
    status, _, err = run(capsys, "grads", "--spec", str(path))
    assert status == 2 and "ops[2]: no input 'aa'; known: x, w, a. Did you mean 'a'?" in err
