"""Wall time of the attention chapter's reports from a fresh interpreter (torch's import and the module's
export included), against the issue's target of 6 s for reports of this size.

For each block (examples/attention_block.py's three, and torch's TransformerEncoderLayer(4, 2,
dim_feedforward=8, dropout=0.0, batch_first=True) with a head, from tests/models/modern_zoo.py), on its
3-token input from .npy files: ``derive report … -o r.tex`` and ``--pdf`` (pdflatex included), medians of
``--repeats`` runs.

Run: ``python benchmarks/attention.py`` (``--json``: machine output).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
BLOCKS = [("OneHeadBlock", "examples/attention_block.py"), ("TwoHeadBlock", "examples/attention_block.py"),
          ("TorchMHABlock", "examples/attention_block.py"), ("EncoderLayer", "tests/models/modern_zoo.py")]


def seconds(args: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "derive", "report", *args], check=True, cwd=ROOT, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args()
    x = json.loads((ROOT / "examples" / "attention_x.json").read_text())
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        np.save(tmp / "x.npy", np.array(x))
        np.save(tmp / "y.npy", np.array([2]))
        for cls, file in BLOCKS:
            data = ["--torch", f"{ROOT / file}:{cls}", "--x", str(tmp / "x.npy"), "--y", str(tmp / "y.npy"),
                    "--loss", "cross_entropy"]
            results[cls] = {"tex_s": seconds([*data, "-o", str(tmp / "r.tex")], options.repeats),
                            "pdf_s": seconds([*data, "--pdf", "-o", str(tmp / "r.pdf")], options.repeats)}
    if options.json:
        print(json.dumps(results, indent=2))
        return
    for cls, r in results.items():
        print(f"{cls:14} report (tex) {r['tex_s']:.2f} s   report (pdf) {r['pdf_s']:.2f} s   target 6 s")


if __name__ == "__main__":
    main()
