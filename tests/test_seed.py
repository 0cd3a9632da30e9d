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


def _read_latex(text: str) -> sp.Expr:
    """The LaTeX `derive grads --format latex` prints for a sigmoid network, read back into SymPy by this
    test's own rules (names W_{1} → W1, \\sigma → the logistic function, \\left( \\right) → parentheses, a space
    between factors → a product), so that what it says is checked, not only what it contains."""
    from sympy.parsing.sympy_parser import implicit_multiplication, parse_expr, standard_transformations

    plain = text.replace(r"\left(", "(").replace(r"\right)", ")").replace(r"\sigma", "sigma")
    plain = __import__("re").sub(r"([A-Za-z])_\{(\d+)\}", r"\1\2", plain)
    assert "\\" not in plain and "{" not in plain, plain
    sigma = sp.Lambda(sp.Symbol("t"), 1 / (1 + sp.exp(-sp.Symbol("t"))))
    names = {n: sp.Symbol(n) for n in ("x1", "x2", "y")} | {n: sp.Symbol(n) for n in REFERENCE}
    return parse_expr(plain, local_dict={**names, "sigma": sigma},
                      transformations=standard_transformations + (implicit_multiplication,))


def test_latex_says_the_independent_sympy_diff_of_every_gradient():
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["grads", "--example", "seed", "--format", "latex"]) == 0
    lines = [line for line in out.getvalue().strip().splitlines() if not line.startswith("%")]  # comments: the names
    assert lines[0] == r"\begin{align*}" and lines[-1] == r"\end{align*}"
    rows = [line.removesuffix(r" \\") for line in lines[1:-1]]
    L, symbols = reference_loss((2, 2, 1), ("sigmoid", "sigmoid"), "bce", "mean", 1)
    rng = random.Random(11)
    points = [random_point(symbols, rng, "bce") for _ in range(4)]
    names = []
    for row in rows:
        lhs, rhs = row.split(" &= ")
        name = __import__("re").fullmatch(r"\\frac\{\\partial \\mathcal\{L\}\}\{\\partial ([Wb])_\{(\d+)\}\}", lhs)
        names.append(f"{name[1]}{name[2]}")
        said, expected = _read_latex(rhs), sp.diff(L, symbols[names[-1]])
        for point in points:
            assert value(said, point) == pytest.approx(value(expected, point), rel=1e-12, abs=1e-15), names[-1]
    assert names == ["W1", "W2", "W3", "W4", "W5", "W6", "b1", "b2", "b3"]
