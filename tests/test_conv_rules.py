r"""The tensor rules of convolution and pooling, read off the scalar derivation of small instances.

Reverse mode over the lowered scalar graph knows nothing of kernels: each adjoint is a sum over the uses of
an element. Written as tensor formulas over indices (not with the lowering's window arithmetic), those sums
are the textbook rules, checked here symbolically, term for term, for every element:

- the kernel's gradient is the cross-correlation of the input with δ:
  ∂L/∂K[o, c, k] = Σ_{n, u} X[n, g(o)·C_g + c, s·u − p + d·k] · δ[n, o, u];
- the input's gradient is the full convolution of δ (spread by the stride) with the kernel turned 180°:
  ∂L/∂X[n, c, i] = Σ_{o ∈ group(c), k, u : s·u − p + d·k = i} δ[n, o, u] · K[o, c − g(o)·C_g, k];
- the bias's is Σ_{n, u} δ[n, o, u];
- max pooling routes δ of each window to its first maximum; average pooling shares it, ÷ the window's count.

The compiled gradients (verify/graph_compile.py) run these rules as torch kernels and are checked against
the scalar program numerically, entry by entry (tests/test_graph_compile.py).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import sympy as sp

from derive.model.build import ModelBuilder
from derive.model.lower import backpropagate_model
from derive.ops.pool import Winner

#: (batch, C_in, C_out, spatial, kernel, stride, padding (before, after), dilation, groups)
CONVOLUTIONS = {
    "2x2 kernel": (1, 1, 2, (4, 4), (2, 2), (1, 1), ((0, 0), (0, 0)), (1, 1), 1),
    "stride 2, padding 1": (2, 2, 2, (5, 5), (3, 3), (2, 2), ((1, 1), (1, 1)), (1, 1), 1),
    "uneven padding, dilation, groups": (1, 4, 2, (6, 5), (2, 2), (1, 2), ((0, 1), (1, 0)), (2, 1), 2),
    "1-D, stride and dilation": (2, 1, 3, (7,), (3,), (2,), ((1, 1),), (2,), 1),
}


def out_size(L, k, s, before, after, d):
    return (L + before + after - d * (k - 1) - 1) // s + 1


def conv_model(batch, c_in, c_out, spatial, kernel, stride, padding, dilation, groups):
    rng = np.random.default_rng(0)
    b = ModelBuilder()
    x = b.input("x", (batch, c_in, *spatial))
    a = b.op("activate", x, activation="tanh", name="a")  # an op: the conv's input has an adjoint
    W = b.parameter("conv.weight", rng.normal(size=(c_out, c_in // groups, *kernel)))
    bias = b.parameter("conv.bias", rng.normal(size=c_out))
    z = b.op("conv", a, W, bias, stride=stride, padding=padding, dilation=dilation, groups=groups, name="z")
    shape = (batch, c_out, *(out_size(*args) for args in zip(spatial, kernel, stride, *zip(*padding), dilation)))
    return b.model(z, x=rng.normal(size=(batch, c_in, *spatial)), y=rng.normal(size=shape), loss="mse")


def tensors(bp, model):
    """The scalar symbols of each structure node by name, and δ of an op node's elements."""
    by_name = {node.name: t for node, t in zip(model.structure.nodes, bp.graph.tensors)}
    delta = np.vectorize(lambda s: bp.adjoint_symbols[s], otypes=[object])
    return by_name, delta


@pytest.mark.parametrize("case", sorted(CONVOLUTIONS))
def test_convolution_gradients_are_the_correlation_and_full_convolution_rules(case):
    batch, c_in, c_out, spatial, kernel, stride, padding, dilation, groups = CONVOLUTIONS[case]
    model = conv_model(*CONVOLUTIONS[case])
    bp = backpropagate_model(model.structure)
    t, delta = tensors(bp, model)
    X, K, B, dZ = t["a"], t["conv.weight"], t["conv.bias"], delta(t["z"])
    dX = delta(X)
    per_group_in, per_group_out = c_in // groups, c_out // groups
    outs = dZ.shape[2:]

    def input_index(u, k):
        """The input position tap k of output position u reads, or None on the padding."""
        i = tuple(s * ui - before + d * ki for ui, ki, s, (before, _), d in zip(u, k, stride, padding, dilation))
        return i if all(0 <= ii < L for ii, L in zip(i, spatial)) else None

    kernel_taps = list(itertools.product(*map(range, kernel)))
    positions = list(itertools.product(*map(range, outs)))
    expected_dX: dict[tuple, list] = {}
    for o, k in itertools.product(range(c_out), kernel_taps):
        g = o // per_group_out
        for c in range(per_group_in):
            terms = []
            for n, u in itertools.product(range(batch), positions):
                i = input_index(u, k)
                if i is not None:
                    terms.append(X[(n, g * per_group_in + c, *i)] * dZ[(n, o, *u)])
                    expected_dX.setdefault((n, g * per_group_in + c, *i), []).append(dZ[(n, o, *u)] * K[(o, c, *k)])
            assert bp.program[K[(o, c, *k)].name] == sp.Add(*terms), ("∂K", o, c, k)
    for o in range(c_out):
        assert bp.program[B[o].name] == sp.Add(*dZ[:, o].reshape(-1)), ("∂b", o)
    for index in np.ndindex(X.shape):
        assert bp.adjoints[dX[index]] == sp.Add(*expected_dX.get(index, [])), ("∂X", index)


@pytest.mark.parametrize("kind, options", [
    ("max_pool", dict(kernel=(2, 2), stride=(2, 2), padding=(0, 0), dilation=(1, 1))),
    ("max_pool", dict(kernel=(3, 2), stride=(1, 2), padding=(1, 1), dilation=(1, 1))),
    ("avg_pool", dict(kernel=(2, 2), stride=(1, 1), padding=(1, 0), count_include_pad=True)),
    ("avg_pool", dict(kernel=(2, 2), stride=(1, 1), padding=(1, 0), count_include_pad=False)),
])
def test_pooling_routes_delta_to_the_winner_or_shares_it(kind, options):
    rng = np.random.default_rng(1)
    spatial = (4, 5)
    b = ModelBuilder()
    x = b.input("x", (2, 1, *spatial))
    a = b.op("activate", x, activation="tanh", name="a")
    p = b.op(kind, a, name="p", **options)
    kernel, stride, pad = options["kernel"], options["stride"], options["padding"]
    outs = [out_size(L, k, s, q, q, 1) for L, k, s, q in zip(spatial, kernel, stride, pad)]
    model = b.model(p, x=rng.normal(size=(2, 1, *spatial)), y=rng.normal(size=(2, 1, *outs)), loss="mse")
    bp = backpropagate_model(model.structure)
    t, delta = tensors(bp, model)
    A, dP = t["a"], delta(t["p"])
    expected: dict[tuple, list] = {}
    for n, u in itertools.product(range(2), itertools.product(*map(range, outs))):
        taps = [tuple(s * ui - q + ki for ui, ki, s, q in zip(u, k, stride, pad))
                for k in itertools.product(*map(range, kernel))]
        inside = [i for i in taps if all(0 <= ii < L for ii, L in zip(i, spatial))]
        window = [A[(n, 0, *i)] for i in inside]
        for rank, i in enumerate(inside, start=1):
            if kind == "max_pool":  # δ goes to the window's first maximum
                share = dP[(n, 0, *u)] * Winner(rank, *window) if len(window) > 1 else dP[(n, 0, *u)]
            else:  # δ is shared: ÷ the kernel's size, or ÷ the taps inside the input
                count = len(taps) if options["count_include_pad"] else len(inside)
                share = dP[(n, 0, *u)] / count
            expected.setdefault((n, 0, *i), []).append(share)
    for index in np.ndindex(A.shape):
        got = bp.adjoints[bp.adjoint_symbols[A[index]]]
        assert got == sp.Add(*expected.get(index, [])), index
