r"""Proofs of the tensor rules a program uses: each rule checked against the scalar engine's derivation of a
small instance of the same op, with the same options.

For every op configuration of a program (the op with its options, which inputs need a gradient), derive
builds an instance: the same op, its inputs shrunk (`TensorOp.proof_shapes`: every size > 1 mapped to a small
size of its own, so that dims the options relate stay related and dims that differ stay different), random
inputs and a random output adjoint G. The scalar engine derives ∂(Σ G ⊙ op(inputs))/∂input for every entry
(the ground truth); the tensor rule computes the same tensors. They are compared

- **exactly**, in rational arithmetic, where the rule and the op are rational in their inputs (linear maps,
  products, sums, shapes, max, ReLU's step): inputs and G are rationals, and both sides are exact;
- else **at 3 random points in 50-digit arithmetic** (σ, tanh, exp, log, softmax): both sides in mpmath at
  50 digits, agreeing to 40;
- where the rule runs one of torch's own kernels (convolution's backward), in float64, to 1e-12 relative.

A proof says which, and how many entries it checked. Proofs are cached by configuration: the ones shipped
with derive (`derive/tensor/proofs.json`) and the ones proved on this machine
(``~/.cache/derive/proofs.json``), so a command proves a configuration once.

>>> import derive
>>> proofs = prove(derive.examples.seed().replace(x=[[1, 1], [0, 1]], y=[[0], [1]]))
>>> [(p.op, p.arithmetic, p.holds) for p in proofs]
[('dense(activation="sigmoid")', '50-digit', True), ('dense(activation="sigmoid")', '50-digit', True)]
"""

from __future__ import annotations

import dataclasses
import fractions
import functools
import json
import os
import random
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import sympy as sp

from derive.errors import DeriveError
from derive.model.graph import Leaf, OpNode
from derive.tensor.expr import Ref, text
from derive.tensor.program import as_structure, build

#: instances with more scalar entries than this are not proved (the scalar engine's time grows with them)
MAX_ENTRIES = 4_000
#: random points for 50-digit proofs, and the digits they agree to
POINTS, DIGITS = 3, 40


@dataclass(frozen=True)
class Proof:
    """The proof of one op configuration's tensor rule."""

    op: str
    #: the rule, one line per input it differentiates
    rule: tuple[str, ...]
    #: the instance's input shapes
    shapes: tuple[tuple[int, ...], ...]
    #: how many scalar adjoints were compared
    entries: int
    #: "exact" (rational), "50-digit" or "float64" (torch's kernel); "not proved" past `MAX_ENTRIES`
    arithmetic: str
    holds: bool
    #: where it failed: the input, the entry, both values
    failure: str = ""

    def statement(self) -> str:
        """One line: ``dense(…): the rule holds for all 24 entries (exact) on (2, 3) × (4, 3) × (4,)``."""
        shapes = " × ".join(str(s) for s in self.shapes)
        if self.arithmetic == "not proved":
            return f"{self.op}: not proved (an instance of {shapes} is too large for the scalar engine)"
        verdict = f"holds for all {self.entries} entries" if self.holds else f"FAILS: {self.failure}"
        return f"{self.op}: the rule {verdict} ({self.arithmetic}) on inputs {shapes}"


class RuleFailure(DeriveError):
    """A tensor rule that disagrees with the scalar derivation of its op."""


def prove(network: Any, *, cache: bool = True) -> list[Proof]:
    """A proof of every tensor rule the model's (or chain's) program uses, one per op configuration (configurations
    with the same instance share one)."""
    structure = as_structure(network)
    program = build(structure)
    del program
    proofs, seen = [], set()
    for config in _configurations(structure):
        key = config.key()
        if key in seen:
            continue
        seen.add(key)
        found = _cached(key, config) if cache else None
        if found is None:
            found = prove_configuration(config)
            if cache and found.arithmetic != "not proved":
                _remember(key, found)
        proofs.append(found)
    return proofs


@dataclass(frozen=True)
class Configuration:
    """One op of a program: the op, which inputs need a gradient, its inputs' shapes, and the values of its
    inputs that are data (indices, masks), which the instance keeps."""

    op: Any
    wanted: tuple[bool, ...]
    shapes: tuple[tuple[int, ...] | None, ...]
    data: tuple[Any, ...]

    def key(self) -> str:
        """What the proof depends on: the op, the instance's shapes and data, which inputs are differentiated
        (models of different sizes share the instance of a configuration, and so its proof)."""
        op, shapes, data = self.op.proof_instance(self.shapes, self.data)
        wanted = [w and d is None for w, d in zip(self.wanted, data)]
        data = [None if d is None else (np.asarray(d).dtype.str, np.shape(d), np.asarray(d).tobytes().hex())
                for d in data]
        return json.dumps([type(op).__name__, repr(op), wanted, [list(s) if s else s for s in shapes], repr(data)])


def _configurations(structure: Any) -> Iterator[Configuration]:
    from derive.tensor.program import inner_nodes, needs_gradient

    needs = needs_gradient(structure)
    inner = inner_nodes(structure)
    ops = [(i, node.op, node.args) for i, node in enumerate(structure.nodes)
           if isinstance(node, OpNode) and i not in inner and needs[i]]
    ops += [(max(g.outputs), g.op, g.args) for g in structure.groups if any(needs[o] for o in g.outputs)]
    for _, op, args in sorted(ops, key=lambda application: application[0]):
        shapes, data = [], []
        for a in args:
            if a is None:
                shapes.append(None)
                data.append(None)
                continue
            leaf = structure.nodes[a]
            shape = _shape(structure, a)
            shapes.append(shape)
            if isinstance(leaf, Leaf) and leaf.kind == "literal":
                data.append(np.array(leaf.numbers, dtype=np.float64 if leaf.dtype == "float64" else (
                    bool if leaf.dtype == "bool" else np.int64)).reshape(shape))
            elif isinstance(leaf, Leaf) and leaf.integers is not None:
                data.append(np.array(leaf.integers, dtype=np.int64).reshape(shape))
            elif isinstance(leaf, Leaf) and leaf.kind == "number":
                data.append(np.array(float(leaf.name)))
            else:
                data.append(None)
        wanted = tuple(a is not None and needs[a] for a in args)
        yield Configuration(op, wanted, tuple(shapes), tuple(data))


def _shape(structure: Any, index: int) -> tuple[int, ...]:
    from derive.tensor.program import structure_shapes

    return structure_shapes(structure)[index]


def prove_configuration(config: Configuration) -> Proof:
    """Prove one configuration's rule (see the module's docstring)."""
    op, shapes, data = config.op.proof_instance(config.shapes, config.data)
    config = dataclasses.replace(config, wanted=tuple(w and d is None for w, d in zip(config.wanted, data)))
    entries = sum(int(np.prod(s)) for s, w in zip(shapes, config.wanted) if s is not None and w)
    name = _describe(op)
    rule_text = _rule_text(op, shapes, config.wanted)
    if sum(int(np.prod(s)) for s in shapes if s is not None) > MAX_ENTRIES:
        return Proof(name, rule_text, tuple(s or () for s in shapes), 0, "not proved", True)
    rng = random.Random(zlib.crc32(repr((name, tuple(shapes))).encode()))  # the same draws in every process
    domains = op.proof_domains(len(shapes))
    inputs = [_random_input(s, d, r, rng) for s, d, r in zip(shapes, data, domains)]
    attempt = _check(op, inputs, config.wanted, rng, "exact")
    if attempt is None:  # not rational: 50 digits at several points
        for point in range(POINTS):
            points = inputs if point == 0 else [_random_input(s, d, r, rng) for s, d, r in zip(shapes, data, domains)]
            attempt = _check(op, points, config.wanted, rng, "50-digit")
            if attempt is None or not attempt[0]:
                break
        if attempt is None:
            attempt = _check(op, inputs, config.wanted, rng, "float64")
    holds, arithmetic, failure = attempt
    return Proof(name, rule_text, tuple(s or () for s in shapes), entries, arithmetic, holds, failure)


def _describe(op: Any) -> str:
    options = ", ".join(f"{k}={_option(v)}" for k, v in op.options().items())
    return f"{op.key}({options})"


def _option(value: Any) -> str:
    from derive.tensor.expr import _freeze, _value

    return _value(_freeze(value))


def _rule_text(op: Any, shapes: list, wanted: tuple[bool, ...]) -> tuple[str, ...]:
    inputs = [Ref(f"I{k}") if s is not None else Ref("none") for k, s in enumerate(shapes)]
    while inputs and inputs[-1].name == "none":
        inputs.pop()
    from derive.tensor.expr import substitute

    forward = op.tensor_forward(inputs)
    steps = forward if isinstance(forward, list) else [("", forward)]
    parts = {p: Ref("O" if p == "" else f"O_{p}") for p, _ in steps}
    placeholders = {f"@{p}": r for p, r in parts.items()}
    lines = [f"{'O' if p == '' else 'O_' + p} = {text(substitute(e, placeholders))}" for p, e in steps]
    try:
        out_shape = op.proof_output_shape(shapes)
    except Exception:  # noqa: BLE001 - only for the printed rule
        out_shape = ()
    for part, expr in op.tensor_adjoint_parts(Ref("G"), inputs, parts, shapes, out_shape):
        expr = substitute(expr, {f"@{p}": r for p, r in parts.items()})
        parts["d" + part] = Ref(f"dO_{part}")
        lines.append(f"dO_{part} = {text(expr)}")
    rules = op.tensor_rule(Ref("G"), inputs, parts, list(wanted), shapes, out_shape)
    lines += [f"dI{k} = {text(r)}" for k, r in enumerate(rules) if r is not None]
    return tuple(lines)


def _random_input(shape: tuple[int, ...] | None, data: Any, domain: tuple[float, float], rng: random.Random) -> Any:
    """Data as it is; else random sixteenths in the op's domain for that input."""
    if shape is None:
        return None
    if data is not None:
        return data
    low, high = (round(v * 16) for v in domain)
    values = [fractions.Fraction(rng.randint(low, high), 16) for _ in range(int(np.prod(shape)))]
    return np.array(values, dtype=object).reshape(shape)


def _check(op: Any, inputs: list, wanted: tuple[bool, ...], rng: random.Random,
           mode: str) -> tuple[bool, str, str] | None:
    """(holds, arithmetic, failure), or None when the scalar side is not rational (``mode`` "exact")."""
    try:
        value, reference, g = _scalar_side(op, inputs, wanted, rng, mode)
    except _NotRational:
        return None
    import mpmath

    try:
        with mpmath.workdps(60):  # mpmath's arithmetic on the object arrays runs at the working precision
            rule = _tensor_side(op, inputs, wanted, g, value, mode)
    except _NotExact:
        if mode == "float64":
            raise
        return None if mode == "exact" else _check(op, inputs, wanted, rng, "float64")
    with mpmath.workdps(60):
        try:
            return _compare(reference, rule, mode)
        except _NotExact:  # the rule left exact arithmetic (a float or an mpf among rationals)
            return None if mode == "exact" else _check(op, inputs, wanted, rng, "float64")


def _compare(reference: list, rule: list, mode: str) -> tuple[bool, str, str]:
    for k, (expected, got) in enumerate(zip(reference, rule)):
        if expected is None:
            continue
        got = np.asarray(0 if got is None else got, dtype=object)  # None: no contribution, zeros
        if got.ndim and got.shape != expected.shape:
            return False, mode, (f"input {k}: the rule gives a tensor of shape {got.shape}, the scalar derivation "
                                 f"one of {expected.shape}")
        got = np.broadcast_to(got, expected.shape)
        for index in np.ndindex(expected.shape):
            if not _agree(got[index], expected[index], mode):
                return False, mode, (f"input {k}, entry {index}: the rule gives {float(got[index]):.17g}, the "
                                     f"scalar derivation {float(expected[index]):.17g}")
    return True, mode, ""


class _NotRational(Exception):
    pass


class _NotExact(Exception):
    pass


def _agree(got: Any, expected: Any, mode: str) -> bool:
    if mode == "exact":
        if not isinstance(got, (fractions.Fraction, int, np.integer)):
            raise _NotExact
        return fractions.Fraction(int(got) if isinstance(got, np.integer) else got) == expected
    import mpmath

    if mode == "50-digit":
        if not isinstance(got, (mpmath.mpf, fractions.Fraction, int, np.integer)):
            raise _NotExact  # a float or nothing: the rule left 60-digit arithmetic
        return abs(mpmath.mpf(got) - expected) <= mpmath.mpf(10) ** -DIGITS * max(1, abs(expected))
    return abs(float(got) - float(expected)) <= 1e-12 * max(1.0, abs(float(expected)))


def _number(value: Any, mode: str) -> Any:
    """A float input or G in the mode's arithmetic: a Fraction, a 60-digit mpf, or a float."""
    if mode == "exact" or isinstance(value, float):
        return value
    if mode == "50-digit":
        import mpmath

        with mpmath.workdps(60):
            return mpmath.mpf(value.numerator) / value.denominator if isinstance(value, fractions.Fraction) else \
                mpmath.mpf(value)
    return float(value)


def _scalar_side(op: Any, inputs: list, wanted: tuple[bool, ...], rng: random.Random, mode: str):
    """The op's output and ∂(Σ G ⊙ out)/∂input from the scalar engine, in the mode's arithmetic."""
    from derive.model.build import ModelBuilder
    from derive.model.graph import OWN_LOSS
    from derive.model.lower import backpropagate_model, lower

    b = ModelBuilder()
    b.input("x", (1,))
    b.input("y", (1,))
    refs, symbols_of = [], {}
    for k, (value, want) in enumerate(zip(inputs, wanted)):
        if value is None:
            refs.append(None)
        elif want:
            refs.append(b.parameter(f"input{k}", np.zeros(value.shape)))
            symbols_of[k] = refs[-1]
        elif value.dtype == object:
            refs.append(b.literal(f"data{k}", np.array([float(v) for v in value.reshape(-1)]).reshape(value.shape)))
        else:
            refs.append(b.literal(f"data{k}", value))
    out = b.op(op, *refs, name="out")
    shape = op.proof_output_shape([None if v is None else tuple(v.shape) for v in inputs])
    g = np.array([fractions.Fraction(rng.randint(-16, 16), 8) for _ in range(int(np.prod(shape)))],
                 dtype=object).reshape(shape)
    weights = b.literal("g", np.array([float(v) for v in g.reshape(-1)]).reshape(shape))
    total = b.op("sum", b.op("mul", out, weights, name="weighted"), name="total")
    structure = b.structure(total, loss=OWN_LOSS, target_shape=(1,), output_shape=())
    lowered = lower(structure)
    program = backpropagate_model(structure)
    point: dict[sp.Symbol, Any] = {}
    params = iter(lowered.parameters)
    for k, value in enumerate(inputs):
        if k in symbols_of:
            for v in value.reshape(-1):
                point[next(params)] = _sympy(v, mode)
    # the literal g: exact, whatever rounding its float64 leaf had
    g_node = next(i for i, n in enumerate(structure.nodes) if isinstance(n, Leaf) and n.name == "g")
    exact_g = {e: _sympy(v, mode) for e, v in zip(lowered.tensors[g_node].reshape(-1), g.reshape(-1))}
    values = dict(point)
    for node in lowered.nodes:
        expr = node.expr.xreplace(exact_g)
        values[node.symbol] = _value(expr.xreplace(values), mode)
    for d, expr in program.adjoints.items():
        values[d] = _value(expr.xreplace(exact_g).xreplace(values), mode)
    output = np.array([_final(_value(e.xreplace(exact_g).xreplace(values), mode), mode) if isinstance(e, sp.Basic)
                       else e for e in lowered.tensors[out.index].reshape(-1)], dtype=object).reshape(shape)
    reference: list[Any] = []
    params = iter(lowered.parameters)
    for k, value in enumerate(inputs):
        if k not in symbols_of:
            reference.append(None)
            continue
        entries = [_final(_value(program.program[p.name].xreplace(exact_g).xreplace(values), mode), mode)
                   for p in [next(params) for _ in range(value.size)]]
        reference.append(np.array(entries, dtype=object).reshape(value.shape))
    return output, reference, g


def _sympy(value: Any, mode: str) -> sp.Expr:
    if isinstance(value, float) and not np.isfinite(value):
        return sp.S.Infinity if value > 0 else sp.S.NegativeInfinity
    if isinstance(value, fractions.Fraction):
        return sp.Rational(value.numerator, value.denominator) if mode == "exact" else sp.Float(
            sp.Rational(value.numerator, value.denominator), 60)
    return sp.Integer(value) if isinstance(value, (int, np.integer)) else sp.Float(float(value), 60)


def _value(expr: sp.Expr, mode: str) -> sp.Expr:
    """An exact (Rational) or 60-digit (Float) SymPy number; `_NotRational` when exact arithmetic is asked of an
    irrational one."""
    if not expr.is_Number and not expr.free_symbols:  # max, its winner, a where: their elementary forms
        expr = expr.rewrite("elementary").doit()
    if mode == "exact":
        if not getattr(expr, "is_Rational", False):
            raise _NotRational
        return expr
    number = sp.N(expr, 60)
    if not number.is_Number:
        raise DeriveError(f"the scalar derivation does not evaluate to a number: {expr}")
    return number


def _final(value: sp.Expr, mode: str) -> Any:
    """A SymPy number as the mode's Python number: a Fraction, a 60-digit mpf, or a float."""
    if mode == "exact":
        return fractions.Fraction(int(value.p), int(value.q))
    import mpmath

    if value.is_infinite:
        return mpmath.mpf("-inf" if value.is_negative else "inf") if mode == "50-digit" else float(value)
    with mpmath.workdps(60):
        return mpmath.mpf(str(value)) if mode == "50-digit" else float(value)


def _tensor_side(op: Any, inputs: list, wanted: tuple[bool, ...], g: Any, output: Any, mode: str) -> list:
    """The tensor rule's value for each input, in the mode's arithmetic."""
    from derive.tensor.functions import evaluate

    backend = {"float64": "numpy", "exact": "object", "50-digit": "mpmath"}[mode]
    env: dict[str, Any] = {"none": None}
    refs = []
    for k, value in enumerate(inputs):
        if value is None:
            refs.append(Ref("none"))
            continue
        refs.append(Ref(f"I{k}"))
        env[f"I{k}"] = _convert(value, mode)
    while refs and refs[-1].name == "none":
        refs.pop()
    shapes = [None if v is None else tuple(v.shape) for v in inputs]
    forward = op.tensor_forward(refs)
    steps = forward if isinstance(forward, list) else [("", forward)]
    parts, names = {}, {}
    try:
        from derive.tensor.expr import substitute

        for part, expr in steps:
            name = "O" if part == "" else f"O_{part}"
            expr = substitute(expr, {f"@{p}": Ref(n) for p, n in names.items()})
            env[name] = evaluate(expr, env, backend)
            names[part] = name
            parts[part] = Ref(name)
        env["G"] = _convert(g, mode)
        shape = tuple(np.shape(env["O"]))
        for part, expr in op.tensor_adjoint_parts(Ref("G"), refs, parts, shapes, shape):
            expr = substitute(expr, {f"@{p}": r for p, r in parts.items()})
            env[f"dO_{part}"] = evaluate(expr, env, backend)
            parts["d" + part] = Ref(f"dO_{part}")
        rules = op.tensor_rule(Ref("G"), refs, parts, list(wanted), shapes, shape)
        return [None if r is None else evaluate(r, env, backend) for r in rules]
    except (TypeError, ValueError, AttributeError, NotImplementedError, RuntimeError) as err:
        if mode == "float64":
            raise
        raise _NotExact from err


def _convert(value: Any, mode: str) -> Any:
    if value.dtype.kind in "biu":
        return value  # indices and masks as they are
    if value.dtype != object:  # float data (a mask's −∞, a number): exact in the mode's arithmetic
        if mode == "float64":
            return value
        # as derive reads a float: the rational its shortest repr names (as `derive.ops.tensor.exact`)
        value = np.array([fractions.Fraction(repr(float(v))) if np.isfinite(v) else float(v)
                          for v in value.reshape(-1)], dtype=object).reshape(value.shape)
        if mode == "exact":
            return value
    if mode == "float64":
        return np.array([float(v) for v in value.reshape(-1)], dtype=np.float64).reshape(value.shape)
    return np.array([_number(v, mode) for v in value.reshape(-1)], dtype=object).reshape(value.shape)


# --- the cache ------------------------------------------------------------------------------------------------

SHIPPED = Path(__file__).with_name("proofs.json")


def _user_cache() -> Path:
    return Path(os.environ.get("DERIVE_CACHE") or Path.home() / ".cache" / "derive") / "proofs.json"


@functools.cache
def _shipped() -> dict[str, dict]:
    return json.loads(SHIPPED.read_text()) if SHIPPED.exists() else {}


def _load(path: Path) -> dict[str, dict]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _cached(key: str, config: Configuration) -> Proof | None:
    """The cached proof of ``config``, if one was made of the rule derive has now (a changed rule is proved anew)."""
    found = _shipped().get(key) or _load(_user_cache()).get(key)
    if found is None:
        return None
    op, shapes, data = config.op.proof_instance(config.shapes, config.data)
    wanted = tuple(w and d is None for w, d in zip(config.wanted, data))
    if tuple(found["rule"]) != _rule_text(op, shapes, wanted):
        return None
    return Proof(found["op"], tuple(found["rule"]), tuple(tuple(s) for s in found["shapes"]), found["entries"],
                 found["arithmetic"], found["holds"], found.get("failure", ""))


def _remember(key: str, proof: Proof) -> None:
    path = _user_cache()
    known = _load(path)
    known[key] = dataclasses.asdict(proof)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(known, sort_keys=True))
    except OSError:  # a read-only home: the proof is not kept, nothing else changes
        pass
