"""Recurrent models: every gradient equals float64 autograd of the module, through the command line."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import derive
import verify
from tests.models import rnn_zoo
from tests.test_graph_models import assert_matches_autograd

ROOT = Path(__file__).resolve().parents[1]
ZOO = Path(rnn_zoo.__file__)


@pytest.mark.parametrize("name", sorted(rnn_zoo.CASES))
def test_recurrent_gradients_from_the_command_line_equal_autograd(name, tmp_path):
    x, y, loss = rnn_zoo.CASES[name]
    np.save(tmp_path / "X.npy", np.array(x))
    np.save(tmp_path / "Y.npy", np.array(y))
    result = subprocess.run(
        [sys.executable, "-m", "derive", "grads", "--torch", f"{ZOO}:{name}", "--x", str(tmp_path / "X.npy"),
         "--y", str(tmp_path / "Y.npy"), "--loss", loss, "--format", "json"],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    gradients = [(p["torch"], p["index"], p["gradient"]) for p in document["parameters"]]
    assert_matches_autograd(gradients, document["loss"], getattr(rnn_zoo, name)(), x, y, loss)


@pytest.mark.parametrize("name", sorted(rnn_zoo.CASES))
def test_recurrent_models_verify_against_their_module(name):
    x, y, loss = rnn_zoo.CASES[name]
    model = derive.from_torch(getattr(rnn_zoo, name)(), loss=loss, x=x, y=y)
    assert verify.check(model, finite_differences_check=False).ok
