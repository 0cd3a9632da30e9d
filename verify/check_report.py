"""What `verify.check` reports: one `Row` per parameter (every opinion's value, the verdict) and the
`CheckReport` of a network, as a table (``str``), in a notebook (HTML) and as ``ok``.

>>> from verify.tolerances import Tolerance
>>> row = _row("W1", {"derived": 0.5, "numpy": 0.5, "torch": 0.5, "autograd": 0.5}, Tolerance(1e-10, 1e-10), 1.0, 1.0)
>>> row.ok, row.verdict
(True, '')
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from verify.tolerances import FINITE_DIFFERENCES, Tolerance, relative_error

SYMBOLIC = ("derived", "numpy", "torch")
#: the verdict of a row explained by a unit on the other side of a kink in torch
AT_A_KINK = "at a kink"
FD = "finite differences"


@dataclass(frozen=True)
class Row:
    """One parameter: the symbolic value, autograd's, their errors, pass/fail and which opinion disagrees."""

    name: str
    symbolic: float
    autograd: float
    abs_error: float
    rel_error: float
    ok: bool
    #: every opinion's value: derived, numpy, torch, autograd, finite differences (None: at a kink / not run)
    opinions: dict[str, float | None] = field(default_factory=dict)
    verdict: str = ""


@dataclass(frozen=True)
class CheckReport:
    """The outcome of `check`: ``ok`` when every symbolic value agrees with autograd (and the loss too)."""

    network: str
    rows: tuple[Row, ...]
    device: str
    dtype: str
    tolerance: Tolerance
    scale: float
    fd_scale: float
    loss_symbolic: float
    loss_autograd: float
    loss_ok: bool
    notes: tuple[str, ...] = ()
    reproducer: str = ""

    @property
    def ok(self) -> bool:
        """Every row agrees (symbolic with autograd, and finite differences wherever they apply), and the loss."""
        return self.loss_ok and all(r.ok for r in self.rows)

    @property
    def agree(self) -> bool:
        """ok, and no row explained away (at a kink crossed by torch's point)."""
        return self.ok and not any(r.verdict and not r.verdict.startswith(AT_A_KINK) for r in self.rows)

    def ok_except(self, names: Iterable[str]) -> bool:
        """Every row but ``names`` ok, and the loss: for checks that exempt the parameters of a unit whose side
        of a kink depends on rounding (`kinked_parameters`), and only those."""
        exempt = set(names)
        return self.loss_ok and all(r.ok for r in self.rows if r.name not in exempt)

    def __repr__(self) -> str:
        status = "ok" if self.ok else f"{len(self.failures)} mismatches"
        return f"CheckReport({self.network}, {self.device}, {self.dtype}: {status})"

    def _repr_html_(self) -> str:
        from derive.notebook import check_html

        return check_html(self)

    @property
    def failures(self) -> list[Row]:
        return [r for r in self.rows if not r.ok]

    @property
    def worst_relative_error(self) -> float:
        return max(r.abs_error / max(abs(r.autograd), self.scale) for r in self.rows)

    def __str__(self) -> str:
        t = self.tolerance
        lines = [
            f"{self.network}: derive's gradients vs torch autograd on {self.device}, {self.dtype}: "
            f"{'ok' if self.ok else 'MISMATCH'}",
            f"tolerance: |symbolic - autograd| <= {t.atol:g}*{self.scale:.6g} + {t.rtol:g}*|autograd|"
            f"  ({t}; {self.dtype})",
            f"{'parameter':<10} {'symbolic':>22} {'autograd':>22} {'abs err':>9} {'rel err':>9}  "
            f"{'numpy':<5} {'torch':<5} {'fd':<5} verdict",
        ]
        for r in self.rows:
            marks = [_mark(r, o, self) for o in ("numpy", "torch", FD)]
            lines.append(
                f"{r.name:<10} {r.symbolic:>22.15g} {r.autograd:>22.15g} "
                f"{r.abs_error:>9.2e} {r.rel_error:>9.2e}  "
                f"{marks[0]:<5} {marks[1]:<5} {marks[2]:<5} {r.verdict}".rstrip()
            )
        lines.append(
            f"{'loss':<10} {self.loss_symbolic:>22.15g} {self.loss_autograd:>22.15g} "
            f"{abs(self.loss_symbolic - self.loss_autograd):>9.2e}  "
            f"{'' if self.loss_ok else '<-- mismatch'}".rstrip()
        )
        for r in self.failures:
            lines.append(
                f"mismatch: {r.name} on {self.device}, {self.dtype}: symbolic {r.symbolic!r}, autograd "
                f"{r.autograd!r}, |error| {r.abs_error:.3g} > "
                f"{self.tolerance.bound(r.autograd, self.scale):.3g} "
                f"allowed; {r.verdict.removeprefix('<-- mismatch: ')}"
            )
        lines += [f"note: {n}" for n in self.notes]
        if not self.ok and self.reproducer:
            lines.append(f"reproduce: {self.reproducer}")
        return "\n".join(lines)


def _mark(row: Row, opinion: str, report: CheckReport) -> str:
    value = row.opinions.get(opinion)
    if value is None:
        return "kink" if opinion == FD and opinion in row.opinions else "-"
    tol = report.tolerance | FINITE_DIFFERENCES if opinion == FD else report.tolerance
    scale = report.fd_scale if opinion == FD else report.scale
    return "ok" if tol.allows(value, row.autograd, scale) else "off"



def _row(name: str, opinions: dict[str, float | None], tol: Tolerance, scale: float, fd_scale: float) -> Row:
    autograd = opinions["autograd"]
    symbolic = opinions["derived"]
    agrees = {o: tol.allows(opinions[o], autograd, scale) for o in SYMBOLIC}
    ok = all(agrees.values())
    fd = opinions.get(FD)
    verdict = ""
    if fd is not None:
        fd_tol = FINITE_DIFFERENCES | tol
        fd_autograd = fd_tol.allows(fd, autograd, fd_scale)
        fd_symbolic = FINITE_DIFFERENCES.allows(fd, symbolic, fd_scale)
    if ok:
        if fd is not None and not fd_autograd:  # away from kinks, the loss's own slope is a judge too
            ok = False
            verdict = "finite differences disagree (symbolic and autograd agree)"
    elif not math.isfinite(autograd):
        verdict = "autograd is not finite (the dtype cannot hold this computation)"
    elif any(agrees.values()):
        bad = [o for o in SYMBOLIC if not agrees[o]]
        verdict = f"{' and '.join(bad)} disagree{'s' if len(bad) == 1 else ''} with the other symbolic values"
    elif fd is None:
        cause = "at a kink" if FD in opinions else "not run"
        verdict = f"symbolic and autograd disagree; finite differences {cause}"
    elif fd_autograd and not fd_symbolic:
        verdict = "symbolic disagrees (autograd and finite differences agree)"
    elif fd_symbolic and not fd_autograd:
        verdict = "autograd disagrees (symbolic and finite differences agree)"
    elif fd_symbolic:
        verdict = "symbolic and autograd disagree; finite differences cannot tell"
    else:
        verdict = "all three disagree"
    if not ok:
        verdict = f"<-- mismatch: {verdict}"
    error = abs(symbolic - autograd)
    return Row(name, symbolic, autograd, error, relative_error(symbolic, autograd), ok, opinions, verdict)
