"""torch.fx import: the seed's own class, freely written models and Sequentials, each against float64 autograd."""

import contextlib
import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

import derive  # noqa: E402
from derive.cli import main  # noqa: E402
from derive.sources.torch_module import UnsupportedModelError, from_torch  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

# The study note's class, as the note writes it (float32 tensors, weights set through .data).
SEED_MODEL = (ROOT / "examples" / "seed_model.py").read_text()

# ../shared/seed/reference.md (float64 torch autograd at the decimal weights)
SEED_REFERENCE = {
    "W1": -0.016160061, "W2": -0.016160061, "W3": 0.010319306, "W4": 0.010319306,
    "b1": -0.016160061, "b2": 0.010319306, "W5": 0.272737920, "W6": 0.279651879, "b3": 0.415433183,
}  # fmt: skip


def derive_cli(*args: str) -> subprocess.CompletedProcess:
    """``derive ARGS`` run by `derive.cli.main` in this process (as the console script runs it), its output
    captured: a fresh interpreter is not the point of these tests (tests/test_cli.py runs ``python -m derive``
    and the console script; tests/test_cli_edges.py a module that exits or hangs)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(list(args))
    return subprocess.CompletedProcess(["derive", *args], status, out.getvalue(), err.getvalue())


def autograd(model, loss_fn, x, y) -> tuple[float, dict[str, float]]:
    """float64 autograd of a torch model, gradients keyed by derive's textbook names (forward order given)."""
    model = model.double()
    model.zero_grad()
    loss = loss_fn(model(torch.as_tensor(x, dtype=torch.float64)), y)
    loss.backward()
    return float(loss), loss


def textbook_gradients(linears) -> dict[str, float]:
    """∂L/∂p by textbook name from the .grad of Linear modules in forward order."""
    grads, w, b = {}, 0, 0
    for linear in linears:
        for value in linear.weight.grad.flatten().tolist():
            w += 1
            grads[f"W{w}"] = value
        for value in linear.bias.grad.tolist():
            b += 1
            grads[f"b{b}"] = value
    return grads


def assert_matches_autograd(net, loss_value, expected, rel=1e-7):
    d = derive.derive(net)
    assert d.loss == pytest.approx(loss_value, rel=rel)
    assert {p.name for p in d.parameters} == set(expected)
    for p in d.parameters:
        assert p.gradient == pytest.approx(expected[p.name], rel=rel, abs=1e-12), p.name


@pytest.fixture
def seed_file(tmp_path):
    path = tmp_path / "seed_model.py"
    path.write_text(SEED_MODEL)
    return path


def test_cli_reads_the_seed_class_and_gives_the_seed_gradients(seed_file):
    result = derive_cli("grads", "--torch", f"{seed_file}:CustomModel", "--x", "1,1", "--y", "0",
                        "--loss", "bce", "--format", "json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    grads = {p["name"]: p["gradient"] for p in doc["parameters"]}
    assert list(grads) == ["W1", "W2", "W3", "W4", "W5", "W6", "b1", "b2", "b3"]
    # the note's table is at the decimal weights; the class holds their float32 roundings
    for name, value in SEED_REFERENCE.items():
        assert grads[name] == pytest.approx(value, rel=1e-7)
    assert doc["loss"] == pytest.approx(0.536884191, rel=1e-7)
    # and exactly what float64 autograd gives for the class's own (float32-promoted) weights
    namespace: dict = {}
    exec(compile(SEED_MODEL, "seed_model.py", "exec"), namespace)  # the test's own constant, not user text
    model = namespace["CustomModel"]().double()
    loss = nn.BCELoss()(model(torch.tensor([[1.0, 1.0]], dtype=torch.float64)), torch.zeros(1, 1, dtype=torch.float64))
    loss.backward()
    expected = textbook_gradients([model.layer1[0], model.layer2[0]])
    for name, value in expected.items():
        assert grads[name] == pytest.approx(value, rel=1e-12)


def test_float32_weights_are_promoted_exactly_not_rounded_to_decimals():
    linear = nn.Linear(2, 1)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor([[0.4352, 0.1]]))
        linear.bias.copy_(torch.tensor([-0.3043]))
    net = from_torch(linear, loss="mse", x=[[1, 2]], y=[[0]])
    assert net.layers[0].weight[0][0] == 0.4352000057697296 != 0.4352  # the float32 value, as float64
    assert net.layers[0].weight[0][1] == float(torch.tensor(0.1, dtype=torch.float32).item())
    assert net.layers[0].bias[0] == float(linear.bias.detach().double()[0])


class FreelyNamed(nn.Module):
    """2-2-2 with functional sigmoids; attributes named freely and defined out of forward order."""

    def __init__(self):
        super().__init__()
        self.readout = nn.Linear(2, 2)
        self.encoder = nn.Linear(2, 2)
        with torch.no_grad():
            self.encoder.weight.copy_(torch.tensor([[0.15, 0.20], [0.25, 0.30]]))
            self.encoder.bias.copy_(torch.tensor([0.35, 0.35]))
            self.readout.weight.copy_(torch.tensor([[0.40, 0.45], [0.50, 0.55]]))
            self.readout.bias.copy_(torch.tensor([0.60, 0.60]))

    def forward(self, inputs):
        hidden = torch.sigmoid(self.encoder(inputs))
        return torch.sigmoid(self.readout(hidden))


def test_a_2_2_2_model_with_torch_sigmoid_calls_gives_autograds_half_sse_gradients():
    model = FreelyNamed()
    x, y = [[0.05, 0.10]], [[0.01, 0.99]]
    net = from_torch(model, loss="half_sse", x=x, y=y, lr=0.5)
    assert net.layers[0].weight[0][0] == float(torch.tensor(0.15, dtype=torch.float32))  # encoder is layer 1
    model = model.double()
    out = model(torch.tensor(x, dtype=torch.float64))
    loss = 0.5 * ((out - torch.tensor(y, dtype=torch.float64)) ** 2).sum(dim=1).mean()
    loss.backward()
    assert_matches_autograd(net, loss.item(), textbook_gradients([model.encoder, model.readout]), rel=1e-12)


class TanhReluClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.fc1, self.fc2, self.fc3 = nn.Linear(3, 4), nn.Linear(4, 4), nn.Linear(4, 3)

    def forward(self, x):
        x = torch.tanh(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


def _batch(rows, cols, seed):
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(rows, cols, generator=generator, dtype=torch.float64) * 4 - 2).tolist()


def test_tanh_relu_cross_entropy_batch_3_class_targets():
    model = TanhReluClassifier()
    x, classes = _batch(3, 3, 1), torch.tensor([2, 0, 1])
    net = from_torch(model, loss=nn.CrossEntropyLoss(), x=x, y=classes)
    assert [layer.activation for layer in net.layers] == ["tanh", "relu", "identity"]
    assert net.y.tolist() == [[0, 0, 1], [1, 0, 0], [0, 1, 0]]
    model = model.double()
    loss = nn.CrossEntropyLoss()(model(torch.tensor(x, dtype=torch.float64)), classes)  # class-index targets
    loss.backward()
    assert_matches_autograd(net, loss.item(), textbook_gradients([model.fc1, model.fc2, model.fc3]))


def test_softplus_sequential_bce_with_logits_batch_4():
    torch.manual_seed(5)
    model = nn.Sequential(nn.Linear(2, 3), nn.Softplus(), nn.Linear(3, 2))
    x, y = _batch(4, 2, 2), [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.3, 0.8]]
    x64, y64 = torch.tensor(x, dtype=torch.float64), torch.tensor(y, dtype=torch.float64)
    net = from_torch(model, loss=nn.BCEWithLogitsLoss(), x=x64, y=y64)
    assert [layer.activation for layer in net.layers] == ["softplus", "identity"]
    model = model.double()
    loss = nn.BCEWithLogitsLoss()(model(torch.tensor(x, dtype=torch.float64)), torch.tensor(y, dtype=torch.float64))
    loss.backward()
    assert_matches_autograd(net, loss.item(), textbook_gradients([model[0], model[2]]))


def test_leaky_relu_mse_batch_4_module_and_functional_slopes():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(11)
            self.body = nn.Sequential(nn.Linear(2, 3), nn.LeakyReLU(0.1))
            self.head = nn.Linear(3, 2)

        def forward(self, x):
            return F.leaky_relu(self.head(self.body(x)), negative_slope=0.2)

    model = Net()
    x, y = _batch(4, 2, 4), _batch(4, 2, 5)
    net = from_torch(model, loss=nn.MSELoss(reduction="sum"), x=x, y=y)
    assert [layer.activation for layer in net.layers] == ["leaky_relu(0.1)", "leaky_relu(0.2)"]
    assert net.reduction == "sum"
    model = model.double()
    loss = nn.MSELoss(reduction="sum")(model(torch.tensor(x, dtype=torch.float64)), torch.tensor(y, dtype=torch.float64))
    loss.backward()
    assert_matches_autograd(net, loss.item(), textbook_gradients([model.body[0], model.head]))


def test_methods_gelu_softmax_and_eval_dropout_are_read():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(2)
            self.a, self.b, self.c = nn.Linear(2, 3), nn.Linear(3, 3), nn.Linear(3, 3)
            self.act, self.drop = nn.GELU(), nn.Dropout(0.5)

        def forward(self, x):
            x = self.drop(self.act(self.a(x)))
            x = self.b(x).tanh()
            return F.softmax(self.c(x), dim=1)

    model = Net().eval()
    x, y = _batch(2, 2, 6), [[0.2, 0.3, 0.5], [0.0, 1.0, 0.0]]
    net = from_torch(model, loss="half_sse", x=x, y=y)
    assert [layer.activation for layer in net.layers] == ["gelu", "tanh", "softmax"]
    model = model.double()
    out = model(torch.tensor(x, dtype=torch.float64))
    loss = 0.5 * ((out - torch.tensor(y, dtype=torch.float64)) ** 2).sum(dim=1).mean()
    loss.backward()
    assert_matches_autograd(net, loss.item(), textbook_gradients([model.a, model.b, model.c]), rel=1e-10)


def test_frozen_parameters_and_missing_biases_are_frozen():
    model = nn.Sequential(nn.Linear(2, 2, bias=False), nn.Sigmoid(), nn.Linear(2, 1))
    model[2].weight.requires_grad_(False)
    net = from_torch(model, loss="mse", x=[[1, 2]], y=[[0.5]], freeze=["W1"])
    assert net.layers[0].bias == (0.0, 0.0)
    assert net.freeze == ("W1", "W5", "W6", "b1", "b2")


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 2)

    def forward(self, x):
        return torch.sigmoid(self.fc(x)) + x


class Branching(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 2)

    def forward(self, x):
        if x.sum() > 0:
            return self.fc(x)
        return x


class Sorting(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 2)

    def forward(self, x):
        return self.fc(x).sort(dim=1).values


class Rounding(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 2)

    def forward(self, x):
        return self.fc(x).long().double()


REFUSED = {
    "an op outside the registry": (Sorting(), r"unsupported op aten.sort.default in Sorting.forward \(test_torch_import.py:\d+\)"),
    "a cast to integers": (Rounding(), r"aten._to_copy.default with a result that is not floating point .* in Rounding.forward"),
    "dropout in train mode": (nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.1)), r"Dropout at '1' .*train mode"),
    "data-dependent control flow": (Branching(), r"Branching.forward branches on a tensor's value \(test_torch_import.py:\d+: if x.sum\(\) > 0:\)"),
}  # fmt: skip

#: Models that are not chains of Linear layers: read as graph models, checked against the module itself.
GRAPHS = {
    "residual": Residual(),
    "tanh gelu": nn.Sequential(nn.Linear(2, 2), nn.GELU(approximate="tanh")),
    "softplus beta": nn.Sequential(nn.Linear(2, 2), nn.Softplus(beta=2, threshold=1.5)),
    "two activations": nn.Sequential(nn.Linear(2, 2), nn.Tanh(), nn.Sigmoid()),
    "activation first": nn.Sequential(nn.Tanh(), nn.Linear(2, 2)),
    "softmax over the batch": nn.Sequential(nn.Linear(2, 2), nn.Softmax(dim=0)),
    "batch norm": nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2)),
    "shared weights": nn.Sequential(*[nn.Linear(2, 2)] * 2),
}


@pytest.mark.parametrize("case", sorted(GRAPHS))
def test_models_that_are_not_chains_are_read_as_graphs(case):
    import verify

    model = from_torch(GRAPHS[case], loss="mse", x=[[1, 2], [0.5, -1]], y=[[0, 0], [1, 0.5]])
    assert not model.textbook
    assert verify.check(model).ok


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_unsupported_models_are_refused_with_a_message_naming_the_part(case):
    model, message = REFUSED[case]
    with pytest.raises(UnsupportedModelError, match=message) as info:
        from_torch(model, loss="mse", x=[[1, 2]], y=[[0, 0]])
    assert "\n" not in str(info.value)


def test_loss_modules_with_options_are_read_in_forward_and_no_scalar_loss_is_refused():
    # options derive has no loss class for are read as torch runs them (tests/test_more_styles.py checks the numbers)
    model = from_torch(nn.Linear(2, 2), loss=nn.CrossEntropyLoss(label_smoothing=0.1), x=[[1, 2]], y=[1])
    assert model.loss == "forward" and model.tensor_keys == ["weight", "bias"]
    with pytest.raises(derive.DeriveError, match=r"MSELoss\(reduction='none'\) gives no scalar loss"):
        from_torch(nn.Linear(2, 1), loss=nn.MSELoss(reduction="none"), x=[[1, 2]], y=[1])
    with pytest.raises(derive.DeriveError, match="reduction 'sum' contradicts HuberLoss"):
        from_torch(nn.Linear(2, 1), loss=nn.HuberLoss(), x=[[1, 2]], y=[1], reduction="sum")


def test_cli_refuses_an_unsupported_op_with_exit_2_and_no_traceback(tmp_path):
    path = tmp_path / "sort_model.py"
    path.write_text(textwrap.dedent('''
        import torch.nn as nn

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.features = nn.Sequential(nn.Linear(2, 4), nn.ReLU())
                self.head = nn.Linear(4, 1)

            def forward(self, x):
                return self.head(self.features(x).sort(dim=1).values)
    '''))
    result = derive_cli("grads", "--torch", f"{path}:Net", "--x", "1,1", "--y", "0", "--loss", "mse")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "unsupported op aten.sort.default in Net.forward (sort_model.py:11)" in result.stderr


@pytest.mark.parametrize(
    "source, message",
    [
        ("{seed}:Missing", r"has no 'Missing'; classes: CustomModel"),
        ("{seed}", r"expected FILE.py:CLASS"),
        ("{dir}/absent.py:Net", r"absent.py: no such file"),
        ("{broken}:Net", r"running broken.py failed: ZeroDivisionError: division by zero"),
    ],
)
def test_cli_torch_source_errors_are_one_line(seed_file, tmp_path, source, message):
    broken = tmp_path / "broken.py"
    broken.write_text("x = 1 / 0\n")
    source = source.format(seed=seed_file, dir=tmp_path, broken=broken)
    result = derive_cli("grads", "--torch", source, "--x", "1,1", "--y", "0", "--loss", "bce")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1
    assert __import__("re").search(message, result.stderr), result.stderr


def test_cli_torch_needs_data_and_loss(seed_file):
    result = derive_cli("grads", "--torch", f"{seed_file}:CustomModel", "--x", "1,1")
    assert result.returncode == 2 and "give --y (and --loss, unless forward(x, y) returns the loss)" in result.stderr
    result = derive_cli("grads", "--torch", f"{seed_file}:CustomModel", "--x", "1,1", "--y", "0")
    assert result.returncode == 2 and "takes no y to compute its own: give a loss" in result.stderr


def test_importing_the_torch_source_module_does_not_import_torch():
    code = "import sys, derive.sources.torch_module, derive; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert result.stdout.strip() == "False"
