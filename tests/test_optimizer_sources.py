"""The optimizer from its sources: a torch.optim optimizer (from_torch, derive.train) and a spec's [optimizer]."""

import copy

import pytest

import derive
from derive.cli import main
from derive.sources.spec import dumps_spec, loads_spec
from tests.test_optimizers import Residual, assert_same, chain_run, torch_run

torch = pytest.importorskip("torch")

SPEC = """
loss = "bce"
[data]
x = [[1, 1]]
y = [[0]]
[[layers]]
weight = [[0.4352, 0.3545], [0.1951, 0.4835]]
bias = [-0.1419, 0.0439]
activation = "sigmoid"
[[layers]]
weight = [[-0.1725, 0.1129]]
bias = [-0.3043]
activation = "sigmoid"
[optimizer]
name = "rmsprop"
lr = 0.1
alpha = 0.9
momentum = 0.5
centered = true
"""


def _sequential():
    torch.manual_seed(1)
    return torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Tanh(), torch.nn.Linear(3, 1)).double()


def test_from_torch_reads_the_optimizer_and_trains_as_it_does():
    module = _sequential()
    opt = torch.optim.AdamW(module.parameters(), lr=0.05, betas=(0.8, 0.95), weight_decay=0.2, amsgrad=True)
    x, y = [[1.0, -2.0], [0.5, 0.25]], [[1.0], [-1.0]]
    net = derive.from_torch(module, loss="mse", x=x, y=y, optimizer=opt)
    assert net.optimizer == derive.training.AdamW(lr=0.05, betas=(0.8, 0.95), weight_decay=0.2, amsgrad=True)
    history = derive.train(net, 3)
    xt, yt = torch.tensor(x, dtype=torch.float64), torch.tensor(y, dtype=torch.float64)
    losses = []
    for _ in range(3):  # the user's own optimizer, stepped by torch
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(module(xt), yt)
        loss.backward()
        losses.append(loss.item())
        opt.step()
    assert_same(history, losses, {k: v.detach() for k, v in module.named_parameters()})


def test_parameters_outside_the_optimizer_are_frozen():
    module = _sequential()
    net = derive.from_torch(module, loss="mse", x=[[1.0, 2.0]], y=[[0.5]],
                            optimizer=torch.optim.SGD(module[2].parameters(), lr=0.1, momentum=0.9))
    assert net.freeze == ("W1", "W2", "W3", "W4", "W5", "W6", "b1", "b2", "b3")
    assert net.optimizer == derive.training.SGD(lr=0.1, momentum=0.9)


def test_a_stepped_or_unsupported_optimizer_is_refused():
    module = _sequential()
    opt = torch.optim.Adam(module.parameters())
    module(torch.ones(1, 2, dtype=torch.float64)).sum().backward()
    opt.step()
    with pytest.raises(derive.DeriveError, match="taken steps already"):
        derive.from_torch(module, loss="mse", x=[[1.0, 2.0]], y=[[0.5]], optimizer=opt)
    with pytest.raises(derive.DeriveError, match="LBFGS is not supported"):
        derive.from_torch(module, loss="mse", x=[[1.0, 2.0]], y=[[0.5]],
                          optimizer=torch.optim.LBFGS(module.parameters()))


def test_graph_models_take_the_torch_optimizer_in_train():
    module = Residual()
    x, y = [[1.0, 2.0], [0.5, -1.0]], [[0.5], [-0.25]]
    model = derive.from_torch(copy.deepcopy(module), loss="mse", x=x, y=y)
    carried = copy.deepcopy(module)
    with_optimizer = derive.from_torch(carried, loss="mse", x=x, y=y,
                                       optimizer=torch.optim.Adagrad(carried.parameters(), lr=0.1, lr_decay=0.5))
    history = derive.train(model, 3, optimizer=torch.optim.Adagrad(module.parameters(), lr=0.1, lr_decay=0.5))
    assert derive.train(with_optimizer, 3).losses == history.losses  # the graph model carries its optimizer
    xt, yt = torch.tensor(x, dtype=torch.float64), torch.tensor(y, dtype=torch.float64)
    losses, _, params, _ = torch_run(module, lambda m: torch.nn.functional.mse_loss(m(xt), yt), "Adagrad",
                                     dict(lr=0.1, lr_decay=0.5), 3)
    assert_same(history, losses, params)


def test_a_specs_optimizer_table_trains_as_torch_and_survives_a_round_trip():
    net = loads_spec(SPEC, format="toml")
    options = dict(lr=0.1, alpha=0.9, momentum=0.5, centered=True)
    losses, _, params, _ = chain_run(net, "RMSprop", options)
    assert_same(derive.train(net, 3), losses, params)
    assert loads_spec(dumps_spec(net), format="toml").optimizer == net.optimizer
    assert loads_spec(dumps_spec(net, format="json"), format="json").optimizer == net.optimizer


def test_a_specs_optimizer_drives_the_report_and_the_command_line_overrides_it(tmp_path, capsys):
    path = tmp_path / "net.toml"
    path.write_text(SPEC)
    assert main(["report", "--spec", str(path), "--format", "md"]) == 0
    assert "torch.optim.RMSprop's update" in capsys.readouterr().out
    assert main(["report", "--spec", str(path), "--format", "md", "--optimizer", "adam"]) == 0
    assert "torch.optim.Adam's update" in capsys.readouterr().out
    assert main(["report", "--spec", str(path), "--format", "md", "--lr", "0.5"]) == 0
    assert "learning rate α = 0.5" in capsys.readouterr().out


@pytest.mark.parametrize("table, message", [
    ('[optimizer]\nname = "adma"', "unknown optimizer 'adma'"),
    ('[optimizer]\nname = "sgd"\nbetas = [0.9, 0.9]', "sgd has no option 'betas'"),
    ('[optimizer]\nlr = 0.1', "must be a table with a 'name'"),
])
def test_a_bad_optimizer_table_is_a_spec_error(table, message):
    text = SPEC.split("[optimizer]")[0] + table
    with pytest.raises(derive.SpecError, match=message):
        loads_spec(text, format="toml")
