"""The attention chapter of a report (derive/report/attention*.py), on four blocks read from their modules with
``.npy`` data through the command line: one head and two heads written by hand (examples/attention_block.py),
torch's ``nn.MultiheadAttention`` with its default ``need_weights=True`` (softmax(Q Kᵀ) by matmuls, not by the
attention primitive), and ``nn.TransformerEncoderLayer(4, 2, dim_feedforward=8, dropout=0.0, batch_first=True)``
(tests/models/modern_zoo.py), each with a head (mean over tokens, Linear) and cross-entropy, batch 1.

The oracles are torch's: autograd of a float64 copy of each module, the scores and weights recomputed here from
the module's own weights, ``torch.autograd.functional.jacobian`` of softmax, and the input's gradient split by
running the block with two copies of x (one for the residual, one for the attention). The printed arithmetic
is re-computed from the printed numbers (`check_arithmetic`), KaTeX renders the Markdown, pdflatex compiles the
LaTeX, Korean with kotex."""

from __future__ import annotations

import copy
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import derive
from derive.cli import main
from derive.sources.torch_module import load_module
from tests.models import modern_zoo
from tests.test_graph_report import assert_report_shows_gradients
from tests.test_report_check import check_arithmetic, rounded
from tests.test_report_tools import katex, markdown_math, need_pdflatex, read_equations  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "attention_block.py"
X = json.loads((ROOT / "examples" / "attention_x.json").read_text())
Y = [2]
#: name → (file, class, {printed parameter: (torch key, first row)}), the rows of W_Q, W_K, W_V in their weight
CASES = {
    "OneHeadBlock": (EXAMPLE, "OneHeadBlock", {"Q": ("q", 0), "K": ("k", 0), "V": ("v", 0), "O": ("out", 0),
                                                "norm": "norm"}),
    "TwoHeadBlock": (EXAMPLE, "TwoHeadBlock", {"Q": ("qkv", 0), "K": ("qkv", 4), "V": ("qkv", 8), "O": ("out", 0),
                                                "norm": "norm"}),
    "TorchMHABlock": (EXAMPLE, "TorchMHABlock", {"Q": ("attn.in_proj", 0), "K": ("attn.in_proj", 4),
                                                  "V": ("attn.in_proj", 8), "O": ("attn.out_proj", 0),
                                                  "norm": "norm"}),
    "EncoderLayer": (Path(modern_zoo.__file__), "EncoderLayer", {
        "Q": ("enc.self_attn.in_proj", 0), "K": ("enc.self_attn.in_proj", 4), "V": ("enc.self_attn.in_proj", 8),
        "O": ("enc.self_attn.out_proj", 0), "norm": "enc.norm1"}),
}
NAMES = list(CASES)


def module_of(name: str) -> torch.nn.Module:
    path, cls, _ = CASES[name]
    return load_module(f"{path}:{cls}")


def model_of(name: str):
    return derive.from_torch(module_of(name), loss="cross_entropy", x=X, y=Y)


def cli_args(name: str, tmp: Path) -> list[str]:
    path, cls, _ = CASES[name]
    np.save(tmp / "x.npy", np.array(X))
    np.save(tmp / "y.npy", np.array(Y))
    return ["--torch", f"{path}:{cls}", "--x", str(tmp / "x.npy"), "--y", str(tmp / "y.npy"), "--loss", "cross_entropy"]


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """Each block's Markdown report, through the command line (in this process: the same code as `derive`)."""
    out = {}
    for name in NAMES:
        tmp = tmp_path_factory.mktemp(name)
        target = tmp / "report.md"
        assert main(["report", *cli_args(name, tmp), "--format", "md", "-o", str(target)]) == 0
        out[name] = target.read_text()
    return out


def chapter(text: str) -> str:
    """The attention chapter of a Markdown report."""
    assert "## Attention, worked through" in text
    return text.split("## Attention, worked through")[1].split("\n## ")[0]


class Equations(dict):
    """The chapter's equations by left-hand side, spaces removed (in the key asked for too)."""

    def __getitem__(self, lhs: str) -> list[str]:
        return super().__getitem__(lhs.replace(" ", ""))

    def __contains__(self, lhs: object) -> bool:
        return super().__contains__(str(lhs).replace(" ", ""))


def equations(text: str) -> Equations:
    return Equations({lhs.replace(" ", ""): parts for lhs, parts in read_equations(chapter(text))})


def numbers(latex: str) -> np.ndarray:
    """A printed matrix (or number) as floats; −∞ for -\\infty."""
    body = latex.replace(" ", "").removeprefix(r"\begin{bmatrix}").removesuffix(r"\end{bmatrix}")
    rows = [[-math.inf if c == r"-\infty" else float(c) for c in row.split("&")] for row in body.split(r"\\")]
    return np.array(rows)


def assert_printed(latex: str, expected, what: str) -> None:
    """Every printed number is the expected value rounded to 4 places."""
    body = latex.replace(" ", "").removeprefix(r"\begin{bmatrix}").removesuffix(r"\end{bmatrix}")
    cells = [row.split("&") for row in body.split(r"\\")]
    expected = np.atleast_2d(np.asarray(expected, dtype=float))
    assert [len(r) for r in cells] == [expected.shape[1]] * expected.shape[0], (what, cells, expected.shape)
    for row, values in zip(cells, expected):
        for cell, value in zip(row, values):
            near = rounded(value, 4) | rounded(value + 5e-13, 4) | rounded(value - 5e-13, 4)
            assert cell in near, (what, cell, value)


# ------------------------------------------------------------------------------------------------------------
# torch's side: the blocks' scores, and the input's gradient through each path


def _heads(t: torch.Tensor, heads: int) -> torch.Tensor:
    T, C = t.shape[-2:]
    return t.reshape(T, heads, C // heads).transpose(0, 1)


def _mha_qkv(mha: torch.nn.MultiheadAttention, x: torch.Tensor):
    w, b = mha.in_proj_weight, mha.in_proj_bias
    return [_heads(F.linear(x[0], w[4 * i:4 * i + 4], b[4 * i:4 * i + 4]), mha.num_heads) for i in range(3)]


def torch_scores(name: str, module: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
    """The heads' scores Q Kᵀ·scale from the module's own weights, the same with the mask (−∞), and the scale."""
    if name == "OneHeadBlock":
        q, k = module.q(x)[0][None], module.k(x)[0][None]
    elif name == "TwoHeadBlock":
        q, k, _ = (_heads(t[0], 2) for t in module.qkv(x).split(4, dim=2))
    else:
        mha = module.attn if name == "TorchMHABlock" else module.enc.self_attn
        q, k, _ = _mha_qkv(mha, x)
    scale = 1 / math.sqrt(q.shape[-1])
    raw = q @ k.transpose(-1, -2) * scale
    causal = torch.ones(3, 3, dtype=torch.bool).triu(1)
    return raw, raw.masked_fill(causal, -math.inf) if name == "TwoHeadBlock" else raw, scale


def torch_loss_of_two_copies(name: str, module: torch.nn.Module, x_res: torch.Tensor, x_att: torch.Tensor):
    """The loss with x_res on the residual path and x_att into the attention (equal values)."""
    y = torch.tensor(Y)
    if name == "OneHeadBlock":
        m = module
        q, k, v = m.q(x_att), m.k(x_att), m.v(x_att)
        o = torch.softmax(q @ k.transpose(-2, -1) / 2, dim=-1) @ v
        out = m.head(m.norm(x_res + m.out(o)).mean(dim=1))
    elif name == "TwoHeadBlock":
        m = module
        q, k, v = (t.view(1, 3, 2, 2).transpose(1, 2) for t in m.qkv(x_att).split(4, dim=2))
        o = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(1, 3, 4)
        out = m.head(m.norm(x_res + m.out(o)).mean(dim=1))
    elif name == "TorchMHABlock":
        m = module
        out = m.head(m.norm(x_res + m.attn(x_att, x_att, x_att)[0]).mean(dim=1))
    else:
        enc = module.enc
        h = enc.norm1(x_res + enc._sa_block(x_att, None, None))
        out = module.head(enc.norm2(h + enc._ff_block(h)).mean(dim=1))
    return F.cross_entropy(out, y)


def torch_paths(name: str) -> tuple[np.ndarray, np.ndarray]:
    """∂L/∂x through the residual and through the attention (tokens × width), by autograd."""
    module = copy.deepcopy(module_of(name)).double()
    x = torch.tensor(X, dtype=torch.float64)
    x_res, x_att = x.clone().requires_grad_(), x.clone().requires_grad_()
    torch_loss_of_two_copies(name, module, x_res, x_att).backward()
    return x_res.grad[0].numpy(), x_att.grad[0].numpy()


# ------------------------------------------------------------------------------------------------------------
# The report renders, compiles, checks itself, and shows every gradient as autograd's


def test_every_block_is_found_and_its_chapter_names_torchs_parameters(reports):
    assert "W\\_Q is rows 1–4 of enc.self\\_attn.in\\_proj\\_weight" in chapter(reports["EncoderLayer"])
    assert "W\\_V is rows 9–12 of attn.in\\_proj\\_weight" in chapter(reports["TorchMHABlock"])
    assert "W\\_K is rows 5–8 of qkv.weight" in chapter(reports["TwoHeadBlock"])
    assert "W\\_K is rows 1–4 of k.weight" in chapter(reports["OneHeadBlock"])
    for name in ("TwoHeadBlock", "TorchMHABlock", "EncoderLayer"):
        assert "### Head 1, in full" in reports[name] and "### The other heads" in reports[name]
        assert "O_{1} & O_{2}" in reports[name]  # the concatenation
    assert "### The other heads" not in reports["OneHeadBlock"]


def test_the_chapter_renders_in_katex(reports, katex):  # noqa: F811
    formulas = [(f"{name} #{i}", block) for name, text in reports.items()
                for i, block in enumerate(markdown_math(chapter(text)))]
    assert len(formulas) > 40 * len(reports)
    assert not katex.errors(formulas)


def test_every_printed_number_of_the_report_recomputes(reports):
    for name, text in reports.items():
        inside = sum(check_arithmetic(f"{name}: {lhs}", parts) for lhs, parts in read_equations(chapter(text)))
        assert inside >= 39, (name, inside)  # every product, softmax, Jacobian and gradient of the chapter
        assert sum(check_arithmetic(f"{name}: {lhs}", parts) for lhs, parts in read_equations(text)) > inside


@pytest.mark.parametrize("name", NAMES)
def test_every_gradient_appears_as_autograds_rounded(name, reports):
    assert_report_shows_gradients(reports[name], module_of(name), X, Y, "cross_entropy", model_of(name))


@pytest.mark.parametrize("name", NAMES)
def test_the_chapters_gradients_are_autograds(name, reports):
    """∂L/∂W_Q, W_K, W_V (rows of their weight), the biases, ∂L/∂W_O, ∂L/∂γ, ∂L/∂β and ∂L/∂X, as printed."""
    module = copy.deepcopy(module_of(name)).double()
    x = torch.tensor(X, dtype=torch.float64, requires_grad=True)
    F.cross_entropy(module(x), torch.tensor(Y)).backward()
    grads = dict(module.named_parameters())
    eq = equations(reports[name])
    keys = CASES[name][2]
    for letter in "QKV":
        stem, first = keys[letter]
        weight = grads[f"{stem}_weight" if stem.endswith("in_proj") else f"{stem}.weight"].grad
        bias = grads[f"{stem}_bias" if stem.endswith("in_proj") else f"{stem}.bias"].grad
        lhs = rf"\frac{{\partial\mathcal{{L}}}}{{\partial W_{{{letter}}}}}"
        assert_printed(eq[lhs][-1], weight[first:first + 4], lhs)
        lhs = rf"\frac{{\partial\mathcal{{L}}}}{{\partial b_{{{letter}}}}}"
        assert_printed(eq[lhs][-1], bias[first:first + 4], lhs)
    stem = keys["O"][0]
    assert_printed(eq[r"\frac{\partial\mathcal{L}}{\partial W_{O}}"][-1], grads[f"{stem}.weight"].grad, "W_O")
    assert_printed(eq[r"\frac{\partial\mathcal{L}}{\partial b_{O}}"][-1], grads[f"{stem}.bias"].grad, "b_O")
    assert_printed(eq[r"\frac{\partial\mathcal{L}}{\partial\gamma}"][-1], grads[f"{keys['norm']}.weight"].grad, "γ")
    assert_printed(eq[r"\frac{\partial\mathcal{L}}{\partial\beta}"][-1], grads[f"{keys['norm']}.bias"].grad, "β")
    assert_printed(eq[r"\frac{\partial\mathcal{L}}{\partial X}"][-1], x.grad[0], "X")


@pytest.mark.parametrize("name", NAMES)
def test_scores_weights_and_one_rows_softmax_jacobian_are_torchs(name, reports):
    """S of head 1 (and −∞ where masked), each row's softmax, and the Jacobian written out: torch's
    ``jacobian`` of softmax at the module's own scores of that row."""
    module = copy.deepcopy(module_of(name)).double()
    with torch.no_grad():
        raw, scores, _ = torch_scores(name, module, torch.tensor(X, dtype=torch.float64))
    eq = equations(reports[name])
    S = "S_{1}" if name != "OneHeadBlock" else "S"
    assert_printed(eq[S][-1], raw[0], S)
    masked = rf"\tilde{{{S}}}"
    assert (masked in eq) == (name == "TwoHeadBlock")
    if masked in eq:  # the causal mask: −∞ above the diagonal
        printed = numbers(eq[masked][-1])
        assert np.array_equal(np.isinf(printed), np.isinf(scores[0].numpy()))
        assert_printed(re.sub(r"-\s*\\infty", "0", eq[masked][-1]), scores[0].nan_to_num(neginf=0.0), masked)
    weights = torch.softmax(scores, dim=-1)
    A = "A_{1}" if name != "OneHeadBlock" else "A"
    assert_printed(eq[A][-1], weights[0], A)
    (row,) = [int(m.group(1)) for lhs in eq for m in [re.fullmatch(r"\\frac{\\partiala_{(\d)}}{\\partials_{\1}}", lhs)] if m]
    s = scores[0, row - 1]
    keep = torch.isfinite(s)
    J = torch.zeros(3, 3, dtype=torch.float64)
    J[keep[:, None] & keep[None, :]] = torch.autograd.functional.jacobian(
        lambda z: torch.softmax(z, dim=-1), s[keep]).reshape(-1)
    parts = eq[rf"\frac{{\partiala_{{{row}}}}}{{\partials_{{{row}}}}}"]
    assert_printed(parts[-1], J, "softmax Jacobian")
    assert r"\operatorname{diag}" in parts[0].replace(" ", "") and len(parts) == 3  # diag(a) − a aᵀ, with numbers, = J


# ------------------------------------------------------------------------------------------------------------
# Why the design is what it is: the saturation table and the two paths, against torch


def table(text: str, header: str) -> list[list[str]]:
    lines = chapter(text).split(header)[1].strip().splitlines()[1:]
    rows = []
    for line in lines:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split("|")])
    return rows


@pytest.mark.parametrize("name", NAMES)
def test_the_saturation_table_is_torchs_entropy_and_jacobian_norm(name, reports):
    module = copy.deepcopy(module_of(name)).double()
    with torch.no_grad():
        _, scaled, scale = torch_scores(name, module, torch.tensor(X, dtype=torch.float64))
    plain = scaled / scale  # the same weights without the scale (−∞ stays −∞)
    rows = table(reports[name], "| head | row | H(a) | ‖J‖\\_F | H(a) no scale | ‖J‖\\_F no scale |")
    assert len(rows) == scaled.shape[0] * 3
    for head, row, *printed in rows:
        figures = []
        for scores in (scaled, plain):
            s = scores[int(head) - 1, int(row) - 1]
            a = torch.softmax(s, dim=-1)
            kept = a > 0
            figures.append(float(-(a[kept] * a[kept].log()).sum()))
            J = torch.autograd.functional.jacobian(lambda z: torch.softmax(z, dim=-1), s.nan_to_num(neginf=-1e300))
            figures.append(float(torch.linalg.matrix_norm(J)))
        assert_printed(r"\begin{bmatrix}" + " & ".join(printed) + r"\end{bmatrix}", [figures], f"{name} {head},{row}")
    if name == "TwoHeadBlock":  # the example saturates without the scale: lower entropy on every unmasked row
        assert all(float(r[4]) < float(r[2]) for r in rows if r[1] != "1")


@pytest.mark.parametrize("name", NAMES)
def test_the_two_paths_to_the_input_are_torchs(name, reports):
    residual, attention = torch_paths(name)
    rows = table(reports[name], "| token | ‖∂L/∂x\\_t‖ res | ‖∂L/∂x\\_t‖ att | cos |")
    assert len(rows) == 3
    for (token, res, att, cos), r, a in zip(rows, residual, attention):
        expected = [np.linalg.norm(r), np.linalg.norm(a), r @ a / np.linalg.norm(r) / np.linalg.norm(a)]
        assert_printed(rf"\begin{{bmatrix}} {res} & {att} & {cos} \end{{bmatrix}}", [expected], f"{name} token {token}")
    eq = equations(reports[name])
    assert_printed(eq[r"\frac{\partial\mathcal{L}}{\partialX}\Big|_{\mathrm{attention}}"][-1], attention, "attention")
    assert_printed(eq[r"\frac{\partial\mathcal{L}}{\partialX}\Big|_{\mathrm{residual}}"][-1], residual, "residual")


# ------------------------------------------------------------------------------------------------------------
# LaTeX, Korean, bytes, the two forms of nn.MultiheadAttention, masks, time


@pytest.mark.parametrize("name", NAMES)
def test_the_latex_report_compiles_in_english_and_korean(name):
    need_pdflatex()
    from derive.report.pdf import compile_pdf

    model = model_of(name)
    for lang in ("en", "ko"):
        text = derive.report(model, format="tex", lang=lang)
        assert ("어텐션" in text) == (lang == "ko") and compile_pdf(text).startswith(b"%PDF")


def test_same_block_same_bytes_and_the_korean_chapter_checks_itself(reports):
    model = model_of("TwoHeadBlock")
    assert derive.report(model, format="md") == reports["TwoHeadBlock"]
    korean = derive.report(model, format="md", lang="ko")
    inside = korean.split("## 어텐션, 한 단계씩")[1].split("\n## ")[0]
    assert sum(check_arithmetic(lhs, parts) for lhs, parts in read_equations(inside)) >= 39


class _MHA(torch.nn.Module):
    def __init__(self, need_weights: bool):
        super().__init__()
        torch.manual_seed(33)
        self.need_weights = need_weights
        self.attn = torch.nn.MultiheadAttention(4, 2, batch_first=True)
        self.norm = torch.nn.LayerNorm(4)
        self.head = torch.nn.Linear(4, 3)

    def forward(self, x):
        o, _ = self.attn(x, x, x, need_weights=self.need_weights)
        return self.head(self.norm(x + o).mean(dim=1))


def test_multihead_attention_with_and_without_weights_reads_as_the_same_chapter():
    """need_weights=True records bmm → softmax → bmm (no attention primitive); the chapter finds Q, K, S and A
    in it and prints the same page as for the primitive."""
    from derive.report.attention_find import sites

    models = [derive.from_torch(_MHA(w), loss="cross_entropy", x=X, y=Y) for w in (True, False)]
    keys = [[n.op.key for n in m.structure.nodes if hasattr(n, "op")] for m in models]
    assert "attention" not in keys[0] and "softmax" in keys[0] and "attention" in keys[1]
    assert [s.form for m in models for s in sites(m)] == ["chain", "primitive"]
    pages = [chapter(derive.report(m, format="md")) for m in models]
    assert pages[0].split("\n", 3)[3] == pages[1].split("\n", 3)[3]  # all but the sentence naming the node


class _Masked(torch.nn.Module):
    """Scaled dot-product attention with a boolean mask whose second row attends to nothing."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(34)
        self.qkv = torch.nn.Linear(4, 12)
        self.head = torch.nn.Linear(4, 3)

    def forward(self, x):
        q, k, v = self.qkv(x).split(4, dim=2)
        mask = torch.tensor([[True, False, True], [False, False, False], [True, True, True]])
        return self.head((x + F.scaled_dot_product_attention(q, k, v, attn_mask=mask)).mean(dim=1))


def test_a_fully_masked_row_gives_what_torch_gives():
    """torch's scaled_dot_product_attention gives a fully masked row weights 0 and output 0; the chapter prints
    −∞ scores, that row of zeros, and every gradient is still autograd's."""
    module = _Masked()
    with torch.no_grad():
        q, k, v = module.double().qkv(torch.tensor(X, dtype=torch.float64)).split(4, dim=2)
        expected = F.scaled_dot_product_attention(q, k, v, attn_mask=torch.tensor(
            [[True, False, True], [False, False, False], [True, True, True]]))[0]
    assert torch.equal(expected[1], torch.zeros(4, dtype=torch.float64))
    model = derive.from_torch(_Masked(), loss="cross_entropy", x=X, y=Y)
    text = derive.report(model, format="md")
    eq = equations(text)
    assert "Every score of row 2 is masked" in chapter(text)
    assert numbers(eq[r"\tilde{S}"][-1])[1].tolist() == [-math.inf] * 3
    assert_printed(eq["a_{2}"][-1], [0, 0, 0], "a_2")
    assert_printed(eq["O"][-1], expected, "O")
    assert sum(check_arithmetic(lhs, parts) for lhs, parts in read_equations(chapter(text))) >= 20
    assert_report_shows_gradients(text, _Masked(), X, Y, "cross_entropy", model)
