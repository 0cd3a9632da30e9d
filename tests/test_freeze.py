"""Frozen parameters keep their values in updates: spec, command line and Python; checked against torch SGD."""

import json

import pytest

import derive
from derive.cli import main


def _classic(**changes):
    return derive.examples.classic_2_2_2().replace(**changes)


def test_sgd_keeps_frozen_parameters_and_matches_torch_sgd_with_frozen_biases():
    torch = pytest.importorskip("torch")
    net = _classic(freeze=["b1", "b2", "b3", "b4"])
    history = derive.sgd(net, steps=3)
    final = {p.name: p.value for p in history.final.parameters()}
    start = {p.name: p.value for p in net.parameters()}
    assert all(final[b] == start[b] for b in ("b1", "b2", "b3", "b4"))
    assert all(final[w] != start[w] for w in ("W1", "W5", "W8"))
    # torch: the same network with requires_grad=False biases and optim.SGD
    from verify.reference import torch_model

    model = torch_model(net)
    for module in model:
        if isinstance(module, torch.nn.Linear):
            module.bias.requires_grad_(False)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=net.lr)
    x, y = torch.tensor(net.x, dtype=torch.float64), torch.tensor(net.y, dtype=torch.float64)
    losses = []
    for _ in range(3):
        optimizer.zero_grad()
        loss = 0.5 * ((model(x) - y) ** 2).sum(dim=1).mean()
        losses.append(loss.item())
        loss.backward()
        optimizer.step()
    assert history.losses == pytest.approx(losses, rel=1e-12)
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    assert final["W1"] == pytest.approx(linears[0].weight[0, 0].item(), rel=1e-12)
    assert final["W8"] == pytest.approx(linears[1].weight[1, 1].item(), rel=1e-12)


def test_parameters_say_which_are_frozen_and_gradients_are_still_derived():
    net = _classic(freeze=("b2", "W1"))
    assert net.freeze == ("W1", "b2")  # textbook order
    assert [p.name for p in net.parameters() if p.frozen] == ["W1", "b2"]
    d = derive.derive(net)
    assert d.gradient("b2") == derive.derive(_classic()).gradient("b2") != 0


def test_unknown_or_malformed_freeze_is_refused():
    with pytest.raises(derive.DeriveError, match=r"freeze: no parameter 'b9'.*parameters: W1"):
        _classic(freeze=["b9"])
    with pytest.raises(derive.DeriveError, match=r"freeze: no parameter 'b10'.*Did you mean 'b1'\?"):
        _classic(freeze=["b10"])
    with pytest.raises(derive.DeriveError, match="freeze must be a list of parameter names"):
        _classic(freeze="b1")


def test_spec_freeze_round_trips(tmp_path):
    text = derive.sources.spec.dumps_spec(_classic(freeze=["b1", "b2"]))
    assert 'freeze = ["b1", "b2"]' in text
    path = tmp_path / "net.toml"
    path.write_text(text)
    assert derive.load_spec(path).freeze == ("b1", "b2")
    path.write_text(text.replace('"b2"', '"b7"'))
    assert main(["grads", "--spec", str(path)]) == 2


def test_cli_freeze_adds_to_the_source_and_shows_in_json_and_text(tmp_path, capsys):
    path = tmp_path / "net.json"
    path.write_text(derive.sources.spec.dumps_spec(_classic(freeze=["b1"]), format="json"))
    assert main(["grads", "--spec", str(path), "--freeze", "b2, W1", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [p["name"] for p in doc["parameters"] if p["frozen"]] == ["W1", "b1", "b2"]
    assert main(["grads", "--example", "seed", "--freeze", "b1,b2,b3"]) == 0
    assert "frozen (kept in updates): b1, b2, b3" in capsys.readouterr().out
    assert main(["grads", "--example", "seed", "--freeze", "b4"]) == 2
    assert "freeze: no parameter 'b4'" in capsys.readouterr().err
