"""A graph model's closed and program forms (`derive grads --form closed|program --format json`) against
`sympy.diff` of its loss written out here, by hand, from the module's forward: equal at the module's point
and at a second point, so the expressions are the gradient, not only its value."""

import json

import numpy as np
import pytest
import sympy as sp

from derive.cli import main

torch = pytest.importorskip("torch")

X = [[1.0, -2.0], [0.5, 1.0]]
Y = [0.5, -1.0]


class Small(torch.nn.Module):
    """Bare parameters, a product of a tensor with itself: a graph model, not a chain."""

    def __init__(self):
        super().__init__()
        self.W = torch.nn.Parameter(torch.tensor([[0.5, -1.0], [0.25, 0.75]]))
        self.b = torch.nn.Parameter(torch.tensor([0.375, -0.625]))
        self.v = torch.nn.Parameter(torch.tensor([[1.25], [-0.5]]))

    def forward(self, x):
        h = torch.tanh(x @ self.W + self.b)
        return (h + h * h) @ self.v


def written_out():
    """The MSE of the module's forward, in SymPy: {(torch key, index): symbol}, L."""
    W = sp.Matrix(2, 2, lambda i, j: sp.Symbol(f"w{i}{j}"))
    b = sp.Matrix(1, 2, lambda i, j: sp.Symbol(f"c{j}"))
    v = sp.Matrix(2, 1, lambda i, j: sp.Symbol(f"u{i}"))
    terms = []
    for row, target in zip(X, Y):
        h = (sp.Matrix([row]) * W + b).applyfunc(sp.tanh)
        out = ((h + h.multiply_elementwise(h)) * v)[0, 0]
        terms.append((out - target) ** 2)
    symbols = {("W", (i, j)): W[i, j] for i in range(2) for j in range(2)}
    symbols |= {("b", (j,)): b[0, j] for j in range(2)} | {("v", (i, 0)): v[i, 0] for i in range(2)}
    return symbols, sp.Add(*terms) / len(terms)


def _values(module, shift: float) -> dict:
    return {(key, index): float(p.detach()[index]) + shift * (k + 1) for key, p in module.named_parameters()
            for k, index in enumerate(np.ndindex(tuple(p.shape)))}


def _derived(document, parameter, point):
    """The document's ∂L/∂parameter at ``point`` (names → values): its expression, after the definitions."""
    env = dict(point)
    for definition in document.get("definitions", []):
        env[definition["symbol"]] = float(sp.sympify(definition["expression"]).subs(env))
    return float(sp.sympify(parameter["expression"]).subs(env))


@pytest.mark.parametrize("form", ["closed", "program"])
def test_each_form_is_sympy_diff_of_the_loss_written_out(form, capsys):
    module = Small()
    status = main(["grads", "--torch", f"{__file__}:Small", "--x", "1,-2;0.5,1", "--y", "0.5;-1", "--loss", "mse",
                   "--format", "json", "--form", form])
    out, err = capsys.readouterr()
    assert status == 0, err
    document = json.loads(out)
    assert document["form"] == form
    symbols, L = written_out()
    assert len(document["parameters"]) == len(symbols) == 8
    for shift in (0.0, 0.125):  # the module's point, and every parameter moved
        values = _values(module, shift)
        point = dict(document["point"])
        point |= {p["name"]: values[(p["torch"], tuple(p["index"]))] for p in document["parameters"]}
        at = {symbols[key]: value for key, value in values.items()}
        if shift == 0:
            assert document["loss"] == pytest.approx(float(L.subs(at)), rel=1e-13)
        for p in document["parameters"]:
            expected = float(sp.diff(L, symbols[(p["torch"], tuple(p["index"]))]).subs(at))
            assert _derived(document, p, point) == pytest.approx(expected, rel=1e-12, abs=1e-14), (form, shift, p["name"])
            if shift == 0:
                assert p["gradient"] == pytest.approx(expected, rel=1e-12, abs=1e-14)
