"""`derive grads` in closed and program form: right against float64 autograd, and every expression
re-evaluates, from ``point`` and earlier definitions, to the value printed beside it."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
from sympy.parsing.sympy_parser import parse_expr

import derive
from derive.cli import main
from derive.forms import AUTO_MAX_OPERATIONS, choose_form, definitions, grads_document
from derive.ops.activations import ACTIVATIONS, Step, activation
from derive.ops.normal import NormalPDF, Phi
from derive.ops.softmax import LogSumExp
from derive.printing import elementary, expression_string
from tests.reference import _heaviside

GOLDEN = Path(__file__).resolve().parent / "golden"


def network(sizes, acts, loss, batch, *, seed=0, classes=False):
    rng = np.random.default_rng(seed)
    layers = [
        derive.Linear(rng.uniform(-1, 1, (o, i)), rng.uniform(-1, 1, o), a) for i, o, a in zip(sizes, sizes[1:], acts)
    ]
    x = rng.uniform(-1, 1, (batch, sizes[0])).tolist()
    if classes:
        y = [[int(rng.integers(sizes[-1]))] for _ in range(batch)]
    else:
        y = rng.uniform(0, 1, (batch, sizes[-1])).tolist()
    return derive.Network(layers, x=x, y=y, loss=loss)


#: The issue's networks: a 4-8-3 ReLU cross-entropy classifier at batch 30, a 3-4-4-3 tanh/ReLU classifier
#: at batch 3, a 1-6-6-6-1 tanh regressor at batch 16.
LARGE = {
    "relu_ce_4_8_3_b30": lambda: network((4, 8, 3), ("relu", "identity"), "cross_entropy", 30, classes=True),
    "tanh_relu_3_4_4_3_b3": lambda: network(
        (3, 4, 4, 3), ("tanh", "relu", "identity"), "cross_entropy", 3, classes=True
    ),
    "tanh_1_6_6_6_1_b16": lambda: network((1, 6, 6, 6, 1), ("tanh", "tanh", "tanh", "identity"), "mse", 16),
}

#: Small networks over the registry's non-smooth and vector ops, in both forms.
SMALL = {
    "relu_sigmoid_bce": lambda: network((2, 3, 1), ("relu", "sigmoid"), "bce", 2),
    "leaky_identity_mse": lambda: network((2, 2, 2), ("leaky_relu(0.2)", "identity"), "mse", 1),
    "gelu_softplus_l1": lambda: network((2, 2, 1), ("gelu", "softplus"), "l1", 2),
    "tanh_softmax_half_sse": lambda: network((2, 2, 2), ("tanh", "softmax"), "half_sse", 1),
    "relu_ce": lambda: network((2, 2, 3), ("relu", "identity"), "cross_entropy", 1, classes=True),
    "logits": lambda: network((2, 2, 1), ("leaky_relu", "identity"), "bce_with_logits", 2),
}

#: derive's own functions by their printed names: the output should not need them (it is elementary), but a
#: name of ours that slipped through must not become an undefined SymPy function.
_DERIVE_FUNCTIONS = {
    name: cls
    for name, cls in {**ACTIVATIONS, "step": Step, "logsumexp": LogSumExp, "Phi": Phi, "phi": NormalPDF}.items()
    if name.isidentifier() and not hasattr(sp, name)  # tanh is SymPy's own
}
#: SymPy's functions that the printed forms use, in float64 (the textbook definitions, not derive's code).
_MATH = {
    sp.exp: math.exp,
    sp.log: math.log,
    sp.tanh: math.tanh,
    sp.erfc: math.erfc,
    sp.Max: max,
    sp.Min: min,
    sp.Abs: abs,
    sp.sign: lambda v: float((v > 0) - (v < 0)),
    sp.Heaviside: _heaviside,
    sp.sin: math.sin,
    sp.cos: math.cos,
    sp.sinh: math.sinh,
    sp.cosh: math.cosh,
    sp.atan: math.atan,
    sp.erf: math.erf,
}


def _float(expr: sp.Basic, env: dict[str, float]) -> float:
    if expr.is_Symbol:
        assert expr.name in env, f"{expr.name} is used before it is defined"
        return env[expr.name]
    if not expr.args:  # a number, or a constant as pi
        return float(expr)
    if isinstance(expr, sp.Piecewise):  # where(c, a, b): (a, Ne(c, 0)), (b, True)
        for value, condition in expr.args:
            if condition is sp.true or _float(condition.lhs, env) != _float(condition.rhs, env):
                return _float(value, env)
    args = [_float(a, env) for a in expr.args]
    if expr.is_Add:
        return math.fsum(args)
    if expr.is_Mul:
        return math.prod(args)
    if expr.is_Pow:
        return args[0] ** args[1]
    return float(_MATH[expr.func](*args))


def _value(text: str, env: dict[str, float]) -> float:
    """Parse ``text`` (our own output, unevaluated) and evaluate it in float64, symbols from ``env``."""
    local = {**_DERIVE_FUNCTIONS, **{name: sp.Symbol(name) for name in env}}
    return _float(parse_expr(text, local_dict=local, evaluate=False), env)


def assert_reevaluates(doc: dict) -> None:
    """Every definition, in order, and every parameter's expression evaluate to their stated values."""
    env = dict(doc["point"])
    for definition in doc.get("definitions", []):
        value = _value(definition["expression"], env)
        assert value == pytest.approx(definition["value"], rel=1e-9, abs=1e-12), definition["symbol"]
        env[definition["symbol"]] = definition["value"]
    for p in doc["parameters"]:
        value = _value(p["expression"], env)
        assert value == pytest.approx(p["gradient"], rel=1e-9, abs=1e-12), p["name"]


def assert_matches_autograd(doc: dict, net: derive.Network) -> None:
    from verify.reference import autograd_gradients

    reference = autograd_gradients(net)
    assert doc["loss"] == pytest.approx(reference.loss, rel=1e-12)
    scale = max(abs(g) for g in reference.gradients.values())
    for p in doc["parameters"]:
        assert p["gradient"] == pytest.approx(reference[p["name"]], rel=1e-10, abs=1e-13 * scale), p["name"]


@pytest.mark.parametrize("name", sorted(LARGE))
def test_issue_networks_in_program_form_match_autograd_and_reevaluate(name, tmp_path, capsys):
    from derive.sources.spec import dumps_spec

    net = LARGE[name]()
    path = tmp_path / "net.toml"
    path.write_text(dumps_spec(net))
    assert main(["grads", "--spec", str(path), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["form"] == "program"  # auto: their closed forms are large
    assert_matches_autograd(doc, net)
    assert_reevaluates(doc)


@pytest.mark.parametrize("form", ["closed", "program"])
@pytest.mark.parametrize("name", sorted(SMALL))
def test_small_networks_in_both_forms_match_autograd_and_reevaluate(name, form):
    net = SMALL[name]()
    doc = grads_document(net, form=form)
    assert doc["form"] == form and ("definitions" in doc) == (form == "program")
    assert_matches_autograd(doc, net)
    assert_reevaluates(doc)


@pytest.mark.parametrize("example", ["seed", "classic_2_2_2"])
def test_examples_are_closed_and_byte_identical_to_their_golden_files(example, capsys):
    assert main(["grads", "--example", example, "--format", "json"]) == 0
    out = capsys.readouterr().out
    assert out == (GOLDEN / f"{example}_grads.json").read_text(encoding="utf-8")
    doc = json.loads(out)
    assert doc["form"] == "closed" and "definitions" not in doc
    assert_reevaluates(doc)


def test_program_definitions_are_those_the_gradients_use_in_evaluation_order():
    d = derive.derive(derive.examples.seed())
    assert [str(s) for s, _ in definitions(d)] == ["z1", "a1", "z2", "a2", "z3", "a3", "dL_dz3", "dL_dz2", "dL_dz1"]
    doc = grads_document(d, form="program")
    assert doc["parameters"][0]["expression"] == "dL_dz1*x1"  # ∂L/∂W1 = δ1·x1
    assert doc["definitions"][6]["latex"] == r"\sigma_{3} - y"  # the adjoint named δ in LaTeX
    assert doc["definitions"][8]["symbol"] == "dL_dz1" and r"\delta_{3}" in doc["definitions"][8]["latex"]


def test_auto_switches_on_the_size_of_the_largest_closed_form():
    small = derive.derive(derive.examples.seed())
    assert choose_form(small) == "closed"
    big = derive.derive(network((2, 3, 3, 3, 1), ("tanh",) * 3 + ("identity",), "mse", 1))
    assert max(big.backprop.size(p.name) for p in big.parameters) > AUTO_MAX_OPERATIONS
    assert choose_form(big) == "program" and choose_form(big, "closed") == "closed"
    with pytest.raises(derive.DeriveError, match="form must be one of auto, closed, program"):
        grads_document(small, form="compact")


def test_latex_program_form_defines_intermediates_first(capsys):
    assert main(["grads", "--example", "seed", "--format", "latex", "--form", "program"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[1].startswith("z_{1} &= W_{1} x_{1}")
    assert r"\delta_{3} &= \sigma_{3} - y" in out
    assert r"\frac{\partial \mathcal{L}}{\partial W_{5}} &= \sigma_{1} \delta_{3}" in out


@pytest.mark.parametrize("key", sorted(ACTIVATIONS))
def test_elementary_printing_equals_sympys_rewrite(key):
    z, w = sp.symbols("z w")
    act = activation(key)
    expr = act(w * z + 1) * act.derivative(z, act(z)) if not act.vector else act(1, z, w) * act(2, z, w)
    assert expression_string(expr) == sp.sstr(expr.rewrite("elementary"))


def test_printing_never_evaluates_max_or_heaviside(monkeypatch):
    from sympy.functions.elementary.miscellaneous import MinMaxBase

    def refuse(*args, **kwargs):
        raise AssertionError("Max/Min evaluated while printing")

    monkeypatch.setattr(MinMaxBase, "_collapse_arguments", classmethod(refuse))
    monkeypatch.setattr(sp.Heaviside, "eval", classmethod(refuse))
    net = network((2, 3, 1), ("leaky_relu", "relu"), "mse", 2)
    d = derive.derive(net)
    texts = [expression_string(d.closed(p.name)) for p in d.parameters]
    assert all("Max(0, " in t for t in texts) and any("Heaviside(" in t for t in texts)
    assert math.isfinite(d.loss)
    assert elementary(Step(z := sp.Symbol("z"))) == sp.Heaviside(z, 0, evaluate=False)


def test_bce_loss_of_a_saturated_sigmoid_stays_finite_in_a_batch():
    # σ(800) rounds to 1 and σ(−800) to 0: log(1 − σ) and log σ are read through a = σ(z), as −softplus
    net = derive.Network(
        [derive.Linear([[400.0, 400.0]], [0.0], "sigmoid")], x=[[1, 1], [-1, -1]], y=[[0.0], [1.0]], loss="bce"
    )
    assert grads_document(net)["loss"] == pytest.approx(800.0, rel=1e-12)
