"""The report checks itself: every printed equation is re-read and re-computed from its printed numbers.

For every display of a report: each part made of numbers alone is evaluated (interval arithmetic on the
printed, rounded numbers; an optimizer's constants such as β₂ = 0.999 are exact) and must agree with the
printed result within rounding; and the printed result must be the engine's value correctly rounded, shown
to the precision the report states: ``digits`` decimal places from 1 on, ``digits`` significant digits below
(a value shown as 0.0001 carries one digit, and a reader who recomputes v̂ = 0.0001/(1 − 0.999) gets 0.1
where 0.0744 is printed), scientific notation below 10⁻⁴ and from 10⁶, 0 below 10⁻¹⁵ (float64's rounding). The tables (gradients, training steps)
are checked the same way. Run over the seed, the spec examples, a batch, several steps, every optimizer and
networks drawn by hypothesis.
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

#: a printed number: sign, whole digits, decimals, and a power of ten (LaTeX ``\cdot 10^{e}``, text ``e-5``)
_PRINTED = re.compile(r"(-?)(?:(\d+)(?:\.(\d+))?(?:\\cdot)?)?(?:10\^\{(-?\d+)\}|e([+-]?\d+))?")


def read_printed(text: str) -> tuple[float, float, int, int, bool] | None:
    """A printed number as (value, half a unit of its last digit, decimals, significant digits, scientific);
    None when it is no number."""
    t = text.replace(" ", "").replace("−", "-")
    match = _PRINTED.fullmatch(t)
    if not match or not (match.group(2) or match.group(4)):
        return None
    sign, whole, decimals, power, e = match.groups()
    exponent = int(power if power is not None else e if e is not None else 0)
    scientific = power is not None or e is not None
    mantissa = f"{whole or '1'}.{decimals}" if decimals else (whole or "1")
    value = float(f"{sign}{mantissa}") * 10.0**exponent
    places = len(decimals or "")
    half = 0.5 * 10.0 ** (exponent - places) if decimals or not scientific else 0.0
    if not decimals and not scientific:
        half = 0.0  # a whole number is exact
    significant = len((mantissa.replace(".", "")).lstrip("0"))
    return value, half, places, significant, scientific


def rounded(value: float, digits: int) -> set[str]:
    """The printed forms a value may take under the module docstring's rule (LaTeX without spaces, and text),
    or whole, if it is."""
    size = abs(value)
    if size < 1e-15:  # float64's rounding of quantities of order 1: shown as 0
        value = size = 0.0
    if size and (size < 1e-4 or size >= 1e6):
        mantissa, exponent = f"{value:.{digits - 1}e}".split("e")
        return {f"{mantissa}e{int(exponent)}", rf"{mantissa}\cdot10^{{{int(exponent)}}}"}
    text = f"{value:.{digits}f}" if size >= 1 or size == 0 else f"{value:#.{digits}g}"
    if abs(float(text)) >= 1:
        text = f"{value:.{digits}f}"
    if text.startswith("-") and not text.strip("-0."):
        text = text[1:]
    return {text, str(int(value))} if float(value).is_integer() else {text}


def check_printed(text: str, value: float, digits: int, where: str) -> None:
    """``text`` is ``value`` correctly rounded, to the precision the report states (module docstring)."""
    read = read_printed(text)
    assert read is not None, f"{where}: {text!r} is not a printed number"
    shown, half, places, significant, scientific = read
    if half == 0.0 and not scientific and float(value).is_integer() and shown == value:
        return  # a whole number, exact (given data: x = 1, y = 0)
    if abs(value) < 1e-15:  # below float64's rounding of quantities of order 1: 0, to `digits` places
        assert shown == 0 and places == digits and not scientific, f"{where}: {text} for {value!r}: expected 0"
        return
    assert abs(value - shown) <= half * (1 + 1e-9) + 1e-12 * abs(value), (
        f"{where}: printed {text}, but the engine's value is {value!r}")
    size = abs(value)
    assert scientific == (size != 0 and (size < 1e-4 or size >= 1e6)), (
        f"{where}: {text} for {value!r}: scientific notation is for magnitudes below 1e-4 and from 1e6 only")
    if half == 0.0 and not scientific:  # a whole number: exact
        assert float(value).is_integer(), f"{where}: {text} for {value!r}: a whole number must be exact"
        return
    if scientific or 0 < abs(shown) < 1:
        assert significant == digits, (
            f"{where}: {text} for {value!r} shows {significant} significant digits, not {digits}")
    else:
        assert places == digits, f"{where}: {text} for {value!r} shows {places} decimal places, not {digits}"


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


def check_arithmetic(lhs: str, parts: list[str], exact: frozenset[str] = frozenset()) -> int:
    """Every part of a display made of numbers alone must agree with its last part (the value), within the
    rounding of the printed numbers (``exact``: constants printed as they are); returns how many parts were
    computed (0 for a formula without numbers).

    Only parts that name a symbol are skipped (`NotNumeric`); numbers the reader cannot read fail
    (`Unreadable`), so that no printed arithmetic goes unchecked for want of a reader."""
    try:
        value = evaluate(parts[-1])
    except NotNumeric:
        return 0
    computed = 0
    for part in parts[:-1]:
        try:
            shown = evaluate(part, exact)
        except NotNumeric:
            continue
        computed += 1
        assert meets(shown, value), f"{lhs} = {part} = {parts[-1]}: the printed arithmetic does not agree"
    return computed


def optimizer_values(d: derive.Derivation, history) -> tuple[dict[str, float], frozenset[str]]:
    """What each printed line of the optimizer's update stands for (its quantities, by the left-hand side the
    optimizer writes), and the constants it prints exactly (β, 1 − β, ε, the rate)."""
    from derive.training import learning_rate
    from derive.training.optimizers import constant

    opt, quantities = history.optimizer, history.updates[0]
    values: dict[str, float] = {}
    tags: dict[str, float] = {}

    def tag(value: float) -> str:  # prints a marker for each number, to learn which value ends each line
        tags[f"⟨{len(tags)}⟩"] = value
        return f"⟨{len(tags) - 1}⟩"

    names = d.graph.latex_names
    for p in d.parameters:
        if p.name in quantities:
            for lhs, *parts in opt.equations(names[p.symbol], quantities[p.name], tag, "α", 1):
                values[lhs] = tags[parts[-1]]
    options = [v for k, v in opt.options().items() if isinstance(v, float) and k != "lr"]
    options += [b for k, v in opt.options().items() if isinstance(v, tuple) for b in v]
    constants = {constant(v) for v in options} | {constant(1 - v) for v in options if 0 < v < 1}
    constants.add(constant(learning_rate(opt, d.network)))
    return values, frozenset(c for c in constants if "." in c)


def check_tables(text: str, history, final_loss: float, digits: int) -> int:
    """The gradient table and the training steps' tables against the engine; returns how many cells."""
    d = history.steps[0]
    after = history.steps[1].network if len(history.steps) > 1 else history.final
    updated = {q.name: q.value for q in after.parameters()}
    rows = {p.name: (p.parameter.value, p.gradient, updated[p.name]) for p in d.parameters}
    checked = 0
    table = text.split("| parameter | value | gradient | updated |")[1].strip().splitlines()[1:]
    for line in table:
        if not line.startswith("|"):
            break
        name, *cells = (c.strip() for c in line.strip("|").split("|"))
        for cell, value, column in zip(cells, rows[name], ("value", "gradient", "updated")):
            check_printed(cell, value, digits, f"gradient table, {name} {column}")
            checked += 1
    if len(history.steps) > 1:
        losses = [*history.losses, final_loss]
        values = [{p.name: p.parameter.value for p in step.parameters} for step in history.steps]
        values.append({p.name: p.value for p in history.final.parameters()})
        for block in text.split("| t | L |")[1:]:
            header = ["t", "L", *(c.strip() for c in block.splitlines()[0].strip("|").split("|"))]
            for line in block.splitlines()[2:]:
                if not line.startswith("|"):
                    break
                t, *cells = (c.strip() for c in line.strip("|").split("|"))
                for cell, column in zip(cells, header[1:]):
                    value = losses[int(t)] if column == "L" else values[int(t)][column]
                    check_printed(cell, value, digits, f"steps table, t = {t}, {column}")
                    checked += 1
    return checked


def check_report(net: derive.Network, digits: int = 4, steps: int = 1, optimizer=None) -> int:
    """Re-read and re-compute every equation and table of the Markdown report; returns how many parts were
    computed."""
    from derive.report.build import with_rate
    from derive.training import train

    text = derive.report(net, format="md", digits=digits, steps=steps, optimizer=optimizer)
    network, opt = with_rate(net, None if optimizer is None else derive.training.optimizer(optimizer))
    history = train(network, steps, opt)
    d = history.steps[0]
    expected = {" ".join(k.split()): v for k, v in engine_values(d).items()}
    exact: frozenset[str] = frozenset()
    if optimizer is not None:
        values, exact = optimizer_values(d, history)
        expected.update({" ".join(k.split()): v for k, v in values.items()})
    computed = 0
    equations = read_equations(text)
    assert equations, "a report without equations"
    for lhs, parts in equations:
        lhs_key = " ".join(re.findall(r"\\[A-Za-z]+|\S", lhs))
        try:
            evaluate(parts[-1])
        except NotNumeric:
            continue  # a formula without numbers (closed forms)
        computed += check_arithmetic(lhs, parts, exact)
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
                    check_printed(c, v, digits, lhs)
        else:
            check_printed(parts[-1], engine, digits, lhs)
    final = derive.Derivation(history.final).loss if steps > 1 else None
    computed += check_tables(text, history, final, digits)
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


OPTIMIZERS = [
    derive.training.optimizer("adam", lr=0.1),
    derive.training.optimizer("adamw", lr=0.1, weight_decay=0.01, amsgrad=True),
    derive.training.optimizer("rmsprop", lr=0.01, momentum=0.5, centered=True),
    derive.training.optimizer("adagrad", lr=0.1, lr_decay=0.01),
    derive.training.optimizer("sgd", lr=0.5, momentum=0.9, nesterov=True, weight_decay=0.001),
    derive.training.optimizer("sgd", lr=0.5, maximize=True),
]


@pytest.mark.parametrize("optimizer", OPTIMIZERS, ids=lambda o: o.name)
def test_every_optimizer_report_checks_itself(optimizer):
    """Each line of the update (m, v, m̂, v̂, the buffers, the step) is its quantity correctly rounded, shown to
    the stated precision, and re-computes from its printed numbers; the steps' tables too."""
    assert check_report(derive.examples.seed(), optimizer=optimizer) >= 40
    assert check_report(derive.examples.seed(), optimizer=optimizer, steps=3, digits=3) >= 40


def test_a_reader_recomputes_adams_v_hat_from_its_printed_numbers():
    """The Adam report's v̂ = v/(1 − β₂) was printed 0.0001/(1 − 0.999) = 0.0744: a reader gets 0.1. Every
    printed v now carries `digits` significant digits, so recomputing it gives the printed v̂."""
    text = derive.report(derive.examples.seed(), format="md", optimizer="adam", lr=0.1)
    lines = [(lhs, parts) for lhs, parts in read_equations(text) if lhs.startswith(r"\hat { v }")]
    assert len(lines) == 9
    for lhs, parts in lines:
        numerator = re.match(r"\\frac \{ (.*?) \} \{ 1 - 0.999 \^ \{ 1 \} \}", parts[1]).group(1)
        v = read_printed(numerator.replace(" ", ""))
        v_hat = read_printed(parts[-1].replace(" ", ""))
        assert v[3] == 4, f"{lhs}: v printed as {numerator}"
        assert abs(v[0] / (1 - 0.999) - v_hat[0]) <= 10 * v_hat[1], (lhs, numerator, parts[-1])


def test_the_check_catches_a_report_that_shows_decimal_places_only(monkeypatch):
    """The self-check itself: with the old rule (4 decimal places for every value), the Adam report's
    v = 0.0001 and v̂ = 0.0744 are refused."""
    from derive.report import shown

    monkeypatch.setattr(shown, "fmt", lambda value, digits, exact=False: (
        str(int(value)) if exact and float(value).is_integer() else f"{value:.{digits}f}".replace("-0.0000", "0.0000")))
    with pytest.raises(AssertionError, match="significant digits, not 4"):
        check_report(derive.examples.seed(), optimizer=derive.training.optimizer("adam", lr=0.1))


@pytest.mark.parametrize("fmt", ["md", "tex", "html"])
def test_huge_values_are_in_scientific_notation_in_every_format(fmt):
    """--lr 1e308 --steps 3 printed 300-digit numbers: every number is at most a few digits now."""
    net = derive.examples.seed().replace(lr=1e308)
    text = derive.report(net, format=fmt, steps=3)
    longest = max(re.findall(r"[0-9]+(?:\.[0-9]+)?", text), key=len)
    assert len(longest) <= 8, longest
    assert "10^{308}" in text or "1e308" in text
    if fmt == "md":
        assert "| W5 | -0.1725 | 0.2727 | -2.727e307 |" in text  # tables in text: e-notation
        assert check_report(net, steps=3) >= 30


def test_huge_values_compile_to_a_pdf_whose_lines_fit():
    """The report at lr 1e308 compiles, and none of its lines is wider than those of the same report at lr 1
    (a table of numbers in scientific notation too wide for the page is split by columns)."""
    import os
    import subprocess
    import tempfile
    from pathlib import Path

    from tests.test_report_tools import need_pdflatex

    need_pdflatex()

    def overfull(lr: float) -> list[float]:
        tex = derive.report(derive.examples.seed().replace(lr=lr), format="tex", steps=3)
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "r.tex").write_text(tex)
            done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape",
                                   "r.tex"], cwd=tmp, capture_output=True, text=True, timeout=120,
                                  env={**os.environ, "openin_any": "p"}, check=False)
            log = (Path(tmp) / "r.log").read_text(errors="replace")
        assert done.returncode == 0, log[-2000:]
        return sorted(float(m) for m in re.findall(r"Overfull \\hbox \(([0-9.]+)pt too wide\)", log))

    assert overfull(1e308) == overfull(1.0)


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
