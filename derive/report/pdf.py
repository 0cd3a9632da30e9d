"""Compiling a LaTeX report to PDF with pdflatex, safely.

pdflatex runs with ``-no-shell-escape -interaction=nonstopmode -halt-on-error``, with ``openin_any=p``
(no reading of files outside the working folder), in a fresh temporary folder, under a timeout.
A fixed ``SOURCE_DATE_EPOCH`` makes the PDF reproducible.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from derive.errors import DeriveError


class PdfError(DeriveError):
    """pdflatex is missing, failed, or took too long."""


#: Seconds one pdflatex run may take.
TIMEOUT = 60


def compile_pdf(tex: str, timeout: float = TIMEOUT) -> bytes:
    """The PDF of a LaTeX document (bytes); `PdfError` with a one-line reason when it cannot be made."""
    pdflatex = shutil.which("pdflatex")
    if pdflatex is None:
        raise PdfError("pdflatex is not installed; install TeX Live (Debian: texlive-latex-base "
                       "texlive-latex-recommended texlive-pictures) or use --format tex")
    if "\\usepackage{kotex}" in tex and not _has_package("kotex.sty"):
        raise PdfError("a Korean report needs the kotex package (Debian: texlive-lang-korean); "
                       "use --format html or md, or install it")
    env = dict(os.environ, openin_any="p", openout_any="p", SOURCE_DATE_EPOCH="0", FORCE_SOURCE_DATE="1")
    with tempfile.TemporaryDirectory(prefix="derive-pdf-") as folder:
        source = Path(folder) / "report.tex"
        source.write_text(tex, encoding="utf-8", newline="\n")
        command = [pdflatex, "-no-shell-escape", "-interaction=nonstopmode", "-halt-on-error",
                   "-file-line-error", "report.tex"]
        try:
            result = subprocess.run(command, cwd=folder, env=env, capture_output=True, timeout=timeout,
                                    stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise PdfError(f"pdflatex took longer than {timeout:g} s and was stopped") from None
        pdf = Path(folder) / "report.pdf"
        if result.returncode != 0 or not pdf.exists():
            raise PdfError(f"pdflatex failed: {_first_error(result.stdout.decode('utf-8', 'replace'))}")
        return pdf.read_bytes()


def _first_error(log: str) -> str:
    for line in log.splitlines():
        if line.startswith("!") or ":" in line and " error" in line.lower():
            return line.strip()
    return "see the LaTeX log (no error line found)"


def _has_package(name: str) -> bool:
    kpsewhich = shutil.which("kpsewhich")
    if kpsewhich is None:
        return False
    result = subprocess.run([kpsewhich, name], capture_output=True, text=True, timeout=30)
    return bool(result.stdout.strip())
