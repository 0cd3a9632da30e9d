"""Progress on stderr: shown on a terminal for slow work, never when stderr is piped."""

import io
import os
import pty
import subprocess
import sys
import time
from pathlib import Path

from derive.progress import Progress, stage

ROOT = Path(__file__).resolve().parent.parent


def _read_all(fd: int) -> str:
    """Everything written to a pty whose other side is closed (Linux reports EIO at the end)."""
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks).decode()


def test_progress_line_appears_on_a_terminal_after_the_delay_and_is_cleared():
    main_fd, child_fd = pty.openpty()
    with os.fdopen(child_fd, "w") as terminal:
        with Progress("derive grads", terminal, delay_s=0.05):
            stage("reverse mode")
            time.sleep(0.4)
    output = _read_all(main_fd)
    assert "derive grads: reverse mode … " in output and output.endswith("\r\033[K")


def test_no_progress_when_stderr_is_not_a_terminal():
    stream = io.StringIO()
    with Progress("derive grads", stream, delay_s=0.0):
        stage("reverse mode")
        time.sleep(0.1)
    assert stream.getvalue() == ""


def test_cli_shows_progress_on_a_terminal_only():
    env = dict(os.environ, DERIVE_PROGRESS_AFTER="0")
    command = [sys.executable, "-m", "derive", "grads", "--example", "seed", "--format", "json"]
    piped = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env, check=True)
    assert piped.stderr == ""
    main_fd, child_fd = pty.openpty()
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=child_fd, cwd=ROOT, env=env, check=True)
    os.close(child_fd)
    shown = _read_all(main_fd)
    assert "derive grads" in shown and " s" in shown
    assert result.stdout.decode() == piped.stdout  # results on stdout, unchanged
