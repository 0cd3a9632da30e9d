"""Recurrent models: every gradient equals float64 autograd of the module, through the command line."""

from pathlib import Path

import pytest

import derive
import verify
from tests.models import rnn_zoo
from tests.test_graph_models import assert_matches_autograd, grads_from_the_command_line
from tests.test_report_tools import katex  # noqa: F401 (fixture)

ROOT = Path(__file__).resolve().parents[1]
ZOO = Path(rnn_zoo.__file__)


@pytest.mark.parametrize("name", sorted(rnn_zoo.CASES))
def test_recurrent_gradients_from_the_command_line_equal_autograd(name, tmp_path, capsys):
    x, y, loss = rnn_zoo.CASES[name]
    gradients, value = grads_from_the_command_line(rnn_zoo, name, tmp_path, capsys)
    assert_matches_autograd(gradients, value, getattr(rnn_zoo, name)(), x, y, loss)


@pytest.mark.parametrize("name", sorted(rnn_zoo.CASES))
def test_recurrent_models_verify_against_their_module(name):
    x, y, loss = rnn_zoo.CASES[name]
    model = derive.from_torch(getattr(rnn_zoo, name)(), loss=loss, x=x, y=y)
    assert verify.check(model, finite_differences_check=False).ok


def test_the_through_time_table_is_torch_autograds():
    """‖∂L/∂h_t‖ and ‖∂h_T/∂h_t‖₂ of the sentiment RNN, from autograd of the recurrence written out here."""
    import torch

    from derive.report.recurrent import through_time

    x, y, loss = rnn_zoo.CASES["SentimentRNN"]
    module = rnn_zoo.SentimentRNN().double()
    rows = through_time(derive.derive(derive.from_torch(rnn_zoo.SentimentRNN(), loss=loss, x=x, y=y)))
    (table,) = rows.values()
    rnn = module.rnn
    W_ih, W_hh, b_ih, b_hh = rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0
    xs = torch.tensor(x, dtype=torch.float64)

    def steps(h, start):
        for t in range(start, xs.shape[1]):
            h = torch.tanh(xs[:, t] @ W_ih.T + b_ih + h @ W_hh.T + b_hh)
        return h

    hs, h = [], torch.zeros(xs.shape[0], 3, dtype=torch.float64)
    for t in range(xs.shape[1]):
        h = torch.tanh(xs[:, t] @ W_ih.T + b_ih + h @ W_hh.T + b_hh)
        h.retain_grad()
        hs.append(h)
    prediction = torch.sigmoid(module.fc(hs[-1]))
    torch.nn.functional.binary_cross_entropy(prediction, torch.tensor(y, dtype=torch.float64)).backward()
    for t, (step, delta, jacobian) in enumerate(table):
        assert step == t + 1
        assert delta == pytest.approx(float(hs[t].grad.norm()), rel=1e-10)
        J = torch.autograd.functional.jacobian(lambda h0: steps(h0, t + 1), hs[t].detach())
        expected = torch.linalg.matrix_norm(J.reshape(hs[t].numel(), hs[t].numel()), ord=2)
        assert jacobian == pytest.approx(float(expected), rel=1e-10)


def test_the_rnn_report_renders_compiles_and_shows_every_gradient(katex):  # noqa: F811
    from tests.test_graph_report import assert_report_shows_gradients
    from tests.test_report_tools import markdown_math, need_pdflatex

    x, y, loss = rnn_zoo.CASES["SentimentRNN"]
    model = derive.from_torch(rnn_zoo.SentimentRNN(), loss=loss, x=x, y=y)
    text = derive.report(model, format="md")
    assert "## Through time" in text and "‖∂h\\_T/∂h\\_t‖₂" in text
    assert not katex.errors([(f"#{i}", b) for i, b in enumerate(markdown_math(text))])
    assert_report_shows_gradients(text, rnn_zoo.SentimentRNN(), x, y, loss, model)
    need_pdflatex()
    from derive.report.pdf import compile_pdf

    assert compile_pdf(derive.report(model, format="tex")).startswith(b"%PDF")
