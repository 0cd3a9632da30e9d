r"""The backward pass of a report, layer by layer in reverse, then the update and the training steps.

For a small network every gradient is written as the chain rule: each path from the loss down to the
parameter as a product of local derivatives (each shown once with its formula and value), summed over the
paths, then in its compact closed form over the forward quantities. A larger network is shown through its
error terms δ = ∂L/∂z, which keeps the report linear in the size of the network.

>>> import derive
>>> from derive.report.shown import Shown
>>> s = Shown(derive.derive(derive.examples.seed()), 4)
>>> print(chain_equation(s, "W5").parts[1])
1.7107 \cdot 0.2428 \cdot 0.6565
"""

from __future__ import annotations

import sympy as sp

from derive.backprop import ExpressionTooLarge, Factor
from derive.derivation import Derivation
from derive.model.graph import Model
from derive.report.document import Equation, Heading, Paragraph, Table
from derive.report.labels import label
from derive.report.layout import WIDTH, chunks, visible
from derive.report.numformat import product, total
from derive.report.shown import Shown
from derive.training import History, learning_rate, step
from derive.training.optimizers import SGD

#: Chains are written out when no parameter has more paths than this and the network has at most
#: `CHAIN_PARAMETERS` parameters; otherwise the report shows the error terms δ.
CHAIN_PATHS = 4
CHAIN_PARAMETERS = 40
#: Closed forms longer than this (characters of LaTeX), or with an unbreakable piece wider than two lines,
#: are left out.
CLOSED_LIMIT = 1200
#: Closed forms are not even built past this many operations.
CLOSED_OPERATIONS = 2000
#: Parameter columns per table of training steps.
TABLE_COLUMNS = 8


def uses_chains(d: Derivation) -> bool:
    """Whether the report writes every gradient as its chain of local derivatives."""
    if d.network.batch != 1 or len(d.parameters) > CHAIN_PARAMETERS:
        return False
    return all((c := d.chain(p.name)) is not None and len(c) <= CHAIN_PATHS for p in d.parameters)


def by_layer(d: Derivation) -> list[list]:
    """Parameters grouped by layer, last layer first (the order of the backward pass)."""
    layers: dict[int, list] = {}
    for p in d.parameters:
        layers.setdefault(p.parameter.layer, []).append(p)
    return [layers[layer] for layer in sorted(layers, reverse=True)]


def factor_equation(s: Shown, factor: Factor) -> Equation:
    """A local derivative: its formula, the numbers substituted, its value."""
    value = _factor_value(s, factor)
    parts = [s.latex(factor.expr)]
    if not (factor.expr.is_Symbol or factor.expr.is_Number):
        parts.append(s.substitute(factor.expr))
    if parts[0] == value:
        parts = []
    return Equation(s.partial(factor.numerator, factor.denominator), (*parts, value))


def chain_equation(s: Shown, name: str) -> Equation:
    """∂L/∂p: the sum over paths of products of local derivatives, then the compact form, then the value."""
    d = s.d
    paths = d.chain(name) or []
    symbolic = " + ".join(" ".join(s.partial(f.numerator, f.denominator) for f in path) for path in paths)
    numeric = total([product([_factor_value(s, f) for f in path]) for path in paths])
    compact = d.compact(name)
    parameter = d._by_name(name)
    return Equation(
        s.partial(s.graph.loss, parameter.symbol),
        (symbolic, numeric, s.latex(compact), s.substitute(compact), s.number(parameter.gradient)),
    )


def _factor_value(s: Shown, factor: Factor) -> str:
    if factor.expr.is_Symbol and factor.expr in s.exact:
        return s.value(factor.expr)
    if factor.expr.is_Integer:
        return str(factor.expr)
    return s.number(s.evaluate(factor.expr))


def chain_section(s: Shown, lang: str) -> list:
    """Local derivatives and chains, layer by layer in reverse."""
    blocks: list = [Paragraph(label(lang, "compact_text"))]
    shown: set[tuple[sp.Symbol, sp.Symbol]] = set()
    for params in by_layer(s.d):
        layer = params[0].parameter.layer
        blocks.append(Heading(3, label(lang, "local", layer=layer)))
        for p in params:
            for path in s.d.chain(p.name) or []:
                for factor in path:
                    key = (factor.numerator, factor.denominator)
                    if key not in shown:
                        shown.add(key)
                        blocks.append(factor_equation(s, factor))
        blocks.append(Heading(3, label(lang, "gradients", layer=layer)))
        blocks += [chain_equation(s, p.name) for p in params]
    return blocks


def delta_section(s: Shown, lang: str) -> list:
    """Error terms δ = ∂L/∂z per layer (in reverse), then ∂L/∂p over them."""
    g, bp = s.graph, s.d.backprop
    blocks: list = []
    for params in by_layer(s.d):
        layer = params[0].parameter.layer
        blocks.append(Heading(3, label(lang, "deltas", layer=layer)))
        for row in g.pre[layer - 1]:
            for z in row:
                delta = bp.adjoint_symbols[z]
                expr = bp.adjoints[delta]
                blocks.append(
                    Equation(
                        s.name(delta),
                        (s.partial(g.loss, z), s.latex(expr), s.substitute(expr), s.value(delta)),
                    )
                )
        blocks.append(Heading(3, label(lang, "gradients", layer=layer)))
        for p in params:
            expr = bp.program[p.name]
            blocks.append(
                Equation(
                    s.partial(g.loss, p.symbol),
                    (s.latex(expr), s.substitute(expr), s.number(p.gradient)),
                )
            )
    return blocks


def closed_lengths(s: Shown) -> dict[str, int]:
    """A lower bound on the LaTeX length of every closed form, counted on the program without building it.

    Each symbol of the closed form is printed whole (its LaTeX name), each sum adds at least a sign between
    terms and each function at least its own name; an intermediate (z, a, δ) counts as what it stands for.
    Time linear in the program: the report decides which closed forms to render from this alone.
    """
    bp, names = s.d.backprop, s.names
    inlined: dict[sp.Symbol, int] = {}

    def length(expr: sp.Expr) -> int:
        memo: dict[sp.Basic, int] = {}

        def count(e: sp.Basic) -> int:
            if e.is_Symbol:
                return inlined[e] if e in inlined else len(names.get(e, e.name))
            if not e.args:
                return 0  # a number: a coefficient of 1 or −1 is not printed at all
            cached = memo.get(e)
            if cached is None:
                own = len(e.args) - 1 if e.is_Add else (1 if isinstance(e, sp.Function) else 0)
                cached = memo[e] = own + sum(count(arg) for arg in e.args)
            return cached

        return count(expr)

    for node in s.graph.nodes:
        inlined[node.symbol] = length(node.expr)
    for delta, expr in bp.adjoints.items():
        inlined[delta] = length(expr)
    return {p.name: length(bp.program[p.name]) for p in s.d.parameters}


def closed_section(s: Shown, lang: str) -> list:
    """The closed form of every gradient (over inputs, targets and parameters), when short enough.

    Forms whose LaTeX is sure to be longer than `CLOSED_LIMIT` (`closed_lengths`) are not built.
    """
    blocks: list = [Heading(2, label(lang, "closed")), Paragraph(label(lang, "closed_text"))]
    lengths = closed_lengths(s)
    for p in s.d.parameters:
        try:
            if lengths[p.name] > CLOSED_LIMIT:
                raise ExpressionTooLarge(p.name)
            text = s.latex(s.d.closed(p.name, max_operations=CLOSED_OPERATIONS))
        except ExpressionTooLarge:
            text = ""
        if not text or len(text) > CLOSED_LIMIT or max(visible(c) for c in chunks(text)) > 2 * WIDTH:
            blocks.append(Paragraph(label(lang, "closed_omitted", name=p.name)))
        else:
            blocks.append(Equation(s.partial(s.graph.loss, p.symbol), (text,)))
    return blocks


def plain(history: History | None) -> bool:
    """Whether the steps are plain gradient descent, W(t+1) = W(t) − α ∂L/∂W(t), with the network's rate."""
    if history is None:
        return True
    opt = history.optimizer
    return isinstance(opt, SGD) and opt.plain() and opt.lr in (None, history.steps[0].network.lr)


def update_section(s: Shown, lang: str, history: History | None = None) -> list:
    """W(t+1) = W(t) − α ∂L/∂W(t) with numbers, for every parameter (last layer first); with another
    optimizer (``history.optimizer``), each of its quantities (g, m, v, m̂, v̂, …) and the step."""
    if not plain(history):
        return optimizer_section(s, lang, history)
    d = s.d
    lr = s.number(d.network.lr, exact=True)
    updated = {p.name: p.value for p in step(d).parameters()}
    blocks: list = [Heading(2, label(lang, "update")), Paragraph(label(lang, "update_text", lr=lr))]
    for params in by_layer(d):
        for p in params:
            name = s.name(p.symbol)
            value = s.number(p.parameter.value)
            blocks.append(
                Equation(
                    f"{name}(t+1)",
                    (
                        rf"{name}(t) - \alpha \frac{{\partial \mathcal{{L}}}}{{\partial {name}(t)}}",
                        f"{value} - {product([lr, s.number(p.gradient)])}",
                        s.number(updated[p.name]),
                    ),
                )
            )
    return blocks


def optimizer_intro(s: Shown, lang: str, history: History) -> list:
    """The heading and the optimizer's rule in words, with its options."""
    opt = history.optimizer
    lr = s.number(learning_rate(opt, s.d.network), exact=True)
    options = "".join(
        f", {key} = {_option(value)}" for key, value in opt.options().items() if key != "lr"
    )
    text = label(lang, "update_optimizer", optimizer=opt.name, torch=opt.torch_name, lr=lr, options=options,
                 rule=label(lang, f"rule_{opt.name}"), t=1)
    return [Heading(2, label(lang, "update")), Paragraph(text)]


def _option(value) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, tuple):
        return "(" + ", ".join(f"{v:g}" for v in value) + ")"
    return f"{value:g}"


def optimizer_section(s: Shown, lang: str, history: History) -> list:
    """The first step of ``history.optimizer`` written out for every parameter (last layer first)."""
    opt, quantities = history.optimizer, history.updates[0]
    lr = s.number(learning_rate(opt, s.d.network), exact=True)
    blocks = optimizer_intro(s, lang, history)
    for params in by_layer(s.d):
        for p in params:
            name = s.name(p.symbol)
            if p.name not in quantities:
                blocks.append(Paragraph(label(lang, "frozen_kept", name=p.name)))
                continue
            for lhs, *parts in opt.equations(name, quantities[p.name], s.number, lr, 1):
                blocks.append(Equation(lhs, tuple(part for part in parts if part)))
    return blocks


def steps_section(history: History, final_loss: float, digits: int, lang: str) -> list:
    """The parameters and the loss before every step, as tables; whether the loss decreases."""
    from derive.report.numformat import fmt

    names = [p.name for p in history.steps[0].parameters]
    losses = [*history.losses, final_loss]
    values = [[p.parameter.value for p in d.parameters] for d in history.steps]
    values.append([p.value for p in history.final.parameters()])
    blocks: list = [Heading(2, label(lang, "steps")), Paragraph(label(lang, "steps_text"))]
    latex_names = history.steps[0].graph.latex_names
    symbols = history.steps[0].graph.parameters
    for start in range(0, len(names), TABLE_COLUMNS):
        columns = range(start, min(start + TABLE_COLUMNS, len(names)))
        rows = tuple(
            (str(t), fmt(losses[t], digits), *(fmt(values[t][c], digits) for c in columns))
            for t in range(len(losses))
        )
        blocks.append(
            Table(
                ("t", r"\mathcal{L}", *(latex_names[symbols[c]] for c in columns)),
                ("t", "L", *(names[c] for c in columns)),
                rows,
            )
        )
    decreasing = all(b < a for a, b in zip(losses, losses[1:]))
    blocks.append(Paragraph(label(lang, "decreasing" if decreasing else "not_decreasing")))
    return blocks


def gradient_table(s: Shown, lang: str, history: History | None = None) -> Table:
    """Every parameter with its value, gradient and updated value (by ``history``'s optimizer, if given)."""
    after = step(s.d) if history is None else (history.steps[1].network if len(history.steps) > 1 else history.final)
    updated = {p.name: p.value for p in after.parameters()}
    rows = tuple(
        (p.name, s.number(p.parameter.value), s.number(p.gradient), s.number(updated[p.name]))
        for p in s.d.parameters
    )
    # a graph model's names (W_fc_1_2) are not LaTeX: its LaTeX rows use the LaTeX names (W^{fc}_{1,2})
    graph = not s.d.network.textbook
    latex_rows = tuple((s.name(p.symbol) if graph else p.name, *row[1:]) for p, row in zip(s.d.parameters, rows))
    words = tuple(label(lang, key) for key in ("parameter", "value", "gradient", "updated"))
    header = (
        r"\text{" + words[0] + "}" if lang == "en" else "p",
        r"p",
        r"\partial \mathcal{L} / \partial p",
        r"p - \alpha \, \partial \mathcal{L} / \partial p" if plain(history) else r"p(t+1)",
    )
    return Table(header, words, latex_rows, rows if latex_rows != rows else ())
