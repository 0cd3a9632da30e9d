#!/usr/bin/env bash
# Set up a virtual environment in .venv with derive installed (editable: code changes need no rerun).
#   scripts/setup.sh          derive alone (deriving and reporting need no torch)
#   scripts/setup.sh all      everything: torch (its CPU build), hypothesis (derive check) and the test tools
#                             ('test' is the same)
# torch comes from its CPU index (https://download.pytorch.org/whl/cpu) where that index answers within
# DERIVE_TORCH_TIMEOUT seconds (default 10), else as the plain pin from the configured index (which some
# machines serve as a CPU build): a bare `torch` requirement can pull a multi-GB CUDA build.
# The set-up is skipped when .venv is current: its stamp records the Python, pyproject.toml and the mode
# it was made with ('all' serves both). A fresh clone (no .venv) installs everything; DERIVE_SETUP=force
# reinstalls.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-base}"
case "$mode" in
  base) ;;
  all|test) mode=all ;;
  *) echo "setup.sh: unknown mode '$mode': use no argument (derive alone) or 'all' (everything)" >&2; exit 2 ;;
esac
torch_pin="torch==2.13.0"
cpu_index="https://download.pytorch.org/whl/cpu"
stamp=".venv/.derive-setup"
want() { # the stamp line for a mode
  printf '%s %s %s\n' "$1" "$(python3 -c 'import sys; print(sys.version.split()[0])')" \
    "$(python3 -c 'import hashlib; print(hashlib.sha256(open("pyproject.toml", "rb").read()).hexdigest())')"
}
if [ "${DERIVE_SETUP:-}" != "force" ] && [ -x .venv/bin/python ] && [ -x .venv/bin/derive ] && [ -f "$stamp" ]; then
  if grep -qxF "$(want "$mode")" "$stamp" || { [ "$mode" = base ] && grep -qxF "$(want all)" "$stamp"; }; then
    exit 0
  fi
fi
rm -f "$stamp"
python3 -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip >/dev/null
if [ "$mode" = "all" ]; then
  # torch first, so that the extras below find it installed and pull no other build
  if ! python -m pip install -q --timeout "${DERIVE_TORCH_TIMEOUT:-10}" --retries 0 --index-url "$cpu_index" \
      "$torch_pin" 2>/dev/null; then
    echo "setup.sh: torch's CPU index did not answer; installing $torch_pin from the configured index" >&2
    python -m pip install -q "$torch_pin"
  fi
  python -m pip install -q -e ".[torch,check,test]"
else
  python -m pip install -q -e .
fi
want "$mode" > "$stamp"
