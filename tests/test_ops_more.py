"""The added ops against torch float64: every element-wise activation's value and derivative (kinks included),
softmax's Jacobian, each loss's value and gradient, and the spellings they accept."""

import math
import re
from pathlib import Path

import pytest
import sympy as sp

import derive
from derive.errors import ShapeError, UnknownOpError, ValueDomainError
from derive.numeric import evaluate
from derive.ops import ACTIVATIONS, LOSSES, Softmax, activation, loss

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parent.parent
z, a = sp.Symbol("z"), sp.Symbol("a")
POINTS = [-30.0, -3.7, -1.0, -0.25, 0.0, 0.3, 1.0, 2.9, 15.0]
ELEMENTWISE = sorted(k for k, act in ACTIVATIONS.items() if not act.vector) + ["leaky_relu(0.2)"]


def _torch_module(act):
    return getattr(torch.nn, act.torch_module)(**act.torch_kwargs())


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_activation_value_and_derivative_equal_torch_float64_autograd(name):
    act = activation(name)
    for point in POINTS + list(act.kinks):
        t = torch.tensor(point, dtype=torch.float64, requires_grad=True)
        out = _torch_module(act)(t)
        out.backward()
        value = act.numeric(point)
        derivative = evaluate(act.derivative(z, a), {z: point, a: value})
        # abs: torch's GELU is 0 below z ≈ −8 (its 1 + erf cancels); derive's erfc form keeps the tiny value
        assert value == pytest.approx(out.item(), rel=1e-14, abs=1e-15), point
        assert derivative == pytest.approx(t.grad.item(), rel=1e-12, abs=1e-15), point


def test_leaky_relu_slope_is_in_the_name_parsed_not_evaluated():
    assert activation("leaky_relu").slope == 0.01 and activation("leaky_relu(0.01)") is activation("leaky_relu")
    tenth = activation(" leaky_relu( .1 ) ")
    assert tenth.key == "leaky_relu(0.1)" and tenth is activation("leaky_relu(0.1)")
    assert tenth.exact_slope() == sp.Rational(1, 10) and float(tenth.exact_slope()) == 0.1
    assert str(tenth(z)) == "leaky_relu(z, 0.1)" and sp.diff(tenth(z), z) == sp.Rational(1, 10) + sp.Rational(9, 10) * derive.ops.Step(z)
    assert tenth.derivative(z, None).subs(z, 0) == sp.Rational(1, 10)  # the slope at the kink, as torch
    for bad, message in [("leaky_relu(os.system)", "must be a finite number"), ("leaky_relu(nan)", "finite"),
                         ("leaky_relu(__import__('os'))", "unknown activation"),
                         ("tanh(0.5)", "takes no parameter"), ("leaky(0.1)", "unknown activation")]:  # fmt: skip
        with pytest.raises(UnknownOpError, match=re.escape(message)):
            activation(bad)
    layer = derive.Linear([[1.0]], [0.0], "leaky_relu(0.10)")
    assert layer.activation == "leaky_relu(0.1)"


def test_gelu_and_softplus_print_their_textbook_derivatives():
    assert str(sp.diff(activation("gelu")(z), z)) == "z*phi(z) + Phi(z)"
    assert str(sp.diff(activation("softplus")(z), z)) == "sigmoid(z)"
    assert activation("softplus").numeric(800.0) == 800.0 and activation("softplus").numeric(-800.0) == 0.0


def test_softmax_jacobian_equals_torch_and_is_stable():
    zs = [0.3, -1.2, 2.0]
    t = torch.tensor(zs, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda v: torch.softmax(v, 0), t)
    symbols = sp.symbols("z1:4")
    outputs = Softmax.outputs(symbols)
    values = {s: v for s, v in zip(symbols, zs)}
    a_values = [evaluate(o, values) for o in outputs]
    assert a_values == pytest.approx(torch.softmax(t, 0).tolist(), rel=1e-15)
    for i in range(3):
        for j in range(3):
            textbook = Softmax.jacobian(i, j, a_values)
            by_diff = evaluate(sp.diff(outputs[i], symbols[j]), values)
            assert textbook == pytest.approx(jac[i, j].item(), rel=1e-13, abs=1e-16)
            assert by_diff == pytest.approx(jac[i, j].item(), rel=1e-13, abs=1e-16)
    assert Softmax.numeric(1, 1000.0, 0.0) == 1.0 and Softmax.numeric(2, 1000.0, 0.0) == 0.0


def _torch_loss(name, reduction):
    if name == "half_sse":
        return lambda p, t: (torch.mean if reduction == "mean" else torch.sum)(0.5 * ((p - t) ** 2).sum(dim=1))
    return getattr(torch.nn, loss(name).torch_module)(reduction=reduction)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_value_and_gradient_equal_torch(name):
    """One layer with zero weights: its biases are the logits, ∂L/∂b is ∂L/∂logit, for every loss."""
    prediction = [[0.3, -1.8, 2.5], [-0.6, 1.2, 0.7]]
    last = "sigmoid" if name == "bce" else "identity"
    classes = loss(name).class_targets  # cross_entropy, nll: class indices
    target = [2, 0] if classes else [[0.0, 1.0, 0.5], [1.0, 0.25, 0.7]]
    net = derive.Network(
        layers=[derive.Linear([[0.0], [0.0], [0.0]], [0.0, 0.0, 0.0], last)], x=[[1.0], [1.0]], y=target,
        loss=name, reduction="sum",
    )
    # predictions enter as the per-sample inputs of the biases: b + 0·x, one sample at a time
    grads = []
    total = 0.0
    for row, t in zip(prediction, target):
        single = net.replace(layers=[derive.Linear([[0.0], [0.0], [0.0]], row, last)], x=[[1.0]], y=[t], reduction="sum")
        d = derive.derive(single)
        total += d.loss
        grads.append([d.gradient(f"b{k + 1}") for k in range(3)])
    p = torch.tensor(prediction, dtype=torch.float64, requires_grad=True)
    y = torch.tensor(target) if classes else torch.tensor(target, dtype=torch.float64)
    value = _torch_loss(name, "sum")(torch.sigmoid(p) if name == "bce" else p, y)
    value.backward()
    assert total == pytest.approx(value.item(), rel=1e-13)
    assert [g for row in grads for g in row] == pytest.approx(p.grad.flatten().tolist(), rel=1e-12, abs=1e-15)


def test_l1_derivative_at_the_kink_is_zero_like_torch():
    net = derive.Network(layers=[derive.Linear([[1.0]], [0.0])], x=[[0.5]], y=[[0.5]], loss="l1")
    p = torch.tensor([[0.5]], dtype=torch.float64, requires_grad=True)
    torch.nn.L1Loss()(p, torch.tensor([[0.5]], dtype=torch.float64)).backward()
    assert derive.derive(net).gradient("b1") == p.grad.item() == 0.0


def test_cross_entropy_targets_class_indices_or_probabilities():
    layer = derive.Linear([[1.0], [2.0], [3.0]], [0.0, 0.0, 0.0])
    net = derive.Network(layers=[layer], x=[[1.0], [2.0]], y=[2, 0], loss="cross_entropy")
    assert net.y == ((0.0, 0.0, 1.0), (1.0, 0.0, 0.0))
    same = derive.Network(layers=[layer], x=[[1.0], [2.0]], y=[[0, 0, 1], [1, 0, 0]], loss="cross_entropy")
    assert same == net and derive.Network(layers=[layer], x=[[1.0]], y=2, loss="cross_entropy").y == ((0, 0, 1),)
    for y, error, message in [
        ([3, 0], ValueDomainError, r"class indices 0 to 2, got y\[0\] = 3"),
        ([1.5, 0], ValueDomainError, r"got y\[0\] = 1.5"),
        ([[0.5, 0.5], [1, 0]], ShapeError, r"a class index per sample or 3 class probabilities"),
    ]:
        with pytest.raises(error, match=message):
            derive.Network(layers=[layer], x=[[1.0], [2.0]], y=y, loss="cross_entropy")
    with pytest.raises(ShapeError, match="at least 2 outputs"):
        derive.Network(layers=[derive.Linear([[1.0]], [0.0])], x=[[1.0]], y=[0], loss="cross_entropy")


def test_spec_and_cli_accept_the_new_names(tmp_path):
    spec = tmp_path / "net.toml"
    spec.write_text(
        'loss = "cross_entropy"\n[data]\nx = [[1, 2], [0, 1]]\ny = [1, 0]\n'
        '[[layers]]\nweight = [[0.1, 0.2], [0.3, 0.4]]\nbias = [0, 0]\nactivation = "leaky_relu(0.2)"\n'
        '[[layers]]\nweight = [[0.5, 0.6], [0.7, 0.8]]\nbias = [0, 0]\nactivation = "softmax"\n'
    )
    net = derive.load_spec(spec)
    assert [layer.activation for layer in net.layers] == ["leaky_relu(0.2)", "softmax"]
    again = derive.loads_spec(derive.sources.spec.dumps_spec(net), format="toml")
    assert again == net
    from tests.torch_reference import autograd_of

    reference = autograd_of(net)
    for p in derive.derive(net).parameters:
        assert p.gradient == pytest.approx(reference[p.name], rel=1e-12)


def test_docs_list_every_op_with_its_printed_derivative():
    text = (ROOT / "docs" / "ops.md").read_text()
    for key, act in ACTIVATIONS.items():
        assert f"`{key}`" in text and f"`{act.torch_module}`" in text, key
        if not act.vector:
            assert f"`{sp.sstr(act.derivative(z, a))}`" in text, key
    p, y = sp.symbols("p y")
    ps, ys = sp.symbols("p1 p2"), sp.symbols("y1 y2")
    for key in LOSSES:
        spec = loss(key)
        assert f"`{key}`" in text and (spec.torch_module in text or key == "half_sse"), key
        printed = spec.derivative(ps, ys)[0] if spec.per_sample and key != "half_sse" else spec.derivative([p], [y])[0]
        assert f"`{sp.sstr(printed)}`" in text, key
    assert "runs their code" in text
    assert math.isfinite(activation("gelu").numeric(-40.0))


def test_latex_of_the_new_functions_and_their_powers():
    from derive.ops import LogSumExp
    from derive.ops.normal import NormalPDF, Phi

    w = sp.Symbol("w")
    assert sp.latex(activation("leaky_relu(0.1)")(z) ** 2) == r"\operatorname{LeakyReLU}_{0.1}^{2}\left(z\right)"
    assert sp.latex(Softmax(1, z, w)) == r"\operatorname{softmax}_{1}\left(z, w\right)"
    assert sp.latex(LogSumExp(z, w) ** 2) == r"\operatorname{LSE}^{2}\left(z, w\right)"
    assert sp.latex(Phi(z) + z * NormalPDF(z)) == r"z \varphi\left(z\right) + \Phi\left(z\right)"
