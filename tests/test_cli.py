"""The command line: formats, python -m, and import-time promises."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from derive.cli import main

ROOT = Path(__file__).resolve().parent.parent


def test_text_format_lists_every_parameter_with_value_and_gradient(capsys):
    assert main(["grads", "--example", "seed"]) == 0
    out = capsys.readouterr().out
    assert "L = 0.5368841906" in out
    w5 = next(line for line in out.splitlines() if line.startswith("W5 "))
    assert "-0.1725" in w5 and "0.272737919757" in w5 and "a1*(a3 - y)" in w5


def test_latex_format_has_one_line_per_parameter(capsys):
    assert main(["grads", "--example", "seed", "--format", "latex"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("\\begin{align*}") and out.count(r"\frac{\partial \mathcal{L}}") == 9
    assert r"\partial W_{5}} &= " in out and r"\sigma\left(" in out


def test_data_options_override_the_source(capsys):
    assert main(["grads", "--example", "seed", "--x", "1,0;0,1", "--y", "1;0", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["point"]["x1_1"] == 1.0 and doc["point"]["x1_2"] == 0.0 and doc["point"]["y_1"] == 1.0
    from verify.reference import autograd_gradients

    import derive

    net = derive.examples.seed().replace(x=[[1, 0], [0, 1]], y=[[1], [0]])
    reference = autograd_gradients(net)
    for p in doc["parameters"]:
        assert p["gradient"] == pytest.approx(reference[p["name"]], rel=1e-12)


def test_lr_and_loss_override(capsys):
    assert main(["grads", "--example", "seed", "--loss", "mse", "--reduction", "sum", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["loss"] == pytest.approx(0.415433183**2, rel=1e-8)


def test_python_dash_m_and_console_script_agree():
    a = subprocess.run([sys.executable, "-m", "derive", "grads", "--example", "seed", "--format", "json"],
                       capture_output=True, text=True, cwd=ROOT, check=True)
    script = Path(sys.executable).parent / "derive"
    b = subprocess.run([str(script), "grads", "--example", "seed", "--format", "json"],
                       capture_output=True, text=True, cwd=ROOT, check=True)
    assert a.stdout == b.stdout  # and the output is deterministic


def test_import_derive_does_not_import_torch():
    code = "import sys, derive; derive.derive(derive.examples.seed()); print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert result.stdout.strip() == "False"


def test_text_shows_long_gradients_over_the_adjoints_one_short_line_each(tmp_path, capsys):
    import numpy as np

    import derive
    from derive.sources.spec import dumps_spec

    rng = np.random.default_rng(0)
    sizes = (2, 6, 6, 6, 1)  # ∂L/∂W1 over intermediates: 538 operations
    layers = [derive.Linear(rng.uniform(-1, 1, (o, i)), rng.uniform(-1, 1, o), "tanh") for i, o in zip(sizes, sizes[1:])]
    net = derive.Network(layers, x=[[0.1, 0.2]], y=[[0.5]], loss="mse")
    path = tmp_path / "net.toml"
    path.write_text(dumps_spec(net))
    assert main(["grads", "--spec", str(path)]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines() if re.match(r"[Wb]\d+ ", line)}
    assert len(rows) == len(net.parameters())
    assert "dL_dz" in rows["W1"] and "dL_dz" not in rows["W90"]  # layer 1 over the adjoints; the last layer in full
    assert max(len(line) for line in rows.values()) < 2000  # at most 200 operations a line
    assert "dL_dzK is ∂L/∂zK" in out
