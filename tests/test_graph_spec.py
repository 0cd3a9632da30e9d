"""Graph models from spec files: gradients against torch autograd of the same computation, clear errors."""

import pytest
import torch

import derive
from derive.errors import SpecError

SPEC = '''
loss = "mse"
reduction = "sum"
[data]
x = [[1.0, -2.0], [0.5, 0.25]]
y = [[0.5, 0.0], [1.0, -1.0]]
[parameters]
"fc.weight" = [[0.1, 0.2], [0.3, -0.4]]
"fc.bias" = [0.05, -0.05]
"scale" = [2.0, -0.5]
[[ops]]
name = "fc"
op = "linear"
inputs = ["x", "fc.weight", "fc.bias"]
[[ops]]
name = "act"
op = "activate"
activation = "tanh"
inputs = ["fc"]
[[ops]]
name = "centered"
op = "sub"
inputs = ["act", "mu"]
[[ops]]
name = "out"
op = "add"
inputs = ["x", "scaled"]
'''


def _spec(centre: str = 'name = "mu"\nop = "mean"\ndims = [1]\nkeepdim = true\ninputs = ["act"]\n') -> str:
    before, after = SPEC.split('[[ops]]\nname = "centered"')
    scaled = '[[ops]]\nname = "scaled"\nop = "mul"\ninputs = ["centered", "scale"]\n'
    ops_after = after.split("[[ops]]\nname = \"out\"")
    return before + "[[ops]]\n" + centre + '[[ops]]\nname = "centered"' + ops_after[0] + scaled + '[[ops]]\nname = "out"' + ops_after[1]


def test_a_graph_spec_derives_what_torch_autograd_computes():
    model = derive.loads_spec(_spec(), format="toml")
    d = derive.derive(model)
    W = torch.tensor([[0.1, 0.2], [0.3, -0.4]], dtype=torch.float64, requires_grad=True)
    b = torch.tensor([0.05, -0.05], dtype=torch.float64, requires_grad=True)
    s = torch.tensor([2.0, -0.5], dtype=torch.float64, requires_grad=True)
    x = torch.tensor([[1.0, -2.0], [0.5, 0.25]], dtype=torch.float64)
    y = torch.tensor([[0.5, 0.0], [1.0, -1.0]], dtype=torch.float64)
    a = torch.tanh(x @ W.T + b)
    out = x + (a - a.mean(dim=1, keepdim=True)) * s
    loss = ((out - y) ** 2).sum()
    loss.backward()
    assert d.loss == pytest.approx(float(loss.detach()), rel=1e-13)
    expected = {"fc.weight": W.grad, "fc.bias": b.grad, "scale": s.grad}
    for p in d.parameters:
        assert p.gradient == pytest.approx(float(expected[p.parameter.torch][p.parameter.index]), rel=1e-12)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda t: t.replace('op = "activate"', 'op = "activat"'), r"unknown op 'activat'.*Did you mean 'activate'"),
        (lambda t: t.replace('inputs = ["act", "mu"]', 'inputs = ["actt", "mu"]'), r"no input 'actt'.*Did you mean 'act'"),
        (lambda t: t.replace("keepdim = true", "keepdims = true"), r"op 'mean' has no attribute 'keepdims'"),
        (lambda t: t.replace('"scale" = [2.0, -0.5]', '"scale" = [2.0, -0.5, 1.0]'), r"do not broadcast"),
        (lambda t: t.replace("x = [[1.0, -2.0], [0.5, 0.25]]", 'x = [[1.0, "a"], [0.5, 0.25]]'), r"x"),
    ],
)
def test_bad_graph_specs_get_one_line_errors(edit, message):
    with pytest.raises(SpecError, match=message) as info:
        derive.loads_spec(edit(_spec()), format="toml")
    assert "\n" not in str(info.value)
