#!/usr/bin/env bash
# Set up a virtual environment in .venv with derive installed.
#   scripts/setup.sh          derive alone (deriving and reporting need no torch)
#   scripts/setup.sh test     + CPU torch and the test tools
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip >/dev/null
if [ "${1:-}" = "test" ]; then
  # The CPU build of torch first: a bare `torch` requirement can pull a multi-GB CUDA build.
  python -m pip install -q torch==2.13.0
  python -m pip install -q -e ".[torch,test]"
else
  python -m pip install -q -e .
fi
