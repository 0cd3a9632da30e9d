"""derive code: the printed Python runs as printed and gives the gradients of torch autograd."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import derive
from verify import arguments
from verify.reference import autograd_gradients

ROOT = Path(__file__).resolve().parents[1]


def _run(source: str, net: derive.Network, backend: str) -> list:
    namespace: dict = {}
    exec(compile(source, "<derive code>", "exec"), namespace)  # noqa: S102 - derive's own output, under test
    return namespace["gradients"](*arguments(net, backend))


def _by_name(net: derive.Network, tensors: list) -> dict[str, float]:
    return {p.name: float(tensors[2 * (p.layer - 1) + (p.tensor == "bias")][p.index]) for p in net.parameters()}


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_the_seed_code_from_the_command_line_runs_as_printed(backend):
    result = subprocess.run([sys.executable, "-m", "derive", "code", "--example", "seed", "--backend", backend],
                            capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) < 80 and "Dummy" not in result.stdout and "_Dummy" not in result.stdout
    net = derive.examples.seed()
    values = _by_name(net, _run(result.stdout, net, backend))
    expected = autograd_gradients(net).gradients
    assert values == pytest.approx(expected, rel=1e-12)
    assert values["W5"] == pytest.approx(0.2727379197567, rel=1e-12)


def _net(sizes, acts, loss, batch, classes=False, seed=0):
    rng = np.random.default_rng(seed)
    layers = [derive.Linear(rng.uniform(-1, 1, (o, i)), rng.uniform(-1, 1, o), a) for i, o, a in zip(sizes, sizes[1:], acts)]
    x = rng.uniform(-1, 1, (batch, sizes[0])).tolist()
    y = [int(rng.integers(sizes[-1])) for _ in range(batch)] if classes else rng.uniform(0, 1, (batch, sizes[-1])).tolist()
    return derive.Network(layers, x=x, y=y, loss=loss)


CASES = {
    "relu_tanh_mse": lambda: _net((3, 4, 2), ("relu", "tanh"), "mse", 3),
    "leaky_identity_half_sse": lambda: _net((2, 3, 1), ("leaky_relu(0.2)", "identity"), "half_sse", 2),
    "gelu_sigmoid_bce": lambda: _net((2, 2, 2), ("gelu", "sigmoid"), "bce", 4),
    "relu_cross_entropy": lambda: _net((4, 5, 3), ("relu", "identity"), "cross_entropy", 5, classes=True),
    "softplus_logits": lambda: _net((2, 3, 1), ("softplus", "identity"), "bce_with_logits", 3),
}


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_printed_code_equals_autograd(case, backend):
    net = CASES[case]()
    values = _by_name(net, _run(derive.code(net, backend=backend), net, backend))
    assert values == pytest.approx(autograd_gradients(net).gradients, rel=1e-10, abs=1e-13)


def test_softmax_activations_are_refused_clearly():
    net = derive.Network([derive.Linear([[0.1, 0.2], [0.3, 0.4]], [0, 0], "softmax")], x=[[1, 2]], y=[[0, 1]], loss="mse")
    with pytest.raises(derive.DeriveError, match="softmax as an activation"):
        derive.code(net)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("zoo, name", [("graph_zoo", "ResidualBlock"), ("cnn_zoo", "DilatedGroups"),
                                       ("modern_zoo", "GPTBlock"), ("rnn_zoo", "LSTMClassifier")])
def test_a_graph_models_printed_program_runs_and_gives_autograds_gradients(zoo, name, backend):
    """derive code of a graph model prints its tensor program; run as printed, it returns autograd's gradients."""
    import importlib

    from derive.tensor.pycode import arguments
    from derive.tensor.program import leaf_values, program
    from verify.reference import autograd_gradients

    module = importlib.import_module(f"tests.models.{zoo}")
    x, y, loss = module.CASES[name]
    model = derive.from_torch(getattr(module, name)(), loss=loss, x=x, y=y)
    source = derive.code(model, backend=backend)
    assert "def gradients(X, T" in source and "F(" in source
    namespace: dict = {}
    exec(compile(source, "<derive code>", "exec"), namespace)  # noqa: S102 - derive's own output, under test
    env = leaf_values(program(model), model, backend)
    grads = namespace["gradients"](*(env[a.name] for a in arguments(program(model))))
    reference = autograd_gradients(model).gradients
    for p in model.parameters():
        value = grads[p.torch][p.index]
        value = float(value.item() if hasattr(value, "item") else value)
        assert value == pytest.approx(reference[p.name], rel=1e-10, abs=1e-12), p.name


def test_derive_code_of_a_graph_model_on_the_command_line(capsys):
    from derive.cli import main

    status = main(["code", "--torch", f"{ROOT / 'examples' / 'residual_block.py'}:ResidualBlock",
                   "--x", "1,1;0.5,-1", "--y", "0;1", "--loss", "bce", "--backend", "torch"])
    out = capsys.readouterr().out
    assert status == 0 and '"""The tensor program of' in out and 'return apply(fn, list(args), options, "torch")' in out


def test_sigmoid_is_printed_as_a_student_writes_it_and_stays_exact_when_saturated():
    """σ(z) = 1/(1 + e^(−z)) as printed (the stable form in a comment), and where z is very negative the
    printed code still gives autograd's gradients: NumPy's exp overflows to inf there and 1/inf is 0."""
    import warnings

    net = derive.examples.seed()
    source = derive.code(net)
    assert "a1 = 1 / (1 + numpy.exp(-z1))  # σ(z1)" in source and "logaddexp" in source
    namespace: dict = {}
    exec(compile(source, "<derive code>", "exec"), namespace)  # noqa: S102 - derive's own output, under test
    big = net.replace(x=[[-400.0, -400.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the overflow to inf is the point
        values = _by_name(big, namespace["gradients"](*[np.asarray(a) for a in arguments(big, "numpy")]))
    assert values == pytest.approx(autograd_gradients(big).gradients, rel=1e-10, abs=1e-13)
