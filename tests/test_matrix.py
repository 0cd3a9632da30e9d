"""The matrix form for batches: its explicit entries equal the scalar derivation (symbolically and in value),
its δ⁽ᴸ⁾ is the textbook one, and its gradients equal torch autograd."""

import random

import pytest
import sympy as sp

import derive
from derive.graph import backpropagate
from derive.matrix import explicit, matrix_form
from derive.numeric import evaluate

CASES = {
    "seed batch 2": ((2, 2, 1), ("sigmoid", "sigmoid"), "bce", "mean", [[1, 1], [0, 1]], [[0], [1]]),
    "tanh relu cross_entropy batch 3": ((2, 3, 3), ("tanh", "identity"), "cross_entropy", "mean",
                                        [[1, 2], [3, -1], [0.5, 0.5]], [2, 0, 1]),
    "softmax half_sse batch 2": ((2, 2, 3), ("leaky_relu(0.1)", "softmax"), "half_sse", "sum",
                                 [[1, -2], [0.5, 1]], [[0.2, 0.3, 0.5], [1, 0, 0]]),
    "three layers mse batch 3": ((2, 2, 2, 1), ("softplus", "tanh", "identity"), "mse", "mean",
                                 [[1, 2], [-1, 0.5], [0.3, 0.3]], [[0.5], [-0.5], [1]]),
}  # fmt: skip


def network(case: str, seed: int = 0) -> derive.Network:
    sizes, activations, loss, reduction, x, y = CASES[case]
    rng = random.Random(seed)
    layers = [
        derive.Linear([[rng.uniform(-1, 1) for _ in range(i)] for _ in range(o)], [rng.uniform(-1, 1) for _ in range(o)], act)
        for i, o, act in zip(sizes, sizes[1:], activations)
    ]  # fmt: skip
    return derive.Network(layers=layers, x=x, y=y, loss=loss, reduction=reduction)


@pytest.mark.parametrize("case", sorted(CASES))
def test_matrix_gradients_equal_the_scalar_program_symbolically_and_in_value(case):
    net = network(case)
    form = matrix_form(net.architecture)
    bp = backpropagate(net.architecture)
    d = derive.derive(net)
    for p in d.parameters:
        entry = form.gradient(p.name)
        assert evaluate(entry, d.values) == pytest.approx(p.gradient, rel=1e-12, abs=1e-15), p.name
        if len(net.layers) < 3:  # the scalar compact form is the ground truth; they agree as expressions
            assert sp.simplify(entry - bp.compact(p.name)) == 0, p.name


def torch_sequential(net: derive.Network):
    """The network as a float64 ``nn.Sequential`` built here from torch modules (independent of derive's code)."""
    torch = pytest.importorskip("torch")
    layers = []
    for layer in net.layers:
        linear = torch.nn.Linear(layer.in_features, layer.out_features, dtype=torch.float64)
        with torch.no_grad():
            linear.weight.copy_(torch.tensor(layer.weight, dtype=torch.float64))
            linear.bias.copy_(torch.tensor(layer.bias, dtype=torch.float64))
        name, _, slope = layer.activation.partition("(")
        module = {"sigmoid": torch.nn.Sigmoid(), "tanh": torch.nn.Tanh(), "relu": torch.nn.ReLU(),
                  "identity": torch.nn.Identity(), "softplus": torch.nn.Softplus(), "gelu": torch.nn.GELU(),
                  "softmax": torch.nn.Softmax(dim=1),
                  "leaky_relu": torch.nn.LeakyReLU(float(slope.rstrip(")")) if slope else 0.01)}[name]  # fmt: skip
        layers += [linear, module]
    return torch.nn.Sequential(*layers)


def autograd_of(net: derive.Network) -> dict[str, float]:
    """float64 torch autograd of a network, built here from torch modules (independent of derive's code)."""
    torch = pytest.importorskip("torch")
    model = torch_sequential(net)
    out = model(torch.tensor(net.x, dtype=torch.float64))
    y = torch.tensor(net.y, dtype=torch.float64)
    if net.loss == "half_sse":
        loss = (torch.mean if net.reduction == "mean" else torch.sum)(0.5 * ((out - y) ** 2).sum(dim=1))
    elif net.loss == "cross_entropy":
        loss = torch.nn.CrossEntropyLoss(reduction=net.reduction)(out, y.argmax(dim=1))  # one-hot rows: classes
    else:
        modules = {"bce": torch.nn.BCELoss, "mse": torch.nn.MSELoss, "l1": torch.nn.L1Loss,
                   "bce_with_logits": torch.nn.BCEWithLogitsLoss}  # fmt: skip
        loss = modules[net.loss](reduction=net.reduction)(out, y)
    loss.backward()
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    return {p.name: getattr(linears[p.layer - 1], p.tensor).grad[p.index].item() for p in net.parameters()}


@pytest.mark.parametrize("case", sorted(CASES))
def test_matrix_gradients_equal_torch_autograd(case):
    net = network(case, seed=3)
    reference = autograd_of(net)
    d = derive.derive(net)
    numbers = matrix_form(net.architecture).numbers(d.values)
    rules = {str(r.lhs): r for r in matrix_form(net.architecture).rules}
    for p in net.parameters():
        lhs = rules[f"dL/d{'W' if p.tensor == 'weight' else 'b'}⁽{'¹²³'[p.layer - 1]}⁾"].lhs
        row, column = p.index if p.tensor == "weight" else (p.index[0], 0)
        assert numbers[lhs][row][column] == pytest.approx(reference[p.name], rel=1e-12, abs=1e-15)


def test_output_delta_is_the_textbook_one():
    """δ⁽ᴸ⁾ = ŷ − y after sigmoid + BCE, and softmax(z) − onehot after cross_entropy on logits (per sample)."""
    for case, expected in [("seed batch 2", None), ("tanh relu cross_entropy batch 3", None)]:
        net = network(case)
        d = derive.derive(net)
        form = matrix_form(net.architecture)
        delta = next(r.lhs for r in form.rules if r.kind == "delta" and r.layer == len(net.layers))
        values = form.numbers(d.values)[delta]
        A = form.numbers(d.values)[next(r.lhs for r in form.rules if r.kind == "activation" and r.layer == len(net.layers))]
        for n, target in enumerate(net.y):
            if net.loss == "bce":
                assert values[0][n] == pytest.approx(A[0][n] - target[0], rel=1e-12)
            else:
                import math

                logits = [A[k][n] for k in range(3)]
                top = max(logits)
                softmax = [math.exp(v - top) / sum(math.exp(w - top) for w in logits) for v in logits]
                assert [values[k][n] for k in range(3)] == pytest.approx(
                    [s - t for s, t in zip(softmax, target)], rel=1e-12, abs=1e-15)  # fmt: skip


def test_rules_print_the_textbook_layer_rules():
    form = matrix_form(network("tanh relu cross_entropy batch 3").architecture)
    text = [str(rule) for rule in form.rules]
    assert "Δ⁽¹⁾ = (W⁽²⁾ᵀ*Δ⁽²⁾) ∘ f′(Z⁽¹⁾)" in text
    assert "Δ⁽²⁾ = G ∘ f′(Z⁽²⁾)" in text and "dL/dW⁽²⁾ = (1/3)*Δ⁽²⁾*A⁽¹⁾ᵀ" in text
    latex = [form.latex(rule) for rule in form.rules]
    assert r"\Delta^{(1)} = \left(\left(W^{(2)}\right)^{T} \Delta^{(2)}\right) \circ f'\left(Z^{(1)}\right)" in latex
    softmax = matrix_form(network("softmax half_sse batch 2").architecture)
    assert "Δ⁽²⁾ = A⁽²⁾ ∘ (-11ᵀ*(A⁽²⁾ ∘ G) + G)" in [str(rule) for rule in softmax.rules]


def test_forward_rules_reproduce_the_graph():
    net = network("three layers mse batch 3")
    form = matrix_form(net.architecture)
    graph = form.graph
    for rule in form.rules:
        if rule.kind == "forward":
            z = explicit(rule.rhs, form.explicit)
            for i in range(z.rows):
                for n in range(z.cols):
                    assert sp.expand(z[i, n] - graph.node[graph.pre[rule.layer - 1][n][i]].expr) == 0
