r"""Grade a hand-written backward pass: find the smallest network on which it is wrong, and say where.

``check_backprop(fn, sizes=(2, 3, 1), activations=("sigmoid", "sigmoid"), loss="bce")`` draws networks of that
architecture with hypothesis (batch 1 to 4, weights, inputs and targets from a few simple nonzero numbers)
and compares ``fn(x, y, W1, b1, W2, b2, …)`` — NumPy float64 arrays in `verify.compile`'s convention — with
derive's exact gradients under the float64 tolerance policy. On a disagreement hypothesis shrinks the
network to the fewest samples and the simplest numbers; the report names the tensors that are wrong, shows
the expected and the given values, and derive's chain rule with numbers for one wrong entry.

>>> import numpy as np
>>> def backprop(x, y, W1, b1):  # one sigmoid layer, BCE, mean over the batch
...     a = 1 / (1 + np.exp(-(x @ W1.T + b1)))
...     delta = (a - y) / y.size
...     return delta.T @ x, delta.sum(0)
>>> check_backprop(backprop, sizes=(2, 1), activations=("sigmoid",), loss="bce", examples=20, seed=1).ok
True
"""

from __future__ import annotations

import inspect
import random
import signal
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from derive.derivation import Derivation
from derive.errors import DeriveError, require
from derive.network import Architecture, Linear, Network
from derive.numeric import evaluate
from derive.ops import activation, loss as lookup_loss
from verify.compile import arguments, tensor_shapes
from verify.tolerances import magnitude, policy

if TYPE_CHECKING:  # hypothesis is imported where networks are drawn: verify.check needs none
    from hypothesis import strategies as st

#: The numbers networks are drawn from: simple, nonzero (a zero input would hide a wrong weight gradient).
NUMBERS = (0.5, -0.5, 1.0, -1.0, 0.25, -0.25, 1.5, -1.5, 2.0, -2.0, 0.75, -0.75)


@dataclass
class BackpropReport:
    """The outcome of `check_backprop`: ``ok``, the ``wrong`` tensors and the counterexample ``network``."""

    ok: bool
    wrong: list[tuple[int, str]] = field(default_factory=list)
    network: Network | None = None
    expected: list[np.ndarray] = field(default_factory=list)
    given: list[Any] = field(default_factory=list)
    problem: str = ""
    examples: int = 0

    def __repr__(self) -> str:
        if self.ok:
            return f"BackpropReport(ok=True, {self.examples} networks)"
        return f"BackpropReport(ok=False, wrong={self.wrong}, batch={self.network.batch if self.network else None})"

    def __str__(self) -> str:
        if self.ok:
            return f"the backward pass agrees with derive's exact gradients on {self.examples} drawn networks"
        net = self.network
        lines = [f"the backward pass is wrong on a network of batch {net.batch} "
                 f"(sizes {'-'.join(map(str, net.architecture.sizes))}, {net.loss}, {net.reduction}):"]
        if self.problem:
            lines.append(f"  {self.problem}")
        names = [f"{'W' if kind == 'weight' else 'b'} of layer {layer}" for layer, kind in self.wrong]
        if names:
            lines.append("  wrong: " + ", ".join(names))
        for layer, kind in self.wrong:
            k = 2 * (layer - 1) + (0 if kind == "weight" else 1)
            lines.append(f"  layer {layer} {kind}: expected {_array(self.expected[k])}, given {_array(self.given[k])}")
        if self.wrong:
            lines += ["", *_chain_text(net, *self.wrong[0])]
        lines += ["", f"  the network (spec JSON): {_spec(net)}"]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        from html import escape

        return f"<pre>{escape(str(self))}</pre>"


def _array(value: Any) -> str:
    return np.array2string(np.asarray(value, dtype=float), precision=6, separator=", ").replace("\n", "")


def _spec(net: Network) -> str:
    from verify.compare import spec_json

    return spec_json(net)


def _chain_text(net: Network, layer: int, kind: str) -> list[str]:
    """derive's chain rule, with numbers, for the first wrong entry of a tensor."""
    d = Derivation(net)
    p = next(q for q in d.parameters if q.parameter.layer == layer and q.parameter.tensor == kind)
    lines = [f"  derive's derivation of ∂L/∂{p.name} ({kind}{list(p.parameter.index)} of layer {layer}):"]
    paths = d.chain(p.name) or []
    terms = []
    for path in paths:
        factors = [f"∂{f.numerator}/∂{f.denominator} = {evaluate(f.expr, d.values):.6g}" for f in path]
        terms.append("(" + ") · (".join(factors) + ")")
    if terms and len(terms) <= 8:
        lines += [f"    {' + ' if i else '   '}{t}" for i, t in enumerate(terms)]
    lines.append(f"    = {d.compact(p.name)} = {p.gradient:.10g}")
    return lines


def _networks(arch: Architecture, batch: st.SearchStrategy[int]) -> st.SearchStrategy[Network]:
    from hypothesis import strategies as st

    number = st.sampled_from(NUMBERS)
    spec = lookup_loss(arch.loss)

    @st.composite
    def draw(draw_: st.DrawFn) -> Network:
        n = draw_(batch)
        layers = [
            Linear([[draw_(number) for _ in range(i)] for _ in range(o)], [draw_(number) for _ in range(o)], act)
            for i, o, act in zip(arch.sizes, arch.sizes[1:], arch.activations)
        ]
        x = [[draw_(number) for _ in range(arch.sizes[0])] for _ in range(n)]
        outputs = arch.sizes[-1]
        if spec.class_targets:
            y: Any = [[draw_(st.integers(0, outputs - 1))] for _ in range(n)]
        else:
            lo, hi = spec.target_range
            choices = [v for v in (0.0, 1.0, 0.5, 0.25, -0.5, 2.0) if lo <= v <= hi]
            y = [[draw_(st.sampled_from(choices)) for _ in range(outputs)] for _ in range(n)]
        return Network(layers, x, y, loss=arch.loss, reduction=arch.reduction)

    return draw()


#: Seconds one call of the checked function may take before the check stops it (``timeout=``, --timeout).
TIMEOUT = 10.0


class _Expired(BaseException):  # not an Exception: a student's `except Exception` cannot swallow it
    """Raised inside the checked function when its call runs past the timeout."""


class _Calls:
    """Calls of the checked function, each stopped after ``timeout`` seconds (by SIGALRM: in the main thread of
    a POSIX process; elsewhere calls run without a limit). After one call has run out, the function is not
    called again: every later network counts as failing, and ``expired`` holds the first that ran out."""

    def __init__(self, fn: Callable, timeout: float | None) -> None:
        self.fn, self.timeout = fn, timeout
        self.expired: Network | None = None
        self._running = False

    def __call__(self, net: Network) -> Any:
        if self.expired is not None:
            raise _Expired
        if not self.timeout or not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
            return self.fn(*arguments(net, "numpy"))
        previous = signal.signal(signal.SIGALRM, self._alarm)
        self._running = True
        signal.setitimer(signal.ITIMER_REAL, self.timeout)
        try:
            return self.fn(*arguments(net, "numpy"))
        except _Expired:
            self.expired = net
            raise
        finally:
            self._running = False
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)

    def _alarm(self, signum: int, frame: Any) -> None:
        if self._running:
            raise _Expired


def _outcome(fn: Callable, net: Network) -> tuple[list[tuple[int, str]], list[np.ndarray], list[Any], str]:
    """(wrong tensors, expected, given, a problem with fn's output) on one network."""
    d = Derivation(net)
    shapes = tensor_shapes(net)
    expected = [np.zeros(s) for s in shapes]
    for p in d.parameters:
        expected[2 * (p.parameter.layer - 1) + (0 if p.parameter.tensor == "weight" else 1)][p.parameter.index] = p.gradient
    calls = fn if isinstance(fn, _Calls) else _Calls(fn, None)
    try:
        given = calls(net)
    except _Expired:
        return [], expected, [], (f"fn did not return within {calls.timeout:g} s and was stopped (a longer limit: "
                                       "derive check --timeout S, check_backprop(timeout=S))")
    except Exception as err:  # noqa: BLE001 - the student's code fails: that is the finding
        return [], expected, [], f"fn raised {type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"
    if not isinstance(given, (list, tuple)) or len(given) != len(shapes):
        count = len(given) if isinstance(given, (list, tuple)) else type(given).__name__
        return [], expected, [], f"fn must return {len(shapes)} arrays (dW1, db1, …), got {count}"
    tol = policy("float64")
    scale = magnitude([float(v) for e in expected for v in e.reshape(-1)])
    wrong, shapes_wrong = [], []
    for k, (e, g) in enumerate(zip(expected, given)):
        layer, kind = k // 2 + 1, "weight" if k % 2 == 0 else "bias"
        try:
            g = np.asarray(g)
        except Exception:  # noqa: BLE001 - a ragged list, an object numpy cannot read
            g = np.asarray(None)
        if g.shape != e.shape or g.dtype.kind not in "fiu":  # every tensor of a wrong shape, not only the first
            shapes_wrong.append(f"layer {layer} {kind}: expected an array of shape {e.shape}, got shape {g.shape} "
                                f"({g.dtype})")
            wrong.append((layer, kind))
        elif not all(tol.allows(float(gv), float(ev), scale) for gv, ev in zip(g.reshape(-1), e.reshape(-1))):
            wrong.append((layer, kind))
    problem = "\n  ".join(shapes_wrong)
    if shapes_wrong and len(shapes_wrong) == len(expected):
        problem += ("\n  (every array has another shape: the gradients come in torch's layout, as the parameters "
                    "do: a weight is out × in, a bias a vector)")
    return wrong, expected, list(given), problem


def _fails(fn: Callable, net: Network) -> bool:
    if isinstance(fn, _Calls) and fn.expired is not None:  # stopped once: not called again
        return True
    wrong, _, _, problem = _outcome(fn, net)
    return bool(wrong or problem)


def check_backprop(
    fn: Callable[..., Sequence[Any]],
    *,
    sizes: Sequence[int],
    activations: Sequence[str],
    loss: str,
    reduction: str = "mean",
    examples: int = 100,
    seed: int | None = None,
    timeout: float | None = TIMEOUT,
) -> BackpropReport:
    """Compare ``fn``'s gradients with derive's on drawn networks; the smallest counterexample if any.

    ``timeout``: seconds one call of ``fn`` may take (None: no limit); a call that runs past it is stopped and
    reported on its network, without shrinking (each further call could take as long).
    """
    sizes, activations = tuple(int(s) for s in sizes), tuple(activation(a).key for a in activations)
    if len(sizes) != len(activations) + 1 or min(sizes) < 1:
        raise DeriveError(f"sizes {list(sizes)} need one more entry than activations {list(activations)}, all ≥ 1")
    arch = Architecture(sizes, activations, lookup_loss(loss).key, reduction, 1)
    Network([Linear([[0.0] * i] * o, [0.0] * o, a) for i, o, a in zip(sizes, sizes[1:], activations)],
            [[0.0] * sizes[0]], [[0] if lookup_loss(loss).class_targets else [0.0] * sizes[-1]], loss=loss,
            reduction=reduction)  # validates the combination (e.g. BCE needs a sigmoid last) with a clear error
    if isinstance(examples, bool) or not isinstance(examples, int) or examples < 1:
        raise DeriveError(f"examples must be a whole number ≥ 1, got {examples!r}")
    if timeout is not None and not timeout > 0:
        raise DeriveError(f"timeout must be a number of seconds > 0 (or None), got {timeout!r}")
    _check_signature(fn, len(sizes) - 1)
    require("hypothesis", "drawing networks (check_backprop, derive check)")  # only here: verify.check needs none
    from hypothesis import HealthCheck, Phase, find, settings
    from hypothesis import strategies as st
    from hypothesis.errors import NoSuchExample

    strategy = _networks(arch, st.integers(1, 4))
    config = settings(max_examples=examples, database=None, deadline=None, phases=[Phase.generate, Phase.shrink],
                      suppress_health_check=list(HealthCheck))
    calls = _Calls(fn, timeout)
    try:
        net = find(strategy, lambda n: _fails(calls, n), settings=config,
                   random=random.Random(seed) if seed is not None else None)
    except NoSuchExample:
        return BackpropReport(True, examples=examples)
    if calls.expired is not None:  # the network it ran out on, not a shrunk one it was never called with
        net = calls.expired
    wrong, expected, given, problem = _outcome(calls, net)
    return BackpropReport(False, wrong, net, expected, given, problem, examples)


class SignatureError(DeriveError):
    """A function to grade that cannot be called as ``fn(x, y, W1, b1, …)``: a usage error, not a wrong gradient."""


def _check_signature(fn: Callable, layers: int) -> None:
    """Refuse ``fn`` up front when it cannot take x, y and a weight and a bias per layer (positionally)."""
    names = ["x", "y", *(f"{t}{k}" for k in range(1, layers + 1) for t in ("W", "b"))]
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # a builtin or an object without one: its call will tell
        return
    try:
        signature.bind(*names)
    except TypeError as err:
        name = getattr(fn, "__name__", "fn")
        returns = ", ".join(f"d{n}" for n in names[2:])
        raise SignatureError(
            f"{name}{signature} cannot be called as {name}({', '.join(names)}) ({err}): the function to grade takes "
            f"x, y and each layer's weight and bias ({layers} layer{'s' if layers > 1 else ''}), and returns "
            f"{returns}"
        ) from None


def assert_backprop(fn: Callable[..., Sequence[Any]], **options: Any) -> None:
    """`check_backprop` for pytest: raises ``AssertionError`` with the report when ``fn`` is wrong."""
    report = check_backprop(fn, **options)
    if not report.ok:
        raise AssertionError(str(report))


__all__ = ["BackpropReport", "SignatureError", "assert_backprop", "check_backprop"]
