"""derive verify: exit 0 on agreement, 1 on a mismatch, 2 on bad input; --random summarises drawn networks."""

import subprocess
import sys
import time
from pathlib import Path

import pytest

from derive.cli import main

pytest.importorskip("torch")
ROOT = Path(__file__).resolve().parent.parent


SOURCES = [["--example", "seed"], ["--spec", str(ROOT / "examples/classic_2_2_2.toml")]]


@pytest.mark.parametrize("source", SOURCES)
def test_the_seed_and_the_2_2_2_spec_network_verify_on_cpu(source, capsys):
    assert main(["verify", *source, "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "on cpu, float64: ok" in out and "\nb3 " in out


def test_all_dtypes_and_devices_print_one_table_each(capsys):
    assert main(["verify", "--example", "seed", "--device", "all", "--dtype", "all"]) == 0
    out = capsys.readouterr().out
    assert "on cpu, float64: ok" in out and "on cpu, float32: ok" in out


def test_a_mismatch_exits_1_and_names_the_parameters(capsys):
    # float32 autograd cannot meet a float64-grade tolerance: a real mismatch
    assert main(["verify", "--example", "seed", "--dtype", "float32", "--rtol", "1e-12", "--atol", "0"]) == 1
    out = capsys.readouterr().out
    assert "MISMATCH" in out and "mismatch: W5 on cpu, float32" in out
    assert "reproduce: derive verify --example seed --device cpu --dtype float32" in out


def test_random_networks_verify_quickly():
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "derive", "verify", "--random", "20", "--seed", "11", "--device", "cpu"],
        capture_output=True, text=True, cwd=ROOT,
    )
    elapsed = time.perf_counter() - start
    assert result.returncode == 0, result.stdout + result.stderr
    assert "20 of 20 networks agree" in result.stdout
    assert len([line for line in result.stdout.splitlines() if line.rstrip().endswith(("e-16", "e-17"))]) >= 1
    assert elapsed < 60


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["verify"], "no network given"),
        (["verify", "--random", "0"], "argument --random: expected a whole number >= 1, got '0'"),
        (["verify", "--random", "2", "--example", "seed"], "--random draws its own networks"),
        (["verify", "--example", "seed", "--rtol", "-1"], "--rtol must be a number >= 0"),
        (["verify", "--example", "nope"], "unknown example 'nope'"),
    ],
)
def test_bad_input_exits_2_with_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_cuda_without_a_gpu_exits_2(capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert main(["verify", "--example", "seed", "--device", "cuda"]) == 2
    assert "device 'cuda' is not available" in capsys.readouterr().err
