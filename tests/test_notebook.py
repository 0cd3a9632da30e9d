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
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    markdown = [o.data["text/markdown"] for o in outputs if "text/markdown" in o.get("data", {})]
    html = [o.data["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert any("| W5 | -0.1725 | 0.2727 |" in m for m in markdown)
    assert any("<table>" in h and "<b>ok</b>" in h for h in html)
    assert "def gradients(x, y, W1, b1, W2, b2):" in text
    assert "wrong: W of layer 1, b of layer 1" in text
    assert any("# Derivation report: seed" in m for m in markdown)


def test_displays_render_in_katex_and_reprs_are_short(katex):  # noqa: F811
    d = derive.derive(derive.examples.seed())
    markdown = d._repr_markdown_()
    blocks = markdown_math(markdown)
    assert blocks and not katex.errors([(f"#{i}", b) for i, b in enumerate(blocks)])
    assert repr(d) == "Derivation(seed: 9 parameters, L = 0.536884)"
    report = verify.check(derive.examples.seed())
    assert repr(report).startswith("CheckReport(seed") and repr(report).endswith(": ok)")
    assert report._repr_html_().count("<tr>") == len(report.rows) + 2  # header, rows, loss
