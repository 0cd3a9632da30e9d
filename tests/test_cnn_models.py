"""Convolutional models: convolution, pooling and BatchNorm2d give every gradient equal to float64 autograd
of the user's own module, from Python and from ``derive grads --torch … --x X.npy --y Y.npy``."""

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch import nn

import derive
import verify
from derive.forms import grads_document
from derive.model.graph import OpNode
from derive.sources.torch_module import UnsupportedModelError
from tests.models import cnn_zoo, example
from tests.test_forms import assert_reevaluates
from tests.test_graph_models import assert_matches_autograd, autograd_of, grads_from_the_command_line
from tests.test_report_check import check_arithmetic
from tests.test_report_tools import katex, markdown_math, need_pdflatex, read_equations  # noqa: F401

F = torch.nn.functional

ROOT = Path(__file__).resolve().parent.parent

# torch warns that it pads a copy of the input for an even kernel with padding="same" (SamePadding does that)
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths:UserWarning")

#: the issue's three small CNNs, checked through the command line
MUST_SHOW = ["TinyCNN", "StridedTanh", "Signal1d"]


def model_of(name: str):
    x, y, loss = cnn_zoo.CASES[name]
    return derive.from_torch(getattr(cnn_zoo, name)(), loss=loss, x=x, y=y)


def derived(model) -> list:
    d = derive.derive(model)
    return [(p.parameter.torch, p.parameter.index, p.gradient) for p in d.parameters], d.loss


@pytest.mark.parametrize("name", sorted(cnn_zoo.CASES))
def test_every_gradient_equals_autograd_of_the_module(name):
    x, y, loss = cnn_zoo.CASES[name]
    gradients, value = derived(model_of(name))
    assert_matches_autograd(gradients, value, getattr(cnn_zoo, name)(), x, y, loss)


@pytest.mark.parametrize("name", MUST_SHOW)
def test_grads_json_from_the_command_line_with_npy_data(name, tmp_path, capsys):
    x, y, loss = cnn_zoo.CASES[name]
    gradients, value = grads_from_the_command_line(cnn_zoo, name, tmp_path, capsys)
    assert_matches_autograd(gradients, value, getattr(cnn_zoo, name)(), x, y, loss)


@pytest.mark.parametrize("name", ["TinyCNN", "MaxPoolTies", "Functional"])
def test_program_json_reevaluates_max_pooling_in_elementary_functions(name):
    doc = grads_document(model_of(name), form="program")
    assert any("Max(" in d["expression"] for d in doc["definitions"])
    assert_reevaluates(doc)  # Max and its winner (products of Heaviside) evaluate from the printed text


def test_tied_maxima_route_the_gradient_to_the_first_as_torch_does():
    x, y, loss = cnn_zoo.CASES["MaxPoolTies"]
    module = cnn_zoo.MaxPoolTies()
    gradients, _ = derived(derive.from_torch(module, loss=loss, x=x, y=y))
    shift = np.zeros((4, 4))
    for key, index, value in gradients:
        if key == "shift":
            shift[index[2:]] = value
    _, grads = autograd_of(module, x, y, loss)
    expected = grads["shift"][0, 0].numpy()
    # the first window [[1, 3], [3, 2]] of sample 1 has its maximum twice: torch picks (0, 1), not (1, 0)
    assert expected[0, 1] != 0 and np.allclose(shift, expected, rtol=1e-12, atol=0)
    windows = torch.tensor(x)[:, 0].unfold(1, 2, 1).unfold(2, 2, 1).reshape(2, 9, 4)
    assert ((windows == windows.amax(-1, keepdim=True)).sum(-1) > 1).sum() >= 4, "the data has tied windows"


@st.composite
def pooling_cases(draw):
    nd = draw(st.sampled_from([1, 2]))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    size = tuple(draw(st.integers(d * (k - 1) + 1 - 2 * p, 5)) for k, p, d in zip(kernel, padding, dilation))
    size = tuple(max(s, 1) for s in size)
    values = draw(st.lists(st.integers(0, 2), min_size=int(np.prod(size)), max_size=int(np.prod(size))))
    return nd, kernel, stride, padding, dilation, np.array(values, dtype=float).reshape(1, 1, *size)


class _Routing(nn.Module):
    """A learned shift before max pooling: ∂L/∂shift is δ as the pooling routes it."""

    def __init__(self, nd, kernel, stride, padding, dilation, shape):
        super().__init__()
        self.shift = nn.Parameter(torch.zeros(shape))
        self.pool = (nn.MaxPool1d if nd == 1 else nn.MaxPool2d)(kernel, stride, padding, dilation)

    def forward(self, x):
        return self.pool(x + self.shift).flatten(1)


@settings(max_examples=30, deadline=None)
@given(pooling_cases())
def test_drawn_max_pooling_with_many_ties_routes_as_torch(case):
    nd, kernel, stride, padding, dilation, x = case
    module = _Routing(nd, kernel, stride, padding, dilation, x.shape)
    with torch.no_grad():
        out = module(torch.tensor(x))
    y = np.arange(out.numel(), dtype=float).reshape(out.shape).tolist()
    if torch.isinf(out).any():  # a dilated window wholly in the padding: refused
        with pytest.raises(derive.DeriveError, match="a window lies wholly in the padding"):
            derived(derive.from_torch(module, loss="mse", x=x.tolist(), y=y))
        return
    gradients, value = derived(derive.from_torch(module, loss="mse", x=x.tolist(), y=y))
    assert_matches_autograd(gradients, value, module, x.tolist(), y, "mse")


@st.composite
def conv_cases(draw):
    nd = draw(st.sampled_from([1, 2]))
    groups = draw(st.sampled_from([1, 2]))
    c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    same = draw(st.booleans())
    stride = (1,) * nd if same else tuple(draw(st.integers(1, 2)) for _ in range(nd))
    padding = "same" if same else tuple(draw(st.integers(0, 2)) for _ in range(nd))
    pad = (0,) * nd if same else padding
    size = tuple(draw(st.integers(max(1, d * (k - 1) + 1 - 2 * p), 5)) for k, d, p in zip(kernel, dilation, pad))
    bias = draw(st.booleans())
    seed = draw(st.integers(0, 1000))
    return nd, dict(in_channels=c_in, out_channels=c_out, kernel_size=kernel, stride=stride, padding=padding,
                    dilation=dilation, groups=groups, bias=bias), (2, c_in, *size), seed


@settings(max_examples=25, deadline=None)
@given(conv_cases())
def test_drawn_convolutions_agree_with_autograd(case):
    nd, options, shape, seed = case
    torch.manual_seed(seed)
    module = nn.Sequential((nn.Conv1d if nd == 1 else nn.Conv2d)(**options), nn.Tanh(), nn.Flatten())
    x = torch.randn(shape).tolist()
    with torch.no_grad():
        width = module(torch.tensor(x)).shape[1]
    y = torch.randn(2, width).tolist()
    gradients, value = derived(derive.from_torch(module, loss="mse", x=x, y=y))
    assert_matches_autograd(gradients, value, module, x, y, "mse")


def test_batch_norm_2d_takes_statistics_over_batch_and_space_or_running_constants():
    train, evaluated = model_of("BatchNorm2dTrain"), model_of("BatchNorm2dEval")
    norms = [n.op for n in train.structure.nodes if isinstance(n, OpNode) and n.op.key == "batch_norm"]
    assert [op.training for op in norms] == [True]
    assert [n.op.training for n in evaluated.structure.nodes if isinstance(n, OpNode) and n.op.key == "batch_norm"] \
        == [False]
    assert "bn.running_mean" not in train.values and "bn.running_mean" in evaluated.values
    assert evaluated.tensor_keys == train.tensor_keys == [k for k, _ in cnn_zoo.BatchNorm2dEval().named_parameters()]
    for model in (train, evaluated):
        assert verify.check(model).ok


def test_small_cnn_checks_out_with_verify():
    assert verify.check(model_of("TinyCNN")).ok  # numpy and torch code of max and its winner, and autograd
    # at a tie the loss has a kink at the point, and torch's first-maximum rule, over overlapping windows, may
    # take neither one-sided slope: finite differences do not judge those parameters (their column: kink)
    report = verify.check(model_of("MaxPoolTies"))
    assert report.ok, str(report)
    judged = {r.name for r in report.rows if r.opinions[verify.compare.FD] is not None}
    assert "shift_1_1_2_3" not in judged and {"W_fc_1_1", "b_fc_1"} <= judged, judged


@pytest.fixture(scope="module")
def tiny_report():
    start = time.perf_counter()
    text = derive.report(model_of("TinyCNN"), format="md")
    return text, time.perf_counter() - start


def test_small_cnn_report_renders_in_katex_and_stays_small(tiny_report, katex):  # noqa: F811
    text, seconds = tiny_report
    formulas = [(f"TinyCNN #{i}", block) for i, block in enumerate(markdown_math(text))]
    assert formulas and not katex.errors(formulas)
    assert r"\star" in text and r"\operatorname{maxpool}" in text and r"\operatorname{argmax}" in text
    assert seconds < 10 and len(text) < 200_000, (seconds, len(text))
    computed = sum(check_arithmetic(f"TinyCNN: {lhs}", parts) for lhs, parts in read_equations(text))
    assert computed >= 20  # the printed numbers recompute (argmax indicators are read as text)


def test_small_cnn_latex_report_compiles():
    need_pdflatex()
    from derive.report.pdf import compile_pdf

    assert compile_pdf(derive.report(model_of("TinyCNN"), format="tex")).startswith(b"%PDF")


class _Options(nn.Module):
    def __init__(self, layer, functional=None):
        super().__init__()
        self.layer, self.functional = layer, functional

    def forward(self, x):
        return (self.layer(x) if self.functional is None else self.functional(self.layer(x) if self.layer else x)
                ).flatten(1)


@pytest.mark.parametrize(
    "module, message",
    [
        (_Options(nn.Sequential(nn.Conv2d(1, 1, 1), nn.MaxPool2d(2, ceil_mode=True))),
         r"max_pool2d_with_indices.default with ceil_mode=True"),
        (_Options(nn.Sequential(nn.Conv2d(1, 1, 1), nn.AvgPool2d(2, divisor_override=3))),
         r"avg_pool2d.default with divisor_override=3"),
        (_Options(nn.Conv2d(1, 1, 1), lambda x: F.avg_pool2d(x, 2, ceil_mode=True)), r"avg_pool2d.default with ceil_mode=True"),
    ],
)
def test_unsupported_options_are_refused_by_name(module, message):
    x = np.arange(18.0).reshape(2, 1, 3, 3).tolist()
    with pytest.raises(UnsupportedModelError, match=message + r" is not supported (at 'layer.1' \(\w+, |in _Options.forward \()"
                       r"test_cnn_models.py:\d+\)") as info:
        derive.from_torch(module, loss="mse", x=x, y=[[0.0], [1.0]])
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("module", [
    _Options(nn.Conv2d(1, 1, 2, padding=1, padding_mode="reflect")),
    _Options(nn.Conv2d(1, 2, 2), lambda x: F.max_pool2d(x, 2, return_indices=True)[0]),
    _Options(nn.Conv2d(1, 1, 2, padding=1, padding_mode="circular")), _Options(nn.Conv2d(1, 1, 2, padding="same")),
])
def test_options_torch_runs_as_other_ops_are_read(module):
    """reflect or circular padding, return_indices, even kernels with padding="same": torch records them as
    indexing, padding and pooling ops; every gradient is autograd's."""
    x = np.arange(18.0).reshape(2, 1, 3, 3) / 10
    y = np.ones((2, int(module(torch.tensor(x, dtype=torch.float32)).shape[1])))
    assert verify.check(derive.from_torch(module, loss="mse", x=x, y=y)).ok


def test_lenet5_on_a_small_image_from_the_command_line_equals_autograd(tmp_path):
    """LeNet-5's layers (conv, tanh, max pooling twice, three dense layers) on a 1×16×16 image, batch 2, through
    ``derive grads --format json``: all 15,626 gradients as autograd's, the program form in full (27 MB through
    the pipe: the command ends with ``os._exit`` after flushing it). The 32×32 network itself, 61,706
    parameters, is checked and timed by benchmarks/lenet.py."""
    lenet = example("lenet5")
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((2, 1, 16, 16)).round(3), np.array([3, 7])
    np.save(tmp_path / "X.npy", x)
    np.save(tmp_path / "Y.npy", y)
    result = subprocess.run(
        [sys.executable, "-m", "derive", "grads", "--torch", f"{ROOT / 'examples' / 'lenet5.py'}:LeNet5Small",
         "--x", str(tmp_path / "X.npy"), "--y", str(tmp_path / "Y.npy"), "--loss", "cross_entropy",
         "--format", "json", "--max-params", "20000"], capture_output=True, text=True, cwd=ROOT, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    gradients = [(p["torch"], p["index"], p["gradient"]) for p in doc["parameters"]]
    assert len(gradients) == 15_626
    assert_matches_autograd(gradients, doc["loss"], lenet.LeNet5Small(), x.tolist(), y.tolist(), "cross_entropy")
    assert doc["form"] == "program" and len(doc["definitions"]) > 10_000
    conv1 = next(e for e in doc["definitions"] if e["symbol"] == "conv1_1_1_1_1")
    assert conv1["expression"].count("*") == 25  # the 5×5 window, one product per tap (+ the bias)
