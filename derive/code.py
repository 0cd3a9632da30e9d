r"""The derived gradient as readable, self-contained Python (NumPy or torch), in matrix form.

``derive.code(net, backend="numpy")`` prints a module with one function ``gradients(x, y, W1, b1, W2, b2, …)``
(x: batch × inputs, y: batch × outputs, weights out × in, biases (out,), as `verify.compile` takes them) that
returns ∂L/∂W1, ∂L/∂b1, … in that order, one line per intermediate with the textbook names: z and a of every
layer, δ = ∂L/∂z from the last layer to the first, then each gradient. The lines are the chain's tensor program
(`derive.tensor.program`: the dense op's rules Δ W, Δᵀ A and Σ Δ), each element-wise factor printed from its
class in the registry (an activation's f′; the output δ, `derive.tensor.loss.output_delta`: the loss's ∂ℓ/∂ŷ
times the last f′, a − y for BCE after a sigmoid); cross-entropy on logits gets its row rule softmax(z)·Σy − y. A graph model
prints its tensor program (`derive.tensor.pycode`).

>>> import derive
>>> source = code(derive.examples.seed())
>>> namespace = {}
>>> exec(source, namespace)
>>> import numpy as np
>>> dW1, db1, dW2, db2 = namespace["gradients"](np.array([[1.0, 1.0]]), np.array([[0.0]]),
...     np.array([[0.4352, 0.3545], [0.1951, 0.4835]]), np.array([-0.1419, 0.0439]),
...     np.array([[-0.1725, 0.1129]]), np.array([-0.3043]))
>>> round(float(dW2[0, 0]), 4)   # ∂L/∂W5
0.2727
"""

from __future__ import annotations

import sympy as sp

from derive.errors import DeriveError
from derive.model.graph import Model
from derive.network import Network
from derive.ops import activation
from derive.ops import loss as lookup_loss
from derive.tensor.expr import Call, Ref, TExpr
from derive.tensor.loss import A, T, Z, output_delta

BACKENDS = ("numpy", "torch")


def _printer(backend: str):
    if backend == "numpy":
        from sympy.printing.numpy import NumPyPrinter as Printer
    else:
        from sympy.printing.pytorch import TorchPrinter as Printer
    return Printer({"fully_qualified_modules": True, "inline": True, "allow_unknown_functions": False})


def _expression(expr: sp.Expr, names: dict[sp.Symbol, str], printer) -> str:
    expr = expr.xreplace({s: sp.Symbol(n) for s, n in names.items()})
    return printer.doprint(expr)


def _layer(symbol: str) -> int:
    """The layer of a textbook program symbol: 2 for ``Z_2``, ``dL_dA_2``, ``dL_dW_2``."""
    return int(symbol.rpartition("_")[2])


def _plain(expr: TExpr, names: dict[str, str]) -> str:
    """A dense op's line of the program as plain Python: products, sums, transposes and the batch sum."""
    if isinstance(expr, Ref):
        return names[expr.name]
    if isinstance(expr, Call) and expr.fn in ("matmul", "add") and not expr.options:
        return f" {'@' if expr.fn == 'matmul' else '+'} ".join(_plain(a, names) for a in expr.args)
    if isinstance(expr, Call) and expr.fn == "transpose":
        return f"{_plain(expr.args[0], names)}.T"
    if isinstance(expr, Call) and expr.fn == "sum" and dict(expr.options).get("dims") in ((0,), [0]):
        return f"{_plain(expr.args[0], names)}.sum(0)"
    raise DeriveError(f"derive code: no plain Python for {expr} in a chain's program")


def code(network: Network | Model, backend: str = "numpy") -> str:
    """Python source of ``gradients(x, y, W1, b1, …)`` for networks of this one's architecture (any batch)."""
    from derive.tensor.program import program

    if not network.textbook:  # a graph model: its tensor program
        from derive.tensor.pycode import python_source

        return python_source(network, backend)
    if backend not in BACKENDS:
        raise DeriveError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
    arch = network.architecture
    if any(getattr(activation(name), "vector", False) for name in arch.activations):
        raise DeriveError("derive code: softmax as an activation has no element-wise rule; use cross_entropy on logits")
    spec = lookup_loss(arch.loss)
    L = len(arch.activations)
    cross_entropy = spec.key == "cross_entropy" and arch.activations[-1] == "identity"
    z, a, y = Z, A, T
    delta = None if cross_entropy else output_delta(arch.loss, arch.activations[-1])
    if not cross_entropy and delta is None:
        raise DeriveError(f"loss {arch.loss!r} is not element-wise: it has no δ rule of one unit")
    printer = _printer(backend)
    module = "numpy" if backend == "numpy" else "torch"
    params = ", ".join(f"W{l}, b{l}" for l in range(1, L + 1))
    sizes = "-".join(map(str, arch.sizes))
    lines = [
        f'"""Gradients of a {sizes} network ({", ".join(arch.activations)}; loss {arch.loss}, {arch.reduction}),',
        "derived by derive: z = a Wᵀ + b and a = f(z) per layer, δ = ∂L/∂z from the last layer to the first.",
        "",
        f"gradients(x, y, {params}): x is batch × {arch.sizes[0]}, y batch × {arch.sizes[-1]}; weights out × in,",
        "biases (out,). Returns ∂L/∂W1, ∂L/∂b1, … in that order.",
        '"""',
        "",
        f"import {module}",
        "",
        "",
        f"def gradients(x, y, {params}):",
        "    # forward pass",
    ]
    names = {"X": "x", "T": "y"}
    for l in range(1, L + 1):
        names |= {f"W_{l}": f"W{l}", f"b_{l}": f"b{l}", f"Z_{l}": f"z{l}", f"A_{l}": f"a{l}",
                  f"dL_dZ_{l}": f"delta{l}", f"dL_dW_{l}": f"dW{l}", f"dL_db_{l}": f"db{l}"}
    above: dict[int, str] = {}  # ∂L/∂a of a hidden layer: the δ above it through its weights
    for d in program(network).definitions:
        kind, part, l = d.kind, d.symbol.rpartition("_")[0], _layer(d.symbol) if d.kind != "loss" else 0
        if kind == "forward" and part == "Z":
            lines.append(f"    z{l} = {_plain(d.expr, names)}")
        elif kind == "forward" and arch.activations[l - 1] == "sigmoid":  # the textbook's σ; the stable form noted
            stable = f"numpy.exp(-numpy.logaddexp(0, -z{l}))" if backend == "numpy" else f"torch.sigmoid(z{l})"
            lines.append(f"    a{l} = 1 / (1 + {module}.exp(-z{l}))  # σ(z{l}); {stable} never overflows")
        elif kind == "forward":
            lines.append(f"    a{l} = {_expression(activation(arch.activations[l - 1])(z), {z: f'z{l}'}, printer)}")
        elif kind == "loss":
            lines.append("    # backward pass: delta_l = ∂L/∂z_l, one row per sample")
        elif kind == "adjoint" and part == "dL_dA" and l < L:
            above[l] = _plain(d.expr, names)
        elif kind == "adjoint" and part == "dL_dZ" and l == L:  # ∂L/∂a of the output is folded into its δ
            lines += _output_lines(arch, spec, cross_entropy, delta, (z, a, y), printer, backend)
        elif kind == "adjoint" and part == "dL_dZ":
            slope = _expression(activation(arch.activations[l - 1]).derivative(z, a), {z: f"z{l}", a: f"a{l}"}, printer)
            lines.append(f"    delta{l} = ({above[l]}) * ({slope})")
        elif kind == "gradient":
            if lines[-1].lstrip().startswith("delta"):
                lines.append("    # gradients")
            lines.append(f"    {names[d.symbol]} = {_plain(d.expr, names)}")
    lines.append("    return " + ", ".join(f"dW{l}, db{l}" for l in range(1, L + 1)))
    modules = sorted({module, *(name.split(".")[0] for name in printer.module_imports)})
    at = lines.index(f"import {module}")
    lines[at : at + 1] = [f"import {name}" for name in modules]
    return "\n".join(lines) + "\n"


def _output_lines(arch, spec, cross_entropy: bool, delta: sp.Expr | None, symbols: tuple, printer,
                  backend: str) -> list[str]:
    """The output layer's δ (÷ the number of loss terms for a mean)."""
    z, a, y = symbols
    L = len(arch.activations)
    lines = []
    if cross_entropy:
        e = "numpy" if backend == "numpy" else "torch"
        keep = "keepdims=True" if backend == "numpy" else "keepdim=True"
        top = f"z{L}.max(1, {keep})" + ("" if backend == "numpy" else ".values")
        lines.append(f"    s = {e}.exp(z{L} - {top})")
        lines.append(f"    s = s / s.sum(1, {keep})  # softmax of the logits")
        text = f"s * y.sum(1, {keep}) - y"
    else:
        text = _expression(delta, {z: f"z{L}", a: f"a{L}", y: "y"}, printer)
    count = f"{spec.term_count(1, arch.sizes[-1])} * x.shape[0]" if arch.reduction == "mean" else None
    lines.append(f"    delta{L} = ({text})" + (f" / ({count})  # {arch.reduction}: ÷ the number of loss terms"
                                                 if count else ""))
    return lines
