#!/usr/bin/env node
// Renders math with KaTeX in strict mode, as a test oracle for derive's Markdown reports.
// Input (stdin): one JSON array per line, [name, latex] (display math).
// Output (stdout): one JSON object per line, {"name": ..., "ok": true} or {"name": ..., "ok": false, "error": ...}.
// Exit status: 0 when every formula rendered, 1 otherwise.
"use strict";
const katex = require("katex");
const readline = require("readline");

const options = {
  displayMode: true,
  throwOnError: true,
  strict: "error",
  trust: (context) => {
    throw new katex.ParseError("untrusted command " + context.command);
  },
  maxExpand: 1000,
};

let failed = 0;
const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
lines.on("line", (line) => {
  if (!line.trim()) return;
  const [name, latex] = JSON.parse(line);
  try {
    katex.renderToString(latex, options);
    process.stdout.write(JSON.stringify({ name, ok: true }) + "\n");
  } catch (error) {
    failed += 1;
    process.stdout.write(JSON.stringify({ name, ok: false, error: String(error.message) }) + "\n");
  }
});
lines.on("close", () => process.exit(failed ? 1 : 0));
