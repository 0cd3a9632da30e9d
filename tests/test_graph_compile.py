"""Compiled gradients of graph models (tensor rules op by op): equal, entry by entry, to the scalar program
and to autograd of the module at another batch size; on CUDA where there is one."""

import numpy as np
import pytest
import torch

import derive
import verify
from tests.models import cnn_zoo, graph_zoo, rnn_zoo
from tests.test_graph_models import autograd_of

#: torch warns when it pads a copy for padding="same" with an even kernel (the CNN zoo has one): not our code
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths:UserWarning")
ZOOS = {**{n: (graph_zoo, c) for n, c in graph_zoo.CASES.items()}, **{n: (rnn_zoo, c) for n, c in rnn_zoo.CASES.items()},
        **{n: (cnn_zoo, c) for n, c in cnn_zoo.CASES.items()}}


def _model(name):
    zoo, (x, y, loss) = ZOOS[name]
    return derive.from_torch(getattr(zoo, name)(), loss=loss, x=x, y=y)


@pytest.mark.parametrize("name", sorted(ZOOS))
def test_compiled_gradients_equal_the_scalar_program_entry_by_entry(name):
    model = _model(name)
    derived = {p.name: p.gradient for p in derive.derive(model).parameters}
    grads = verify.compile(model, backend="torch", form="matrix")(*verify.arguments(model, "torch"))
    tensors = dict(zip(model.tensor_keys, grads))
    scale = max(abs(v) for v in derived.values())
    for p in model.parameters():
        value = float(tensors[p.torch][p.index])
        assert abs(value - derived[p.name]) <= 1e-11 * scale + 1e-9 * abs(derived[p.name]), (p.name, value)


@pytest.mark.parametrize("name", ["SentimentRNN", "GRURegressor", "LSTMClassifier", "CellLoop", "ResidualBlock"])
def test_compiled_recurrent_gradients_take_any_batch(name):
    """The model is read at its batch; the compiled function runs on 5 other samples as autograd does."""
    zoo, (x, y, loss) = ZOOS[name]
    module = getattr(zoo, name)()
    model = derive.from_torch(module, loss=loss, x=x, y=y)
    rng = np.random.default_rng(3)
    x5 = rng.uniform(-1, 1, (5, *np.shape(x)[1:])) if name not in ("LSTMClassifier",) else rng.uniform(-1, 1, (3, 5, 2))
    if loss == "cross_entropy":
        y5 = rng.integers(0, 3, 5)
    elif loss == "bce":
        y5 = rng.uniform(0, 1, (5, 1))
    else:
        y5 = rng.uniform(-1, 1, (5, *np.shape(y)[1:]))
    fn = verify.compile(model, backend="torch", form="matrix")
    params = verify.arguments(model, "torch")[2:]
    grads = fn(torch.tensor(x5), torch.tensor(y5), *params)
    _, expected = autograd_of(module, x5.tolist(), y5.tolist(), loss)
    for key, g in zip(model.tensor_keys, grads):
        assert torch.allclose(g, expected[key], rtol=1e-10, atol=1e-12), key


@pytest.mark.cuda
def test_compiled_graph_gradients_on_cuda():
    model = _model("GatedCells")
    args = [a.to("cuda") for a in verify.arguments(model, "torch")]
    grads = verify.compile(model, backend="torch", form="matrix")(*args)
    derived = {p.name: p.gradient for p in derive.derive(model).parameters}
    for p in model.parameters():
        tensor = grads[model.tensor_keys.index(p.torch)]
        assert tensor.device.type == "cuda"
        assert float(tensor[p.index]) == pytest.approx(derived[p.name], rel=1e-9, abs=1e-12)
