"""scripts/setup.sh: torch's CPU build from its index where that index answers, else the plain pin, quickly.

The script runs in a copy of the project with a stand-in ``python3`` on PATH: its venv's ``python`` records
every pip command and fails the one aimed at the CPU index when that index is "down", so the fallback and the
order of the installs are checked without a network or a 200 MB download.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CPU_INDEX = "https://download.pytorch.org/whl/cpu"

FAKE_PYTHON3 = f"""#!{sys.executable}
import os, sys
from pathlib import Path
args = sys.argv[1:]
if args[:2] == ["-m", "venv"]:  # make a venv whose python records what pip is asked
    bin_ = Path(args[2]) / "bin"
    bin_.mkdir(parents=True, exist_ok=True)
    (bin_ / "activate").write_text(f'export PATH="{{bin_.resolve()}}:$PATH"\\n')
    python = bin_ / "python"
    python.write_text(
        "#!{sys.executable}\\n"
        "import os, sys\\n"
        "open(os.environ['PIP_LOG'], 'a').write(' '.join(sys.argv[1:]) + '\\\\n')\\n"
        "down = os.environ.get('CPU_INDEX') == 'down' and '--index-url' in sys.argv\\n"
        "sys.exit(1 if down else 0)\\n"
    )
    python.chmod(0o755)
    shutil_copy = (bin_ / "derive")
    shutil_copy.write_text("#!/bin/sh\\n")
    shutil_copy.chmod(0o755)
    sys.exit(0)
os.execv({sys.executable!r}, [{sys.executable!r}, *args])
"""


def run_setup(tmp_path: Path, mode: str, cpu_index: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    project = tmp_path / "project"
    (project / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "setup.sh", project / "scripts" / "setup.sh")
    shutil.copy(ROOT / "pyproject.toml", project / "pyproject.toml")
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "python3").write_text(FAKE_PYTHON3)
    (fake / "python3").chmod((fake / "python3").stat().st_mode | stat.S_IEXEC)
    log = tmp_path / "pip.log"
    env = {**os.environ, "PATH": f"{fake}:{os.environ['PATH']}", "PIP_LOG": str(log), "CPU_INDEX": cpu_index}
    env.pop("DERIVE_SETUP", None)
    result = subprocess.run(["bash", str(project / "scripts" / "setup.sh"), mode], capture_output=True, text=True,
                            env=env, timeout=60, check=False)
    return result, log.read_text().splitlines() if log.exists() else []


def torch_installs(log: list[str]) -> list[str]:
    return [line for line in log if line.startswith("-m pip install") and "torch==" in line and "-e " not in line]


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_torch_comes_from_the_cpu_index_where_it_answers(tmp_path):
    result, log = run_setup(tmp_path, "all", "up")
    assert result.returncode == 0, result.stderr
    installs = torch_installs(log)
    assert len(installs) == 1 and f"--index-url {CPU_INDEX}" in installs[0] and "torch==2.13.0" in installs[0]
    timeout = installs[0].split("--timeout ")[1].split()[0]
    assert float(timeout) <= 10 and "--retries 0" in installs[0]  # an index that does not answer costs seconds
    # torch before the project, so that the [torch] extra finds it and pulls no CUDA build
    project = next(i for i, line in enumerate(log) if "-e .[torch,check,test]" in line)
    assert log.index(installs[0]) < project


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_the_plain_pin_when_the_cpu_index_does_not_answer(tmp_path):
    result, log = run_setup(tmp_path, "all", "down")
    assert result.returncode == 0, result.stderr
    installs = torch_installs(log)
    assert len(installs) == 2 and "--index-url" in installs[0]
    assert installs[1].split() == ["-m", "pip", "install", "-q", "torch==2.13.0"]
    assert "CPU index did not answer" in result.stderr
    assert any("-e .[torch,check,test]" in line for line in log)


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_the_base_set_up_installs_no_torch(tmp_path):
    result, log = run_setup(tmp_path, "", "up")
    assert result.returncode == 0, result.stderr
    assert not torch_installs(log) and any(line.endswith("install -q -e .") for line in log)


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_an_unknown_mode_is_one_line_and_status_2(tmp_path):
    result, _ = run_setup(tmp_path, "everything", "up")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
