"""docs/notebook.ipynb runs top to bottom in a real kernel, and derive's objects display themselves."""

from pathlib import Path

import pytest

import derive
import verify
from tests.test_report_tools import katex, markdown_math  # noqa: F401 (fixture)

ROOT = Path(__file__).resolve().parents[1]


def test_the_tutorial_notebook_runs_and_shows_what_it_says():
    nbformat = pytest.importorskip("nbformat")
    from nbclient import NotebookClient

    notebook = nbformat.read(ROOT / "docs" / "notebook.ipynb", as_version=4)
    NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    cells = [cell.outputs for cell in notebook.cells if cell.cell_type == "code"]
    assert not [o for outputs in cells for o in outputs if o.output_type == "error"]

    def shown(k: int, kind: str) -> str:
        """What code cell k displayed: its rich output of ``kind``, or its printed text."""
        if kind == "stream":
            return "".join(o.get("text", "") for o in cells[k] if o.output_type == "stream")
        return "".join(o.data[kind] for o in cells[k] if kind in o.get("data", {}))

    derivation, check, code, graded, report = range(5)
    assert "| W5 | -0.1725 | 0.2727 |" in shown(derivation, "text/markdown")
    assert "<table>" in shown(check, "text/html") and "<b>ok</b>" in shown(check, "text/html")
    assert "def gradients(x, y, W1, b1, W2, b2):" in shown(code, "stream")
    assert "wrong: W of layer 1, b of layer 1" in shown(graded, "stream")
    assert "# Derivation report: seed" in shown(report, "text/markdown")
    history, curvature = report + 1, report + 2
    assert "| 3 |  | 0.7355 |" in shown(history, "text/markdown")  # W1 after three Adam steps
    assert r"\begin{array}" in shown(curvature, "text/markdown") and "0.1047" in shown(curvature, "text/markdown")


def test_displays_render_in_katex_and_reprs_are_short(katex):  # noqa: F811
    d = derive.derive(derive.examples.seed())
    markdown = d._repr_markdown_()
    blocks = markdown_math(markdown)
    assert blocks and not katex.errors([(f"#{i}", b) for i, b in enumerate(blocks)])
    assert repr(d) == "Derivation(seed: 9 parameters, L = 0.536884)"
    report = verify.check(derive.examples.seed())
    assert repr(report).startswith("CheckReport(seed") and repr(report).endswith(": ok)")
    assert report._repr_html_().count("<tr>") == len(report.rows) + 2  # header, rows, loss
