#!/usr/bin/env bash
# Set up derive, then write the seed network's walk-through: forward pass, loss, chain rule, update.
# Markdown on standard output by default; extra arguments go to `derive report`
# (e.g. `--format tex -o seed.tex`, `--pdf -o seed.pdf`, `--lang ko`, `--steps 3`).
# Relative paths (-o seed.tex) are relative to the directory the script is run from. Markdown stays the
# default with extra arguments, unless --format, --pdf or -o FILE with a known suffix chooses another.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bash "$root/scripts/setup.sh" >&2
chosen=""
previous=""
for arg in "$@"; do
  case "$arg" in
    --format|--format=*|--pdf) chosen=1 ;;
    -o=*.tex|-o=*.md|-o=*.html|-o=*.pdf|--output=*.tex|--output=*.md|--output=*.html|--output=*.pdf) chosen=1 ;;
    *.tex|*.md|*.html|*.pdf) if [ "$previous" = "-o" ] || [ "$previous" = "--output" ]; then chosen=1; fi ;;
  esac
  previous="$arg"
done
if [ -z "$chosen" ]; then
  set -- --format md "$@"
fi
exec "$root/.venv/bin/derive" report --example seed "$@"
