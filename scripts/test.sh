#!/usr/bin/env bash
# Set up everything the test suite needs on a fresh machine, then run it. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh all
# The report tests compile every LaTeX report with pdflatex (Korean ones with kotex) and render every
# Markdown formula with KaTeX.
if ! command -v pdflatex >/dev/null 2>&1 || ! kpsewhich kotex.sty >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends \
    texlive-latex-base texlive-latex-recommended texlive-pictures latexmk poppler-utils \
    texlive-lang-korean >/dev/null
fi
if command -v npm >/dev/null 2>&1; then
  (cd tools/katex && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
set +e
# One test worker per core (pytest-xdist, the test extra); DERIVE_TEST_WORKERS=0 runs in this process alone.
.venv/bin/python -m pytest -p no:cacheprovider -n "${DERIVE_TEST_WORKERS:-auto}" "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "no tests were collected: that is a failure" >&2
  exit 1
fi
exit "$rc"
