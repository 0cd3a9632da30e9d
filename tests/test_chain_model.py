"""A chain is one case of the model: `Network.model()` is its `Model` under the textbook naming policy (W1, b1,
z1, a1), and it derives what torch autograd gives for the chain's equivalent module, penalties included."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import derive
import verify
from verify import strategies
from verify.tolerances import magnitude

torch = pytest.importorskip("torch")


@st.composite
def _chains(draw):
    """Drawn chains with some parameters frozen, and l2 and l1 penalties on some of them."""
    net = draw(strategies.networks(strategies.architectures(max_depth=3, max_width=3, max_batch=3), kinks=False))
    names = [p.name for p in net.parameters()]
    chosen = st.lists(st.sampled_from(names), unique=True, max_size=3)
    l2, l1 = draw(st.sampled_from([0.0, 0.25])), draw(st.sampled_from([0.0, 0.125]))
    penalized = draw(chosen) if (l2 or l1) else []
    return net.replace(freeze=draw(chosen), l2=l2, l1=l1, penalized=penalized or None)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(net=_chains())
def test_a_chains_model_has_its_parameters_and_derives_autograds_gradients(net):
    model = net.model()
    assert isinstance(model, derive.model.Model) and model.structure.naming == "textbook"
    # the Network names its parameters itself (derive/network.py); the model under its naming policy
    assert model.parameters() == net.parameters()
    derivation = derive.derive(model)
    reference = verify.autograd_gradients(net)  # the equivalent nn.Sequential, its penalties written in torch
    # float64's tolerance policy: rounding in torch's float64 grows with the adjoints (verify.tolerances)
    tol, scale = verify.policy("float64"), magnitude([*reference.gradients.values(), reference.adjoint_scale])
    assert tol.allows(derivation.loss, reference.loss, magnitude([scale, reference.loss]))
    for p in derivation.parameters:
        assert tol.allows(p.gradient, reference[p.name], scale), (p.name, p.gradient, reference[p.name])


def test_a_chain_read_from_named_modules_keeps_their_torch_keys():
    module = torch.nn.Sequential()
    module.add_module("hidden", torch.nn.Linear(2, 2))
    module.add_module("act", torch.nn.Tanh())
    module.add_module("out", torch.nn.Linear(2, 1))
    net = derive.from_torch(module, loss="mse", x=[[1.0, 2.0]], y=[[0.5]])
    assert net.textbook and net.chain.layers[0].module == "hidden"
    model = net.model()
    assert model.tensor_keys == ["hidden.weight", "hidden.bias", "out.weight", "out.bias"]
    assert [(p.name, p.torch) for p in model.parameters()][4:] == [("W5", "out.weight"), ("W6", "out.weight"),
                                                                   ("b1", "hidden.bias"), ("b2", "hidden.bias"),
                                                                   ("b3", "out.bias")]
