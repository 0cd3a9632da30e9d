"""Every snippet of README.md runs as written: each Python block in a fresh namespace, its `# →` outputs
checked line by line; every line of the command-line block through `derive.cli.main`, in a scratch folder
beside the project's examples/, each with status 0 (the `python -c` line that makes LeNet's input included).

Nothing here is copied from the README: the blocks are read from it, so a snippet that names something it
never defines (a class, a variable, a file) fails here.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest

from derive.cli import main

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", README, flags=re.DOTALL | re.MULTILINE)


def expected_outputs(code: str) -> list[str]:
    """The outputs a block promises: the text after `# → ` (up to an explanation in parentheses)."""
    return [line.split("# → ", 1)[1].split(" (", 1)[0].strip() for line in code.splitlines() if "# → " in line]


PYTHON = blocks("python")


def test_the_readme_has_its_snippets():
    assert len(PYTHON) == 3 and len(blocks("bash")) >= 3
    assert sum(len(expected_outputs(code)) for code in PYTHON) >= 7


@pytest.mark.parametrize("index", range(len(PYTHON)))
def test_each_python_snippet_runs_as_written_and_prints_what_it_says(index, monkeypatch, tmp_path):
    pytest.importorskip("torch")
    monkeypatch.chdir(ROOT)  # a reader runs it from a checkout
    code = PYTHON[index]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, f"README.md python block {index + 1}", "exec"), {"__name__": f"readme_{index}"})  # noqa: S102
    lines = out.getvalue().splitlines()
    position = 0
    for expected in expected_outputs(code):  # in order, each a whole line of the output
        while position < len(lines) and lines[position].strip() != expected:
            position += 1
        assert position < len(lines), f"block {index + 1}: no output line {expected!r} in:\n{out.getvalue()}"
        position += 1


def command_lines() -> list[str]:
    """The lines of the command-line block, continuations joined."""
    block = README.split("## The command line", 1)[1]
    code = re.search(r"^```bash\n(.*?)^```$", block, flags=re.DOTALL | re.MULTILINE).group(1)
    return [line for line in code.replace("\\\n", " ").splitlines() if line.strip()]


def test_every_command_of_the_readme_runs(monkeypatch, tmp_path, capsys):
    pytest.importorskip("torch")
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    monkeypatch.chdir(tmp_path)
    lines = command_lines()
    assert len(lines) >= 13
    for line in lines:
        words = shlex.split(line, comments=True)
        if words[0] == "python":
            assert words[1] == "-c"
            exec(words[2], {})  # noqa: S102 - the README's own `python -c` line
            continue
        assert words[0] == "derive", line
        argv, target = words[1:], None
        if ">" in argv:
            argv, target = argv[: argv.index(">")], argv[argv.index(">") + 1]
        status = main(argv)
        out, err = capsys.readouterr()
        assert status == 0, f"{line}\n{err}"
        if target:
            Path(target).write_text(out)
    assert (tmp_path / "seed.pdf").read_bytes().startswith(b"%PDF")
    assert (tmp_path / "lenet5.json").stat().st_size > 1_000_000
