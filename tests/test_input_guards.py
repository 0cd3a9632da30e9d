"""Input that used to hang or crash the command: a spec that is not UTF-8 or is a FIFO, data with too many
samples for the scalar forms, and a checked function that never returns. Each is one line (or, for the
function, a report) with the right exit status, in bounded time."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from derive.cli import main

ROOT = Path(__file__).resolve().parent.parent


def one_line(err: str) -> str:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize("name, text", [("net.toml", b'lr = 0.5\n# caf\xe9\n'), ("net.json", b'{"lr": "caf\xe9"}')])
def test_a_spec_that_is_not_utf8_is_one_line_and_status_2(tmp_path, capsys, name, text):
    path = tmp_path / name
    path.write_bytes(text)
    assert main(["grads", "--spec", str(path)]) == 2
    line = one_line(capsys.readouterr().err)
    offset = text.index(0xE9)
    assert f"{path}: not UTF-8 text (byte 0xe9 at offset {offset})" in line and "save the file as UTF-8" in line


def test_a_spec_on_standard_input_that_is_not_utf8_is_one_line(capsys, monkeypatch):
    class Stdin(io.TextIOWrapper):
        pass

    monkeypatch.setattr(sys, "stdin", Stdin(io.BytesIO(b'lr = 1\n\xff\n'), encoding="utf-8"))
    assert main(["grads", "--spec", "-"]) == 2
    assert "stdin: not UTF-8 text (byte 0xff at offset 7)" in one_line(capsys.readouterr().err)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_spec_that_is_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "net.toml"
    os.mkfifo(fifo)
    start = time.perf_counter()
    try:  # in a process of its own: before the fix, opening the FIFO waits for a writer forever
        done = subprocess.run([sys.executable, "-m", "derive", "grads", "--spec", str(fifo)], capture_output=True,
                              text=True, cwd=ROOT, timeout=60, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail("derive grads --spec FIFO still waits after 60 s")
    assert done.returncode == 2 and time.perf_counter() - start < 60
    assert f"{fifo}: a FIFO (named pipe); a spec file is read from a regular file" in one_line(done.stderr)


def test_the_python_api_refuses_a_fifo_too(tmp_path):
    import derive

    if not hasattr(os, "mkfifo"):
        pytest.skip("os.mkfifo does not exist on this platform (Windows)")
    fifo = tmp_path / "net.json"
    os.mkfifo(fifo)

    def unblock():  # should load_spec open the FIFO, a writer comes after 5 s, so that the test ends
        time.sleep(5)
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)  # ENXIO when nobody reads: the fix refused it
        except OSError:
            return
        os.write(fd, b'{"lr": 1}')
        os.close(fd)

    threading.Thread(target=unblock, daemon=True).start()
    with pytest.raises(derive.SpecError, match="a FIFO"):
        derive.load_spec(fifo)


@pytest.fixture
def many_samples(tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "x.npy", rng.normal(size=(30_000, 2)))
    np.save(tmp_path / "y.npy", (rng.random((30_000, 1)) > 0.5).astype(float))
    return str(tmp_path / "x.npy"), str(tmp_path / "y.npy")


#: where each command starts the work that grows with samples × parameters
WORK = {"grads": ("derive.commands.grads", "Derivation"), "report": ("derive.commands.report", "report"),
        "verify": ("verify", "check")}


@pytest.mark.parametrize("command, limit", [("grads", 100_000), ("verify", 100_000), ("report", 20_000)])
def test_samples_times_parameters_are_guarded_before_any_work(capsys, monkeypatch, many_samples, command, limit):
    import importlib

    def work(*args, **kwargs):
        raise AssertionError(f"derive {command} started on 30,000 samples: minutes of scalar forms")

    module, name = WORK[command]
    monkeypatch.setattr(importlib.import_module(module), name, work)
    x, y = many_samples
    start = time.perf_counter()
    assert main([command, "--example", "seed", "--x", x, "--y", y]) == 2
    assert time.perf_counter() - start < 10  # refused up front
    line = one_line(capsys.readouterr().err)
    assert f"30,000 samples × 9 parameters = 270,000; derive {command} is limited to {limit:,}" in line
    assert "--max-sample-params 270000" in line


def test_the_sample_limit_is_stated_and_can_be_raised(capsys):
    for command, limit in (("grads", "100,000"), ("verify", "100,000"), ("report", "20,000")):
        assert main([command, "--help"]) == 0
        help_text = " ".join(capsys.readouterr().out.split())
        assert "--max-sample-params N" in help_text and f"default {limit})" in help_text
    x = ";".join(["1,1"] * 4)
    y = ";".join(["0"] * 4)
    assert main(["grads", "--example", "seed", "--x", x, "--y", y, "--max-sample-params", "35"]) == 2
    assert "4 samples × 9 parameters = 36" in capsys.readouterr().err
    assert main(["grads", "--example", "seed", "--x", x, "--y", y, "--max-sample-params", "36"]) == 0


HANGS = """
def backprop(x, y, W1, b1, W2, b2):
    while True:
        try:
            pass
        except Exception:  # a student's catch-all does not keep it running
            pass
"""


def test_a_checked_function_that_never_returns_is_stopped_and_reported(tmp_path):
    (tmp_path / "student.py").write_text(HANGS)
    start = time.perf_counter()
    try:  # in a process of its own, so that a hang fails the test instead of stalling the suite
        done = subprocess.run(
            [sys.executable, "-m", "derive", "check", f"{tmp_path / 'student.py'}:backprop", "--sizes", "2,3,1",
             "--activations", "sigmoid,sigmoid", "--loss", "bce", "--timeout", "0.5", "--seed", "1"],
            capture_output=True, text=True, cwd=tmp_path, timeout=60, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail("derive check of a function that never returns still runs after 60 s")
    assert time.perf_counter() - start < 30  # stopped once, not once per drawn network
    assert done.returncode == 1, done.stderr
    assert "fn did not return within 0.5 s and was stopped" in done.stdout
    assert "the network (spec JSON)" in done.stdout  # the network it ran on, to reproduce it


def test_the_check_timeout_has_a_stated_default(capsys):
    assert main(["check", "--help"]) == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--timeout S" in help_text and "(default 10)" in help_text
    from derive.commands.check import TIMEOUT as CLI_TIMEOUT
    from verify.backprop_check import TIMEOUT

    assert TIMEOUT == CLI_TIMEOUT == 10


def test_check_backprop_stops_a_slow_call_in_python(tmp_path):
    import verify

    calls = []

    def slow(x, y, W1, b1):
        calls.append(1)
        time.sleep(2)

    start = time.perf_counter()
    report = verify.check_backprop(slow, sizes=(2, 1), activations=("sigmoid",), loss="bce", seed=1, timeout=0.2,
                                   examples=5)
    assert time.perf_counter() - start < 1.5 and len(calls) == 1  # stopped, and not called again
    assert not report.ok and "did not return within 0.2 s" in report.problem
