"""The seed network end to end: its numbers against the reference and torch autograd, and its JSON."""

import io
import json
import random
from contextlib import redirect_stdout

import pytest
import sympy as sp

import derive
from derive.cli import main
from tests.reference import random_point, reference_loss, value

# ../shared/seed/reference.md (float64 torch autograd)
REFERENCE_LOSS = 0.536884191
REFERENCE = {
    "W1": -0.016160061, "W2": -0.016160061, "W3": 0.010319306, "W4": 0.010319306,
    "b1": -0.016160061, "b2": 0.010319306, "W5": 0.272737920, "W6": 0.279651879, "b3": 0.415433183,
}  # fmt: skip


@pytest.fixture(scope="module")
def seed_json():
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["grads", "--example", "seed", "--format", "json"]) == 0
    return json.loads(out.getvalue())


def test_gradients_returns_nine_sympy_expressions_by_name():
    g = derive.gradients(derive.examples.seed())
    assert list(g) == ["W1", "W2", "W3", "W4", "W5", "W6", "b1", "b2", "b3"]
    assert all(isinstance(e, sp.Expr) for e in g.values())


def test_seed_numbers_match_the_reference_table():
    d = derive.derive(derive.examples.seed())
    assert d.loss == pytest.approx(REFERENCE_LOSS, abs=5e-10)
    for name, expected in REFERENCE.items():
        assert d.gradient(name) == pytest.approx(expected, abs=5e-10)


def test_seed_numbers_match_torch_autograd_to_1e_9():
    from verify.reference import autograd_gradients

    torch_result = autograd_gradients(derive.examples.seed())
    d = derive.derive(derive.examples.seed())
    assert d.loss == pytest.approx(torch_result.loss, rel=1e-12)
    for p in d.parameters:
        assert p.gradient == pytest.approx(torch_result[p.name], rel=1e-12)


def test_json_has_loss_and_all_gradients_of_the_reference(seed_json):
    assert seed_json["loss"] == pytest.approx(0.5368841906, rel=1e-9)
    names = [p["name"] for p in seed_json["parameters"]]
    assert names == list(REFERENCE)[:4] + ["W5", "W6", "b1", "b2", "b3"]
    first = seed_json["parameters"][0]
    assert (first["layer"], first["tensor"], first["index"], first["value"]) == (1, "weight", [0, 0], 0.4352)
    w6 = next(p for p in seed_json["parameters"] if p["name"] == "W6")
    assert (w6["layer"], w6["tensor"], w6["index"]) == (2, "weight", [0, 1])
    for p in seed_json["parameters"]:
        assert p["gradient"] == pytest.approx(REFERENCE[p["name"]], abs=5e-10)


def test_json_expressions_equal_an_independent_sympy_diff(seed_json):
    L, symbols = reference_loss((2, 2, 1), ("sigmoid", "sigmoid"), "bce", "mean", 1)
    assert set(seed_json["point"]) == set(symbols)
    rng = random.Random(7)
    points = [seed_json["point"]] + [random_point(symbols, rng, "bce") for _ in range(5)]
    for p in seed_json["parameters"]:
        parsed = sp.parse_expr(p["expression"], local_dict={n: sp.Symbol(n) for n in seed_json["point"]})
        assert {str(s) for s in parsed.free_symbols} <= set(seed_json["point"])
        expected = sp.diff(L, symbols[p["name"]])
        for point in points:
            assert value(parsed, point) == pytest.approx(value(expected, point), rel=1e-12, abs=1e-15)
        assert value(parsed, seed_json["point"]) == pytest.approx(p["gradient"], rel=1e-12)
