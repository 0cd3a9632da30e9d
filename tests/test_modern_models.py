"""Models written the way people write them today (tests/models/modern_zoo.py), read from their modules with
``.npy`` data through the command line: every gradient of ``derive grads --format json`` equals float64
autograd of the module itself (by torch key and index), ``derive verify`` exits 0, and the report renders
in KaTeX and compiles with pdflatex. The command runs in this process (``derive.cli.main``): the same code
as the ``derive`` command, without paying for torch's import once per model."""

import copy
import json

import numpy as np
import pytest
import torch

import derive
from derive.cli import main
from tests.models import modern_zoo
from tests.test_report_tools import katex, markdown_math, need_pdflatex  # noqa: F401

try:
    from tests.models import hf_zoo
except ImportError:  # the transformers library: a test extra
    hf_zoo = None

ZOOS = {name: modern_zoo for name in modern_zoo.CASES} | ({name: hf_zoo for name in hf_zoo.CASES} if hf_zoo else {})
NAMES = sorted(ZOOS)


def autograd(module, x, y, loss):
    """The loss and ∂L/∂p of every parameter tensor of a float64 copy of the module, by named_parameters() key."""
    module = copy.deepcopy(module).double()
    x, y = torch.from_numpy(np.array(x)), torch.from_numpy(np.array(y))  # float64 (lists of floats), or ids
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # a state made in forward without a dtype: float64 too
    try:
        if loss is None:
            value = module(x, y)
        else:
            out = module(x)
            value = torch.nn.functional.cross_entropy(out, y) if loss == "cross_entropy" else \
                torch.nn.functional.mse_loss(out, y.reshape(out.shape))
    finally:
        torch.set_default_dtype(previous)
    value.backward()
    return float(value.detach()), {k: (p.grad if p.grad is not None else torch.zeros_like(p))
                                   for k, p in module.named_parameters()}


def _files(name, tmp_path):
    x, y, loss = ZOOS[name].CASES[name]
    np.save(tmp_path / "X.npy", np.array(x))  # whole numbers stay integers: token ids
    np.save(tmp_path / "Y.npy", np.array(y))
    args = ["--torch", f"{ZOOS[name].__file__}:{name}", "--x", str(tmp_path / "X.npy"), "--y", str(tmp_path / "Y.npy")]
    return args + (["--loss", loss] if loss else [])


def run(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize("name", NAMES)
def test_grads_json_equals_autograd_of_the_module(name, tmp_path, capsys):
    x, y, loss = ZOOS[name].CASES[name]
    status, out, err = run(capsys, "grads", *_files(name, tmp_path), "--format", "json")
    assert status == 0, err
    doc = json.loads(out)
    expected_loss, grads = autograd(getattr(ZOOS[name], name)(), x, y, loss)
    # Llama's RMSNorm rounds to float32 in its forward: derive derives the exact function (Model.precision)
    rtol = 1e-10 if name != "TinyLlama" else 1e-6
    assert doc["loss"] == pytest.approx(expected_loss, rel=rtol)
    scale = max(float(g.abs().max()) for g in grads.values())
    assert len(doc["parameters"]) == sum(g.numel() for g in grads.values())
    for p in doc["parameters"]:
        expected = float(grads[p["torch"]][tuple(p["index"])])
        assert abs(p["gradient"] - expected) <= rtol * scale, (p["torch"], p["index"], p["gradient"], expected)


def test_the_transformers_models_are_there_under_ci():
    """The transformers library is a test extra: under CI its models must be checked, not skipped."""
    import os

    assert hf_zoo is not None or not os.environ.get("CI"), "pip install transformers (the test extra)"


@pytest.mark.parametrize("name", NAMES)
def test_verify_exits_0(name, tmp_path, capsys):
    status, out, err = run(capsys, "verify", *_files(name, tmp_path))
    assert status == 0, out + err


@pytest.fixture(scope="module")
def reports():
    """Each model's report, in Markdown and in LaTeX."""
    result = {}
    for name in NAMES:
        x, y, loss = ZOOS[name].CASES[name]
        model = derive.from_torch(getattr(ZOOS[name], name)(), loss=loss, x=x, y=y)
        result[name] = derive.report(model, format="md"), derive.report(model, format="tex")
    return result


def test_every_report_renders_in_katex(reports, katex):  # noqa: F811
    formulas = [(f"{name} #{i}", block) for name, (md, _) in reports.items() for i, block in enumerate(markdown_math(md))]
    assert len(formulas) > 20 * len(NAMES)
    assert not katex.errors(formulas)


@pytest.mark.parametrize("name", NAMES)
def test_reports_compile_with_pdflatex(name, reports):
    need_pdflatex()
    from derive.report.pdf import compile_pdf

    assert compile_pdf(reports[name][1]).startswith(b"%PDF")


def test_the_shapes_and_masks_of_forward_arrive_as_torch_ran_them():
    """``B, T, C = x.shape``, a causal mask with ``masked_fill(-inf)`` (GPTBlock), ``torch.zeros(x.shape[0], H)``
    before an RNNCell loop: read, and the masked scores take no part in their softmax."""
    x, y, loss = modern_zoo.CASES["GPTBlock"]
    model = derive.from_torch(modern_zoo.GPTBlock(), loss=loss, x=x, y=y)
    d = derive.derive(model)
    softmax = next(i for i, n in enumerate(model.structure.nodes) if getattr(n, "op", None) and n.op.key == "softmax")
    weights = d.graph.tensors[softmax]
    assert weights.shape == (1, 2, 3, 3)
    assert all(weights[0, h, i, j] == 0 for h in range(2) for i in range(3) for j in range(i + 1, 3))
    x, y, loss = modern_zoo.CASES["RNNCellLoop"]
    cells = derive.from_torch(modern_zoo.RNNCellLoop(), loss=loss, x=x, y=y)
    assert [n.name for n in cells.structure.nodes if getattr(n, "role", "")] == ["cell_h1", "cell_1_h1", "cell_2_h1"]


def test_tied_weights_are_one_tensor_under_the_key_named_parameters_gives():
    x, y, loss = modern_zoo.CASES["TiedLM"]
    model = derive.from_torch(modern_zoo.TiedLM(), loss=loss, x=x, y=y)
    assert model.tensor_keys == ["embed.weight", "mix.weight", "mix.bias"]
    _, grads = autograd(modern_zoo.TiedLM(), x, y, loss)
    d = derive.derive(model)
    for p in d.parameters:
        assert p.gradient == pytest.approx(float(grads[p.parameter.torch][p.parameter.index]), abs=1e-12)


def test_the_padding_row_of_an_embedding_gets_no_gradient():
    x, y, loss = modern_zoo.CASES["PaddedEmbedding"]
    d = derive.derive(derive.from_torch(modern_zoo.PaddedEmbedding(), loss=loss, x=x, y=y))
    padding = [p.gradient for p in d.parameters if p.parameter.torch == "embed.weight" and p.parameter.index[0] == 0]
    used = [p.gradient for p in d.parameters if p.parameter.torch == "embed.weight" and p.parameter.index[0] == 3]
    assert padding == [0.0, 0.0, 0.0] and all(g != 0 for g in used)


def test_reading_never_changes_the_module():
    module = modern_zoo.MiniResNet()  # BatchNorm in train mode: reading runs it, on a copy
    before = {k: v.clone() for k, v in module.state_dict().items()}
    x, y, loss = modern_zoo.CASES["MiniResNet"]
    derive.from_torch(module, loss=loss, x=x, y=y)
    after = module.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before) and module.training
    assert all(p.dtype == torch.float32 for p in module.parameters())


class _Printing(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(2, 2)

    def forward(self, x):
        print("shape of x:", x.shape)
        return torch.tanh(self.fc(x)) + x


def test_what_forward_prints_goes_to_standard_error(tmp_path, capsys):
    (tmp_path / "printing.py").write_text(
        "import torch\n\n\nclass Net(torch.nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        self.fc = torch.nn.Linear(2, 2)\n\n    def forward(self, x):\n        print('shape of x:', x.shape)\n"
        "        return torch.tanh(self.fc(x)) + x\n")
    status, out, err = run(capsys, "grads", "--torch", f"{tmp_path}/printing.py:Net", "--x", "1,2", "--y", "0,1",
                           "--loss", "mse", "--format", "json")
    assert status == 0 and json.loads(out)["parameters"] and "shape of x" in err and "shape of x" not in out


class _Masked(torch.nn.Module):
    """An attention block whose forward takes a padding mask as well as x."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(40)
        self.attn = torch.nn.MultiheadAttention(2, 1, batch_first=True)
        self.head = torch.nn.Linear(2, 2)

    def forward(self, x, key_padding_mask):
        out, _ = self.attn(x, x, x, key_padding_mask=key_padding_mask, need_weights=False)
        return self.head(out.mean(dim=1))


def test_more_forward_arguments_come_as_inputs(tmp_path, capsys):
    x = np.array([[[0.5, -1.0], [1.0, 0.25], [-0.5, 2.0]]])
    mask = np.array([[False, False, True]])
    model = derive.from_torch(_Masked(), loss="cross_entropy", x=x, y=[1], inputs={"key_padding_mask": mask})
    assert not model.textbook
    module = copy.deepcopy(_Masked()).double()
    value = torch.nn.functional.cross_entropy(module(torch.tensor(x), key_padding_mask=torch.tensor(mask)),
                                              torch.tensor([1]))
    value.backward()
    d = derive.derive(model)
    grads = dict(module.named_parameters())
    assert d.loss == pytest.approx(float(value.detach()), rel=1e-12)
    for p in d.parameters:
        assert p.gradient == pytest.approx(float(grads[p.parameter.torch].grad[p.parameter.index]), abs=1e-12)
    (tmp_path / "masked.py").write_text(
        "import torch\n\n\nclass Net(torch.nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        torch.manual_seed(40)\n        self.attn = torch.nn.MultiheadAttention(2, 1, batch_first=True)\n"
        "        self.head = torch.nn.Linear(2, 2)\n\n    def forward(self, x, key_padding_mask):\n"
        "        out, _ = self.attn(x, x, x, key_padding_mask=key_padding_mask, need_weights=False)\n"
        "        return self.head(out.mean(dim=1))\n")
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "mask.npy", mask)
    status, out, err = run(capsys, "grads", "--torch", f"{tmp_path}/masked.py:Net", "--x", str(tmp_path / "x.npy"),
                           "--y", "1", "--loss", "cross_entropy", "--input", f"key_padding_mask={tmp_path / 'mask.npy'}",
                           "--format", "json")
    assert status == 0, err
    assert json.loads(out)["loss"] == pytest.approx(float(value.detach()), rel=1e-12)
    # the check runs the module with its inputs too, in the dtype checked
    import verify

    assert verify.check(model).ok and verify.check(model, dtype="float32").ok
    status, out, err = run(capsys, "verify", "--torch", f"{tmp_path}/masked.py:Net", "--x", str(tmp_path / "x.npy"),
                           "--y", "1", "--loss", "cross_entropy", "--input", f"key_padding_mask={tmp_path / 'mask.npy'}")
    assert status == 0, out + err


class _PaddedAttention(torch.nn.Module):
    """Multi-head attention over padded sequences, the padding mask a second input of forward."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(41)
        self.mha = torch.nn.MultiheadAttention(4, 2, batch_first=True)
        self.fc = torch.nn.Linear(4, 2)

    def forward(self, x, key_padding_mask):
        h, _ = self.mha(x, x, x, key_padding_mask=key_padding_mask)
        return self.fc(h[:, 0])


def test_a_report_of_masked_scores_renders_and_compiles(katex):  # noqa: F811
    """A padding mask puts −∞ in the scores: a value of the model (its softmax weight is 0), not an overflow."""
    x = np.random.default_rng(42).uniform(-1, 1, (3, 4, 4))
    mask = np.array([[False, False, True, True], [False, False, False, False], [False, True, True, True]])
    model = derive.from_torch(_PaddedAttention(), loss="cross_entropy", x=x, y=[1, 0, 1],
                              inputs={"key_padding_mask": mask})
    md = derive.report(model, format="md", form="scalar")
    assert r"-\infty" in md
    formulas = [(f"#{i}", block) for i, block in enumerate(markdown_math(md))]
    assert formulas and not katex.errors(formulas)
    need_pdflatex()
    from derive.report.pdf import compile_pdf

    assert compile_pdf(derive.report(model, format="tex", form="scalar")).startswith(b"%PDF")


@pytest.mark.parametrize("name", NAMES)
def test_the_compiled_gradient_equals_autograd_of_the_module(name):
    """``verify.compile(model, "torch", "matrix")``: the ops' forwards and rules as one generated function (masks,
    tied weights, losses written in forward, the transformers models), every tensor as float64 autograd gives it."""
    import verify

    x, y, loss = ZOOS[name].CASES[name]
    module = getattr(ZOOS[name], name)()
    model = derive.from_torch(module, loss=loss, x=x, y=y)
    grads = verify.compile(model, backend="torch", form="matrix")(*verify.arguments(model, "torch"))
    _, expected = autograd(module, x, y, loss)
    rtol = 1e-10 if name != "TinyLlama" else 1e-6  # Llama's RMSNorm rounds to float32 in its forward
    scale = max(float(g.abs().max()) for g in expected.values())
    assert list(model.tensor_keys) == [k for k in expected if k in model.tensor_keys]
    for key, g in zip(model.tensor_keys, grads):
        assert float((g - expected[key]).abs().max()) <= rtol * scale, key
