"""Graph models: every derived gradient equals float64 autograd of the user's own module."""

import copy
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import assume, given

import derive
import verify
from derive.cli import main
from verify import graph_strategies
from derive.model.graph import Model
from tests.models import graph_zoo

ROOT = Path(__file__).resolve().parents[1]
ZOO = Path(graph_zoo.__file__)


def _torch_loss(loss, prediction, y, reduction="mean"):
    """The loss in torch, written out here (not verify's table): targets as torch takes them."""
    F = torch.nn.functional
    if loss in ("nll", "cross_entropy"):
        fn = F.nll_loss if loss == "nll" else F.cross_entropy
        return fn(prediction, y.long(), reduction=reduction)
    y = y.to(torch.float64).reshape(prediction.shape)
    if loss == "half_sse":
        per_sample = 0.5 * ((prediction - y) ** 2).reshape(prediction.shape[0], -1).sum(1)
        return per_sample.mean() if reduction == "mean" else per_sample.sum()
    return {"mse": F.mse_loss, "l1": F.l1_loss, "bce": F.binary_cross_entropy,
            "bce_with_logits": F.binary_cross_entropy_with_logits}[loss](prediction, y, reduction=reduction)


def autograd_of(module, x, y, loss, reduction="mean"):
    """∂L/∂(every parameter tensor) of a float64 copy of the module, by its named_parameters() key."""
    module = copy.deepcopy(module).double()
    x = torch.tensor(x, dtype=torch.float64) if torch.tensor(x).is_floating_point() else torch.tensor(x)
    value = _torch_loss(loss, module(x), torch.tensor(y, dtype=torch.float64), reduction)
    value.backward()
    value = value.detach()
    grads = {k: (p.grad if p.grad is not None else torch.zeros_like(p)) for k, p in module.named_parameters()}
    return float(value), grads


def assert_matches_autograd(gradients, loss_value, module, x, y, loss):
    """Every (torch key, index, value) equals autograd to 1e-9 relative to max(|g|, ‖g‖∞)."""
    expected_loss, grads = autograd_of(module, x, y, loss)
    assert loss_value == pytest.approx(expected_loss, rel=1e-12)
    scale = max(float(g.abs().max()) for g in grads.values())
    assert len(gradients) == sum(g.numel() for g in grads.values())
    for key, index, value in gradients:
        expected = float(grads[key][tuple(index)])
        assert abs(value - expected) <= 1e-9 * max(abs(expected), scale), (key, index, value, expected)


@pytest.mark.parametrize("name", sorted(graph_zoo.CASES))
def test_every_gradient_equals_autograd_of_the_module(name):
    x, y, loss = graph_zoo.CASES[name]
    module = getattr(graph_zoo, name)()
    model = derive.from_torch(module, loss=loss, x=x, y=y)
    assert not model.textbook, "these models are graphs, not chains"
    d = derive.derive(model)
    gradients = [(p.parameter.torch, p.parameter.index, p.gradient) for p in d.parameters]
    assert_matches_autograd(gradients, d.loss, module, x, y, loss)


def grads_from_the_command_line(zoo, name, tmp_path, capsys):
    """derive grads --torch ZOO:NAME --x X.npy --y Y.npy --format json: [(torch key, index, gradient)], loss.

    Run in this process (`derive.cli.main`, as the console script runs it): the command line is the point
    here, not a fresh interpreter (tests/test_cli.py runs ``python -m derive`` and the console script)."""
    x, y, loss = zoo.CASES[name]
    np.save(tmp_path / "X.npy", np.array(x))  # whole numbers stay integers: token ids for TokenMean
    np.save(tmp_path / "Y.npy", np.array(y))
    capsys.readouterr()
    status = main(["grads", "--torch", f"{zoo.__file__}:{name}", "--x", str(tmp_path / "X.npy"),
                   "--y", str(tmp_path / "Y.npy"), "--loss", loss, "--format", "json"])
    out, err = capsys.readouterr()
    assert status == 0, err
    document = json.loads(out)
    return [(p["torch"], p["index"], p["gradient"]) for p in document["parameters"]], document["loss"]


@pytest.mark.parametrize("name", sorted(graph_zoo.CASES))
def test_grads_json_from_the_command_line_with_npy_data(name, tmp_path, capsys):
    x, y, loss = graph_zoo.CASES[name]
    gradients, value = grads_from_the_command_line(graph_zoo, name, tmp_path, capsys)
    assert_matches_autograd(gradients, value, getattr(graph_zoo, name)(), x, y, loss)


def test_a_model_with_its_own_loss_from_the_command_line(capsys):
    status = main(["verify", "--torch", f"{ZOO}:OwnLoss", "--x", "0.5,-1;1.5,0.25", "--y", "0,1;1,-0.5"])
    out, err = capsys.readouterr()
    assert status == 0 and "ok" in out, err


def test_verify_check_compares_with_the_module_itself():
    x, y, loss = graph_zoo.CASES["TwoBranches"]
    model = derive.from_torch(graph_zoo.TwoBranches(), loss=loss, x=x, y=y)
    report = verify.check(model)
    assert report.ok and len(report.rows) == len(model.parameters())
    # A misread model fails: the same graph checked against a module with other weights.
    other = graph_zoo.TwoBranches()
    with torch.no_grad():
        other.out.bias += 0.5
    misread = Model(model.structure, model.values, model.x, model.y, module=other)
    report = verify.check(misread)
    assert not report.ok and any(not row.ok for row in report.rows)


def test_chains_stay_chains_with_their_textbook_names():
    module = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Sigmoid(), torch.nn.Linear(2, 1), torch.nn.Sigmoid())
    net = derive.from_torch(module, loss="bce", x=[[1, 1]], y=[[0]])
    assert net.textbook
    params = net.parameters()
    assert [p.name for p in params][:2] == ["W1", "W2"]
    assert {p.torch for p in params} == {"0.weight", "0.bias", "2.weight", "2.bias"}
    seed = derive.examples.seed().parameters()
    assert [p.torch for p in seed if p.layer == 2] == ["2.weight", "2.weight", "2.bias"]


def test_graph_parameter_names_follow_the_module_path():
    x, y, loss = graph_zoo.CASES["ResidualBlock"]
    model = derive.from_torch(graph_zoo.ResidualBlock(), loss=loss, x=x, y=y)
    d = derive.derive(model)
    first = d.parameters[0]
    assert (first.name, first.parameter.torch, first.parameter.index) == ("W_fc1_1_1", "fc1.weight", (0, 0))
    assert d.graph.latex_names[first.symbol] == r"W^{\mathrm{fc1}}_{1,1}"
    assert model.tensor_keys == [k for k, _ in graph_zoo.ResidualBlock().named_parameters()]


class _Sort(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(2, 2)

    def forward(self, x):
        return torch.sort(self.fc(x), dim=1).values


class _Item(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(2, 2)

    def forward(self, x):
        return self.fc(x) * self.fc(x).sum().item()


class _TrainDropout(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(2, 2)

    def forward(self, x):
        return F.dropout(self.fc(x) + x, 0.5, True)


F = torch.nn.functional


@pytest.mark.parametrize(
    "module, message",
    [
        (_Sort(), r"unsupported op aten.sort.default in _Sort.forward \(test_graph_models.py:\d+\): derive has no rule"),
        (_Item(), r"\.item\(\) \(or float\(\), int\(\)\) of a tensor that depends on parameters in _Item.forward "
                  r"\(test_graph_models.py:\d+\)"),
        (_TrainDropout(), r"Dropout in _TrainDropout.forward \(test_graph_models.py:\d+\) is in train mode"
                          r".*self.eval\(\)"),
    ],
)
def test_unsupported_calls_are_refused_with_file_and_line(module, message):
    with pytest.raises(derive.DeriveError, match=message):
        derive.from_torch(module, loss="mse", x=[[1.0, 2.0], [0.5, 0.0]], y=[[0.0, 1.0], [1.0, 0.0]])


def test_bad_data_for_a_graph_gets_a_clear_error():
    module = graph_zoo.ResidualBlock()
    with pytest.raises(derive.DeriveError, match=r"running ResidualBlock.forward on the data failed: RuntimeError: mat1 "
                                                 r"and mat2 shapes cannot be multiplied \(1x3 and 2x2\) \(residual_block.py:\d+\)"):
        derive.from_torch(module, loss="bce", x=[[1.0, 2.0, 3.0]], y=[[0.0]])
    with pytest.raises(derive.ValueDomainError, match="NaN or infinite"):
        derive.from_torch(graph_zoo.TwoBranches(), loss="bce_with_logits", x=[[float("nan"), 1.0]], y=[[0.0]])
    with pytest.raises(derive.ValueDomainError, match="targets in"):
        derive.from_torch(module, loss="bce", x=[[1.0, 2.0]], y=[[2.0]])


@given(graph_strategies.graph_models())
def test_drawn_graph_models_agree_with_autograd_of_their_module(model):
    report = verify.check(model, finite_differences_check=False)
    assert report.ok, str(report)


@given(graph_strategies.graph_models())
def test_drawn_graph_models_compile_to_autograds_gradients(model):
    """The compiled gradient (one generated function over the ops' rules, values freed as autograd frees
    them) of a drawn module: residuals, shared weights, branches, norms, every tensor as autograd gives it.
    (A drawn chain is read as a chain, `Model.textbook`: its compiled gradient is tested in tests/test_scale.py.)"""
    assume(not model.textbook)
    grads = verify.compile(model, backend="torch", form="matrix")(*verify.arguments(model, "torch"))
    _, expected = autograd_of(model.module, model.x.tolist(), np.asarray(model.y).tolist(), model.loss, model.reduction)
    scale = max(float(g.abs().max()) for g in expected.values())
    for key, g in zip(model.tensor_keys, grads):
        assert float((g - expected[key]).abs().max()) <= 1e-10 * max(scale, 1e-300), key


def test_a_model_that_computes_its_own_loss():
    x, y = graph_zoo.OWN_LOSS_DATA
    module = graph_zoo.OwnLoss()
    model = derive.from_torch(module, x=x, y=y)  # no loss: forward(x, y) returns it
    d = derive.derive(model)
    reference = copy.deepcopy(module).double()
    value = reference(torch.tensor(x, dtype=torch.float64), torch.tensor(y, dtype=torch.float64))
    value.backward()
    assert d.loss == pytest.approx(float(value.detach()), rel=1e-13)
    grads = dict(reference.named_parameters())
    for p in d.parameters:
        assert p.gradient == pytest.approx(float(grads[p.parameter.torch].grad[p.parameter.index]), rel=1e-12)
    assert verify.check(model).ok
    assert "Backward pass" in derive.report(model, format="md")
    with pytest.raises(derive.DeriveError, match="takes no y to compute its own: give a loss"):
        derive.from_torch(graph_zoo.ResidualBlock(), x=[[1.0, 2.0]], y=[[0.0]])


@pytest.mark.parametrize("name", sorted(graph_zoo.CASES))
@pytest.mark.parametrize("form", ["program", "auto"])
def test_graph_json_reevaluates_from_its_point_and_definitions(name, form):
    from derive.forms import grads_document
    from tests.test_forms import assert_reevaluates

    x, y, loss = graph_zoo.CASES[name]
    doc = grads_document(derive.from_torch(getattr(graph_zoo, name)(), loss=loss, x=x, y=y), form=form)
    assert_reevaluates(doc)
    assert {p["torch"] for p in doc["parameters"]} == {k for k, _ in getattr(graph_zoo, name)().named_parameters()}


def _graph_of_chain(network):
    """A chain `Network` built as a graph of ``linear`` and ``activate`` ops, named as a graph (``0.weight``, W^{0}),
    not from its textbook `dense` ops; frozen parameters carried over."""
    from derive.model.build import ModelBuilder

    b = ModelBuilder()
    h = b.input("x", (network.batch, network.layers[0].in_features))
    for number, layer in enumerate(network.layers, start=1):
        at = str(2 * (number - 1))
        z = b.op("linear", h, b.parameter(f"{at}.weight", layer.weight), b.parameter(f"{at}.bias", layer.bias),
                 name=f"z{number}")
        h = b.op("activate", z, activation=layer.activation, name=f"a{number}")
    model = b.model(h, x=network.x, y=network.y, loss=network.loss, reduction=network.reduction, lr=network.lr,
                    name=network.name)
    names = {p.name: q.name for p, q in zip(network.parameters(), _by_tensor(model))}
    return dataclasses.replace(model, freeze=tuple(names[p.name] for p in network.parameters() if p.frozen))


def _by_tensor(model):
    """The model's parameters in a chain's textbook order: all weights layer by layer, then all biases."""
    params = model.parameters()
    return [p for p in params if p.tensor == "weight"] + [p for p in params if p.tensor == "bias"]


@pytest.mark.parametrize("make", [derive.examples.seed, derive.examples.classic_2_2_2])
def test_a_chain_is_one_case_of_the_graph(make):
    net = make().replace(freeze=["b1"])
    model = _graph_of_chain(net)
    chain, graph = derive.derive(net), derive.derive(model)
    assert graph.loss == pytest.approx(chain.loss, rel=1e-15)
    pairs = list(zip(chain.parameters, _by_tensor(model)))
    for p, q in pairs:
        assert (p.parameter.torch, p.parameter.index) == (q.torch, q.index)
        assert graph.gradient(q.name) == pytest.approx(p.gradient, rel=1e-13, abs=1e-16)
    assert [q.name for p, q in pairs if q.frozen] == ["b_0_1"]


class _NoParameters(torch.nn.Module):
    def forward(self, x):
        return torch.maximum(x, x * 2)


def test_a_module_without_parameters_has_nothing_to_differentiate():
    with pytest.raises(derive.DeriveError, match=r"^_NoParameters has no parameters: there is nothing to differentiate$"):
        derive.from_torch(_NoParameters(), loss="mse", x=[[1.0, 2.0]], y=[[0.0, 1.0]])


class DropoutInEval(torch.nn.Module):
    """Dropout between two layers of a residual block, the module in eval mode: dropout is the identity."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(21)
        self.fc = torch.nn.Linear(3, 3)
        self.drop = torch.nn.Dropout(p=0.5)
        self.out = torch.nn.Linear(3, 2)
        self.eval()

    def forward(self, x):
        return self.out(x + self.drop(torch.tanh(self.fc(x))))


def test_dropout_in_eval_mode_is_the_identity_in_a_graph_model():
    x, y = [[0.5, -1.0, 2.0], [1.5, 0.25, -0.5]], [[1.0, 0.0], [-0.5, 0.5]]
    module = DropoutInEval()
    model = derive.from_torch(module, loss="mse", x=x, y=y)
    assert not model.textbook
    d = derive.derive(model)
    # autograd of the module, and the same block without dropout at all: a scaling by 1 − p (or by 1/(1 − p),
    # train mode's) moves both the loss and every gradient of fc
    plain = copy.deepcopy(module).double()
    plain.drop = torch.nn.Identity()
    for reference in (module, plain):
        assert_matches_autograd([(p.parameter.torch, p.parameter.index, p.gradient) for p in d.parameters], d.loss,
                                reference, x, y, "mse")


class BroadcastBias(torch.nn.Module):
    """Bare parameters, x @ W + b with W 3 × 2 and b broadcast over a batch of 4: no shape equals another,
    and every bias differs (a bias read along the wrong axis, or summed over the wrong one, cannot agree)."""

    def __init__(self):
        super().__init__()
        self.W = torch.nn.Parameter(torch.tensor([[0.5, -1.0], [0.25, 0.75], [-0.5, 1.5]]))
        self.b = torch.nn.Parameter(torch.tensor([0.3, -0.7]))
        self.v = torch.nn.Parameter(torch.tensor([[1.25], [-0.5]]))
        self.c = torch.nn.Parameter(torch.tensor([0.2]))

    def forward(self, x):
        return torch.tanh(x @ self.W + self.b) @ self.v + self.c


def test_a_bias_broadcast_over_a_batch_with_no_two_sizes_equal():
    x = [[1.0, -2.0, 0.5], [0.5, 1.0, -1.0], [-1.5, 0.25, 2.0], [0.75, -0.5, 1.0]]
    y = [[0.5], [-1.0], [0.25], [1.0]]
    model = derive.from_torch(BroadcastBias(), loss="mse", x=x, y=y)
    d = derive.derive(model)
    assert_matches_autograd([(p.parameter.torch, p.parameter.index, p.gradient) for p in d.parameters], d.loss,
                            BroadcastBias(), x, y, "mse")
    b = [p.gradient for p in d.parameters if p.parameter.torch == "b"]
    assert len(b) == 2 and b[0] != b[1]


class UnmaskedPadding(torch.nn.Module):
    """Embedding(padding_idx=1) summed without a mask: only padding_idx keeps the padding row's gradient 0."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(22)
        self.embed = torch.nn.Embedding(5, 3, padding_idx=1)
        self.fc = torch.nn.Linear(3, 1)

    def forward(self, ids):
        return self.fc(torch.tanh(self.embed(ids)).sum(dim=1))


def test_the_padding_row_gets_no_gradient_even_where_nothing_masks_it():
    x, y = [[1, 3, 1], [0, 1, 4]], [[0.5], [-1.0]]
    model = derive.from_torch(UnmaskedPadding(), loss="mse", x=x, y=y)
    d = derive.derive(model)
    assert_matches_autograd([(p.parameter.torch, p.parameter.index, p.gradient) for p in d.parameters], d.loss,
                            UnmaskedPadding(), x, y, "mse")
    padding = [p.gradient for p in d.parameters if p.parameter.torch == "embed.weight" and p.parameter.index[0] == 1]
    used = [p.gradient for p in d.parameters if p.parameter.torch == "embed.weight" and p.parameter.index[0] == 3]
    assert padding == [0.0, 0.0, 0.0] and all(g != 0 for g in used)
