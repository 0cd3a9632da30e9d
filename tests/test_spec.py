"""Spec files: TOML and JSON give the same network, round trips keep it, and the 2-2-2 example is right."""

import json
from pathlib import Path

import pytest

import derive
from derive.sources.spec import dumps_spec

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


SEED_TOML = """
loss = "bce"
lr = 1.0

[data]
x = [[1, 1]]
y = [[0]]

[[layers]]
weight = [[0.4352, 0.3545], [0.1951, 0.4835]]
bias = [-0.1419, 0.0439]
activation = "sigmoid"

[[layers]]
weight = [[-0.1725, 0.1129]]
bias = [-0.3043]
activation = "sigmoid"
"""


def test_toml_and_json_specs_of_the_seed_equal_the_built_in_seed(tmp_path):
    """The seed written by hand in TOML (DESIGN.md's structure) and the shipped JSON give the seed."""
    (tmp_path / "seed.toml").write_text(SEED_TOML, encoding="utf-8")
    from_toml = derive.load_spec(tmp_path / "seed.toml")
    from_json = derive.load_spec(EXAMPLES / "seed.json")
    assert from_toml == derive.examples.seed()
    assert from_json == derive.examples.seed()
    assert derive.loads_spec(SEED_TOML, format="toml") == derive.examples.seed()


@pytest.mark.parametrize("fmt", ["toml", "json"])
@pytest.mark.parametrize("factory", [derive.examples.seed, derive.examples.classic_2_2_2])
def test_round_trip_keeps_the_network(tmp_path, fmt, factory):
    net = factory()
    path = tmp_path / f"net.{fmt}"
    path.write_text(dumps_spec(net, format=fmt), encoding="utf-8")
    assert derive.load_spec(path) == net


def test_classic_2_2_2_spec_gives_autograds_loss_and_all_12_gradients():
    from verify.reference import autograd_gradients

    net = derive.load_spec(EXAMPLES / "classic_2_2_2.toml")
    assert (net.loss, net.lr, len(net.layers[-1].weight)) == ("half_sse", 0.5, 2)
    d = derive.derive(net)
    reference = autograd_gradients(net)
    assert len(d.parameters) == 12
    assert d.loss == pytest.approx(reference.loss, rel=1e-12)
    assert d.loss == pytest.approx(0.298371109, abs=5e-10)  # the worked example's E_total
    for p in d.parameters:
        assert p.gradient == pytest.approx(reference[p.name], rel=1e-12)
    assert d.gradient("W5") == pytest.approx(0.082167041, abs=5e-10)  # the worked example's ∂E/∂w5


def test_spec_data_is_overridden_by_replace():
    net = derive.load_spec(EXAMPLES / "classic_2_2_2.toml").replace(x=[[1, 2], [3, 4]], y=[[0, 1], [1, 0]])
    assert net.batch == 2 and net.architecture.batch == 2


def test_json_spec_with_flat_data(tmp_path):
    doc = json.loads((EXAMPLES / "seed.json").read_text())
    doc["data"] = {"x": [1, 1], "y": 0}
    path = tmp_path / "flat.json"
    path.write_text(json.dumps(doc))
    assert derive.load_spec(path) == derive.examples.seed()
