#!/usr/bin/env bash
# Set up a virtual environment in .venv with derive installed (editable: code changes need no rerun).
#   scripts/setup.sh          derive alone (deriving and reporting need no torch)
#   scripts/setup.sh test     + CPU torch and the test tools
# The set-up is skipped when .venv is current: its stamp records the Python, pyproject.toml and the mode
# it was made with ('test' serves both). A fresh clone (no .venv) installs everything; DERIVE_SETUP=force
# reinstalls.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-base}"
stamp=".venv/.derive-setup"
want() { # the stamp line for a mode
  printf '%s %s %s\n' "$1" "$(python3 -c 'import sys; print(sys.version.split()[0])')" \
    "$(python3 -c 'import hashlib; print(hashlib.sha256(open("pyproject.toml", "rb").read()).hexdigest())')"
}
if [ "${DERIVE_SETUP:-}" != "force" ] && [ -x .venv/bin/python ] && [ -x .venv/bin/derive ] && [ -f "$stamp" ]; then
  if grep -qxF "$(want "$mode")" "$stamp" || { [ "$mode" = base ] && grep -qxF "$(want test)" "$stamp"; }; then
    exit 0
  fi
fi
rm -f "$stamp"
python3 -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip >/dev/null
if [ "$mode" = "test" ]; then
  # The CPU build of torch first: a bare `torch` requirement can pull a multi-GB CUDA build.
  python -m pip install -q torch==2.13.0
  python -m pip install -q -e ".[torch,test]"
else
  python -m pip install -q -e .
fi
want "$mode" > "$stamp"
