r"""How derive's objects show themselves in Jupyter: Markdown with KaTeX/MathJax-clean math, HTML tables.

`Derivation` shows its loss, a table of every parameter's value and gradient, and (for small networks) each
gradient's compact form as display math; `verify.CheckReport` an HTML table; a report `Document` its Markdown.

>>> import derive
>>> text = derivation_markdown(derive.derive(derive.examples.seed()))
>>> "| W5 | -0.1725 | 0.2727 |" in text and r"\frac{\partial \mathcal{L}}{\partial W_{5}}" in text
True
"""

from __future__ import annotations

from html import escape
from typing import Any

from derive.backprop import ExpressionTooLarge

#: Networks with at most this many parameters show each gradient's compact form.
FORMS = 12
#: Compact forms of more operations than this are left out of the display.
FORM_OPERATIONS = 60


def _number(value: float) -> str:
    """As a report shows it at 4 digits (plain text: 7.437e-5, 1.616e306)."""
    from derive.report.numformat import fmt, plain

    return plain(fmt(value, 4))


def derivation_markdown(d: Any) -> str:
    """The derivation as Markdown: the loss, a table of gradients, the compact forms of a small network."""
    from derive.printing import latex

    net = d.network
    lines = [f"**Derivation: {escape(net.name)}** — loss {net.loss} ({net.reduction}, batch {net.batch}): "
             f"L = {_number(d.loss)}", "", "| parameter | value | ∂L/∂p |", "|---|---:|---:|"]
    lines += [f"| {p.name} | {_number(p.parameter.value)} | {_number(p.gradient)} |" for p in d.parameters]
    if len(d.parameters) <= FORMS:
        names = d.graph.latex_names
        forms = []
        for p in d.parameters:
            if d.backprop.size(p.name, "compact") > FORM_OPERATIONS:
                continue
            try:
                form = latex(d.compact(p.name), names)
            except ExpressionTooLarge:
                continue
            forms.append(rf"\frac{{\partial \mathcal{{L}}}}{{\partial {names[p.symbol]}}} &= {form} = "
                         f"{_number(p.gradient)}")
        if forms:
            lines += ["", "$$", r"\begin{aligned}", " \\\\\n".join(forms), r"\end{aligned}", "$$"]
    return "\n".join(lines) + "\n"


def check_html(report: Any) -> str:
    """A check report as an HTML table: each parameter, both values, the errors, the verdict."""
    status = "ok" if report.ok else "MISMATCH"
    head = (f"<p><b>{escape(report.network)}</b>: derive's gradients vs torch autograd on {report.device}, "
            f"{report.dtype}: <b>{status}</b></p>")
    cells = "".join(f"<th>{h}</th>" for h in ("parameter", "symbolic", "autograd", "abs err", "rel err", "verdict"))
    rows = []
    for r in report.rows:
        verdict = escape(r.verdict.removeprefix("<-- ")) if r.verdict else ("ok" if r.ok else "mismatch")
        style = "" if r.ok else ' style="color:#a0301c"'
        rows.append(f"<tr{style}><td>{escape(r.name)}</td><td>{r.symbolic:.15g}</td><td>{r.autograd:.15g}</td>"
                    f"<td>{r.abs_error:.2e}</td><td>{r.rel_error:.2e}</td><td>{verdict}</td></tr>")
    loss = (f"<tr><td>loss</td><td>{report.loss_symbolic:.15g}</td><td>{report.loss_autograd:.15g}</td>"
            f"<td>{abs(report.loss_symbolic - report.loss_autograd):.2e}</td><td></td>"
            f"<td>{'ok' if report.loss_ok else 'mismatch'}</td></tr>")
    notes = "".join(f"<p>{escape(n)}</p>" for n in report.notes)
    return f"{head}<table><thead><tr>{cells}</tr></thead><tbody>{''.join(rows)}{loss}</tbody></table>{notes}"
