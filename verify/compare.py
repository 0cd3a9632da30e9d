"""Compare derive's gradients with torch autograd: a per-parameter report with a tolerance per dtype.

>>> import derive
>>> report = check(derive.examples.seed())
>>> report.ok
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import sympy as sp

from derive.derivation import Derivation
from derive.network import Network
from derive.numeric import evaluate
from verify.reference import autograd_gradients

#: (rtol, atol) per dtype; atol is scaled by max(1, the largest |gradient|).
TOLERANCES = {"float64": (1e-9, 1e-12), "float32": (1e-4, 1e-5)}


@dataclass(frozen=True)
class Row:
    """One parameter's comparison."""

    name: str
    derived: float
    autograd: float
    abs_error: float
    rel_error: float
    ok: bool


@dataclass(frozen=True)
class CheckReport:
    """The outcome of `check`: one row per parameter, ``ok`` when every row passes."""

    rows: tuple[Row, ...]
    device: str
    dtype: str
    rtol: float
    atol: float
    loss_derived: float
    loss_autograd: float

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows)

    @property
    def failures(self) -> list[Row]:
        return [r for r in self.rows if not r.ok]

    def __str__(self) -> str:
        head = (
            f"gradients vs torch autograd on {self.device}, {self.dtype} "
            f"(rtol {self.rtol:g}, atol {self.atol:g}): {'ok' if self.ok else 'MISMATCH'}"
        )
        lines = [head, f"{'parameter':<10} {'derived':>22} {'autograd':>22} {'abs err':>10} {'rel err':>10}"]
        for r in self.rows:
            mark = "" if r.ok else "  <-- mismatch"
            lines.append(
                f"{r.name:<10} {r.derived:>22.15g} {r.autograd:>22.15g} "
                f"{r.abs_error:>10.2e} {r.rel_error:>10.2e}{mark}"
            )
        return "\n".join(lines)


def check(
    network: Network,
    *,
    device: str = "cpu",
    dtype: str = "float64",
    gradients: Mapping[str, sp.Expr] | None = None,
) -> CheckReport:
    """Check ∂L/∂p for every parameter against torch autograd on ``device`` in ``dtype``.

    ``gradients`` optionally gives expressions of your own ({name: Expr} over the network's symbol
    names) to check instead of derive's; each is evaluated at the network's point in float64.
    """
    if dtype not in TOLERANCES:
        raise ValueError(f"unknown dtype {dtype!r}; use one of {', '.join(TOLERANCES)}")
    derivation = Derivation(network)
    derived = {p.name: p.gradient for p in derivation.parameters}
    if gradients is not None:
        point = {sp.Symbol(s.name): v for s, v in derivation.point.items()} | dict(derivation.point)
        for name, expr in gradients.items():
            if name not in derived:
                raise ValueError(f"gradients: no parameter {name!r} in this network")
            plain = expr.xreplace({s: sp.Symbol(s.name) for s in expr.free_symbols})
            derived[name] = evaluate(plain, point)
    reference = autograd_gradients(network, device=device, dtype=dtype)
    rtol, atol = TOLERANCES[dtype]
    atol *= max(1.0, *(abs(v) for v in reference.gradients.values()))
    rows = []
    for name, value in derived.items():
        other = reference.gradients[name]
        error = abs(value - other)
        rel = error / abs(other) if other else (0.0 if error == 0 else math.inf)
        rows.append(Row(name, value, other, error, rel, error <= atol + rtol * abs(other)))
    return CheckReport(tuple(rows), device, dtype, rtol, atol, derivation.loss, reference.loss)
