"""SGD with the derived gradients against torch's optimizer."""

import pytest

import derive


def _torch_sgd(net, steps):
    import torch

    from verify.reference import torch_loss, torch_model

    model = torch_model(net)
    opt = torch.optim.SGD(model.parameters(), lr=net.lr)
    x = torch.tensor(net.x, dtype=torch.float64)
    y = torch.tensor(net.y, dtype=torch.float64)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = torch_loss(net)(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses, model


@pytest.mark.parametrize("factory", [derive.examples.seed, derive.examples.classic_2_2_2])
def test_sgd_losses_and_final_weights_match_torch(factory):
    net = factory()
    history = derive.sgd(net, steps=5)
    losses, model = _torch_sgd(net, 5)
    assert history.losses == pytest.approx(losses, rel=1e-12)
    linears = [m for m in model if hasattr(m, "weight")]
    for layer, linear in zip(history.final.layers, linears):
        for row, torch_row in zip(layer.weight, linear.weight.tolist()):
            assert list(row) == pytest.approx(torch_row, rel=1e-12)
        assert list(layer.bias) == pytest.approx(linear.bias.tolist(), rel=1e-12)


def test_seed_losses_over_three_steps_match_the_reference():
    # ../shared/seed/reference.md: 0.53688, 0.28042, 0.18362 (float32 torch)
    assert derive.sgd(derive.examples.seed(), 3).losses == pytest.approx([0.53688, 0.28042, 0.18362], abs=6e-6)


def test_one_step_updates_every_parameter_by_lr_times_gradient():
    net = derive.examples.seed()
    history = derive.sgd(net, 1)
    after = {p.name: p.value for p in history.final.parameters()}
    # ../shared/seed/reference.md, after one SGD step
    assert after["W5"] == pytest.approx(-0.445237920, abs=5e-10)
    assert after["W1"] == pytest.approx(0.451360061, abs=5e-10)
    assert after["b3"] == pytest.approx(-0.719733183, abs=5e-10)


def test_steps_must_be_positive():
    with pytest.raises(derive.DeriveError, match="steps must be at least 1"):
        derive.sgd(derive.examples.seed(), 0)
