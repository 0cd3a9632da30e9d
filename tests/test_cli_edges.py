"""The command line at its edges: odd values, output that cannot be written, interruptions, help and typos."""

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import derive
from derive.cli import EXIT_STATUSES, main

ROOT = Path(__file__).resolve().parent.parent
SEED = json.loads((ROOT / "examples" / "seed.json").read_text())


def _run(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "derive", *args], capture_output=True, text=True, cwd=ROOT, timeout=120, **kwargs
    )


def _one_line(stderr: str) -> str:
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


def _big_spec(path: Path, n: int = 300) -> Path:
    rng = np.random.default_rng(0)
    doc = {"loss": "mse", "data": {"x": [[0.1] * n], "y": [[0.2] * n]},
           "layers": [{"weight": rng.uniform(-0.05, 0.05, (n, n)).tolist(), "bias": [0.0] * n, "activation": "tanh"}]}
    path.write_text(json.dumps(doc))
    return path


def test_a_negative_first_value_is_data_not_an_option(capsys):
    assert main(["grads", "--example", "seed", "--x", "-1,1", "--y", "-0", "--format", "json"]) == 0
    point = json.loads(capsys.readouterr().out)["point"]
    assert point["x1"] == -1.0 and point["x2"] == 1.0


@pytest.mark.parametrize(
    "args, message",
    [
        (["--pdf", "-o", "{dir}/x.tex"], "--pdf writes a PDF: name the file FILE.pdf"),
        (["--format", "md", "-o", "{dir}/x.pdf"], "names a PDF but --format md writes text"),
        (["--format", "html", "-o", "{dir}/x.tex"], "names a .tex file but --format is html"),
        (["--format", "md", "--pdf", "-o", "{dir}/x.pdf"], "use it with --format tex"),
    ],
)
def test_a_report_is_never_written_under_another_formats_name(tmp_path, capsys, args, message):
    args = [a.format(dir=tmp_path) for a in args]
    assert main(["report", "--example", "seed", *args]) == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_without_format_the_output_suffix_chooses_it(tmp_path):
    assert main(["report", "--example", "seed", "-o", str(tmp_path / "seed.md")]) == 0
    assert main(["report", "--example", "seed", "-o", str(tmp_path / "seed.html")]) == 0
    assert (tmp_path / "seed.md").read_text().startswith("# ")
    assert (tmp_path / "seed.html").read_text().lower().startswith("<!doctype html>")


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full on this system")
def test_a_full_disk_on_standard_output_is_one_line_and_status_3():
    with open("/dev/full", "w") as full:
        result = subprocess.run([sys.executable, "-m", "derive", "grads", "--example", "seed"], stdout=full,
                                stderr=subprocess.PIPE, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 3 == [k for k, v in EXIT_STATUSES.items() if "written" in v][0]
    assert _one_line(result.stderr) == "derive: error: cannot write standard output: No space left on device"


def test_an_unwritable_output_file_is_status_3(tmp_path):
    result = _run("report", "--example", "seed", "-o", str(tmp_path / "missing" / "seed.tex"))
    assert result.returncode == 3 and "cannot write" in _one_line(result.stderr)


def test_a_closed_pipe_is_one_line_and_status_141():
    read, write = os.pipe()
    os.close(read)  # the reader is gone before derive writes (as `derive … | head -c 0`)
    try:
        result = subprocess.run([sys.executable, "-m", "derive", "grads", "--example", "seed"], stdout=write,
                                stderr=subprocess.PIPE, text=True, cwd=ROOT, timeout=60)
    finally:
        os.close(write)
    assert result.returncode == 141
    assert _one_line(result.stderr) == "derive: standard output was closed before the end (broken pipe)"


def test_ctrl_c_while_working_is_one_line_and_status_130(tmp_path):
    text = _big_spec(tmp_path / "big.json").read_text()
    with subprocess.Popen([sys.executable, "-m", "derive", "grads", "--spec", "-", "--max-params", "100000"],
                          cwd=ROOT, text=True,
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        time.sleep(4)  # derive has started and waits for its input: waiting longer cannot let it finish
        process.stdin.write(text)
        process.stdin.close()
        time.sleep(1.5)  # reading and deriving 90,300 parameters takes several seconds
        assert process.poll() is None, "derive finished before it could be interrupted"
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.stdout.read(), process.stderr.read()
        assert process.wait(timeout=60) == 130 and stdout == ""
    assert _one_line(stderr) == "derive: interrupted"


def test_derive_alone_lists_the_commands_and_the_exit_statuses():
    result = _run()
    assert result.returncode == 0
    for command in ("grads", "report", "verify", "exit status:", "130", "141"):
        assert command in result.stdout


def test_a_mistyped_command_gets_a_suggestion():
    result = _run("grds", "--example", "seed")
    assert result.returncode == 2
    assert _one_line(result.stderr) == (
        "derive: error: unknown command 'grds'; commands: grads, report, verify, check, code. Did you mean 'grads'?"
    )


@pytest.mark.parametrize(
    "command, expected",
    [
        ("grads", ["--format {text,latex,json}", "(default: text)", "default 10,000"]),
        ("report", ["default: from -o FILE's suffix, else tex", "optimizer steps, from 1 to 200 (later ones as a table) (default: 1)",
                    "(default: en)", "default 500"]),
        ("verify", ["(default: cpu)", "(default: float64)", "(default 0)", "default 10,000"]),
    ],
)
def test_help_pages_state_the_defaults(command, expected):
    result = _run(command, "--help")
    text = " ".join(result.stdout.split())  # argparse wraps lines
    for piece in expected:
        assert " ".join(piece.split()) in text, piece


@pytest.mark.parametrize("option, expected", [("--max-params", ">= 0"), ("--max-ops", ">= 0"), ("--steps", "from 1 to 200"),
                                              ("--digits", "from 1 to 15")])
def test_negative_limits_are_refused(option, expected):
    command = "grads" if option == "--max-ops" else "report"
    result = _run(command, "--example", "seed", option, "-1")
    assert result.returncode == 2 and f"expected a whole number {expected}, got '-1'" in result.stderr


def test_a_network_over_the_limit_is_refused_up_front_with_its_size_and_the_option(capsys):
    assert main(["grads", "--example", "seed", "--max-params", "8", "--form", "closed"]) == 2
    err = capsys.readouterr().err
    assert "the network has 9 parameters; derive grads is limited to 8 before it starts" in err
    assert "(raise the limit with --max-params 9)" in err
    assert main(["verify", "--example", "seed", "--max-params", "8"]) == 2
    assert main(["grads", "--example", "seed", "--max-params", "9"]) == 0
    assert "(tensor form)" not in capsys.readouterr().out


def test_past_the_limit_the_automatic_form_is_the_tensor_form(capsys):
    """--max-params guards the scalar forms; auto takes the tensor form where they would be refused."""
    assert main(["grads", "--example", "seed", "--max-params", "8", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["form"] == "tensor"
    assert main(["grads", "--example", "seed", "--max-params", "8", "--form", "tensor", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["form"] == "tensor"


@pytest.mark.parametrize("text, network", [
    (json.dumps(SEED), derive.examples.seed()),
    ((ROOT / "examples" / "classic_2_2_2.toml").read_text(), derive.examples.classic_2_2_2()),
], ids=["json", "toml"])
def test_spec_dash_reads_standard_input(text, network, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO(text))
    assert main(["grads", "--spec", "-", "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert [p["name"] for p in document["parameters"]] == [p.name for p in network.parameters()]
    assert {p["name"]: p["value"] for p in document["parameters"]} == {p.name: p.value for p in network.parameters()}


def test_duplicated_keys_in_a_json_spec_are_an_error(tmp_path):
    path = tmp_path / "twice.json"
    path.write_text(json.dumps(SEED)[:-1] + ', "loss": "mse"}')
    result = _run("grads", "--spec", str(path))
    assert result.returncode == 2 and "key 'loss' appears twice in one object" in _one_line(result.stderr)


def test_a_spec_without_data_takes_it_from_the_command_line(tmp_path):
    path = tmp_path / "nodata.json"
    path.write_text(json.dumps({k: v for k, v in SEED.items() if k != "data"}))
    result = _run("grads", "--spec", str(path), "--x", "1,1", "--y", "0", "--format", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["loss"] == pytest.approx(0.5368841905553434, rel=1e-15)
    result = _run("grads", "--spec", str(path), "--y", "0")
    assert result.returncode == 2 and "no x data: give x (a spec's [data] x, or --x)" in result.stderr


def test_control_characters_in_names_are_escaped(tmp_path):
    path = tmp_path / "net.json"
    path.write_text(json.dumps(SEED | {"name": "evil\x1b[2J\nname"}))
    result = _run("report", "--spec", str(path), "--format", "md")
    assert result.returncode == 0
    assert "\x1b" not in result.stdout and "evil\\\\x1b\\[2J\\\\nname" in result.stdout
    result = _run("grads", "--spec", str(tmp_path / "missing\x1b[2J.json"))
    assert "\x1b" not in result.stderr and "missing\\x1b[2J.json" in _one_line(result.stderr)


def test_angle_brackets_in_names_print_as_themselves_in_latex(tmp_path):
    path = tmp_path / "net.json"
    path.write_text(json.dumps(SEED | {"name": "a<b>|c"}))
    result = _run("report", "--spec", str(path))
    assert result.returncode == 0 and r"a\textless{}b\textgreater{}\textbar{}c" in result.stdout


def test_the_verify_reproducer_keeps_the_tolerances(capsys):
    assert main(["verify", "--example", "seed", "--dtype", "float32", "--rtol", "0", "--atol", "0"]) == 1
    out = capsys.readouterr().out
    assert "reproduce: derive verify --example seed --device cpu --dtype float32 --rtol 0.0 --atol 0.0\n" in out


MODEL = """
import torch
{extra}

class Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(2, 1), torch.nn.Dropout(0.5), torch.nn.Sigmoid())

    def forward(self, x):
        return self.net(x)
"""


def _in_process(capsys, *args: str) -> subprocess.CompletedProcess:
    """``derive ARGS`` by `main` in this process (a module that calls sys.exit must not end it either)."""
    capsys.readouterr()
    status = main(list(args))
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(["derive", *args], status, out, err)


def test_torch_files_missing_exiting_or_in_train_mode_get_clear_messages(tmp_path, capsys):
    data = ["--x", "1,1", "--y", "0", "--loss", "bce"]
    result = _in_process(capsys, "grads", "--torch", f"{tmp_path}/none.py:Model", *data)
    assert result.returncode == 2 and _one_line(result.stderr).endswith("none.py: no such file")
    (tmp_path / "exits.py").write_text(MODEL.format(extra="import sys\nsys.exit(3)"))
    result = _in_process(capsys, "grads", "--torch", f"{tmp_path}/exits.py:Model", *data)
    assert result.returncode == 2 and "running exits.py called sys.exit(3)" in _one_line(result.stderr)
    (tmp_path / "model.py").write_text(MODEL.format(extra=""))
    result = _in_process(capsys, "grads", "--torch", f"{tmp_path}/model.py:Model", *data)
    assert result.returncode == 2 and "self.eval() at the end of __init__" in result.stderr
    result = _in_process(capsys, "grads", "--torch", f"{tmp_path}/model.py:Model", "--eval", *data)
    assert result.returncode == 0, result.stderr
    result = _in_process(capsys, "grads", "--example", "seed", "--eval")
    assert result.returncode == 2 and "use it with --torch" in result.stderr


#: a Python program that sends itself SIGINT when derive imports SymPy, then runs ``argv`` as the command
_INTERRUPTED_IMPORT = """
import builtins, os, runpy, signal, sys
real = builtins.__import__
def hook(name, *args, **kwargs):
    if name == "sympy":
        builtins.__import__ = real
        os.kill(os.getpid(), signal.SIGINT)
    return real(name, *args, **kwargs)
builtins.__import__ = hook
sys.argv = {argv!r}
{run}
"""


def test_ctrl_c_while_the_command_is_importing_is_one_line_and_status_130():
    program = _INTERRUPTED_IMPORT.format(argv=["derive", "grads", "--example", "seed"],
                                         run="runpy.run_module('derive', run_name='__main__')")
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 130 and result.stdout == ""
    assert _one_line(result.stderr) == "derive: interrupted"


def test_ctrl_c_while_a_program_imports_derive_is_its_own_keyboard_interrupt():
    program = _INTERRUPTED_IMPORT.format(argv=["train.py"], run="import derive")
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode != 130 and "KeyboardInterrupt" in result.stderr


def test_the_whole_output_arrives_through_a_buffered_pipe():
    """The command ends with ``os._exit`` (no teardown of its objects): standard output must be flushed first.
    Without PYTHONUNBUFFERED (set on some machines, hiding the difference) a missed flush loses the text."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    for form in ("json", "text"):
        result = subprocess.run([sys.executable, "-m", "derive", "grads", "--example", "seed", "--format", form],
                                capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
        assert result.returncode == 0, result.stderr
        assert result.stdout.endswith("\n") and "b3" in result.stdout
        if form == "json":
            assert len(json.loads(result.stdout)["parameters"]) == 9
