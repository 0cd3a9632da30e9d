"""The tensor program (derive.tensor): on models of every kind, each parameter tensor's gradient equals float64
autograd of the module itself; its definitions re-evaluate from their printed expressions (the documented
notation, parsed, never evaluated by Python) to the same tensors; at small sizes each gradient equals the
scalar engine's, entry by entry; and the command line gives it as JSON and LaTeX."""

import json

import numpy as np
import pytest

import derive
from derive.cli import main
from derive.tensor.expr import parse
from derive.tensor.functions import evaluate
from derive.tensor.program import gradient_values, leaf_values, program
from tests.models import cnn_zoo, graph_zoo, modern_zoo, rnn_zoo

ZOOS = {**{n: modern_zoo for n in modern_zoo.CASES}, **{n: graph_zoo for n in graph_zoo.CASES},
        **{n: cnn_zoo for n in cnn_zoo.CASES}, **{n: rnn_zoo for n in rnn_zoo.CASES}}


def _model(name):
    x, y, loss = ZOOS[name].CASES[name]
    return derive.from_torch(getattr(ZOOS[name], name)(), loss=loss, x=x, y=y)


@pytest.mark.parametrize("name", sorted(ZOOS))
def test_tensor_gradients_equal_autograd_and_the_scalar_engine(name):
    from verify.reference import autograd_gradients

    model = _model(name)
    # the zoos hold graph models; chains have their own test below (test_a_chain_has_the_textbook_matrix_equations)
    assert not model.textbook, f"{name} reads as a chain"
    grads = gradient_values(program(model), model)
    reference = autograd_gradients(model).gradients
    scalar = {p.name: p.gradient for p in derive.derive(model).parameters}
    scale = max(1.0, max(abs(v) for v in reference.values()))
    for p in model.parameters():
        value = float(np.asarray(grads[p.torch])[p.index])
        assert abs(value - reference[p.name]) <= 1e-10 * scale, (p.name, value, reference[p.name])
        assert abs(value - scalar[p.name]) <= 1e-10 * scale, (p.name, value, scalar[p.name])


@pytest.mark.parametrize("name", ["GPTBlock", "EncoderLayer", "MiniResNet", "BiLSTM", "FiveLosses", "TinyCNN"])
def test_definitions_reevaluate_from_their_printed_expressions(name):
    model = _model(name)
    p = program(model)
    values = p.values(model)
    env = leaf_values(p, model)
    for d in p.definitions:
        parsed = parse(str(d.expr))
        assert parsed == d.expr, d.symbol
        env[d.symbol] = evaluate(parsed, env)
        np.testing.assert_array_equal(np.asarray(env[d.symbol]), np.asarray(values[d.symbol]), err_msg=d.symbol)


def test_a_chain_has_the_textbook_matrix_equations():
    net = derive.examples.seed().replace(x=[[1, 1], [0, 1]], y=[[0], [1]])
    text = {d.symbol: str(d.expr) for d in program(net).definitions}
    assert text["Z_1"] == "X @ transpose(W_1) + b_1" and text["A_1"] == "sigmoid(Z_1)"
    assert text["dL_dZ_1"] == "dL_dA_1*(A_1*(1 - A_1))" and text["dL_dA_1"] == "dL_dZ_2 @ W_2"
    assert text["dL_dW_1"] == "transpose(dL_dZ_1) @ X" and text["dL_db_1"] == "sum(dL_dZ_1; dims=[0], keepdim=false)"
    grads = gradient_values(program(net), net)
    scalar = {p.name: p.gradient for p in derive.derive(net).parameters}
    assert grads["0.weight"].reshape(-1).tolist() == pytest.approx([scalar[n] for n in ("W1", "W2", "W3", "W4")],
                                                                  rel=1e-14)


def test_grads_form_tensor_on_the_command_line(capsys):
    assert main(["grads", "--example", "seed", "--form", "tensor", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["form"] == "tensor" and [p["torch"] for p in doc["parameters"]] == ["0.weight", "0.bias", "2.weight",
                                                                                 "2.bias"]
    scalar = {p.name: p.gradient for p in derive.derive(derive.examples.seed()).parameters}
    assert doc["parameters"][2]["gradient"][0] == pytest.approx([scalar["W5"], scalar["W6"]], rel=1e-14)
    assert main(["grads", "--example", "seed", "--form", "tensor", "--format", "latex"]) == 0
    assert r"{\frac{\partial \mathcal{L}}{\partial Z^{(1)}}}^\top X" in capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(n for n in ZOOS if ZOOS[n] in (cnn_zoo, rnn_zoo)) + ["GPTBlock", "SwiGLU"])
def test_the_torch_backend_gives_the_numpy_values(name):
    """Where a rule function runs torch's own kernel (conv's X ⋆ Δ) or the rule on torch tensors, every tensor
    of the program equals the NumPy evaluation of the proved rule, entry by entry."""
    model = _model(name)
    p = program(model)
    ours, theirs = p.values(model), p.values(model, "torch")
    for d in p.definitions:
        expected = np.asarray(ours[d.symbol], dtype=np.float64)
        got = theirs[d.symbol].detach().numpy() if hasattr(theirs[d.symbol], "detach") else np.asarray(theirs[d.symbol])
        finite = np.abs(expected[np.isfinite(expected)])
        scale = max(1.0, float(finite.max(initial=0)))
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12 * scale, err_msg=d.symbol)


class _Stacked(__import__("torch").nn.Module):
    """An nn.LSTM (batch-first), its last output through a Linear layer; 2 layers both ways if ``deep``."""

    def __init__(self, deep):
        import torch

        super().__init__()
        torch.manual_seed(21)
        self.lstm = torch.nn.LSTM(3, 2, num_layers=2 if deep else 1, bidirectional=deep, batch_first=True)
        self.fc = torch.nn.Linear(4 if deep else 2, 1)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.fc(out[:, -1])


@pytest.mark.parametrize("deep", [False, True])
def test_a_recurrent_program_does_not_grow_with_the_sequence(deep):
    from verify.reference import autograd_gradients

    counts = []
    for steps in (3, 9):
        x = np.random.default_rng(steps).uniform(-1, 1, (2, steps, 3))
        model = derive.from_torch(_Stacked(deep), loss="mse", x=x, y=[[0.5], [-0.25]])
        p = program(model)
        counts.append(len(p.definitions))
        grads = gradient_values(p, model)
        reference = autograd_gradients(model).gradients
        for q in model.parameters():
            value = float(np.asarray(grads[q.torch])[q.index])
            assert abs(value - reference[q.name]) <= 1e-12 * max(1.0, abs(reference[q.name])), (steps, q.name)
    assert counts[0] == counts[1]


def test_a_recurrent_op_with_wrong_inputs_or_options_is_a_one_line_error():
    from derive.errors import DeriveError, ShapeError
    from derive.model.build import ModelBuilder
    from derive.ops.recurrent import Recurrent

    b = ModelBuilder()
    x = b.input("x", (3, 2, 2))
    with pytest.raises(ShapeError, match=r"^recurrent: an LSTM of 1 layer\(s\), 1 direction\(s\) takes x \(3-D\), 2 "
                                         r"initial state\(s\), .*: 7 inputs, got 2$"):
        b.model(b.op("recurrent", x, b.parameter("w", np.zeros((8, 2))), kind="LSTM"), x=np.zeros((3, 2, 2)),
                y=np.zeros((3, 2, 2)), loss="mse")
    with pytest.raises(DeriveError, match="^recurrent takes kind RNN, LSTM or GRU.*got kind='lstm'"):
        Recurrent("lstm")
