"""The table of tensor ops in docs/ops.md, made from the registry: one row per op class, its key, the ATen ops
it reads and the first line of its docstring. A new op is one class; its row comes with it.

>>> print(ops_table().splitlines()[0])
| op | reads the ATen ops | what it is |
"""

from __future__ import annotations

import inspect

from derive.ops.tensor import OPS

#: where the table starts and ends in docs/ops.md
BEGIN, END = "<!-- ops table: generated from the registry (derive.ops.catalogue) -->", "<!-- end of ops table -->"


def ops_table() -> str:
    """Markdown: one row per registered tensor op, by key."""
    rows = ["| op | reads the ATen ops | what it is |", "|---|---|---|"]
    for key in sorted(OPS):
        cls = OPS[key]
        doc = inspect.getdoc(cls) or ""
        first = " ".join(doc.split("\n\n")[0].split())
        reads = ", ".join(f"`{name}`" for name in cls.aten) or "(built by other ops' readers, spec files, Python)"
        rows.append(f"| `{key}` | {reads} | {first.replace('|', chr(92) + '|')} |")
    return "\n".join(rows)


def with_table(page: str) -> str:
    """docs/ops.md with its generated table replaced by today's."""
    start, end = page.index(BEGIN) + len(BEGIN), page.index(END)
    return page[:start] + "\n" + ops_table() + "\n" + page[end:]
