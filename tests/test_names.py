"""Each output says how its names map to the others': the report's σ₁ is `a1` in derive grads, derive code's
`W1` is layer 1's matrix holding the scalar W1 … W4 of derive grads and the report. The notes are checked
against the outputs themselves, not only for their words."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

import derive
from derive import naming
from derive.cli import main
from tests.test_report_tools import read_equations


def run(capsys, *argv) -> str:
    assert main(list(argv)) == 0
    return capsys.readouterr().out


def test_the_report_keeps_sigma_and_says_it_is_a_in_derive_grads():
    net = derive.examples.seed()
    md = derive.report(net, format="md")
    assert ("Names in derive's other outputs: σ₁, σ₂, σ₃ here are a1, a2, a3 in derive grads and "
            "Derivation.compact; derive code takes each layer whole: W1 (2 × 2) holds W₁ … W₄, row by row, and "
            "b1 holds b₁, b₂; W2 (1 × 2) holds W₅, W₆ and b2 holds b₃.") in md
    d = derive.derive(net)
    printed = {lhs.replace(" ", ""): parts[-1] for lhs, parts in read_equations(md)}
    for grads_name, latex in naming.units(net).items():  # the report's σ_k is the engine's a_k
        symbol = next(s for s in d.values if s.name == grads_name)
        assert float(printed[latex]) == pytest.approx(d.values[symbol], abs=5e-5)
    assert "\\sigma_{1} &=" in md and not re.search(r"(?<![a-z])a_\{1\}", md)  # the study note's σ stays


def test_the_report_note_in_korean_and_latex_and_for_other_activations():
    net = derive.examples.seed()
    assert "다른 출력의 이름: 여기의 σ₁, σ₂, σ₃는 derive grads와 Derivation.compact에서 a1, a2, a3입니다." in derive.report(
        net, format="md", lang="ko")
    tex = derive.report(net, format="tex")
    assert r"$\sigma$$_{1}$, $\sigma$$_{2}$, $\sigma$$_{3}$ here are a1, a2, a3" in tex
    assert r"W1 (2 × 2) holds W$_{1}$ \dots{} W$_{4}$, row by row" in tex  # no character pdflatex cannot set
    tanh = derive.Network([derive.Linear([[0.5, -0.5]], [0.1], "tanh")], [[1, 2]], [[0.5]], loss="mse")
    md = derive.report(tanh, format="md")
    assert "Names in derive's other outputs: derive code takes each layer whole: W1 (1 × 2) holds W₁, W₂" in md


def test_derive_grads_says_how_its_names_read_in_the_report_and_in_derive_code(capsys):
    text = run(capsys, "grads", "--example", "seed")
    note = " ".join(text.split("names: ", 1)[1].split())
    assert note.startswith("a1, a2, a3 here are σ1, σ2, σ3 in derive report; derive code takes each layer whole: "
                           "its W1 (2 × 2) holds W1 … W4, row by row, and b1 holds b1, b2")
    latex = run(capsys, "grads", "--example", "seed", "--format", "latex")
    comment = latex.split("\\end{align*}\n", 1)[1]  # after the equations: a LaTeX comment, pasted or not
    assert comment.startswith("% names: a1, a2, a3 here are σ1, σ2, σ3 in derive report;")
    assert all(line.startswith("% ") for line in comment.splitlines())
    document = json.loads(run(capsys, "grads", "--example", "seed", "--format", "json"))
    assert document["names"]["report"] == {"a1": r"\sigma_{1}", "a2": r"\sigma_{2}", "a3": r"\sigma_{3}"}
    assert document["names"]["note"].startswith("names: a1, a2, a3 here are σ1")
    batch = run(capsys, "grads", "--example", "seed", "--x", "1,0;0,1", "--y", "1;0")
    assert "a1, a2, a3 (a1_1, a1_2, … per sample) here are σ1, σ2, σ3" in " ".join(batch.split())


def test_derive_code_says_its_w1_is_a_layer_and_that_is_true(capsys):
    net = derive.examples.seed()
    source = run(capsys, "code", "--example", "seed")
    header = " ".join(line.lstrip("# ") for line in source.splitlines() if line.startswith("#"))
    assert "names: W1, b1, W2, … here are whole layers (torch's layout), whose elements derive grads and derive " \
           "report name as scalars: W1 (2 × 2) holds W1 … W4, row by row, and b1 holds b1, b2" in header
    assert "a1 = 1 / (1 + numpy.exp(-z1))  # σ(z1)" in source  # the textbook σ a student recognises
    namespace: dict = {}
    exec(compile(source, "derive code", "exec"), namespace)  # noqa: S102 - the printed code, run as a user would
    values = {p.name: p.value for p in net.parameters()}
    W1 = np.array([[values["W1"], values["W2"]], [values["W3"], values["W4"]]])  # row by row, as it says
    W2 = np.array([[values["W5"], values["W6"]]])
    dW1, db1, dW2, db2 = namespace["gradients"](np.array([[1.0, 1.0]]), np.array([[0.0]]), W1,
                                                np.array([values["b1"], values["b2"]]), W2, np.array([values["b3"]]))
    grads = {p.name: p.gradient for p in derive.derive(net).parameters}
    assert dW1.reshape(-1) == pytest.approx([grads[f"W{k}"] for k in range(1, 5)], rel=1e-12)
    assert list(dW2.reshape(-1)) + list(db1) + list(db2) == pytest.approx(
        [grads["W5"], grads["W6"], grads["b1"], grads["b2"], grads["b3"]], rel=1e-12)


def test_a_graph_model_is_named_after_its_modules_everywhere_and_carries_no_note(capsys):
    torch = pytest.importorskip("torch")

    class Residual(torch.nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(1)
            self.fc = torch.nn.Linear(2, 2)

        def forward(self, x):
            return torch.tanh(self.fc(x)) + x

    model = derive.from_torch(Residual(), loss="mse", x=[[1.0, 2.0]], y=[[0.0, 1.0]])
    assert naming.note(model, "grads") == "" and naming.units(model) == {}
    assert "Names in derive's other outputs" not in derive.report(model, format="md")
    assert re.search(r"W\^\{\\mathrm\{fc\}\}", derive.report(model, format="md"))
