#!/usr/bin/env bash
# Set up derive, then write the seed network's walk-through: forward pass, loss, chain rule, update.
# Markdown on standard output by default; extra arguments go to `derive report`
# (e.g. `--format tex -o seed.tex`, `--pdf -o seed.pdf`, `--lang ko`, `--steps 3`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >&2
if [ "$#" -eq 0 ]; then
  set -- --format md
fi
.venv/bin/derive report --example seed "$@"
