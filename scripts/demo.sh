#!/usr/bin/env bash
# Set up derive, then derive the seed network: every gradient, its closed form and its value.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >&2
.venv/bin/derive grads --example seed "$@"
