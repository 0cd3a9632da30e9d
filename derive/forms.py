"""The gradients as a document: every ∂L/∂p in closed form, or as the straight-line program.

A closed form (over inputs, targets and parameters only) grows exponentially with depth and linearly with
the batch; the program does not. In the **program** form the document lists, in evaluation order, every
intermediate the gradients use — pre-activations z, activations a and the adjoints δ = ∂L/∂z (``dL_dz3``) —
each with its expression over the point and earlier definitions, and each parameter's expression is written
over those symbols. ``"auto"`` gives the closed form while it is small (`AUTO_MAX_OPERATIONS` per
parameter and `AUTO_TOTAL_OPERATIONS` in all, counted on the program before anything is built) and the
program otherwise.

Every expression is printed in SymPy's own functions (``sympy.parse_expr`` reads it back) and evaluates,
from ``point`` and the earlier definitions, to the value stated beside it.

>>> import derive
>>> doc = grads_document(derive.examples.seed(), form="program")
>>> doc["form"], [d["symbol"] for d in doc["definitions"]][:4]
('program', ['z1', 'a1', 'z2', 'a2'])
>>> doc["definitions"][1]["expression"], doc["parameters"][4]["expression"]
('1/(1 + exp(-z1))', 'a1*dL_dz3')
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sympy as sp

from derive.backprop import count_operations
from derive.derivation import Derivation
from derive.errors import DeriveError
from derive.network import Network
from derive.printing import latex, printed
from derive.terms import gc_paused

FORMS = ("auto", "closed", "program")
#: ``auto`` gives the closed form when no parameter's has more operations than this (as a tree) …
AUTO_MAX_OPERATIONS = 500
#: … and all of them together have at most this many; otherwise the program form.
AUTO_TOTAL_OPERATIONS = 5_000


def check_form(form: str) -> str:
    """``form`` if it is one of `FORMS`, else a `DeriveError` naming them."""
    if form not in FORMS:
        raise DeriveError(f"form must be one of {', '.join(FORMS)}, got {form!r}")
    return form


def choose_form(d: Derivation, form: str = "auto") -> str:
    """``"closed"`` or ``"program"``: ``form`` itself, or for ``"auto"`` the one its size calls for."""
    if check_form(form) != "auto":
        return form
    program_sizes = 0
    for p in d.parameters:  # a closed form is at least as large as its program expression: stop early
        size = count_operations(d.backprop.program[p.name])
        program_sizes += size
        if size > AUTO_MAX_OPERATIONS or program_sizes > AUTO_TOTAL_OPERATIONS:
            return "program"
    sizes = [d.backprop.size(p.name, "closed") for p in d.parameters]
    small = max(sizes) <= AUTO_MAX_OPERATIONS and sum(sizes) <= AUTO_TOTAL_OPERATIONS
    return "closed" if small else "program"


def definitions(d: Derivation) -> list[tuple[sp.Symbol, sp.Expr]]:
    """Every intermediate the gradient program uses, in evaluation order: (symbol, its definition).

    Forward nodes (z, a) in forward order, then the adjoints δ in the order reverse mode defines them;
    nodes no gradient depends on (the loss itself) are left out.
    """
    bp, graph = d.backprop, d.graph
    defined: dict[str, sp.Expr] = {n.symbol.name: n.expr for n in graph.nodes if n.kind != "loss"}
    defined.update((s.name, expr) for s, expr in bp.adjoints.items())
    # by name: a str caches its hash, a SymPy symbol computes it in Python (millions of look-ups in a CNN)
    used: set[str] = set()
    todo = [s for expr in bp.program.values() for s in _symbols(expr)]
    while todo:
        name = todo.pop().name
        if name not in used and name in defined:
            used.add(name)
            todo.extend(_symbols(defined[name]))
    order = [n.symbol for n in graph.nodes if n.kind != "loss"] + list(bp.adjoints)
    return [(s, defined[s.name]) for s in order if s.name in used]


def _symbols(expr: sp.Expr) -> Iterable[sp.Symbol]:
    """The symbols of ``expr``: a sum of symbols and their products (a convolution) term by term, else
    ``free_symbols`` (which builds a set per subexpression)."""
    if expr.is_Symbol:
        return (expr,)
    found = []
    for term in expr.args if expr.is_Add else (expr,):  # millions of terms in a CNN: the checks inline
        if type(term) is sp.Symbol:
            found.append(term)
            continue
        args = term.args
        if type(term) is sp.Mul and len(args) == 2 and type(args[0]) is sp.Symbol and type(args[1]) is sp.Symbol:
            found += args
        else:
            return expr.free_symbols
    return found


def latex_names(d: Derivation) -> dict[sp.Symbol, str]:
    """Textbook LaTeX names of every symbol of the program, the adjoints as δ (``\\delta_{3}``)."""
    names = dict(d.graph.latex_names)
    for z, delta in d.backprop.adjoint_symbols.items():
        name = d.graph.latex_names[z]
        if name.startswith("\\"):  # a graph model's node: \mathrm{fc}_{1,2} -> \delta^{\mathrm{fc}}_{1,2}
            base, underscore, index = name.partition("_{")
            names[delta] = rf"\delta^{{{base}}}" + underscore + index
        else:
            names[delta] = r"\delta" + name[1:]  # z_{3}^{(2)} -> \delta_{3}^{(2)}
    return names


def gradient_expressions(d: Derivation, form: str) -> dict[str, sp.Expr]:
    """∂L/∂p of every parameter in ``form`` ("closed" or "program"), keyed by name."""
    if form == "closed":
        return d.gradients()
    return {p.name: d.backprop.program[p.name] for p in d.parameters}


def grads_document(
    source: Network | Derivation, *, form: str = "auto", max_operations: int | None = None
) -> dict[str, Any]:
    """The document that ``derive grads --format json`` prints, as a dict.

    ``{"loss", "point", "form", ["definitions",] "parameters"}``: ``form`` is "closed" or "program" (the one
    ``form="auto"`` chose); the program form adds ``definitions``, a list of ``{"symbol", "expression",
    "value", "latex"}`` in evaluation order. Each parameter has its name, layer, tensor, index, value,
    gradient, frozen flag, and its ``expression`` and ``latex`` in that form.
    """
    check_form(form)
    d = source if isinstance(source, Derivation) else Derivation(source, max_operations=max_operations)
    with gc_paused():  # millions of strings and small dicts, no cycles
        return _grads_document(d, form)


def _grads_document(d: Derivation, form: str) -> dict[str, Any]:
    chosen = choose_form(d, form)
    names = latex_names(d) if chosen == "program" else d.graph.latex_names
    expressions = gradient_expressions(d, chosen)
    document: dict[str, Any] = {
        "loss": d.loss,
        "point": {str(s): v for s, v in d.point.items()},
        "form": chosen,
    }
    if chosen == "program":
        document["definitions"] = [_definition(symbol, expr, d.values[symbol], names) for symbol, expr in definitions(d)]
    strings = {p.name: printed(expressions[p.name], names) for p in d.parameters}
    document["parameters"] = [
        {
            "name": p.name,
            "layer": p.parameter.layer or None,  # None for a graph model: no layer numbers there
            "tensor": p.parameter.tensor,
            "torch": p.parameter.torch,
            "index": list(p.parameter.index),
            "value": p.parameter.value,
            "gradient": p.gradient,
            "frozen": p.parameter.frozen,
            "expression": strings[p.name][0],
            "latex": strings[p.name][1],
        }
        for p in d.parameters
    ]
    return document


def _definition(symbol: sp.Symbol, expr: sp.Expr, value: float, names: dict[sp.Symbol, str]) -> dict[str, Any]:
    """One entry of the program's ``definitions``."""
    text, tex = printed(expr, names)
    return {"symbol": str(symbol), "expression": text, "value": value, "latex": tex}


def grads_latex(d: Derivation, form: str = "auto") -> str:
    """One ``align*`` of every ∂L/∂p in ``form``; the program form first defines its intermediates."""
    chosen = choose_form(d, form)
    names = latex_names(d) if chosen == "program" else d.graph.latex_names
    lines = []
    if chosen == "program":
        lines += [f"{names[symbol]} &= {latex(expr, names)}" for symbol, expr in definitions(d)]
    expressions = gradient_expressions(d, chosen)
    lines += [
        rf"\frac{{\partial \mathcal{{L}}}}{{\partial {names[p.symbol]}}} &= {latex(expressions[p.name], names)}"
        for p in d.parameters
    ]
    return "\\begin{align*}\n" + " \\\\\n".join(lines) + "\n\\end{align*}\n"
