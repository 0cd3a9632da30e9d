r"""The derived gradient as readable, self-contained Python (NumPy or torch), in matrix form.

``derive.code(net, backend="numpy")`` prints a module with one function ``gradients(x, y, W1, b1, W2, b2, …)``
(x: batch × inputs, y: batch × outputs, weights out × in, biases (out,), as `verify.compile` takes them) that
returns ∂L/∂W1, ∂L/∂b1, … in that order, one line per intermediate with the textbook names: z and a of every
layer, δ = ∂L/∂z from the last layer to the first, then each gradient. The element-wise rules are derive's own
(`derive.rules`: read off the derivation of a one-unit-per-layer network); cross-entropy on logits gets its
row rule softmax(z)·Σy − y.

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
from derive.network import Network
from derive.ops import activation, loss as lookup_loss
from derive.rules import matrix_rules

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


def code(network: Network, backend: str = "numpy") -> str:
    """Python source of ``gradients(x, y, W1, b1, …)`` for networks of this one's architecture (any batch)."""
    if not isinstance(network, Network):  # a graph model: its tensor program
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
    rules = matrix_rules(arch.activations[:-1] + ("identity",), "mse") if cross_entropy else matrix_rules(
        arch.activations, arch.loss)
    z, a, y = rules.z, rules.a, rules.y
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
    inputs = "x"
    for l in range(1, L + 1):
        lines.append(f"    z{l} = {inputs} @ W{l}.T + b{l}")
        if arch.activations[l - 1] == "sigmoid":  # the textbook's σ; the stable form in a comment
            stable = f"numpy.exp(-numpy.logaddexp(0, -z{l}))" if backend == "numpy" else f"torch.sigmoid(z{l})"
            lines.append(f"    a{l} = 1 / (1 + {module}.exp(-z{l}))  # σ(z{l}); {stable} never overflows")
        else:
            lines.append(f"    a{l} = {_expression(rules.forward[l - 1], {z: f'z{l}'}, printer)}")
        inputs = f"a{l}"
    count = f"{spec.term_count(1, arch.sizes[-1])} * x.shape[0]" if arch.reduction == "mean" else None
    lines.append("    # backward pass: delta_l = ∂L/∂z_l, one row per sample")
    if cross_entropy:
        e = "numpy" if backend == "numpy" else "torch"
        keep = "keepdims=True" if backend == "numpy" else "keepdim=True"
        top = f"z{L}.max(1, {keep})" + ("" if backend == "numpy" else ".values")
        lines.append(f"    s = {e}.exp(z{L} - {top})")
        lines.append(f"    s = s / s.sum(1, {keep})  # softmax of the logits")
        delta = f"s * y.sum(1, {keep}) - y"
    else:
        delta = _expression(rules.output_delta, {z: f"z{L}", a: f"a{L}", y: "y"}, printer)
    lines.append(f"    delta{L} = ({delta})" + (f" / ({count})  # {arch.reduction}: ÷ the number of loss terms"
                                                  if count else ""))
    for l in range(L - 1, 0, -1):
        slope = _expression(rules.derivative[l - 1], {z: f"z{l}", a: f"a{l}"}, printer)
        lines.append(f"    delta{l} = (delta{l + 1} @ W{l + 1}) * ({slope})")
    lines.append("    # gradients")
    for l in range(1, L + 1):
        lines.append(f"    dW{l} = delta{l}.T @ {'x' if l == 1 else f'a{l - 1}'}")
        lines.append(f"    db{l} = delta{l}.sum(0)")
    lines.append("    return " + ", ".join(f"dW{l}, db{l}" for l in range(1, L + 1)))
    modules = sorted({module, *(name.split(".")[0] for name in printer.module_imports)})
    at = lines.index(f"import {module}")
    lines[at : at + 1] = [f"import {name}" for name in modules]
    return "\n".join(lines) + "\n"
