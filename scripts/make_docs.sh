#!/usr/bin/env bash
# Regenerate the generated parts of docs/: the seed's rendered pages (the tutorial), the residual block's,
# the BPTT and the CNN reports (Markdown) and their rendered pages.
# tests/test_docs.py checks that the docs/*-report.md files are what derive prints today.
set -euo pipefail
cd "$(dirname "$0")/.."

# The tutorial: the seed report's first page (the network, the forward pass) and third (layer 1's gradients).
tmp="$(mktemp -d)"
.venv/bin/derive report --example seed --pdf -o "$tmp/seed.pdf"
pdftoppm -png -r 80 -f 1 -l 1 "$tmp/seed.pdf" "$tmp/page1"
pdftoppm -png -r 80 -f 3 -l 3 "$tmp/seed.pdf" "$tmp/page3"
cp "$tmp"/page1*.png docs/images/seed-report-page1.png
cp "$tmp"/page3*.png docs/images/seed-report-page3.png
rm -rf "$tmp"
DATA=(--torch examples/residual_block.py:ResidualBlock --x "1,1;0.5,-1" --y "0;1" --loss bce)
.venv/bin/derive report "${DATA[@]}" --format md -o docs/residual-block-report.md
tmp="$(mktemp -d)"
.venv/bin/derive report "${DATA[@]}" --pdf -o "$tmp/residual.pdf"
pdftoppm -png -r 80 -f 1 -l 1 "$tmp/residual.pdf" "$tmp/page1"
pdftoppm -png -r 80 -f 5 -l 5 "$tmp/residual.pdf" "$tmp/page5"
cp "$tmp"/page1*.png docs/images/residual-report-page1.png
cp "$tmp"/page5*.png docs/images/residual-report-page5.png
rm -rf "$tmp"

# The BPTT walk-through: a many-to-one RNN over 4 steps, its report and the page with the through-time table.
DATA=(--torch examples/sentiment_rnn.py:SentimentRNN --x examples/sentiment_x.json --y "1;0" --loss bce)
.venv/bin/derive report "${DATA[@]}" --format md -o docs/bptt-report.md
tmp="$(mktemp -d)"
.venv/bin/derive report "${DATA[@]}" --pdf -o "$tmp/bptt.pdf"
pdftotext "$tmp/bptt.pdf" "$tmp/bptt.txt"
page="$(awk -v RS='\f' '/Through time/ {print NR; exit}' "$tmp/bptt.txt")"
pdftoppm -png -r 80 -f 1 -l 1 "$tmp/bptt.pdf" "$tmp/first"
pdftoppm -png -r 80 -f "$page" -l "$page" "$tmp/bptt.pdf" "$tmp/table"
cp "$tmp"/first*.png docs/images/bptt-report-page1.png
cp "$tmp"/table*.png docs/images/bptt-report-through-time.png
rm -rf "$tmp"

# The CNN walk-through: the tiny CNN on one 1×4×4 image, its report and its first pages.
DATA=(--torch examples/tiny_cnn.py:TinyCNN --x examples/tiny_cnn_x.json --y 2 --loss cross_entropy)
.venv/bin/derive report "${DATA[@]}" --format md -o docs/cnn-report.md
tmp="$(mktemp -d)"
.venv/bin/derive report "${DATA[@]}" --pdf -o "$tmp/cnn.pdf"
pdftoppm -png -r 80 -f 1 -l 2 "$tmp/cnn.pdf" "$tmp/page"
cp "$tmp"/page*1.png docs/images/cnn-report-page1.png
cp "$tmp"/page*2.png docs/images/cnn-report-page2.png
rm -rf "$tmp"

# The attention chapter: the two-head block on 3 tokens, its report and the pages with the worked attention
# and the saturation table.
DATA=(--torch examples/attention_block.py:TwoHeadBlock --x examples/attention_x.json --y 2 --loss cross_entropy)
.venv/bin/derive report "${DATA[@]}" --format md -o docs/attention-report.md
tmp="$(mktemp -d)"
.venv/bin/derive report "${DATA[@]}" --pdf -o "$tmp/attention.pdf"
pdftotext "$tmp/attention.pdf" "$tmp/attention.txt"
first="$(awk -v RS='\f' '/Head 1, in full/ {print NR; exit}' "$tmp/attention.txt")"
jacobian="$(awk -v RS='\f' '/softmax Jacobian of row/ {print NR; exit}' "$tmp/attention.txt")"
why="$(awk -v RS='\f' '/Why the design is what it is/ {print NR; exit}' "$tmp/attention.txt")"
pdftoppm -png -r 80 -f "$first" -l "$first" "$tmp/attention.pdf" "$tmp/first"
pdftoppm -png -r 80 -f "$jacobian" -l "$jacobian" "$tmp/attention.pdf" "$tmp/jacobian"
pdftoppm -png -r 80 -f "$why" -l "$why" "$tmp/attention.pdf" "$tmp/why"
cp "$tmp"/first*.png docs/images/attention-report-worked.png
cp "$tmp"/jacobian*.png docs/images/attention-report-jacobian.png
cp "$tmp"/why*.png docs/images/attention-report-why.png
rm -rf "$tmp"
