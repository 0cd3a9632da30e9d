"""Property: any drawn Sequential model, built in torch and imported with from_torch, has autograd's gradients."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
nn = torch.nn

import derive  # noqa: E402

HIDDEN = ("sigmoid", "tanh", "relu", "leaky_relu", "softplus", "gelu", "identity")
DYADIC = st.integers(-32, 32).map(lambda k: k / 16)  # exact in every dtype: sums of products stay exact


def _module(name: str, slope: float) -> nn.Module:
    return {
        "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU, "softplus": nn.Softplus, "gelu": nn.GELU,
        "identity": nn.Identity, "leaky_relu": lambda: nn.LeakyReLU(slope), "softmax": lambda: nn.Softmax(dim=1),
    }[name]()  # fmt: skip


@st.composite
def cases(draw):
    sizes = draw(st.lists(st.integers(1, 3), min_size=2, max_size=4))
    loss = draw(st.sampled_from(["bce", "bce_with_logits", "mse", "l1", "half_sse", "cross_entropy"]))
    if loss == "cross_entropy" and sizes[-1] < 2:
        sizes[-1] = 2
    last = ["sigmoid", "tanh", "identity", "softplus", "leaky_relu"] + (["softmax"] if sizes[-1] > 1 else [])
    if loss == "bce":
        last = ["sigmoid"] + (["softmax"] if sizes[-1] > 1 else [])
    names = [draw(st.sampled_from(HIDDEN)) for _ in sizes[2:]] + [draw(st.sampled_from(last))]
    layers = []
    for (n_in, n_out), name in zip(zip(sizes, sizes[1:]), names):
        linear = nn.Linear(n_in, n_out, dtype=torch.float64)
        with torch.no_grad():
            linear.weight.copy_(torch.tensor(draw(st.lists(st.lists(DYADIC, min_size=n_in, max_size=n_in),
                                                           min_size=n_out, max_size=n_out))))  # fmt: skip
            linear.bias.copy_(torch.tensor(draw(st.lists(DYADIC, min_size=n_out, max_size=n_out))))
        layers += [linear, _module(name, draw(st.sampled_from([0.01, 0.1, 0.25])))]
    batch = draw(st.integers(1, 4))
    x = draw(st.lists(st.lists(DYADIC, min_size=sizes[0], max_size=sizes[0]), min_size=batch, max_size=batch))
    if loss == "cross_entropy":
        y = draw(st.lists(st.integers(0, sizes[-1] - 1), min_size=batch, max_size=batch))
    else:
        value = st.sampled_from([0.0, 0.25, 0.5, 1.0]) if loss.startswith("bce") else DYADIC
        y = draw(st.lists(st.lists(value, min_size=sizes[-1], max_size=sizes[-1]), min_size=batch, max_size=batch))
    return nn.Sequential(*layers), loss, draw(st.sampled_from(["mean", "sum"])), x, y


def _torch_loss(loss: str, reduction: str):
    if loss == "half_sse":
        reduce = torch.mean if reduction == "mean" else torch.sum
        return lambda p, t: reduce(0.5 * ((p - t) ** 2).sum(dim=1))
    return {"bce": nn.BCELoss, "bce_with_logits": nn.BCEWithLogitsLoss, "mse": nn.MSELoss, "l1": nn.L1Loss,
            "cross_entropy": nn.CrossEntropyLoss}[loss](reduction=reduction)  # fmt: skip


@settings(deadline=None)
@given(cases())
def test_imported_sequential_has_autograds_gradients(case):
    model, loss, reduction, x, y = case
    net = derive.from_torch(model, loss=loss, reduction=reduction, x=x, y=y)
    target = torch.tensor(y) if loss == "cross_entropy" else torch.tensor(y, dtype=torch.float64)
    value = _torch_loss(loss, reduction)(model(torch.tensor(x, dtype=torch.float64)), target)
    value.backward()
    linears = [m for m in model if isinstance(m, nn.Linear)]
    expected = {}
    for p in net.parameters():
        expected[p.name] = getattr(linears[p.layer - 1], p.tensor).grad[p.index].item()
    d = derive.derive(net)
    assert d.loss == pytest.approx(value.item(), rel=1e-9, abs=1e-12)
    scale = max(1.0, *(abs(v) for v in expected.values()))
    for p in d.parameters:
        assert p.gradient == pytest.approx(expected[p.name], rel=1e-7, abs=1e-10 * scale), p.name
