r"""Compiled gradients of a chain: its tensor program as one straight-line Python function per backend, any batch.

A chain's program (`derive.tensor.program`) is the textbook's matrix form: Z⁽ˡ⁾ = A⁽ˡ⁻¹⁾ W⁽ˡ⁾ᵀ + b⁽ˡ⁾,
A⁽ˡ⁾ = f(Z⁽ˡ⁾), ∂L/∂A⁽ᴸ⁾ from the loss's own derivative, Δ⁽ˡ⁾ = ∂L/∂A⁽ˡ⁾ ⊙ f′ (softmax: A ⊙ (G − Σ G ⊙ A)),
∂L/∂A⁽ˡ⁻¹⁾ = Δ⁽ˡ⁾ W⁽ˡ⁾, ∂L/∂W⁽ˡ⁾ = Δ⁽ˡ⁾ᵀ A⁽ˡ⁻¹⁾, ∂L/∂b⁽ˡ⁾ = Σ_rows Δ⁽ˡ⁾. `derive.tensor.pycode.compiled_source`
writes it as Python, one line per definition; the lines of `KERNELS` are written here as the kernels torch's
autograd runs for the same formulas: the affine step as one ``addmm`` (as ``nn.Linear``), σ′, tanh′ and ReLU′
as torch's fused backward kernels. ∂L/∂A⁽ᴸ⁾ and Δ⁽ᴸ⁾ are one line where the loss's derivative times the
output's f′ cancels (`derive.tensor.loss.output_rule`: bce after σ, A − T). The loss takes the output as its
rows (a chain's output is batch × outputs), so one function serves every batch.

>>> import derive
>>> from verify.compile import arguments
>>> net = derive.examples.seed()
>>> fn = compile_chain(net, "numpy")
>>> round(float(fn(*arguments(net))[2][0, 0]), 9)   # ∂L/∂W5
0.27273792
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from derive.errors import DeriveError
from derive.network import Architecture, Network
from derive.ops import loss as lookup_loss
from derive.tensor.expr import Call, Ref, TExpr, call, parse
from derive.tensor.program import TensorProgram

BACKENDS = ("numpy", "torch")

#: definitions written as one kernel, by pattern (``_``-names match any tensor): their Python for torch
#: (`verify.chain_kernels`; ``{symbol}``: the tensor defined) and for NumPy ("": the program's own line)
KERNELS: dict[str, tuple[str, str]] = {
    "_a @ transpose(_w) + _b": ("_affine({symbol!r}, {b}, {a}, {w})", "{a} @ {w}.T + {b}"),
    "transpose(_g) @ _a": ("{g}.T @ {a}", "{g}.T @ {a}"),
    "_g @ _w": ("_product({symbol!r}, {g}, {w})", ""),
    "sum(_g; dims=[0], keepdim=false)": ("{g}.sum(0)", "{g}.sum(0)"),
}  # and g ⊙ f′ of each activation with a fused kernel (`Activation.torch_backward`): `_patterns`


def compile_chain(network: Network | Architecture, backend: str = "numpy") -> Callable[..., list[Any]]:
    """``fn(x, y, W1, b1, W2, b2, …) -> [∂L/∂W1, ∂L/∂b1, …]`` from the chain's tensor program, for any batch.

    ``x`` is batch × inputs; ``y`` batch × outputs (class indices, one per sample, for cross-entropy and
    nll); weights out × in (torch layout); NumPy arrays, or torch tensors whose device, dtype and autograd
    the result keeps. ``fn.forward(x, y, *tensors)`` gives the loss alone.
    """
    if backend not in BACKENDS:
        raise DeriveError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
    arch = network if isinstance(network, Architecture) else network.architecture
    return _compiled(dataclasses.replace(arch, batch=1, penalty=()), backend)


@functools.lru_cache(maxsize=64)
def _compiled(arch: Architecture, backend: str) -> Callable[..., list[Any]]:
    from derive.graph import chain_structure
    from derive.tensor.program import build
    from derive.tensor.pycode import compiled_source

    p = build(chain_structure(arch))
    spec = lookup_loss(arch.loss)
    fused = _gradients_early(_fused_output(p, arch, backend))
    names = {p.structure.nodes[i].name: name for i, name in p.leaves.items()}
    parameters = [names[key] for key in p.gradients]
    width = arch.sizes[-1]
    written = _written(fused.definitions, backend)
    gradient_run = _run(*compiled_source(fused, backend, written=written), _namespace(arch, backend))
    loss_run = _run(*compiled_source(p, backend, returns={"L": "L"}, written=written), _namespace(arch, backend))

    def environment(x: Any, y: Any, tensors: tuple[Any, ...]) -> dict[str, Any]:
        if len(tensors) != len(parameters):
            raise DeriveError(f"expected {len(parameters)} tensors (W1, b1, …), got {len(tensors)}")
        env = dict(zip(parameters, tensors))
        env["X"], env["T"] = x, _targets(y, tensors[0], x.shape[0], width, spec.class_targets, backend)
        return env

    def gradients(x: Any, y: Any, *tensors: Any) -> list[Any]:
        return list(gradient_run(environment(x, y, tensors)).values())

    def loss(x: Any, y: Any, *tensors: Any) -> Any:
        return loss_run(environment(x, y, tensors))["L"]

    gradients.forward = loss  # type: ignore[attr-defined]
    return gradients


def _fused_output(p: TensorProgram, arch: Architecture, backend: str) -> TensorProgram:
    """The program with ∂L/∂A⁽ᴸ⁾ and Δ⁽ᴸ⁾ as one definition, ``output_rule(Z, A, T)``, where the loss's
    derivative times the output's f′ cancels (`derive.tensor.loss.output_rule`); else the program itself."""
    from derive.tensor.loss import output_rule

    if output_rule(arch.loss, arch.activations[-1], backend) is None:
        return p
    layer = len(arch.activations)
    gradient, delta = f"dL_dA_{layer}", f"dL_dZ_{layer}"
    rule = call("output_rule", Ref(f"Z_{layer}"), Ref(f"A_{layer}"), Ref("T"))
    definitions = [dataclasses.replace(d, expr=rule) if d.symbol == delta else d
                   for d in p.definitions if d.symbol != gradient]
    return dataclasses.replace(p, definitions=definitions)


def _gradients_early(p: TensorProgram) -> TensorProgram:
    """The program with each gradient right after the tensors it reads (∂L/∂W⁽ˡ⁾ while Δ⁽ˡ⁾ is fresh in the
    cache, as autograd does), the other definitions in their order."""
    definitions = [d for d in p.definitions if d.kind != "gradient"]
    for gradient in (d for d in p.definitions if d.kind == "gradient"):
        reads = gradient.expr.refs()
        at = max((i for i, d in enumerate(definitions) if d.symbol in reads), default=-1) + 1
        while at < len(definitions) and definitions[at].kind == "gradient":
            at += 1
        definitions.insert(at, gradient)
    return dataclasses.replace(p, definitions=definitions)


def _run(source: str, namespace: dict[str, Any], kernels: dict[str, Any]) -> Callable[[dict[str, Any]], dict]:
    namespace.update(kernels)
    exec(compile(source, "<compiled chain>", "exec"), namespace)  # noqa: S102 - derive's own program text
    return namespace["run"]


def _namespace(arch: Architecture, backend: str) -> dict[str, Any]:
    """The kernels `KERNELS` names (a workspace of their own), and the loss on the output as rows."""
    from derive.tensor.loss import loss_gradient, loss_value, output_rule, reduced

    key, reduction = arch.loss, arch.reduction
    rule = output_rule(key, arch.activations[-1], backend)
    namespace: dict[str, Any] = {
        "_loss_value": lambda out, t: loss_value(out, t, key, reduction, backend),
        "_loss_gradient": lambda out, t: loss_gradient(out, t, key, reduction, backend),
        "_output_rule": lambda z, a, t: reduced(rule(z, a, t), a, key, reduction),
    }
    if backend == "torch":
        from verify.chain_kernels import torch_kernels

        namespace.update(torch_kernels())
    return namespace


def _written(definitions: list[Any], backend: str) -> dict[str, str]:
    """The Python of the definitions a kernel of `KERNELS` computes, and of the loss, by symbol. A fused
    backward kernel writes over its G where G is a Δ W of its own (read by this definition alone)."""
    written: dict[str, str] = {}
    readers: dict[str, int] = {}
    for d in definitions:
        for name in d.expr.refs():
            readers[name] = readers.get(name, 0) + 1
    products: set[str] = set()
    for d in definitions:
        if d.kind == "loss" or (isinstance(d.expr, Call) and d.expr.fn in ("loss_grad", "output_rule")):
            function = {"loss": "loss_value", "loss_grad": "loss_gradient"}.get(d.expr.fn, d.expr.fn)
            written[d.symbol] = f"_{function}({', '.join(a.name for a in d.expr.args)})"
            continue
        for pattern, (torch_text, numpy_text) in _patterns().items():
            text = torch_text if backend == "torch" else numpy_text
            bound = _match(pattern, d.expr, {}) if text else None
            if bound is not None:
                tensors = {name[1:]: tensor for name, tensor in bound.items()}
                g = tensors.get("g")
                into = "_into" if g in products and readers[g] == 1 else ""
                written[d.symbol] = text.format(symbol=d.symbol, into=into, **tensors)
                if text.startswith("_product"):
                    products.add(d.symbol)
                break
    return written


@functools.cache
def _patterns() -> dict[TExpr, tuple[str, str]]:
    """`KERNELS` parsed, and the program's line g ⊙ f′ of each activation that names torch's fused kernel
    for it, as its class writes f′ (``_g*(1 - _a**2)``: ``_tanh_backward{into}({g}, {a})``)."""
    import sympy as sp

    from derive.ops.activations import ACTIVATIONS
    from derive.tensor.elementwise import from_sympy

    patterns = {parse(pattern): texts for pattern, texts in KERNELS.items()}
    z, a = sp.symbols("z a")
    for act in ACTIVATIONS.values():
        if act.torch_backward is not None:
            kernel, reads, *extra = act.torch_backward
            rule = call("mul", Ref("_g"), from_sympy(act.derivative(z, a), {z: Ref("_z"), a: Ref("_a")}))
            patterns[rule] = (f"_{kernel}{{into}}({{g}}, {{{reads}}}{''.join(f', {v}' for v in extra)})", "")
    return patterns


def _match(pattern: TExpr, expr: TExpr, bound: dict[str, str]) -> dict[str, str] | None:
    """The tensors ``pattern``'s ``_``-names stand for in ``expr`` (one tensor per name), or None."""
    if isinstance(pattern, Ref) and pattern.name.startswith("_"):
        if not isinstance(expr, Ref) or bound.get(pattern.name, expr.name) != expr.name:
            return None
        return {**bound, pattern.name: expr.name}
    if isinstance(pattern, Call):
        if not isinstance(expr, Call) or (expr.fn, expr.options, len(expr.args)) != (
                pattern.fn, pattern.options, len(pattern.args)):
            return None
        for p, e in zip(pattern.args, expr.args):
            bound = _match(p, e, bound)
            if bound is None:
                return None
        return bound
    return bound if pattern == expr else None


def _targets(y: Any, like: Any, rows: int, width: int, class_targets: bool, backend: str) -> Any:
    """The targets as rows × width in ``like``'s dtype (and device): class indices as one-hot rows."""
    indices = class_targets and width > 1 and (y.ndim == 1 or y.shape[-1] == 1)
    if backend == "numpy":
        if indices:
            return np.eye(width, dtype=like.dtype)[np.asarray(y).reshape(-1).astype(np.int64)]
        return np.asarray(y, dtype=like.dtype).reshape(rows, width)
    if indices:
        import torch

        return torch.nn.functional.one_hot(y.reshape(-1).long(), width).to(dtype=like.dtype, device=like.device)
    if y.dtype != like.dtype or y.device != like.device:
        y = y.to(dtype=like.dtype, device=like.device)
    return y if y.shape == (rows, width) else y.reshape(rows, width)
