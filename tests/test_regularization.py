"""L2 and L1 penalties: derived as part of L, equal to torch autograd of loss + penalty, distinct from weight decay."""

import numpy as np
import pytest
import torch

import derive
import verify
from tests.torch_reference import torch_sequential

LAM = 0.05


def _data_loss(model, net):
    x, y = torch.tensor(net.x, dtype=torch.float64), torch.tensor(net.y, dtype=torch.float64)
    return torch.nn.functional.binary_cross_entropy(model(x), y)


def test_the_penalty_is_derived_as_part_of_the_loss():
    net = derive.examples.seed().replace(l2=LAM, l1=0.01, penalized=["W1", "W5", "b3"])
    model = torch_sequential(net)
    W1, W2 = model[0].weight, model[2].weight
    loss = _data_loss(model, net) + LAM * (W1[0, 0] ** 2 + W2[0, 0] ** 2 + model[2].bias[0] ** 2) + 0.01 * (
        W1[0, 0].abs() + W2[0, 0].abs() + model[2].bias[0].abs())
    loss.backward()
    d = derive.derive(net)
    assert d.loss == pytest.approx(float(loss.detach()), rel=1e-14)
    expected = {"W1": W1.grad[0, 0], "W5": W2.grad[0, 0], "b3": model[2].bias.grad[0], "W2": W1.grad[0, 1]}
    for name, value in expected.items():
        assert d.gradient(name) == pytest.approx(float(value), rel=1e-12)
    assert verify.check(net).ok and verify.check(net, dtype="float32").ok


def _torch_steps(net, make, penalty, steps=3):
    model = torch_sequential(net)
    opt = make(model.parameters())
    for _ in range(steps):
        opt.zero_grad()
        loss = _data_loss(model, net)
        if penalty:
            loss = loss + LAM * sum((m.weight**2).sum() for m in model if isinstance(m, torch.nn.Linear))
        loss.backward()
        opt.step()
    return np.concatenate([model[0].weight.detach().reshape(-1), model[2].weight.detach().reshape(-1),
                           model[0].bias.detach(), model[2].bias.detach()])


def _derive_steps(net, optimizer, **options):
    final = derive.train(net, 3, optimizer=optimizer, **options).final
    return np.array([p.value for p in final.parameters()])


def test_with_sgd_an_l2_penalty_equals_weight_decay_but_not_with_adam():
    net = derive.examples.seed()
    penalized = net.replace(l2=LAM)
    # SGD: an L2 penalty λ on the weights gives the steps of torch's weight_decay 2λ on the weights
    ours = _derive_steps(penalized, "sgd", lr=0.5)

    def decayed_sgd(params):
        params = list(params)
        return torch.optim.SGD([{"params": [p for p in params if p.dim() == 2], "weight_decay": 2 * LAM},
                                {"params": [p for p in params if p.dim() == 1]}], lr=0.5)

    assert np.abs(ours - _torch_steps(net, decayed_sgd, penalty=False)).max() < 1e-12
    # Adam: the penalty goes through √v̂ (as torch with the penalty in the loss), unlike AdamW's decay
    ours = _derive_steps(penalized, "adam", lr=0.1)
    with_penalty = _torch_steps(net, lambda ps: torch.optim.Adam(ps, lr=0.1), penalty=True)
    decoupled = _torch_steps(net, lambda ps: torch.optim.AdamW(ps, lr=0.1, weight_decay=2 * LAM), penalty=False)
    assert np.abs(ours - with_penalty).max() < 1e-12
    assert np.abs(ours - decoupled).max() > 1e-4


def test_spec_cli_and_report_carry_the_penalty(tmp_path):
    net = derive.examples.seed().replace(l2=LAM, penalized=["W5", "W6"])
    again = derive.loads_spec(derive.sources.spec.dumps_spec(net), format="toml")
    assert (again.l2, again.penalized) == (LAM, ("W5", "W6")) and again == net
    text = derive.report(net, format="md")
    assert r"\lambda_{2} \left(W_{5}^{2} + W_{6}^{2}\right)" in text and "not an optimizer's weight decay" in text
    from derive.cli import main

    assert main(["grads", "--example", "seed", "--l2", "0.05", "--penalize", "W5,W6", "--format", "json"]) == 0
    with pytest.raises(derive.DeriveError, match="l2 must be ≥ 0"):
        derive.examples.seed().replace(l2=-1.0)
    with pytest.raises(derive.DeriveError, match="penalized: no parameter 'W9'"):
        derive.examples.seed().replace(l2=0.1, penalized=["W9"])
    # the penalty is part of the network's value (the round trip above compares it): λ and the names both count
    assert net != net.replace(l2=2 * LAM) and net != net.replace(penalized=["W5"]) and net != derive.examples.seed()
