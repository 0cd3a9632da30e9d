"""``derive grads``: the closed form and value of ∂L/∂p for every parameter (text, LaTeX or JSON)."""

from __future__ import annotations

import argparse
import json
import textwrap

from derive import json_text, naming
from derive.backprop import MAX_OPERATIONS
from derive.errors import DeriveError
from derive.commands.options import (
    HelpFormatter,
    add_max_params,
    add_max_sample_params,
    add_optimizer,
    count,
    optimizer_from,
)
from derive.derivation import Derivation
from derive.forms import AUTO_MAX_OPERATIONS, AUTO_TOTAL_OPERATIONS, FORMS, grads_document, grads_latex
from derive.hessian import hessian
from derive.model.graph import Model
from derive.printing import plain_string


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "grads", help="closed-form ∂L/∂p of every parameter, with values", formatter_class=HelpFormatter
    )
    parser.add_argument("--format", choices=("text", "latex", "json"), default="text", help="what to print")
    parser.add_argument(
        "--form", choices=(*FORMS, "tensor"), default="auto",
        help="json and latex: closed forms, or the program (intermediates z, a, δ defined in order, gradients "
        "over them), or the tensor program (one definition per tensor and adjoint: any size); auto: closed "
        f"while no form has over {AUTO_MAX_OPERATIONS} operations and all together at most "
        f"{AUTO_TOTAL_OPERATIONS:,}, the tensor form past --max-params",
    )  # fmt: skip
    parser.add_argument(
        "--max-ops", type=count, default=None, metavar="N",
        help=f"refuse forms larger than N operations (default {MAX_OPERATIONS:,})",
    )  # fmt: skip
    add_max_params(parser, MAX_PARAMETERS, "the time grows with them, with --form closed fastest")
    add_max_sample_params(parser, MAX_SAMPLE_PARAMETERS)
    add_optimizer(parser)
    parser.add_argument("--prove", action="store_true",
                        help="also prove every tensor rule the tensor program uses against the scalar derivation of a "
                        "small instance (JSON: a \"proofs\" list; exit 1 when one fails)")
    parser.add_argument("--hessian", action="store_true",
                        help="also the Hessian ∂²L/∂p_i∂p_j (JSON: a \"hessian\" object; text: a matrix)")
    parser.set_defaults(run=run)
    return parser


#: Networks over this many parameters are refused up front (--max-params N overrides): 10k answer in under
#: 10 s in every format with the auto form (docs/performance.md); 1M would take minutes.
MAX_PARAMETERS = 10_000
#: Data whose samples × parameters exceed this are refused up front (--max-sample-params raises it).
MAX_SAMPLE_PARAMETERS = 100_000


def run(network: Model, args: argparse.Namespace) -> str | tuple[str, int]:
    text = _tensor(network, args) if args.form == "tensor" else _scalar(network, args)
    if not args.prove:
        return text
    from derive.tensor.proof import prove

    proofs = prove(network)
    failed = [p for p in proofs if not p.holds]
    if args.format == "json":
        document = json.loads(text)
        document["proofs"] = [{"op": p.op, "rule": list(p.rule), "shapes": [list(s) for s in p.shapes],
                               "entries": p.entries, "arithmetic": p.arithmetic, "holds": p.holds,
                               "statement": p.statement()} for p in proofs]
        text = json_text.dumps(document) + "\n"
    else:
        text += "\nproofs of the tensor rules:\n" + "".join(f"  {p.statement()}\n" for p in proofs)
    return (text, 1) if failed else text


def _scalar(network: Model, args: argparse.Namespace) -> str:
    derivation = Derivation(network, max_operations=args.max_ops)
    opt = optimizer_from(args, getattr(network, "optimizer", None))
    if args.format == "json":
        document = grads_document(derivation, form=args.form)
        if network.textbook:  # how the names read in the report and in derive code
            document["names"] = {"report": naming.units(network), "note": naming.note(network, "grads")}
        if opt is not None:
            document["optimizer"] = optimizer_step(derivation, opt)
        if args.hessian:
            H = hessian(derivation)
            document["hessian"] = {"names": H.names, "values": H.values.tolist()}
        return json_text.dumps(document) + "\n"
    if args.format == "latex":
        return grads_latex(derivation, args.form) + _comment(naming.note(network, "grads"), "% ")
    text = _grads_text(derivation)  # the text table chooses its own form per line
    if args.hessian:
        H = hessian(derivation)
        text += "\nHessian ∂²L/∂p_i∂p_j:\n" + f"{'':<10}" + "".join(f" {n:>12}" for n in H.names) + "\n"
        text += "".join(f"{n:<10}" + "".join(f" {v:>12.6g}" for v in row) + "\n" for n, row in zip(H.names, H.values))
    text += _comment(naming.note(network, "grads"), "")
    if opt is not None:
        step = optimizer_step(derivation, opt)
        text += f"\nafter one {opt.name} step (torch.optim.{opt.torch_name}, lr {step['lr']:g}):\n"
        text += "".join(f"{name:<10} {value:>16.10g}\n" for name, value in step["updated"].items())
    return text


def _comment(note: str, prefix: str) -> str:
    """``note`` wrapped to lines of at most 110 characters, each after ``prefix`` (``""`` when there is none)."""
    if not note:
        return ""
    return "".join(f"{prefix}{line}\n" for line in textwrap.wrap(note, 110 - len(prefix), subsequent_indent="  "))


def optimizer_step(derivation: Derivation, opt) -> dict:
    """One step of ``opt`` from the derivation: its name, options, rate, the new values and the state."""
    from derive.training import apply, learning_rate

    network, state, _ = apply(opt, derivation, 1)
    return {
        "name": opt.name, "options": {k: v for k, v in opt.options().items() if k != "lr"},
        "lr": learning_rate(opt, derivation.network),
        "updated": {p.name: p.value for p in network.parameters()}, "state": state,
    }


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
        lines.append(f"{p.name:<10} {p.parameter.value:>16.10g} {p.gradient:>20.12g}   {plain_string(form)}")
    if program:
        lines.append(
            f"dL_dzK is ∂L/∂zK, the adjoint of unit K; gradients whose form over intermediates has more than "
            f"{TEXT_FORM_OPERATIONS} operations are shown over the adjoints"
        )
    if net.freeze:
        lines.append(f"frozen (kept in updates): {', '.join(net.freeze)}")
    return "\n".join(lines) + "\n"


def _tensor(network: Model, args: argparse.Namespace) -> str:
    """The tensor form: the program of tensor definitions (JSON, LaTeX, or text: the definitions with their
    shapes, then each gradient's values)."""
    from derive.tensor.document import tensor_document, tensor_latex

    if args.hessian or optimizer_from(args, getattr(network, "optimizer", None)) is not None:
        raise DeriveError("--hessian and --optimizer take the scalar forms: give --form closed or program")
    if args.format == "latex":
        return tensor_latex(network)
    document = tensor_document(network)
    if args.format == "json":
        return json_text.dumps(document) + "\n"
    lines = [f"loss {network.loss} ({network.reduction}): L = {document['loss']:.10g}  (tensor form)", ""]
    width = max(len(d["symbol"]) for d in document["definitions"])
    for d in document["definitions"]:  # the program, one tensor a line, with its shape
        shape = "×".join(map(str, d["shape"])) or "scalar"
        lines.append(f"  {d['symbol']:<{width}} = {d['expression']}    [{shape}]")
    lines.append("")
    for p in document["parameters"]:
        lines.append(f"{p['torch']} ({p['name']}, {'×'.join(map(str, p['shape'])) or 'scalar'}) = {p['expression']}:")
        lines.append(f"  {json.dumps(p['gradient'])}")
    return "\n".join(lines) + "\n"
