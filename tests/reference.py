"""An independent reference for tests: the loss of a network written out in elementary SymPy.

Nothing here uses derive's graph or ops: activations and losses are written from their textbook
definitions, so ``sympy.diff`` of this loss is an independent check of derive's closed forms.
"""

from __future__ import annotations

import random

import sympy as sp

ELEMENTARY = {
    "sigmoid": lambda z: 1 / (1 + sp.exp(-z)),
    "tanh": sp.tanh,
    "relu": lambda z: sp.Max(0, z),
    "identity": lambda z: z,
}


def reference_loss(sizes, activations, loss, reduction, batch):
    """(L, symbols by name) for an MLP with ``sizes`` and ``activations``, under derive's naming."""
    S = sp.Symbol
    sfx = (lambda n: "") if batch == 1 else (lambda n: f"_{n + 1}")
    outs = sizes[-1]
    xs = [[S(f"x{i + 1}{sfx(n)}") for i in range(sizes[0])] for n in range(batch)]
    ys = [[S(("y" if outs == 1 else f"y{k + 1}") + sfx(n)) for k in range(outs)] for n in range(batch)]
    Ws, bs, w, b = [], [], 0, 0
    for n_in, n_out in zip(sizes, sizes[1:]):
        Ws.append([[S(f"W{w + i * n_in + j + 1}") for j in range(n_in)] for i in range(n_out)])
        bs.append([S(f"b{b + i + 1}") for i in range(n_out)])
        w += n_in * n_out
        b += n_out
    total = 0
    for n in range(batch):
        a = xs[n]
        for W, bias, act in zip(Ws, bs, activations):
            a = [ELEMENTARY[act](sum(W[i][j] * a[j] for j in range(len(a))) + bias[i]) for i in range(len(W))]
        if loss == "bce":
            total += sum(-(t * sp.log(p) + (1 - t) * sp.log(1 - p)) for p, t in zip(a, ys[n]))
        elif loss == "mse":
            total += sum((p - t) ** 2 for p, t in zip(a, ys[n]))
        elif loss == "half_sse":
            total += sp.Rational(1, 2) * sum((p - t) ** 2 for p, t in zip(a, ys[n]))
    if reduction == "mean":
        total /= batch if loss == "half_sse" else batch * outs
    symbols = {str(s): s for s in [*sum(xs, []), *sum(ys, [])]}
    symbols.update({str(s): s for W in Ws for row in W for s in row})
    symbols.update({str(s): s for bias in bs for s in bias})
    return total, symbols


def random_point(symbols, rng: random.Random, loss: str) -> dict[str, float]:
    """Random values for every symbol; targets valid for the loss."""
    point = {}
    for name in symbols:
        if name.startswith("y") and loss == "bce":
            point[name] = rng.uniform(0, 1)
        else:
            point[name] = rng.uniform(-1.5, 1.5)
    return point


def _heaviside(z: float, at_zero: float = 0.5) -> float:
    return 1.0 if z > 0 else (0.0 if z < 0 else at_zero)


def value(expr: sp.Expr, point: dict[str, float]) -> float:
    """Evaluate in float64 with SymPy's own lambdify (math module), symbols matched by name."""
    symbols = sorted(expr.free_symbols, key=lambda s: s.name)
    function = sp.lambdify(symbols, expr, modules=[{"Heaviside": _heaviside}, "math"])
    return float(function(*(point[s.name] for s in symbols)))
