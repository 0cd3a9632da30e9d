"""What the scale benchmark measures, checked for correctness: matrix-form code and program size."""

import numpy as np
import pytest

import derive
from derive.backprop import operation_count
from derive.graph import backpropagate
from derive.network import Architecture
from derive.ops import loss as lookup_loss
from verify import compile
from verify.compile import arguments
from verify.reference import autograd_gradients

torch = pytest.importorskip("torch")

CASES = [
    ((2, 2, 1), ("sigmoid", "sigmoid"), "bce", "mean", 1),
    ((3, 4, 2), ("tanh", "sigmoid"), "bce", "sum", 5),
    ((2, 3, 3, 2), ("relu", "tanh", "identity"), "mse", "mean", 4),
    ((2, 2, 2), ("sigmoid", "sigmoid"), "half_sse", "mean", 3),
    ((4, 1), ("identity",), "half_sse", "sum", 2),
    ((2, 3, 1), ("leaky_relu(0.1)", "identity"), "mse", "mean", 4),
    ((2, 3, 2), ("softplus", "identity"), "bce_with_logits", "mean", 4),
    ((2, 3, 3), ("tanh", "softmax"), "mse", "mean", 3),
    ((2, 3, 3), ("gelu", "identity"), "cross_entropy", "mean", 4),
    ((2, 3, 3), ("elu", "identity"), "cross_entropy", "sum", 3),
    ((2, 3, 2), ("silu", "hardtanh"), "l1", "mean", 3),
    ((2, 3, 3), ("gelu_tanh", "identity"), "nll", "sum", 2),
]
CLASSES = [case for case in CASES if lookup_loss(case[2]).class_targets]


def _network(case, seed=0, **changes):
    sizes, acts, loss, reduction, batch = case
    rng = np.random.default_rng(seed)
    layers = [derive.Linear(rng.uniform(-1, 1, (o, i)), rng.uniform(-1, 1, o), a) for i, o, a in zip(sizes, sizes[1:], acts)]
    classes = lookup_loss(loss).class_targets
    y = rng.integers(0, sizes[-1], batch) if classes else rng.uniform(0, 1, (batch, sizes[-1]))
    x = rng.uniform(-2, 2, (batch, sizes[0]))
    return derive.Network(layers, x, y, loss=loss, reduction=reduction, **changes)


def _flat(net, grads):
    return {p.name: float(grads[2 * (p.layer - 1) + (p.tensor == "bias")][p.index]) for p in net.parameters()}


def _assert_autograd(net, grads, tolerance=1e-12):
    """The gradients equal float64 autograd of the network (loss and penalties) within ``tolerance`` × the
    largest gradient."""
    ours = _flat(net, [np.asarray(g.detach().double() if hasattr(g, "detach") else g) for g in grads])
    reference = autograd_gradients(net)
    scale = max(abs(v) for v in reference.gradients.values())
    for name, value in ours.items():
        assert abs(value - reference[name]) <= tolerance * scale, name


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{'-'.join(map(str, c[0]))}-{c[1][-1]}-{c[2]}-{c[3]}-b{c[4]}")
def test_matrix_form_equals_autograd_and_the_scalar_derivation(case, backend):
    net = _network(case)
    fn = compile(net, backend=backend, form="matrix")
    args = arguments(net, backend=backend)
    ours = _flat(net, fn(*args))
    reference = autograd_gradients(net)
    scale = max(abs(v) for v in reference.gradients.values())
    derivation = derive.derive(net)
    for p in derivation.parameters:
        assert abs(ours[p.name] - reference[p.name]) <= 1e-12 * scale, p.name
        assert abs(ours[p.name] - p.gradient) <= 1e-12 * scale, p.name
    assert float(fn.forward(*args)) == pytest.approx(reference.loss, rel=1e-12)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("case", CLASSES, ids=lambda c: c[2])
def test_matrix_form_takes_class_indices_as_targets(case, backend):
    net = _network(case)
    x, rows, *params = arguments(net, backend=backend)
    indices = rows.argmax(1)  # one class per sample, as torch's cross_entropy takes them
    _assert_autograd(net, compile(net, backend=backend, form="matrix")(x, indices, *params))


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[1][-1]}-{c[2]}")
def test_matrix_form_keeps_float32_and_works_for_any_batch(case):
    net = _network(case)
    fn = compile(net, backend="torch", form="matrix")
    for batch in (1, 7):
        other = _network(case[:4] + (batch,), seed=batch)
        x, y, *_ = arguments(other, backend="torch", dtype="float32")
        params = arguments(net, backend="torch", dtype="float32")[2:]
        grads = fn(x, y, *params)
        assert all(g.dtype == torch.float32 for g in grads)
        assert [tuple(g.shape) for g in grads] == [tuple(p.shape) for p in params]
        _assert_autograd(other.replace(layers=net.layers), grads, tolerance=1e-5)
        if "gelu" not in case[1]:  # NumPy has no erf: Φ's vectorised math.erfc gives float64
            arrays = arguments(other.replace(layers=net.layers), backend="numpy", dtype="float32")
            assert all(g.dtype == np.float32 for g in compile(net, backend="numpy", form="matrix")(*arrays))


def test_matrix_form_keeps_autograd_history():
    """Gradients of tensors that record history record it too: a second derivative through the compiled
    gradient equals torch's double backward."""
    from tests.torch_reference import torch_sequential

    net = _network(CASES[2])
    fn = compile(net, backend="torch", form="matrix")
    x, y, *params = arguments(net, backend="torch")
    tracked = [p.clone().requires_grad_(True) for p in params]
    grads = fn(x, y, *tracked)
    assert all(g.requires_grad for g in grads)
    (ours,) = torch.autograd.grad((grads[2] ** 2).sum(), tracked[2])
    model = torch_sequential(net)
    loss = torch.nn.functional.mse_loss(model(x), y)
    (dW2,) = torch.autograd.grad(loss, model[2].weight, create_graph=True)
    (theirs,) = torch.autograd.grad((dW2**2).sum(), model[2].weight)
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-15)


def test_matrix_form_buffers_never_leak_into_results_calls_or_threads():
    """Its torch intermediates live in buffers kept between calls: a result must not change when the function
    is called again, from this thread or another, with other data."""
    import threading

    net = _network(CASES[2])  # relu, tanh, identity: the fused in-place rules and the program's own line
    fn = compile(net, backend="torch", form="matrix")
    x, y, *params = arguments(net, backend="torch")
    first = [g.clone() for g in fn(x, y, *params)]
    kept = fn(x, y, *params)
    fn(2 * x, y, *params)
    for a, b in zip(kept, first):
        assert torch.equal(a, b)
    rows = 100_000  # long enough kernels (torch releases the GIL in them) for the threads to overlap
    big_y = y[:1].expand(rows, -1).contiguous()
    data = {seed: torch.as_tensor(np.random.default_rng(seed).uniform(-2, 2, (rows, x.shape[1]))) for seed in range(4)}
    alone = {seed: [g.clone() for g in fn(data[seed], big_y, *params)] for seed in data}
    wrong = []

    def other(seed):  # other data, same shapes: the same buffers if they were shared
        for _ in range(10):
            grads = fn(data[seed], big_y, *params)
            if not all(torch.allclose(a, b, rtol=1e-12, atol=1e-15) for a, b in zip(grads, alone[seed])):
                wrong.append(seed)

    threads = [threading.Thread(target=other, args=(seed,)) for seed in data]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not wrong


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_matrix_form_adds_penalties_and_derives_frozen_parameters(backend):
    net = _network(CASES[1], l2=0.05, l1=0.01, penalized=["W1", "W3", "b2"], freeze=["W1", "b1"])
    grads = compile(net, backend=backend, form="matrix")(*arguments(net, backend=backend))
    assert float(np.asarray(grads[0])[0, 0]) != 0  # a frozen parameter's gradient is still derived
    _assert_autograd(net, grads)


@pytest.mark.parametrize("sizes", [(8, 16, 16, 1), (16, 32, 32, 32, 1), (32, 64, 64, 64, 1)])
def test_program_stays_linear_in_size(sizes):
    acts = ("tanh",) * (len(sizes) - 2) + ("sigmoid",)
    count = operation_count(backpropagate(Architecture(sizes, acts, "bce", "mean", 1)))
    assert count.per_parameter <= 6
    assert count.gradient <= 3 * count.forward


def test_form_sizes_are_estimated_without_building_and_large_forms_are_refused():
    from derive.backprop import count_operations

    d = derive.derive(derive.examples.classic_2_2_2())
    for p in d.parameters:
        for form, build in (("compact", d.compact), ("closed", d.closed)):
            actual = count_operations(build(p.name))
            assert 0.75 * actual <= d.backprop.size(p.name, form) <= 1.25 * actual
    deep = backpropagate(Architecture((8,) * 7 + (1,), ("tanh",) * 6 + ("sigmoid",), "bce", "mean", 1))
    assert deep.size("W1") > 10**9  # as a printed tree; the program itself stays linear
    with pytest.raises(derive.DeriveError, match=r"closed form of ∂L/∂W1 has [\d,]+ operations, over the limit"):
        deep.closed("W1")


def test_reports_past_the_limit_are_the_matrix_form_or_refused(tmp_path, capsys):
    from derive.cli import main
    from derive.sources.spec import dumps_spec

    net = _network(((30, 20, 1), ("tanh", "sigmoid"), "bce", "mean", 1))  # 641 parameters
    path = tmp_path / "wide.toml"
    path.write_text(dumps_spec(net))
    assert main(["report", "--spec", str(path), "--format", "md", "--form", "scalar"]) == 2
    error = capsys.readouterr().err
    assert "641 parameters" in error and "limited to 500" in error and "--max-params" in error
    with pytest.raises(derive.DeriveError, match="641 parameters"):
        derive.report(net, format="md", form="scalar")
    # past the limit, the report is the matrix form (its length grows with the layers, not the parameters)
    assert main(["report", "--spec", str(path), "--format", "md"]) == 0
    assert capsys.readouterr().out.startswith("# Derivation report in matrix form")
    small = _network(CASES[0])  # 9 parameters: at the limit the walk-through, past it the matrix form
    assert "b_{3}" in derive.report(small, format="md", max_parameters=9)
    with pytest.raises(derive.DeriveError, match="9 parameters"):
        derive.report(small, format="md", max_parameters=8, form="scalar")
    assert derive.report(small, format="md", max_parameters=8).startswith("# Derivation report in matrix form")


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_matrix_form_on_cuda_tensors_equals_cpu_autograd(dtype):
    net = _network(CASES[2])
    fn = compile(net, backend="torch", form="matrix")
    grads = fn(*arguments(net, backend="torch", dtype=dtype, device="cuda"))
    assert all(g.device.type == "cuda" and str(g.dtype) == f"torch.{dtype}" for g in grads)
    ours = _flat(net, [g.cpu().double() for g in grads])
    reference = autograd_gradients(net)
    scale = max(abs(v) for v in reference.gradients.values())
    tolerance = 1e-12 if dtype == "float64" else 1e-5
    for name, value in ours.items():
        assert abs(value - reference[name]) <= tolerance * scale, name
