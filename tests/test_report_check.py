"""The report checks itself: every printed equation is re-read and re-computed from its printed numbers.

For every display of a report: each part made of numbers alone is evaluated (interval arithmetic on the
printed, rounded numbers) and must agree with the printed result within rounding; and the printed result
must be the engine's value rounded (and, for gradients of drawn networks, torch autograd's). Run over the
seed, the spec examples, a batch, several steps and networks drawn by hypothesis.
"""

from __future__ import annotations

import math
import operator
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import derive
from derive.numeric import evaluate as engine_evaluate
from derive.ops import loss as lookup_loss
from tests.test_report_tools import NotNumeric, Unreadable, evaluate, meets, read_equations

ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent


def rounded(value: float, digits: int) -> set[str]:
    """The printed forms a value may take: rounded to ``digits`` places (or whole, if it is)."""
    text = f"{value:.{digits}f}"
    if text.startswith("-") and not text.strip("-0."):
        text = text[1:]
    forms = {text}
    if float(value).is_integer():
        forms.add(str(int(value)))
    return forms


def engine_values(d: derive.Derivation) -> dict[str, object]:
    """What each printed left-hand side stands for, from the engine: numbers, or rows of numbers."""
    g, bp = d.graph, d.backprop
    names = g.latex_names
    out: dict[str, object] = {names[s]: v for s, v in d.values.items() if s in names}
    batch = d.network.batch
    for n, row in enumerate(g.predictions):
        for k, s in enumerate(row):
            name = r"\hat{y}" if len(row) == 1 else rf"\hat{{y}}_{{{k + 1}}}"
            out[name if batch == 1 else f"{name}^{{({n + 1})}}"] = d.values[s]
    lr = d.network.lr
    for p in d.parameters:
        name = names[p.symbol]
        out[rf"\frac{{\partial \mathcal{{L}}}}{{\partial {name}}}"] = p.gradient
        out[f"{name}(t+1)"] = p.parameter.value - lr * p.gradient
    for z, delta in bp.adjoint_symbols.items():
        out[r"\delta" + names[z][1:]] = d.values[delta]
    for p in d.parameters:
        for path in d.chain(p.name) or []:
            for f in path:
                key = rf"\frac{{\partial {names[f.numerator]}}}{{\partial {names[f.denominator]}}}"
                out[key] = engine_evaluate(f.expr, d.values)
    arch = g.architecture
    count = lookup_loss(arch.loss).term_count(batch, arch.sizes[-1]) if arch.reduction == "mean" else 1
    gradient = {p.symbol: p.gradient for p in d.parameters}
    for layer in range(1, len(g.weights) + 1):
        out[f"Z^{{({layer})}}"] = [[d.values[z] for z in row] for row in g.pre[layer - 1]]
        out[f"A^{{({layer})}}"] = [[d.values[a] for a in row] for row in g.post[layer - 1]]
        out[rf"f'\left(Z^{{({layer})}}\right)"] = [
            [engine_evaluate(g.node[a].partials[0][1], d.values) for a in row] for row in g.post[layer - 1]
        ]
        deltas = [[count * d.values[bp.adjoint_symbols[z]] for z in row] for row in g.pre[layer - 1]]
        out[rf"\Delta^{{({layer})}}"] = deltas
        for n, row in enumerate(g.pre[layer - 1]):
            for z in row:
                out[rf"\frac{{\partial \ell^{{({n + 1})}}}}{{\partial {names[z]}}}"] = count * d.values[bp.adjoint_symbols[z]]
        out[rf"\frac{{\partial \mathcal{{L}}}}{{\partial W^{{({layer})}}}}"] = [
            [gradient[w] for w in row] for row in g.weights[layer - 1]
        ]
        out[rf"\frac{{\partial \mathcal{{L}}}}{{\partial b^{{({layer})}}}}"] = [[gradient[b] for b in g.biases[layer - 1]]]
    return out


def check_arithmetic(lhs: str, parts: list[str]) -> int:
    """Every part of a display made of numbers alone must agree with its last part (the value), within the
    rounding of the printed numbers; returns how many parts were computed (0 for a formula without numbers).

    Only parts that name a symbol are skipped (`NotNumeric`); numbers the reader cannot read fail
    (`Unreadable`), so that no printed arithmetic goes unchecked for want of a reader."""
    try:
        value = evaluate(parts[-1])
    except NotNumeric:
        return 0
    computed = 0
    for part in parts[:-1]:
        try:
            shown = evaluate(part)
        except NotNumeric:
            continue
        computed += 1
        assert meets(shown, value), f"{lhs} = {part} = {parts[-1]}: the printed arithmetic does not agree"
    return computed


def check_report(net: derive.Network, digits: int = 4, steps: int = 1) -> int:
    """Re-read and re-compute every equation of the Markdown report; returns how many parts were computed."""
    text = derive.report(net, format="md", digits=digits, steps=steps)
    d = derive.derive(net)
    expected = {" ".join(k.split()): v for k, v in engine_values(d).items()}
    computed = 0
    equations = read_equations(text)
    assert equations, "a report without equations"
    for lhs, parts in equations:
        lhs_key = " ".join(re.findall(r"\\[A-Za-z]+|\S", lhs))
        try:
            evaluate(parts[-1])
        except NotNumeric:
            continue  # a formula without numbers (closed forms)
        computed += check_arithmetic(lhs, parts)
        key = next((k for k in expected if " ".join(re.findall(r"\\[A-Za-z]+|\S", k)) == lhs_key), None)
        if key is None:
            raise AssertionError(f"no engine value for {lhs!r}")
        engine = expected[key]
        if isinstance(engine, list):
            body = parts[-1].replace(" ", "").removeprefix(r"\begin{bmatrix}").removesuffix(r"\end{bmatrix}")
            printed = [row.split("&") for row in body.split(r"\\")]
            assert [len(row) for row in printed] == [len(row) for row in engine], f"{lhs}: shape"
            for erow, prow in zip(engine, printed):
                for v, c in zip(erow, prow):
                    assert c in rounded(v, digits), f"{lhs}: printed {c}, the engine's value is {v!r}"
        else:
            assert parts[-1].replace(" ", "") in rounded(engine, digits), (
                f"{lhs} = {parts[-1]}, but the engine's value is {engine!r}"
            )
    return computed


def test_seed_report_checks_itself():
    assert check_report(derive.examples.seed()) >= 30


def test_spec_examples_check_themselves():
    for path in ("examples/classic_2_2_2.toml", "examples/seed.json"):
        net = derive.load_spec(ROOT / path)
        assert check_report(net) >= 20
        assert check_report(net, digits=8) >= 20


def test_batch_report_checks_itself():
    net = derive.examples.seed().replace(x=[[1, 0], [0, 1], [0.5, -2]], y=[[1], [0], [1]])
    assert check_report(net) >= 8
    net = derive.examples.classic_2_2_2().replace(x=[[0.05, 0.1], [1, -1]], y=[[0.01, 0.99], [0.5, 0.5]], reduction="sum")
    assert check_report(net) >= 8


def test_later_steps_check_themselves():
    assert check_report(derive.examples.seed(), steps=3) >= 30


@st.composite
def networks(draw):
    """Small networks of every activation and loss, with values where the functions do not saturate."""
    sizes = draw(st.lists(st.integers(1, 3), min_size=2, max_size=4))
    loss = draw(st.sampled_from(["mse", "half_sse", "bce"]))
    acts = [draw(st.sampled_from(["sigmoid", "tanh", "relu", "identity"])) for _ in sizes[1:]]
    if loss == "bce":
        acts[-1] = "sigmoid"
    value = st.floats(-2, 2, allow_nan=False).map(lambda v: round(v, 3))
    layers = [
        derive.Linear([[draw(value) for _ in range(n_in)] for _ in range(n_out)], [draw(value) for _ in range(n_out)], act)
        for n_in, n_out, act in zip(sizes, sizes[1:], acts)
    ]
    batch = draw(st.integers(1, 2))
    x = [[draw(value) for _ in range(sizes[0])] for _ in range(batch)]
    target = st.floats(0, 1) if loss == "bce" else value
    y = [[round(draw(target), 2) for _ in range(sizes[-1])] for _ in range(batch)]
    return derive.Network(layers, x, y, loss=loss, reduction=draw(st.sampled_from(["mean", "sum"])), lr=0.5)


@settings(max_examples=25, deadline=None)
@given(networks(), st.sampled_from([3, 4, 6]))
def test_drawn_networks_check_themselves(net, digits):
    check_report(net, digits=digits)


@settings(max_examples=10, deadline=None)
@given(networks())
def test_printed_gradients_are_torch_autograds_rounded(net):
    torch = pytest.importorskip("torch")
    del torch
    from verify.reference import autograd_gradients

    reference = autograd_gradients(net)
    text = derive.report(net, format="md", digits=6)
    table = text.split("| parameter | value | gradient | updated |")[1].strip().splitlines()[1:]
    for line in table:
        if not line.startswith("|"):
            break
        name, _, gradient, _ = (c.strip() for c in line.strip("|").split("|"))
        assert math.isclose(float(gradient), reference[name], abs_tol=0.5e-6 + 1e-12), (name, gradient, reference[name])


def test_printed_numbers_the_reader_cannot_read_fail_and_only_formulas_are_skipped():
    with pytest.raises(Unreadable):
        check_arithmetic("planted", [r"0.5 \# 2", "1"])
    with pytest.raises(Unreadable):
        check_arithmetic("planted", [r"1.0", r"1.5e-3"])  # a number printed in a form the report never uses
    with pytest.raises(AssertionError, match="does not agree"):
        check_arithmetic("planted", [r"\sqrt{0.25} + \left|{-0.5}\right| \cdot 0.5^2", "1.5"])
    assert check_arithmetic("checked", [r"\sqrt{0.25} + \left|{-0.5}\right| \cdot 0.5^2", "0.625"]) == 1
    assert check_arithmetic("checked", [r"\max\left(0.1, 0.4, 0.2, 0.3\right)", "0.4"]) == 1
    assert check_arithmetic("a formula", [r"W_{1} \cdot 2", r"\sigma\left(0.5\right)", "1.5"]) == 0


#: activations whose derivative at z differs from its derivative at a = f(z), and torch's function for each
AT_Z = {"softplus": "nn.functional.softplus", "gelu": "nn.functional.gelu", "tanh": "tanh",
        "silu": "nn.functional.silu", "elu": "nn.functional.elu", "sigmoid": "sigmoid"}


@pytest.mark.parametrize("name", sorted(AT_Z))
def test_the_printed_derivative_of_an_activation_is_taken_at_z_not_at_a(name):
    """f'(Z) in the matrix walk-through, against torch autograd of f at the torch model's z (not at a = f(z))."""
    torch = pytest.importorskip("torch")
    f = operator.attrgetter(AT_Z[name])(torch)
    W, b = [[0.5, -1.0], [1.5, 0.25], [-0.75, 1.0]], [0.1, -0.2, 0.3]
    x = [[1.0, 2.0], [-1.0, 0.5]]
    net = derive.Network([derive.Linear(W, b, name), derive.Linear([[1.0, -0.5, 0.25]], [0.05], "identity")],
                         x=x, y=[[0.5], [-0.25]], loss="mse")
    z = (torch.tensor(x, dtype=torch.float64) @ torch.tensor(W, dtype=torch.float64).T
         + torch.tensor(b, dtype=torch.float64)).requires_grad_()
    (at_z,) = torch.autograd.grad(f(z).sum(), z)
    a = f(z).detach().requires_grad_()
    (at_a,) = torch.autograd.grad(f(a).sum(), a)
    assert (at_z - at_a).abs().max() > 1e-3  # the two differ here: the test can tell them apart
    text = derive.report(net, format="md", digits=4)
    (printed,) = [parts[-1] for lhs, parts in read_equations(text) if lhs.replace(" ", "") == r"f'\left(Z^{(1)}\right)"]
    body = printed.replace(" ", "").removeprefix(r"\begin{bmatrix}").removesuffix(r"\end{bmatrix}")
    cells = [row.split("&") for row in body.split(r"\\")]
    assert [len(row) for row in cells] == [3, 3]
    for row, expected in zip(cells, at_z.tolist()):
        for cell, value in zip(row, expected):
            assert cell in rounded(value, 4), (name, cell, value)
