"""Modules written as people write them, each once refused or mis-checked: every gradient equals float64 autograd
of the module itself, and `verify.check` passes (and fails where a planted error is)."""

import copy
import dataclasses

import pytest

import derive
import verify

torch = pytest.importorskip("torch")
nn, F = torch.nn, torch.nn.functional


def _autograd(module, x, y, loss=None):
    """Loss and gradients (by named_parameters() key) of a float64 copy, float64 as torch's default dtype."""
    module = copy.deepcopy(module).double()
    x = x.double() if x.is_floating_point() else x
    y = y.double() if y.is_floating_point() else y
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        value = module(x, y) if loss is None else copy.deepcopy(loss).double()(module(x), y)
    finally:
        torch.set_default_dtype(previous)
    value.backward()
    return float(value.detach()), {k: p.grad for k, p in module.named_parameters()}


def _agrees(module, x, y, loss=None, rel=1e-10):
    model = derive.from_torch(module, loss=loss, x=x, y=y)
    value, grads = _autograd(module, x, y, loss)
    d = derive.derive(model)
    assert d.loss == pytest.approx(value, rel=1e-12, abs=1e-14)
    for p in d.parameters:
        expected = grads[p.parameter.torch]
        expected = 0.0 if expected is None else float(expected[p.parameter.index])
        assert p.gradient == pytest.approx(expected, rel=rel, abs=1e-13), p.name
    report = verify.check(model)
    assert report.ok, str(report)
    return model, report


class Statistics(nn.Module):
    """LogSigmoid (a min in its scalar form), normalize, cosine similarity, std, var and softmin."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        h = self.fc(x)
        n = F.normalize(h, dim=-1)
        c = F.cosine_similarity(h[:, 0], h[:, 1], dim=-1)
        s = h.std(-1) + h.var(1).mean(-1, keepdim=True)
        return torch.cat([F.logsigmoid(n).flatten(1), c[:, None], s, F.softmin(h, 1).flatten(1)], 1)


class FinfoMask(nn.Module):
    """A causal mask filled with ``torch.finfo(dtype).min``, as the transformers library's eager attention does."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.q = nn.Linear(2, 2)

    def forward(self, x):
        s = self.q(x) @ x.transpose(1, 2)
        mask = torch.triu(torch.ones(3, 3, dtype=torch.bool), 1)
        return torch.softmax(s.masked_fill(mask, torch.finfo(s.dtype).min), -1)


class Temperature(nn.Module):
    """A learned temperature through softplus: a node named like the function it calls."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(2)
        self.fc = nn.Linear(2, 2)
        self.t = nn.Parameter(torch.tensor(0.5))

    def forward(self, x):
        return self.fc(x) * F.softplus(self.t)


class MaskedSelect(nn.Module):
    """Boolean indexing by the data: ``h[x > 0]`` (its size known only from the data)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.fc = nn.Linear(3, 3)

    def forward(self, x, y):
        h = self.fc(x)
        return h[x > 0].pow(2).sum() + ((h - y) ** 2).mean()


class KLDiv(nn.Module):
    """``nn.KLDivLoss`` with probabilities as targets: torch's xlogy has a NaN in a branch the data never takes."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(4)
        self.fc = nn.Linear(3, 4)
        self.kl = nn.KLDivLoss(reduction="batchmean")

    def forward(self, x, y):
        return self.kl(F.log_softmax(self.fc(x), 1), y)


class Bilinear(nn.Module):
    """``nn.Bilinear`` (ATen's ``_trilinear``, which torch leaves whole) and ``F.bilinear`` over a sequence."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(11)
        self.pair = nn.Bilinear(3, 2, 4)
        self.w = nn.Parameter(torch.randn(2, 4, 4) / 4)

    def forward(self, x):
        h = torch.tanh(self.pair(x[..., :3], x[..., 3:]))
        return F.bilinear(h, h, self.w)


def _data(*shape, seed=5):
    torch.manual_seed(seed)
    return torch.randn(*shape)


@pytest.mark.parametrize(("module", "x", "y", "loss"), [
    (Statistics(), _data(4, 3, 4), _data(4, 28, seed=6), nn.MSELoss()),
    (FinfoMask(), _data(2, 3, 2), torch.rand(2, 3, 3), nn.MSELoss()),
    (Temperature(), _data(3, 2), _data(3, 2, seed=7), nn.MSELoss()),
    (MaskedSelect(), _data(5, 3), _data(5, 3, seed=8), None),
    (KLDiv(), _data(5, 3), torch.softmax(_data(5, 4, seed=9), 1), None),
    (Bilinear(), _data(2, 3, 5), _data(2, 3, 2, seed=12), nn.MSELoss()),
], ids=["statistics", "finfo-mask", "softplus-temperature", "masked-select", "kl-div", "bilinear"])
def test_each_style_equals_autograd_and_checks_out(module, x, y, loss):
    _agrees(module, x, y, loss)


class Head(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(10)
        self.fc = nn.Linear(3, 4)

    def forward(self, x):
        return self.fc(x)


@pytest.mark.parametrize("loss", [
    nn.CrossEntropyLoss(label_smoothing=0.1, weight=torch.tensor([1.0, 2.0, 0.5, 1.0])),
    nn.HuberLoss(delta=0.5),
    nn.SmoothL1Loss(beta=0.3, reduction="sum"),
    nn.BCEWithLogitsLoss(pos_weight=torch.tensor([2.0, 1.0, 0.5, 3.0])),
], ids=["ce-label-smoothing-weight", "huber", "smooth-l1-sum", "bce-pos-weight"])
def test_a_torch_loss_module_with_its_options_is_read_as_torch_runs_it(loss):
    module = Head()
    keys = [k for k, _ in module.named_parameters()]
    classes = isinstance(loss, nn.CrossEntropyLoss)
    y = torch.tensor([0, 2, 3, 1, 1, 0]) if classes else (torch.rand(6, 4) if isinstance(loss, nn.BCEWithLogitsLoss)
                                                         else _data(6, 4, seed=11))
    model, _ = _agrees(module, _data(6, 3), y, loss)
    assert model.tensor_keys == keys and [k for k, _ in module.named_parameters()] == keys  # keys kept, module as it was
    assert [n for n, _ in module.named_modules()] == ["", "fc"]


class Float32Target(nn.Module):
    """``(y > 0).float()`` made in forward: torch computes the loss in float32 even for float64 logits."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(12)
        self.fc = nn.Linear(3, 4)
        self.bce = nn.BCEWithLogitsLoss()

    def forward(self, x, y):
        return self.bce(self.fc(x), (y > 0).float())


def test_a_loss_the_module_rounds_to_float32_is_judged_at_float32s_tolerance():
    model = derive.from_torch(Float32Target(), x=_data(6, 3), y=_data(6, 4, seed=13))
    report = verify.check(model)
    assert report.ok, str(report)
    assert "computes its loss in float32" in str(report)
    g = derive.gradients(model)
    name = sorted(g)[0]
    g[name] = g[name] * (1 + 1e-2)  # an error beyond float32's tolerance (rtol 1e-4) still fails
    assert not verify.check(model, gradients=g).ok


class NaNTaken(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 2)

    def forward(self, x):
        return torch.where(x > 0, self.fc(x), torch.tensor(float("nan")))


def test_a_nan_the_data_takes_is_refused_not_derived():
    model = derive.from_torch(NaNTaken(), loss="mse", x=[[1.0, -1.0]], y=[[0.0, 0.0]])
    with pytest.raises(derive.errors.ValueDomainError, match="NaN"):
        derive.derive(model)


class DepthwiseHard(nn.Module):
    """A depthwise-separable convolution with Hardswish, and a Hardsigmoid gate (squeeze-and-excitation)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(14)
        self.depthwise = nn.Conv2d(2, 2, 3, padding=1, groups=2)
        self.pointwise = nn.Conv2d(2, 3, 1)
        self.act, self.gate = nn.Hardswish(), nn.Hardsigmoid()

    def forward(self, x):
        h = self.act(self.pointwise(self.depthwise(x)))
        return h * self.gate(h.mean((2, 3), keepdim=True))


def test_torchs_rounded_hardsigmoid_backward_is_named_and_judged_at_its_rounding(monkeypatch):
    x, y = _data(2, 2, 4, 4, seed=15), _data(2, 3, 4, 4, seed=16)
    model, report = _agrees(DepthwiseHard(), x, y, nn.MSELoss(), rel=1e-7)  # torch's 1/6 is float32's
    assert any("hardsigmoid backward" in note for note in report.notes), report.notes
    assert report.tolerance.rtol < 1e-7  # widened to torch's rounding, no further
    real = verify.compare.Derivation

    def planted(m):  # derive's value of one gradient off by 1e-6 relative: still a failure
        d = real(m)
        d.parameters = [dataclasses.replace(p, gradient=p.gradient * (1 + 1e-6)) if i == 0 else p
                        for i, p in enumerate(d.parameters)]
        return d

    monkeypatch.setattr(verify.compare, "Derivation", planted)
    assert not verify.check(model).ok


class GaussianNLL(nn.Module):
    """A regression head with a variance: ``nn.GaussianNLLLoss``, which checks ``var ≥ 0`` on the data."""

    def __init__(self, full=False, reduction="mean", per_row=False):
        super().__init__()
        torch.manual_seed(17)
        self.fc = nn.Linear(3, 2)
        self.loss = nn.GaussianNLLLoss(full=full, reduction=reduction)
        self.per_row = per_row

    def forward(self, x, y):
        z = self.fc(x)
        var = F.softplus(z[:, 1] if self.per_row else z[:, 1:]) + 0.1  # per_row: one short, homoscedastic
        return self.loss(z[:, :1], y, var)


class NormalLogProb(nn.Module):
    """``torch.distributions.Normal(μ, σ).log_prob(y)``: torch validates σ > 0 on the data."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.fc = nn.Linear(3, 2)

    def forward(self, x, y):
        z = self.fc(x)
        return -torch.distributions.Normal(z[:, :1], F.softplus(z[:, 1:]) + 0.1).log_prob(y).mean()


@pytest.mark.parametrize("module", [GaussianNLL(), GaussianNLL(full=True, reduction="sum"),
                                    GaussianNLL(per_row=True), NormalLogProb()],
                         ids=["gaussian_nll", "full_sum", "homoscedastic", "normal_log_prob"])
def test_torchs_checks_on_values_are_made_on_the_data_and_the_loss_read(module):
    """torch's own value checks (var ≥ 0, σ > 0) branch on data: made when the module runs eagerly, lifted while
    the ops are recorded; every gradient equals autograd's."""
    _agrees(module, _data(4, 3), _data(4, 1, seed=18))


def test_a_check_torch_fails_on_the_data_is_refused_in_one_line():
    class Negative(GaussianNLL):
        def forward(self, x, y):
            z = self.fc(x)
            return self.loss(z[:, :1], y, z[:, 1:] - 5)

    with pytest.raises(derive.DeriveError, match="var has negative entry") as refused:
        derive.from_torch(Negative(), x=_data(4, 3), y=_data(4, 1, seed=18))
    assert "\n" not in str(refused.value)


class OneHot(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(3, 3)

    def forward(self, x, y):
        return ((self.fc(x) - F.one_hot(y).to(x.dtype)) ** 2).mean()  # classes counted from the data


def test_a_check_inside_torchs_own_function_is_named_in_one_line(capfd):
    from derive.sources.torch_module import UnsupportedModelError

    with pytest.raises(UnsupportedModelError, match=r"calls torch's one_hot \(test_more_styles.py:\d+: "
                                                    r".*\), which branches on a tensor's value") as refused:
        derive.from_torch(OneHot(), x=_data(4, 3), y=torch.tensor([0, 2, 1, 2]))
    assert "\n" not in str(refused.value)
    assert "def forward" not in capfd.readouterr().err  # torch's partial graph is not printed before it


class AdaptiveMax(nn.Module):
    """Adaptive max pooling: windows of one size where the output size divides the input's, else torch's
    overlapping windows of different sizes."""

    def __init__(self, size=(2, 2), line=1):
        super().__init__()
        torch.manual_seed(19)
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.pool, self.line = nn.AdaptiveMaxPool2d(size), nn.AdaptiveMaxPool1d(line)
        self.fc = nn.Linear(2 * size[0] * size[1] + 2 * line, 1)

    def forward(self, x):
        h = self.conv(x)
        return self.fc(torch.cat([self.pool(h).flatten(1), self.line(h.flatten(2)).flatten(1)], 1))


@pytest.mark.parametrize(("size", "line", "op"), [((2, 2), 1, "max_pool"), ((3, 3), 5, "adaptive_max_pool")],
                         ids=["one-window-size", "uneven-windows"])
def test_adaptive_max_pooling_equals_autograd(size, line, op):
    model, _ = _agrees(AdaptiveMax(size, line), _data(2, 1, 4, 4, seed=20), _data(2, 1, seed=21), nn.MSELoss())
    ops = {node.op.key for node in model.structure.nodes if hasattr(node, "op")}
    assert op in ops and ({"max_pool", "adaptive_max_pool"} - {op}).isdisjoint(ops)


class ProjectedLSTM(nn.Module):
    """``nn.LSTM(proj_size=…)``: h_t = W_hr (o_t ⊙ tanh c_t), its cell state wider than h."""

    def __init__(self, layers=1, bidirectional=False):
        super().__init__()
        torch.manual_seed(22)
        self.lstm = nn.LSTM(3, 4, num_layers=layers, bidirectional=bidirectional, batch_first=True, proj_size=2)
        self.fc = nn.Linear(4 if bidirectional else 2, 1)

    def forward(self, x):
        out, (h, c) = self.lstm(x)
        return self.fc(out[:, -1]) + c.mean()


@pytest.mark.parametrize(("layers", "bidirectional"), [(1, False), (2, True)], ids=["one-layer", "two-layer-bidirectional"])
def test_a_projected_lstm_equals_autograd(layers, bidirectional):
    model, _ = _agrees(ProjectedLSTM(layers, bidirectional), _data(2, 3, 3, seed=23), _data(2, 1, seed=24),
                       nn.MSELoss())
    assert sum(key.startswith("lstm.weight_hr") for key in model.tensor_keys) == layers * (1 + bidirectional)


class PoissonFull(nn.Module):
    """``nn.PoissonNLLLoss(full=True)``: torch adds Stirling's term y log y − y + ½ log(2πy) where y > 1 and 0
    elsewhere, so at y = 0 the branch not taken holds log 0 and 1/0."""

    def __init__(self, log_input=True):
        super().__init__()
        torch.manual_seed(25)
        self.fc = nn.Linear(3, 2)
        self.loss = nn.PoissonNLLLoss(log_input=log_input, full=True)
        self.log_input = log_input

    def forward(self, x, y):
        z = self.fc(x)
        return self.loss(z if self.log_input else F.softplus(z) + 0.5, y)


@pytest.mark.parametrize("log_input", [True, False], ids=["log-input", "rate-input"])
def test_a_loss_whose_untaken_branch_divides_by_zero_equals_autograd(log_input):
    _agrees(PoissonFull(log_input), _data(3, 3, seed=26), torch.tensor([[0.0, 2.0], [3.0, 1.0], [1.0, 5.0]]))


class Reductions(nn.Module):
    """``torch.std_mean`` (ATen's var_mean), ``cumprod``, and ``any``/``all`` of a mask made from parameters."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(27)
        self.fc = nn.Linear(3, 4)

    def forward(self, x):
        h = self.fc(x)
        std, mean = torch.std_mean(h, dim=1, keepdim=True)
        keep = (h > 0).any(1, keepdim=True) & ~(h > 2).all(1, keepdim=True)
        return torch.cat([std, mean, torch.cumprod(torch.tanh(h), 1)], 1).masked_fill(~keep, 0.0)


def test_std_mean_cumprod_and_any_all_equal_autograd():
    model, _ = _agrees(Reductions(), _data(3, 3, seed=28), _data(3, 6, seed=29), nn.MSELoss())
    assert {"var", "mean", "cumprod", "truth"} <= {node.op.key for node in model.structure.nodes if hasattr(node, "op")}


class Prototypes(nn.Module):
    """Distances to learned prototypes (``torch.cdist``, p = 1, 2, ∞) after a conv with ``LocalResponseNorm``
    across its channels (ATen's avg_pool3d of a window over one dim)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(30)
        self.conv = nn.Conv2d(1, 4, 2)
        self.lrn = nn.LocalResponseNorm(3, alpha=0.1, beta=0.75, k=1.0)
        self.centres = nn.Parameter(torch.randn(3, 4))

    def forward(self, x):
        h = self.lrn(self.conv(x)).mean((2, 3))
        return torch.cat([torch.cdist(h, self.centres, p=p) for p in (1.0, 2.0, float("inf"))], 1)


def test_cdist_and_local_response_norm_of_images_equal_autograd():
    _agrees(Prototypes(), _data(2, 1, 3, 3, seed=31), _data(2, 9, seed=32), nn.MSELoss())


class PoolBySegment(nn.Module):
    """Sums of rows by the segment each belongs to (``scatter_add`` with an index from the data)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(33)
        self.fc = nn.Linear(3, 4)

    def forward(self, x):
        h = torch.tanh(self.fc(x))
        segment = (x[:, :1] > 0).long().expand(-1, 4)  # 0 or 1 per row, from the data
        return torch.zeros(2, 4, dtype=h.dtype).scatter_add(0, segment, h)


def test_scatter_add_by_an_index_from_the_data_equals_autograd():
    _agrees(PoolBySegment(), _data(5, 3, seed=34), _data(2, 4, seed=35), nn.MSELoss())
