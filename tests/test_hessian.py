"""The Hessian: equal to torch.func.hessian, symmetric, Hessian–vector products without the matrix."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import derive
from tests.models import graph_zoo
from tests.test_report_tools import katex, markdown_math  # noqa: F401 (fixture)

ROOT = Path(__file__).resolve().parents[1]
#: torch.func.hessian runs torch.jit.script inside torch, which warns that it is deprecated (not our code)
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")


def torch_hessian_of_chain(net: derive.Network) -> np.ndarray:
    """torch.func.hessian of the network's loss over its parameters in derive's order (W…, then b…)."""
    x = torch.tensor(net.x, dtype=torch.float64)
    y = torch.tensor(net.y, dtype=torch.float64)
    params = net.parameters()
    shapes = [(len(layer.weight), len(layer.weight[0])) for layer in net.layers]

    def loss(flat):
        at, weights = 0, []
        for o, i in shapes:
            weights.append(flat[at:at + o * i].reshape(o, i))
            at += o * i
        a = x
        for W, (o, _), layer in zip(weights, shapes, net.layers):
            b = flat[at:at + o]
            at += o
            a = getattr(torch, layer.activation)(a @ W.T + b) if layer.activation != "identity" else a @ W.T + b
        if net.loss == "bce":  # the exact BCE (torch's BCELoss clamps in its backward)
            return -(y * torch.log(a) + (1 - y) * torch.log1p(-a)).mean()
        return ((a - y) ** 2).mean()

    names = [p.name for p in params]
    chosen = [names.index(n) for n in net.penalized]

    def penalized(flat):  # L + l2·Σ p² + l1·Σ |p| over the penalized parameters, written out here
        return loss(flat) + net.l2 * (flat[chosen] ** 2).sum() + net.l1 * flat[chosen].abs().sum()

    return torch.func.hessian(penalized)(torch.tensor([p.value for p in params], dtype=torch.float64)).numpy()


def test_the_seeds_hessian_equals_torch_func_hessian():
    H = derive.hessian(derive.examples.seed())
    assert H.names == [p.name for p in derive.examples.seed().parameters()]
    # each Hessian-vector product is one sweep of its own, mirrored by nothing: its columns are symmetric only
    # when the sweep is right, and H (one triangle, mirrored) must equal them
    columns = np.column_stack([derive.hessian_vector_product(derive.examples.seed(), e) for e in np.eye(len(H.names))])
    assert np.abs(columns - columns.T).max() < 1e-12
    assert np.abs(H.values - columns).max() < 1e-12
    assert np.abs(H.values - torch_hessian_of_chain(derive.examples.seed())).max() < 1e-10


def test_a_wider_batch_network_and_hessian_vector_products():
    rng = np.random.default_rng(1)
    sizes = (3, 4, 2)
    layers = [derive.Linear(rng.uniform(-1, 1, (o, i)), rng.uniform(-1, 1, o), "tanh") for i, o in zip(sizes, sizes[1:])]
    net = derive.Network(layers, x=rng.uniform(-1, 1, (3, 3)).tolist(), y=rng.uniform(-1, 1, (3, 2)).tolist(), loss="mse")
    expected = torch_hessian_of_chain(net)
    H = derive.hessian(net)
    assert np.abs(H.values - expected).max() < 1e-10
    v = rng.uniform(-1, 1, len(H.names))
    assert np.abs(derive.hessian_vector_product(net, v) - expected @ v).max() < 1e-10


def test_a_graph_models_hessian_equals_torch_func_hessian():
    x, y, loss = graph_zoo.CASES["TwoBranches"]
    module = graph_zoo.TwoBranches().double()
    model = derive.from_torch(graph_zoo.TwoBranches(), loss=loss, x=x, y=y)
    names = [k for k, _ in module.named_parameters()]
    shapes = [p.shape for _, p in module.named_parameters()]

    def f(flat):
        tensors, at = {}, 0
        for name, shape in zip(names, shapes):
            tensors[name] = flat[at:at + shape.numel()].reshape(shape)
            at += shape.numel()
        out = torch.func.functional_call(module, tensors, (torch.tensor(x, dtype=torch.float64),))
        return torch.nn.functional.binary_cross_entropy_with_logits(out, torch.tensor(y, dtype=torch.float64))

    flat = torch.cat([p.detach().reshape(-1) for p in module.parameters()])
    expected = torch.func.hessian(f)(flat).numpy()
    assert np.abs(derive.hessian(model).values - expected).max() < 1e-10


def test_an_entrys_expression_evaluates_to_its_value_and_displays(katex):  # noqa: F811
    from derive.numeric import evaluate

    H = derive.hessian(derive.examples.seed())
    value = evaluate(H.expression("W5", "b3"), H.derivation.point)
    assert value == pytest.approx(H.values[4, 8], rel=1e-12)
    blocks = markdown_math(H._repr_markdown_())
    assert blocks and not katex.errors([(f"#{i}", b) for i, b in enumerate(blocks)])
    assert repr(H) == "Hessian(9 × 9 of seed)"


def test_grads_hessian_from_the_command_line():
    result = subprocess.run([sys.executable, "-m", "derive", "grads", "--example", "seed", "--hessian", "--format",
                             "json"], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert np.abs(np.array(document["hessian"]["values"]) - torch_hessian_of_chain(derive.examples.seed())).max() < 1e-10


def test_the_report_section_renders_compiles_and_shows_the_hessian(katex):  # noqa: F811
    from tests.test_report_tools import evaluate, need_pdflatex, read_equations

    text = derive.report(derive.examples.seed(), format="md", hessian=True)
    section = text.split("## Second order: the Hessian")[1]
    assert not katex.errors([(f"#{i}", b) for i, b in enumerate(markdown_math(section))])
    H = derive.hessian(derive.examples.seed())
    (matrix,) = [parts[-1] for lhs, parts in read_equations(section) if lhs.replace(" ", "") == r"\nabla^2\mathcal{L}"]
    shown = evaluate(matrix)
    for row, values in zip(shown, H.values):
        for cell, value in zip(row, values):
            assert cell.lo - 1e-12 <= value <= cell.hi + 1e-12
    top = np.linalg.eigvalsh(H.values).max()
    assert f"α &lt; 2/λ\\_max = {2 / top:.4f}" in section
    need_pdflatex()
    from derive.report.pdf import compile_pdf

    assert compile_pdf(derive.report(derive.examples.seed(), format="tex", hessian=True)).startswith(b"%PDF")


def _relu_net() -> derive.Network:
    rng = np.random.default_rng(4)
    sizes = (2, 3, 1)
    layers = [derive.Linear(rng.uniform(-1, 1, (o, i)), rng.uniform(-1, 1, o), a)
              for i, o, a in zip(sizes, sizes[1:], ("relu", "identity"))]
    return derive.Network(layers, x=rng.uniform(-1, 1, (3, 2)).tolist(), y=rng.uniform(-1, 1, (3, 1)).tolist(),
                          loss="mse")


def test_a_relu_networks_hessian_equals_torch_func_hessian():
    net = _relu_net()
    d = derive.derive(net)
    z = [d.values[n.symbol] for n in d.graph.nodes if n.kind == "z" and n.layer == 1]
    assert min(map(abs, z)) > 1e-3 and any(v < 0 for v in z) and any(v > 0 for v in z)  # both sides, no kink
    expected = torch_hessian_of_chain(net)
    assert np.abs(expected).max() > 0.1
    assert np.abs(derive.hessian(net).values - expected).max() < 1e-10


@pytest.mark.parametrize("penalty", [dict(l2=0.05), dict(l1=0.02), dict(l2=0.05, l1=0.02, penalized=["W1", "b3"])])
def test_a_penalized_networks_hessian_equals_torch_func_hessian_of_the_penalized_loss(penalty):
    plain = derive.examples.seed()
    net = plain.replace(**penalty)
    H = derive.hessian(net)
    assert np.abs(H.values - torch_hessian_of_chain(net)).max() < 1e-10
    # l2 adds 2λ to the diagonal of its parameters; l1 adds nothing away from 0 (checked by torch above)
    difference = H.values - derive.hessian(plain).values
    chosen = [H.names.index(n) for n in net.penalized]
    assert np.allclose(np.diag(difference)[chosen], 2 * penalty.get("l2", 0.0), atol=1e-12)
