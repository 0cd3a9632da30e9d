"""The report decides which closed forms to show from their size, before building or rendering any."""

from __future__ import annotations

import numpy as np
import pytest

import derive
from derive.derivation import Derivation
from derive.ops.activations import ACTIVATIONS
from derive.report import backward
from derive.report.shown import Shown


def _network(sizes, acts, loss, batch, seed=0):
    rng = np.random.default_rng(seed)
    layers = [derive.Linear(rng.uniform(-1, 1, (o, i)), rng.uniform(-1, 1, o), a) for i, o, a in zip(sizes, sizes[1:], acts)]
    y = [[0]] * batch if loss == "cross_entropy" else rng.uniform(0, 1, (batch, sizes[-1])).tolist()
    return derive.Network(layers, x=rng.uniform(-1, 1, (batch, sizes[0])).tolist(), y=y, loss=loss)


@pytest.mark.parametrize("key", sorted(k for k in ACTIVATIONS if k != "softmax"))
@pytest.mark.parametrize("loss", ["bce", "mse", "cross_entropy"])
def test_the_length_bound_never_exceeds_the_rendered_latex(key, loss):
    acts = (key, "sigmoid") if loss == "bce" else (key, "identity")
    net = _network((2, 2, 3 if loss == "cross_entropy" else 1), acts, loss, 2)
    s = Shown(Derivation(net), 4)
    bounds = backward.closed_lengths(s)
    for p in s.d.parameters:
        assert bounds[p.name] <= len(s.latex(s.d.closed(p.name))), p.name


def test_softmax_and_the_examples_bound_below_their_latex():
    for net in (derive.examples.seed(), derive.examples.classic_2_2_2(), _network((2, 2, 2), ("tanh", "softmax"), "mse", 1)):
        s = Shown(Derivation(net), 4)
        bounds = backward.closed_lengths(s)
        assert all(bounds[p.name] <= len(s.latex(s.d.closed(p.name))) for p in s.d.parameters)


def test_a_wide_report_builds_no_closed_form_it_would_drop(monkeypatch):
    built = []
    closed = Derivation.closed
    monkeypatch.setattr(Derivation, "closed", lambda self, name, **kw: built.append(name) or closed(self, name, **kw))
    net = _network((4, 40, 1), ("tanh", "sigmoid"), "bce", 1)  # 241 parameters, every closed form too long
    text = derive.report(net, format="md")
    assert built == [] and text.count("is too long to show") == len(net.parameters())
