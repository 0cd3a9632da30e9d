"""Reports of graph models: KaTeX renders the Markdown, pdflatex compiles the LaTeX, every printed equation
re-computes from its printed numbers, every gradient appears (as torch autograd's, rounded), same bytes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import derive
from derive.report.graph import ELEMENTS
from tests.models import graph_zoo
from tests.test_graph_models import autograd_of
from tests.test_report_check import check_arithmetic, rounded
from tests.test_report_tools import katex, markdown_math, need_pdflatex, read_equations  # noqa: F401

NAMES = sorted(graph_zoo.CASES)
ROOT = Path(__file__).resolve().parents[1]


def model_of(name: str):
    x, y, loss = graph_zoo.CASES[name]
    return derive.from_torch(getattr(graph_zoo, name)(), loss=loss, x=x, y=y)


@pytest.fixture(scope="module")
def reports():
    return {name: derive.report(model_of(name), format="md") for name in NAMES}


def test_markdown_reports_render_in_katex(reports, katex):  # noqa: F811
    for name, text in reports.items():
        formulas = [(f"{name} #{i}", block) for i, block in enumerate(markdown_math(text))]
        assert formulas and not katex.errors(formulas), name


@pytest.mark.parametrize("name", ["ResidualBlock", "AttentionHead", "Everything", "BatchNormTrain"])
def test_latex_reports_compile(name):
    need_pdflatex()
    from derive.report.pdf import compile_pdf

    assert compile_pdf(derive.report(model_of(name), format="tex")).startswith(b"%PDF")


def test_printed_arithmetic_agrees_with_the_printed_values(reports):
    computed = sum(check_arithmetic(f"{name}: {lhs}", parts)
                   for name, text in reports.items() for lhs, parts in read_equations(text))
    assert computed >= 100


def assert_report_shows_gradients(text, module, x, y, loss, model):
    """The report's gradient table has every parameter, each torch autograd's gradient rounded."""
    _, grads = autograd_of(module, x, y, loss)
    table = text.split("| parameter | value | gradient | updated |")[1].strip().splitlines()[1:]
    rows = {}
    for line in table:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0].replace("\\_", "_")] = cells[2]
    assert len(rows) == len(model.parameters())
    for p in model.parameters():
        expected = float(grads[p.torch][p.index])
        assert rows[p.name] in rounded(expected, 4) | rounded(expected + 5e-13, 4) | rounded(expected - 5e-13, 4), (
            p.name, rows[p.name], expected)


@pytest.mark.parametrize("name", NAMES)
def test_every_gradient_appears_as_autograds_rounded(name, reports):
    x, y, loss = graph_zoo.CASES[name]
    assert_report_shows_gradients(reports[name], getattr(graph_zoo, name)(), x, y, loss, model_of(name))


def test_small_tensors_are_written_element_by_element(reports):
    text = reports["ResidualBlock"]
    # fc1 has 4 elements (batch 2 × 2 units): each is written with its numbers
    assert len(re.findall(r"\\mathrm\{fc1\}_\{\d,\d\} &= W\^", text)) == ELEMENTS
    assert r"\delta^{\mathrm{add}}_{1,1}" in text and r"\frac{\partial \mathrm{out}_{1,1}}{\partial W^{\mathrm{out}}_{1,1}}" in text


def test_same_model_same_bytes_in_another_process(reports):
    """Read and reported afresh by another interpreter, with other string hashes: the same bytes."""
    code = ("import derive; from tests.test_graph_report import model_of; "
            "print(derive.report(model_of('Everything'), format='md'), end='')")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT,
                           env=dict(os.environ, PYTHONHASHSEED=str(hash("derive") % 1000 + 1)), timeout=120)
    assert other.stdout == reports["Everything"]


def test_korean_and_html_and_steps():
    model = model_of("TwoBranches")
    assert "역전파" in derive.report(model, format="md", lang="ko")
    assert "<math" in derive.report(model, format="html")
    text = derive.report(model, format="md", steps=3)
    assert "Training steps" in text


def test_the_deltas_printed_for_a_residual_block_are_autograds_of_its_intermediate_tensors(reports):
    """δ of every op in the report, against ∂L/∂v of the same tensors of the module, run by hand here with
    retain_grad: fc1, relu, fc2, add (the skip connection), out, sigmoid."""
    import torch
    import torch.nn.functional as F

    x, y, loss = graph_zoo.CASES["ResidualBlock"]
    assert loss == "bce"
    module = graph_zoo.ResidualBlock().double()
    xs = torch.tensor(x, dtype=torch.float64)
    seen = {}

    def kept(name, tensor):
        tensor.retain_grad()
        seen[name] = tensor
        return tensor

    fc1 = kept("fc1", module.fc1(xs))
    add = kept("add", xs + kept("fc2", module.fc2(kept("relu", F.relu(fc1)))))
    prediction = kept("sigmoid", torch.sigmoid(kept("out", module.out(add))))
    F.binary_cross_entropy(prediction, torch.tensor(y, dtype=torch.float64)).backward()
    printed = {}
    for lhs, parts in read_equations(reports["ResidualBlock"]):
        found = re.fullmatch(r"\\delta \^ \{ \\mathrm \{ ([a-z0-9 ]+) \} \} _ \{ (\d+) , (\d+) \}", lhs)
        if found:
            printed[(found[1].replace(" ", ""), int(found[2]) - 1, int(found[3]) - 1)] = parts[-1].replace(" ", "")
    assert {name for name, _, _ in printed} == set(seen)
    assert len(printed) == sum(t.numel() for t in seen.values())
    for (name, i, j), text in printed.items():
        assert text in rounded(float(seen[name].grad[i, j]), 4), (name, i, j, text, float(seen[name].grad[i, j]))


def test_a_transformer_blocks_latex_report_fits_the_page(tmp_path):
    """Tensors of rank 3 set grid under grid, and displays wider than the text (GELU's tanh form of one
    element, a wide matrix) scaled to it: pdflatex reports no overfull line."""
    need_pdflatex()
    import torch

    from tests.models import modern_zoo

    x, y, loss = modern_zoo.CASES["GPTBlock"]
    model = derive.from_torch(modern_zoo.GPTBlock(), loss=loss, x=torch.tensor(x), y=torch.tensor(y))
    (tmp_path / "report.tex").write_text(derive.report(model, format="tex"), encoding="utf-8")
    result = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "report.tex"], cwd=tmp_path,
                            capture_output=True, timeout=600, stdin=subprocess.DEVNULL)
    log = (tmp_path / "report.log").read_text(encoding="utf-8", errors="replace")
    assert result.returncode == 0, log[-2000:]
    assert "Overfull \\hbox" not in log, re.findall(r"Overfull \\hbox.*", log)[:5]
