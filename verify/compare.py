"""Check derive's gradients against torch autograd and finite differences: a per-parameter report.

Three opinions on every ∂L/∂p:

1. **symbolic**: derive's value (its own float64 evaluation of the program), and the same program lambdified
   to NumPy (on the CPU) and to torch (on the device), both in the dtype checked;
2. **autograd**: ``backward()`` of the module on the device, in the dtype: a chain's equivalent
   ``nn.Sequential``, or a copy of the very module a graph model was read from (`verify.reference`);
3. **finite differences**: central differences of the same module's loss in float64 (`verify.finite_diff`).

A row passes when every symbolic value agrees with autograd under the dtype's tolerance
(`verify.tolerances`) and the finite differences agree too, wherever they apply (not where the point's
stencil crosses a kink); when symbolic and autograd disagree, the finite differences say which side is wrong.

>>> import derive
>>> report = check(derive.examples.seed())
>>> report.ok, report.agree
(True, True)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace

import numpy as np
import sympy as sp

from derive.derivation import Derivation
from derive.model.graph import Model
from derive.network import Network
from derive.numeric import evaluate
from derive.ops import activation
from derive.sources.examples import EXAMPLES
from derive.sources.spec import to_document
from verify.check_report import AT_A_KINK, FD, SYMBOLIC, CheckReport, Row, _row
from verify.compile import arguments, compile, compile_expressions, compile_program
from verify.finite_diff import detached_parameters, finite_differences
from verify.reference import autograd_gradients, require_device
from verify.tolerances import FINITE_DIFFERENCES, Tolerance, magnitude, policy

_EPSILON = {"float64": 2.0**-52, "float32": 2.0**-23}


def check(
    network: Network | Model,
    *,
    device: str = "cpu",
    dtype: str = "float64",
    gradients: Mapping[str, sp.Expr] | None = None,
    tolerance: Tolerance | None = None,
    finite_differences_check: bool = True,
) -> CheckReport:
    """Check ∂L/∂p for every parameter against torch autograd on ``device`` in ``dtype``.

    ``gradients`` optionally gives expressions of your own ({name: Expr} over the network's symbol names,
    e.g. from ``derive.gradients(net)``) to check instead of derive's. ``tolerance`` overrides the policy.
    A chain is checked against its equivalent ``nn.Sequential``, a graph model against its own module.
    """
    require_device(device)
    tol = tolerance or policy(dtype)
    if not network.textbook and network.precision != "float64" and tolerance is None:
        # a module that rounds to float32 in its forward is judged at float32's tolerance (derive's exact
        # values differ from its own by that rounding)
        tol = tol | policy("float32")
    derivation = Derivation(network)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # inf and NaN show in the report
        symbolic = _symbolic_opinions(network, derivation, device, dtype, gradients or {})
    reference = autograd_gradients(network, device=device, dtype=dtype)
    scale = magnitude([*reference.gradients.values(), reference.adjoint_scale])
    fd_scale = magnitude([scale, reference.loss])
    fd = None
    notes = [reference.note] if reference.note else []
    for op, error, why in reference.rounded:  # autograd's own rounding: judged at it, named
        if dtype == "float64" and tolerance is None and tol.rtol < 3 * error:
            tol = Tolerance(3 * error, tol.atol)
            notes.append(f"{why}: autograd is off by {error:g} relative there, so rtol is {tol.rtol:g}")
    rounded = reference.loss_dtype != dtype and reference.loss_dtype in ("float32", "float16", "bfloat16")
    if rounded:  # the module's own loss is rounded: autograd is judged at its precision, differences not at all
        tol = (tol | policy("float32")) if tolerance is None else tol
        notes.append(f"the module computes its loss in {reference.loss_dtype} (a {reference.loss_dtype} tensor made in "
                     f"forward takes it there), so autograd is judged at float32's tolerance, and finite "
                     f"differences of that rounded loss do not judge")
        fd = {name: None for name in reference.gradients}
    elif finite_differences_check:
        fd_tol = FINITE_DIFFERENCES | tol
        judge = {n: (v, fd_tol.bound(v, fd_scale)) for n, v in reference.gradients.items()}
        fd = finite_differences(network, device=device, judge=judge).gradients
        stopped = detached_parameters(network)
        fd = {n: None if n in stopped else v for n, v in fd.items()}
    rows = []
    for name, autograd in reference.gradients.items():
        opinions: dict[str, float | None] = {o: symbolic[o][name] for o in SYMBOLIC}
        opinions["autograd"] = autograd
        if fd is not None:
            opinions[FD] = fd[name]
        rows.append(_row(name, opinions, tol, scale, fd_scale))
    if any(not r.ok for r in rows) and network.textbook:  # a chain's units, layer by layer
        notes += near_kinks(derivation, dtype)
        rows, flips = _explained_by_sides(network, derivation, reference.pre_activations, rows)
        notes += flips
    loss_ok = tol.allows(derivation.loss, reference.loss, fd_scale)  # δL ≈ ∂L/∂a · δa: the adjoints scale it
    name = f"{network.name} ({network.loss}, {network.reduction}, batch {network.batch})"
    return CheckReport(
        name, tuple(rows), device, dtype, tol, scale, fd_scale, derivation.loss, reference.loss, loss_ok,
        tuple(notes),
        reproducer(network, device, dtype, custom=gradients is not None),
    )


def _symbolic_opinions(
    network: Network | Model, derivation: Derivation, device: str, dtype: str, custom: Mapping[str, sp.Expr]
) -> dict[str, dict[str, float]]:
    names = [p.name for p in derivation.parameters]
    unknown = sorted(set(custom) - set(names))
    if unknown:
        raise ValueError(f"gradients: no parameter {', '.join(map(repr, unknown))} in this network")
    derived = {p.name: p.gradient for p in derivation.parameters}
    point = {s.name: v for s, v in derivation.point.items()}
    for name, expr in custom.items():
        derived[name] = evaluate(expr.xreplace({s: sp.Symbol(s.name) for s in expr.free_symbols}),
                                 {sp.Symbol(k): v for k, v in point.items()})
    opinions = {"derived": derived}
    for backend, where in (("numpy", "cpu"), ("torch", device)):
        if not network.textbook:  # the whole program over the model's scalars
            values = compile_program(derivation, backend, dtype, where)
        else:  # the per-sample program, vectorised over the batch
            values = _flatten(network, compile(network, backend)(*arguments(network, backend, dtype, where)))
        if custom:
            leaves = {k: a for k, a in zip(point, _scalars(list(point.values()), backend, dtype, where))}
            own = compile_expressions(list(custom.values()), list(point), backend)(leaves)
            values.update({n: float(v) for n, v in zip(custom, own)})
        opinions[backend] = values
    return opinions


def _scalars(values: list[float], backend: str, dtype: str, device: str) -> list:
    if backend == "numpy":
        return list(np.asarray(values, dtype=dtype))
    import torch

    return list(torch.tensor(values, dtype=torch.float64).to(device=device, dtype=getattr(torch, dtype)))


def _flatten(network: Network, tensors: list) -> dict[str, float]:
    """Gradient tensors in layer order (W1, b1, …) as values by textbook name."""
    out = {}
    for p in network.parameters():
        tensor = tensors[2 * (p.layer - 1) + (0 if p.tensor == "weight" else 1)]
        out[p.name] = float(tensor[p.index])
    return out


def _explained_by_sides(
    network: Network, derivation: Derivation, torch_pre: list, rows: list[Row]
) -> tuple[list[Row], list[str]]:
    """Rows whose mismatch comes from a unit on the other side of a kink in torch than in derive.

    derive evaluates every function exactly; torch's float64 functions may round a tiny value to 0 (GELU
    far left, where 1 + erf cancels), which can move the next pre-activation onto the other side of a
    kink. Both gradients are then right for their own point: the parameters of that layer and those before
    it differ. Such rows pass, with a note naming the unit.
    """
    flipped_layers, notes = set(), []
    for node in derivation.graph.nodes:
        if node.kind != "z":
            continue
        z = derivation.values[node.symbol]
        theirs = torch_pre[node.layer - 1][node.sample][node.unit]
        for k in activation(network.layers[node.layer - 1].activation).kinks:
            if (z > k) != (theirs > k) or (z == k) != (theirs == k):
                flipped_layers.add(node.layer)
                notes.append(f"{node.symbol} = {z:.3g} in derive but {theirs:.3g} in torch: on the other side of "
                             f"the kink at {k:g}, so the gradients of layer {node.layer} and before differ (both "
                             "right for their own point)")
    if not flipped_layers:
        return rows, []
    deepest = max(flipped_layers)
    layers = {p.name: p.layer for p in network.parameters()}
    explained = [
        replace(r, ok=True, verdict=f"{AT_A_KINK}: torch's point lies on the other side (see the note)")
        if not r.ok and layers[r.name] <= deepest else r
        for r in rows
    ]
    return explained, notes


def _units_near_kinks(derivation: Derivation, dtype: str) -> list[tuple[object, float, float]]:
    """(z node, z, kink) for every pre-activation within rounding distance of its activation's kink.

    Rounding bound: 64 ε · (Σ|W a| + |b|) in ``dtype``; on such a unit, which side of the kink it falls on
    (and so the gradient) depends on the order of operations.
    """
    units = []
    values = derivation.values
    for node in derivation.graph.nodes:
        if node.kind != "z":
            continue
        kinks = activation(derivation.network.layers[node.layer - 1].activation).kinks
        z = values[node.symbol]
        size = sum(abs(evaluate(term, values)) for term in sp.Add.make_args(node.expr))
        units += [(node, z, k) for k in kinks if abs(z - k) <= 64 * _EPSILON[dtype] * size]
    return units


def near_kinks(derivation: Derivation, dtype: str = "float64") -> list[str]:
    """Pre-activations within rounding distance of their activation's kink, as notes."""
    return [
        f"{node.symbol} = {z:.3g} is within {dtype} rounding of the kink at {k:g}: the side it falls on, and so "
        "the gradient, depends on the order of operations"
        for node, z, k in _units_near_kinks(derivation, dtype)
    ]


def kinked_parameters(derivation: Derivation, dtype: str = "float64") -> frozenset[str]:
    """The parameters whose paths to the loss pass through a unit within ``dtype`` rounding of its kink.

    A unit j of layer l near its kink changes f'(z) of that unit only: the gradients it touches are those of
    row j of layer l (W and b of that unit) and of every parameter of the layers before l (their paths
    reach the loss through every unit of layer l). Later layers see the unit's activation, which is continuous
    at the kink. Every other parameter's gradient must still agree.

    >>> import derive
    >>> net = derive.Network([derive.Linear([[1.0], [2.0]], [-1.0, 0.5], "relu"),
    ...                       derive.Linear([[1.0, 1.0]], [0.0], "identity")], x=[[1.0]], y=[[0.0]], loss="mse")
    >>> sorted(kinked_parameters(derive.derive(net)))   # z1 = 1·1 − 1 = 0: W1 and b1 only
    ['W1', 'b1']
    """
    units = _units_near_kinks(derivation, dtype)
    touched = set()
    for p in derivation.network.parameters():
        for node, _, _ in units:
            if p.layer < node.layer or (p.layer == node.layer and p.index[0] == node.unit):
                touched.add(p.name)
    return frozenset(touched)


def reproducer(network: Network | Model, device: str, dtype: str, *, custom: bool = False) -> str:
    """One line that reruns this check: an example's name, the network as a JSON spec, or a graph model's
    module class."""
    if not network.textbook:
        module = type(network.module).__name__
        own = ", gradients=g" if custom else ""
        return f"verify.check(derive.from_torch({module}(), …), device={device!r}, dtype={dtype!r}{own})"
    if custom:
        return (f"verify.check(derive.loads_spec({spec_json(network)!r}, format='json'), device={device!r}, "
                f"dtype={dtype!r}, gradients=g)")
    for name, make in EXAMPLES.items():
        if make() == network:
            return f"derive verify --example {name} --device {device} --dtype {dtype}"
    command = f"derive verify --spec net.json --device {device} --dtype {dtype}"
    return f"{command}   # net.json: {spec_json(network)}"


def spec_json(network: Network) -> str:
    """The network as a one-line JSON spec (DESIGN.md's structure, frozen parameters included).

    Floats are written as their repr, so they round-trip exactly:

    >>> import derive
    >>> net = derive.examples.seed().with_parameters({"W1": 0.123456789})
    >>> derive.loads_spec(spec_json(net), format="json") == net
    True
    """
    return json.dumps(to_document(network), separators=(",", ":"))
