"""What `verify.check`'s ``ok`` judges: finite differences too, away from kinks, for chains and graph models;
and a unit near a kink excuses only the parameters whose paths pass through it."""

import dataclasses
import math

import pytest
import torch

import derive
import verify
from verify import compare, finite_diff
from verify.compare import kinked_parameters

#: layer 1's first unit sits at ReLU's kink (z = 1·1 − 1 = 0); its second unit and layer 2 are away from it
AT_A_KINK = derive.Network([derive.Linear([[1.0], [2.0]], [-1.0, 0.5], "relu"),
                            derive.Linear([[1.0, -0.5]], [0.25], "identity")], x=[[1.0]], y=[[0.0]], loss="mse")


def _planted(net, name, error):
    g = derive.gradients(net)
    g[name] = g[name] + error
    return verify.check(net, gradients=g, finite_differences_check=False)


def test_a_unit_at_a_kink_excuses_only_the_parameters_through_it():
    d = derive.derive(AT_A_KINK)
    assert kinked_parameters(d) == {"W1", "b1"}
    for name in ("W2", "b2", "W3", "W4", "b3"):  # away from the kink: a planted error still fails
        assert not _planted(AT_A_KINK, name, 1e-6).ok_except(kinked_parameters(d)), name
    assert _planted(AT_A_KINK, "W1", 1e-6).ok_except(kinked_parameters(d))  # through it: excused


def test_a_unit_in_a_later_layer_excuses_every_earlier_layer_and_its_own_row_only():
    net = derive.Network([derive.Linear([[1.0]], [0.0], "tanh"),
                          derive.Linear([[0.5], [1.0]], [0.0, 0.25], "relu")], x=[[0.0]], y=[[1.0, 0.0]], loss="mse")
    assert kinked_parameters(derive.derive(net)) == {"W1", "b1", "W2", "b2"}  # z of unit 1, layer 2 is 0


def _shared_error(values: dict, name: str, factor: float) -> dict:
    return {n: v * factor if n == name else v for n, v in values.items()}


def test_finite_differences_fail_a_chain_whose_symbolic_and_autograd_share_an_error(monkeypatch):
    net = derive.examples.seed()
    g = derive.gradients(net)
    g["W5"] = g["W5"] * (1 + 1e-4)
    real = verify.compare.autograd_gradients

    def wrong_the_same_way(network, **kwargs):  # autograd agrees with the planted error: only fd can see it
        r = real(network, **kwargs)
        return dataclasses.replace(r, gradients=_shared_error(r.gradients, "W5", 1 + 1e-4))

    monkeypatch.setattr(verify.compare, "autograd_gradients", wrong_the_same_way)
    report = verify.check(net, gradients=g)
    assert not report.ok and [r.name for r in report.failures] == ["W5"], str(report)
    assert "finite differences disagree (symbolic and autograd agree)" in report.failures[0].verdict


class Smooth(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.fc = torch.nn.Linear(2, 3)
        self.out = torch.nn.Linear(3, 1)

    def forward(self, x):
        h = torch.tanh(self.fc(x))
        return self.out(h + h * h)  # not a chain: a graph model


def _smooth():
    return derive.from_torch(Smooth(), loss="mse", x=[[1.0, -0.5], [0.25, 2.0]], y=[[0.5], [-1.0]])


def test_finite_differences_fail_a_graph_model_whose_symbolic_and_autograd_share_an_error(monkeypatch):
    model = _smooth()
    reference = verify.autograd_gradients(model).gradients
    name = max(reference, key=lambda n: abs(reference[n]))
    factor = 1 + 1e-4
    real_derivation, real_compiled, real_autograd = compare.Derivation, compare.compile_program, compare.autograd_gradients

    def derivation(m):
        d = real_derivation(m)
        d.parameters = [dataclasses.replace(p, gradient=p.gradient * factor) if p.name == name else p
                        for p in d.parameters]
        return d

    def autograd(m, **kwargs):
        r = real_autograd(m, **kwargs)
        return dataclasses.replace(r, gradients=_shared_error(r.gradients, name, factor))

    monkeypatch.setattr(compare, "Derivation", derivation)
    monkeypatch.setattr(compare, "compile_program", lambda *a, **k: _shared_error(real_compiled(*a, **k), name, factor))
    monkeypatch.setattr(compare, "autograd_gradients", autograd)
    report = verify.check(model)
    assert not report.ok and [r.name for r in report.failures] == [name], str(report)
    assert "finite differences disagree (symbolic and autograd agree)" in report.failures[0].verdict


class KinkedRelu(torch.nn.Module):
    """fc's first unit has z = 1·1 + 1·1 − 2 = 0 on the first sample, exactly at ReLU's kink (a residual block)."""

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(2, 2)
        self.out = torch.nn.Linear(2, 1)
        with torch.no_grad():
            self.fc.weight.copy_(torch.tensor([[1.0, 1.0], [0.5, -1.0]]))
            self.fc.bias.copy_(torch.tensor([-2.0, 0.25]))
            self.out.weight.copy_(torch.tensor([[1.5, -0.75]]))
            self.out.bias.copy_(torch.tensor([0.125]))

    def forward(self, x):
        return self.out(torch.relu(self.fc(x)) + 0.5 * x)


def test_a_graph_models_kink_at_the_point_is_not_judged_by_finite_differences():
    model = derive.from_torch(KinkedRelu(), loss="mse", x=[[1.0, 1.0], [0.5, -0.5]], y=[[1.0], [0.0]])
    report = verify.check(model)
    assert report.ok, str(report)
    kinked = {r.name for r in report.rows if r.opinions[verify.compare.FD] is None}
    # the stencil of fc's first row crosses the kink: the average of two slopes, not a judge
    assert kinked and all(n.startswith(("W_fc_1", "b_fc_1")) for n in kinked), kinked


def test_a_smooth_graph_models_stencil_stands_when_it_disagrees():
    model = _smooth()
    reference = verify.autograd_gradients(model).gradients
    judged = finite_diff.finite_differences(
        model, judge={n: (v * (1 + 1e-4) + 1e-6, 1e-9) for n, v in reference.items()}).gradients
    assert all(v is not None for v in judged.values())
    for n, v in judged.items():
        assert v == pytest.approx(reference[n], rel=1e-7, abs=1e-9), n


class Detached(torch.nn.Module):
    """s reaches the loss twice, once through ``detach()``: autograd's ∂L/∂s leaves that path out."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(4)
        self.fc = torch.nn.Linear(2, 1)
        self.s = torch.nn.Parameter(torch.tensor([0.5]))

    def forward(self, x):
        return self.fc(x) * torch.tanh(self.s) + self.s.detach() ** 2


def test_detach_stops_the_gradient_and_finite_differences_do_not_judge_through_it():
    x, y = [[1.0, 2.0], [-0.5, 0.25]], [[0.3], [-0.2]]
    model = derive.from_torch(Detached(), loss="mse", x=x, y=y)
    reference = verify.autograd_gradients(model).gradients
    d = derive.derive(model)
    for p in d.parameters:
        assert p.gradient == pytest.approx(reference[p.name], rel=1e-12, abs=1e-15), p.name
    report = verify.check(model)
    assert report.ok, str(report)
    assert [r.name for r in report.rows if r.opinions[verify.compare.FD] is None] == ["s_1"]


class SaturatedGraph(torch.nn.Module):
    """A graph model (a residual sum, not a chain) ending in ``nn.Sigmoid``, whose logit is 30: torch's
    BCELoss clamps ŷ(1 − ŷ) at 1e-12 in its backward there, shrinking every gradient."""

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(2, 1)
        self.out = torch.nn.Sigmoid()
        with torch.no_grad():
            self.fc.weight.copy_(torch.tensor([[12.0, 12.0]]))
            self.fc.bias.copy_(torch.tensor([4.0]))

    def forward(self, x):
        return self.out(self.fc(x) + x.sum(dim=1, keepdim=True))


def test_a_graph_models_bce_after_its_final_sigmoid_is_checked_without_torchs_clamp():
    x = [[1.0, 1.0]]
    model = derive.from_torch(SaturatedGraph(), loss="bce", x=x, y=[[0.0]])
    assert not model.textbook
    z = 12 + 12 + 4 + 2  # the logit by hand: ŷ − y = σ(27) for BCE after a sigmoid, times ∂z/∂b = 1
    exact = 1 / (1 + math.exp(-z))
    assert derive.derive(model).gradient("b_fc_1") == pytest.approx(exact, rel=1e-15)
    clamped = verify.autograd_gradients(model, exact_bce=False)["b_fc_1"]
    assert clamped == pytest.approx(exact * math.exp(-z) / 1e-12, rel=1e-2)  # torch's own: far off (1 − ŷ rounds)
    report = verify.check(model)
    assert report.ok, str(report)
    assert "BCELoss clamps here" in str(report) and "BCEWithLogitsLoss on the logits" in str(report)


class ReluModuleAtKink(KinkedRelu):
    """`KinkedRelu` with its ReLU an ``nn.ReLU`` module: z = 0 on the first sample, at the module's kink."""

    def __init__(self):
        super().__init__()
        self.act = torch.nn.ReLU()

    def forward(self, x):
        return self.out(self.act(self.fc(x)) + 0.5 * x)


def test_a_graph_models_relu_module_shows_its_kink_to_finite_differences():
    model = derive.from_torch(ReluModuleAtKink(), loss="mse", x=[[1.0, 1.0], [0.5, -0.5]], y=[[1.0], [0.0]])
    fd = verify.finite_differences(model)
    # the stencil of fc's first row moves that unit's z across 0 (z = 0 at the point): marked, not judged
    assert set(fd.kinked) == {"W_fc_1_1", "W_fc_1_2", "b_fc_1"}, fd.kinked
    assert all(fd[n] is None for n in fd.kinked) and all(fd[n] is not None for n in fd.gradients if n not in fd.kinked)
    assert verify.check(model).ok


def test_a_graph_model_checks_gradients_of_the_users_own():
    model = _smooth()
    g = derive.gradients(model)
    assert verify.check(model, gradients=g).ok
    name = sorted(g)[1]
    g[name] = g[name] * (1 + 1e-6)  # a planted error in the user's expression: its row fails, the others not
    report = verify.check(model, gradients=g)
    assert [r.name for r in report.failures] == [name], str(report)
    assert "gradients=g" in report.reproducer


class PaddedTokens(torch.nn.Module):
    """An embedding whose padding token 0 is in the data and reaches the output: torch gives its row no gradient."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(5)
        self.emb = torch.nn.Embedding(4, 2, padding_idx=0)
        self.fc = torch.nn.Linear(2, 1)

    def forward(self, x):
        return self.fc(self.emb(x).mean(1))


def test_an_embeddings_padding_row_is_not_judged_by_finite_differences():
    model = derive.from_torch(PaddedTokens(), loss="mse", x=[[0, 1, 2], [3, 0, 1]], y=[[0.5], [-1.0]])
    reference = verify.autograd_gradients(model).gradients
    assert reference["W_emb_1_1"] == 0.0 and reference["W_emb_1_2"] == 0.0  # torch's definition
    report = verify.check(model)
    assert report.ok, str(report)
    unjudged = {r.name for r in report.rows if r.opinions[verify.compare.FD] is None}
    assert unjudged == {"W_emb_1_1", "W_emb_1_2"}, unjudged  # the padding row alone; the other rows are judged
