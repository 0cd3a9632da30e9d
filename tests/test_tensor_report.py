"""The report in matrix form (derive.report.tensor_form): a 2-layer MLP at batch 4 shows the textbook matrix
equations with numbers, LeNet-5's report (past the scalar report's limit) the convolution's tensor rules with
shapes; the numbers printed for a gradient are torch autograd's, rounded; both render in KaTeX and compile
with pdflatex; the same input gives the same bytes."""

import re
import sys
from pathlib import Path

import numpy as np
import pytest

import derive
from derive.cli import main
from derive.errors import DeriveError
from derive.report import ReportTooLarge
from tests.test_report_tools import katex, markdown_math, need_pdflatex  # noqa: F401

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parent.parent


def _mlp():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))


X = np.array([[0.5, -1.0, 2.0], [1.0, 0.25, -0.5], [-1.5, 0.5, 1.0], [0.0, 2.0, -1.0]])
Y = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5], [1.0, 1.0]])


def _autograd(module, x, y, loss):
    module = module.double()
    for p in module.parameters():
        p.grad = None
    out = module(torch.from_numpy(x))
    value = torch.nn.functional.cross_entropy(out, torch.from_numpy(y)) if loss == "cross_entropy" else \
        torch.nn.functional.mse_loss(out, torch.from_numpy(y))
    value.backward()
    return {k: p.grad.numpy() for k, p in module.named_parameters()}


def _block(md: str, lhs: str) -> str:
    """The display whose left-hand side is ``lhs``."""
    found = [b for b in markdown_math(md) if b.split("&=")[0].strip().endswith(lhs) or f"{lhs} &=" in b]
    assert found, lhs
    return found[0]


def _numbers(block: str) -> list[list[float]]:
    """The rows of the last bmatrix of a display (elided cells left out)."""
    body = block.rsplit(r"\begin{bmatrix}", 1)[1].split(r"\end{bmatrix}")[0]
    rows = []
    for row in body.split(r"\\"):
        cells = [c.strip() for c in row.split("&")]
        cells = [float(c) for c in cells if c and c not in (r"\cdots", r"\vdots")]
        if cells:
            rows.append(cells)
    return rows


def _rounded_equal(printed: list[list[float]], expected: np.ndarray, digits: int = 4) -> None:
    expected = np.atleast_2d(expected)
    assert printed, "no numbers"
    for i, row in enumerate(printed):
        for j, value in enumerate(row):
            assert abs(value - expected[i, j]) <= 0.5 * 10 ** -digits + 1e-12, (i, j, value, expected[i, j])


@pytest.fixture(scope="module")
def mlp_report():
    model = derive.from_torch(_mlp(), loss="mse", x=X, y=Y)
    return model, derive.report(model, format="md", form="tensor"), derive.report(model, format="tex", form="tensor")


def test_the_mlp_at_batch_4_has_the_textbook_matrix_equations(mlp_report):
    _, md, _ = mlp_report
    assert r"\underset{4 \times 4}{Z^{(1)}} &= X {W^{(1)}}^\top + b^{(1)}" in md
    assert r"\underset{4 \times 4}{A^{(1)}} &= \tanh\left(Z^{(1)}\right)" in md
    assert (r"\underset{4 \times 4}{\frac{\partial \mathcal{L}}{\partial Z^{(1)}}} &= "
            r"\frac{\partial \mathcal{L}}{\partial A^{(1)}} \odot \left(1 - {A^{(1)}}^{2}\right)") in md
    assert (r"\underset{4 \times 4}{\frac{\partial \mathcal{L}}{\partial A^{(1)}}} &= "
            r"\frac{\partial \mathcal{L}}{\partial Z^{(2)}} W^{(2)}") in md
    assert (r"\underset{4 \times 3}{\frac{\partial \mathcal{L}}{\partial W^{(1)}}} &= "
            r"{\frac{\partial \mathcal{L}}{\partial Z^{(1)}}}^\top X") in md


def test_the_printed_gradients_are_autograds_rounded(mlp_report):
    _, md, _ = mlp_report
    grads = _autograd(_mlp(), X, Y, "mse")
    _rounded_equal(_numbers(_block(md, r"\underset{4 \times 3}{\frac{\partial \mathcal{L}}{\partial W^{(1)}}}")),
                   grads["0.weight"])
    _rounded_equal(_numbers(_block(md, r"\underset{2 \times 4}{\frac{\partial \mathcal{L}}{\partial W^{(2)}}}")),
                   grads["2.weight"])
    _rounded_equal(_numbers(_block(md, r"\underset{2}{\frac{\partial \mathcal{L}}{\partial b^{(2)}}}")),
                   grads["2.bias"])
    new = _mlp().double().state_dict()["0.weight"].numpy() - grads["0.weight"]
    _rounded_equal(_numbers(_block(md, r"\underset{4 \times 3}{W^{(1)}_{\text{new}}}")), new)


@pytest.fixture(scope="module")
def lenet_report(tmp_path_factory):
    """LeNet-5 (61,706 parameters) through the command line: past the scalar report's limit, the matrix form."""
    folder = tmp_path_factory.mktemp("lenet")
    rng = np.random.default_rng(0)
    np.save(folder / "x.npy", rng.standard_normal((2, 1, 32, 32)).round(2))
    np.save(folder / "y.npy", np.array([3, 7]))
    texts = {}
    for fmt in ("md", "tex"):
        out = folder / f"lenet.{fmt}"
        status = main(["report", "--torch", f"{ROOT / 'examples' / 'lenet5.py'}:LeNet5", "--x", str(folder / "x.npy"),
                       "--y", str(folder / "y.npy"), "--loss", "cross_entropy", "-o", str(out)])
        assert status == 0
        texts[fmt] = out.read_text()
    return folder, texts


def test_lenets_report_shows_the_convolutions_tensor_rules_with_shapes(lenet_report):
    _, texts = lenet_report
    md = texts["md"]
    assert md.startswith("# Derivation report in matrix form")
    assert r"\underset{2 \times 6 \times 28 \times 28}{\mathrm{conv1}} &= X \star W^{\mathrm{conv1}} + b^{\mathrm{conv1}}" in md
    assert (r"\underset{6 \times 1 \times 5 \times 5}{\frac{\partial \mathcal{L}}{\partial W^{\mathrm{conv1}}}} &= "
            r"X \star \frac{\partial \mathcal{L}}{\partial \mathrm{conv1}}") in md
    assert r"\ast \operatorname{rot}_{180}\left(W^{\mathrm{conv2}}\right)" in md
    proofs = md.split("## Appendix: proofs of the tensor rules")[1]
    assert proofs.count("holds for all") >= 5 and "FAILS" not in proofs
    assert re.search(r"conv\(stride=\\\[1, 1\\\].*holds for all \d+ entries \(exact\)", proofs)  # Markdown escapes [


def test_lenets_printed_gradients_are_autograds_rounded(lenet_report):
    folder, texts = lenet_report
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        from lenet5 import LeNet5
    finally:
        sys.path.remove(str(ROOT / "examples"))
    module = LeNet5().double()
    x = torch.from_numpy(np.load(folder / "x.npy"))
    loss = torch.nn.functional.cross_entropy(module(x), torch.tensor([3, 7]))
    loss.backward()
    md = texts["md"]
    _rounded_equal(_numbers(_block(md, r"\underset{10}{\frac{\partial \mathcal{L}}{\partial b^{\mathrm{fc3}}}}")),
                   module.fc3.bias.grad.numpy())
    conv1 = _block(md, r"\underset{6 \times 1 \times 5 \times 5}{\frac{\partial \mathcal{L}}{\partial W^{\mathrm{conv1}}}}")
    _rounded_equal(_numbers(conv1), module.conv1.weight.grad.numpy()[0, 0])
    assert f"{loss.item():.4f}" in _block(md, r"\mathcal{L}")


def test_both_reports_render_in_katex(mlp_report, lenet_report, katex):  # noqa: F811
    formulas = [(f"mlp #{i}", b) for i, b in enumerate(markdown_math(mlp_report[1]))]
    formulas += [(f"lenet #{i}", b) for i, b in enumerate(markdown_math(lenet_report[1]["md"]))]
    assert len(formulas) > 60
    assert not katex.errors(formulas)


def test_both_reports_compile_with_pdflatex(mlp_report, lenet_report):
    need_pdflatex()
    from derive.report.pdf import compile_pdf

    assert compile_pdf(mlp_report[2]).startswith(b"%PDF")
    assert compile_pdf(lenet_report[1]["tex"]).startswith(b"%PDF")


def test_the_same_input_gives_the_same_bytes(mlp_report):
    model, md, _ = mlp_report
    assert derive.report(model, format="md", form="tensor") == md


def test_a_graph_models_walk_through_continues_in_matrix_form():
    from tests.models import graph_zoo

    x, y, loss = graph_zoo.CASES["ResidualBlock"]
    md = derive.report(derive.from_torch(graph_zoo.ResidualBlock(), loss=loss, x=x, y=y), format="md")
    headings = re.findall(r"^## (.*)$", md, flags=re.MULTILINE)
    assert headings.index("Backward pass") < headings.index("The gradient in matrix form") < \
        headings.index("Appendix: proofs of the tensor rules")


def test_forms_and_their_errors():
    big = derive.from_torch(_mlp(), loss="mse", x=X, y=Y)
    with pytest.raises(ReportTooLarge):
        derive.report(big, format="md", form="scalar", max_parameters=10)
    assert derive.report(big, format="md", max_parameters=10).startswith("# Derivation report in matrix form")
    with pytest.raises(DeriveError, match="one step of plain gradient descent"):
        derive.report(big, format="md", form="tensor", steps=2)
    with pytest.raises(DeriveError, match="unknown report form 'tensr'.*tensor"):
        derive.report(big, format="md", form="tensr")


@pytest.mark.parametrize("name", ["BiLSTM", "GRURegressor"])
def test_a_recurrent_models_matrix_form_renders_and_compiles(name, katex):  # noqa: F811
    """An LSTM both ways over 2 layers, a 2-layer GRU: their layers are one op each (the recurrence, its BPTT
    and Σ_t δ_tᵀ h_{t−1}), the report renders in KaTeX and compiles with pdflatex."""
    from tests.models import modern_zoo, rnn_zoo

    zoo = rnn_zoo if name in rnn_zoo.CASES else modern_zoo
    x, y, loss = zoo.CASES[name]
    model = derive.from_torch(getattr(zoo, name)(), loss=loss, x=x, y=y)
    md, tex = derive.report(model, format="md", form="tensor"), derive.report(model, format="tex", form="tensor")
    assert r"h_{t-1}" in md and r"\delta_{t+1}" in md and md.count(r"}}^\top h_{t-1}") >= 2
    assert int(re.search(r"A model of (\d+) operations", md).group(1)) <= 4  # the layer, the head: not each step
    assert not katex.errors([(f"{name} #{i}", b) for i, b in enumerate(markdown_math(md))])
    need_pdflatex()
    from derive.report.pdf import compile_pdf

    assert compile_pdf(tex).startswith(b"%PDF")
