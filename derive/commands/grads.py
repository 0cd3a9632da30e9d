"""``derive grads``: the closed form and value of ∂L/∂p for every parameter (text, LaTeX or JSON)."""

from __future__ import annotations

import argparse
import json

from derive.backprop import MAX_OPERATIONS
from derive.derivation import Derivation
from derive.network import Network
from derive.printing import expression_string, latex


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("grads", help="closed-form ∂L/∂p of every parameter, with values")
    parser.add_argument("--format", choices=("text", "latex", "json"), default="text")
    parser.add_argument(
        "--max-ops", type=int, default=None, metavar="N",
        help=f"refuse forms larger than N operations (default {MAX_OPERATIONS:,})",
    )  # fmt: skip
    parser.set_defaults(run=run)
    return parser


def run(network: Network, args: argparse.Namespace) -> str:
    derivation = Derivation(network, max_operations=args.max_ops)
    return {"text": _grads_text, "latex": _grads_latex, "json": _grads_json}[args.format](derivation)


def _grads_json(d: Derivation) -> str:
    document = {
        "loss": d.loss,
        "point": {str(s): v for s, v in d.point.items()},
        "parameters": [
            {
                "name": p.name,
                "layer": p.parameter.layer or None,  # None for a graph model: no layer numbers there
                "tensor": p.parameter.tensor,
                "torch": p.parameter.torch,
                "index": list(p.parameter.index),
                "value": p.parameter.value,
                "gradient": p.gradient,
                "frozen": p.parameter.frozen,
                "expression": expression_string(d.closed(p.name)),
                "latex": latex(d.closed(p.name), d.graph.latex_names),
            }
            for p in d.parameters
        ],
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _grads_latex(d: Derivation) -> str:
    names = d.graph.latex_names
    lines = [
        rf"\frac{{\partial \mathcal{{L}}}}{{\partial {names[p.symbol]}}} &= {latex(d.closed(p.name), names)}"
        for p in d.parameters
    ]
    return "\\begin{align*}\n" + " \\\\\n".join(lines) + "\n\\end{align*}\n"


#: The text table shows a gradient's compact form up to this many operations, else its program form.
TEXT_FORM_OPERATIONS = 200


def _grads_text(d: Derivation) -> str:
    net = d.network
    lines = [f"loss {net.loss} ({net.reduction}, batch {net.batch}): L = {d.loss:.10g}", ""]
    lines.append(f"{'parameter':<10} {'value':>16} {'dL/dp':>20}   dL/dp over intermediates")
    program = False
    for p in d.parameters:
        if d.backprop.size(p.name, "compact") <= TEXT_FORM_OPERATIONS:
            form = d.compact(p.name)
        else:  # one line a person can read: over the adjoints dL_dzK = ∂L/∂zK of the straight-line program
            form, program = d.backprop.program[p.name], True
        lines.append(f"{p.name:<10} {p.parameter.value:>16.10g} {p.gradient:>20.12g}   {form}")
    if program:
        lines.append(
            f"dL_dzK is ∂L/∂zK, the adjoint of unit K; gradients whose form over intermediates has more than "
            f"{TEXT_FORM_OPERATIONS} operations are shown over the adjoints"
        )
    if net.freeze:
        lines.append(f"frozen (kept in updates): {', '.join(net.freeze)}")
    return "\n".join(lines) + "\n"
