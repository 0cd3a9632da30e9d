"""The tolerance policy: how close two gradients must be, per dtype, and why.

A value ``v`` agrees with a reference ``r`` when ``|v − r| ≤ atol · scale + rtol · |r|``, where ``scale`` is
the magnitude of the computation: ``max(1, ‖g‖∞, max |∂L/∂v|)``, the largest gradient and the largest adjoint
over the intermediates v (every z and a) in torch's backward pass. A gradient is a sum of products of adjoints
and activations; rounding errors scale with the largest of those (BCE's ∂L/∂ŷ = (ŷ − y)/(ŷ(1 − ŷ)) is large where
ŷ nears 0 or 1), so a gradient that is small because large terms cancel is judged by the size of the terms.

- **float64** (ε = 2.2e-16): ``rtol = 1e-9``, ``atol = 1e-11``. Both sides compute the same function with
  different operation orders; rounding grows with depth, width and batch, and the largest error seen over
  thousands of drawn networks is 3.8e-12 of the scale (docs/verification.md). 1e-9 leaves over two orders
  of headroom and still fails a planted relative error of 1e-6 by three orders.
- **float32** (ε = 1.2e-7): ``rtol = 1e-4``, ``atol = 1e-5``: about 800 ε, for torch's float32 arithmetic
  against derive's float64 values (or float32 lambdified code, whose rounding differs).
- **finite differences** (float64, fourth-order central stencil, step 1e-3 · max(1, |p|)): truncation
  ~h⁴ and rounding ~ε·|L|/h give errors from 1e-12 to a few 1e-9 on drawn networks (GELU and softplus have
  large high derivatives); ``rtol = 1e-7``, ``atol = 1e-9`` with the scale taken over the gradients, adjoints
  and the loss. They arbitrate, so they are compared with both other opinions.

>>> POLICY["float64"].allows(1.0 + 1e-10, 1.0), POLICY["float64"].allows(1.0 + 1e-6, 1.0)
(True, False)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from derive.errors import DeriveError


@dataclass(frozen=True)
class Tolerance:
    """``|value − reference| ≤ atol · scale + rtol · |reference|``."""

    rtol: float
    atol: float

    def bound(self, reference: float, scale: float = 1.0) -> float:
        """The largest allowed |value − reference|."""
        return self.atol * scale + self.rtol * abs(reference)

    def allows(self, value: float, reference: float, scale: float = 1.0) -> bool:
        """Whether ``value`` agrees with ``reference`` (never for NaN)."""
        return abs(value - reference) <= self.bound(reference, scale)

    def __or__(self, other: Tolerance) -> Tolerance:
        """The looser of two tolerances (for comparing opinions held in different precisions)."""
        return Tolerance(max(self.rtol, other.rtol), max(self.atol, other.atol))

    def __str__(self) -> str:
        return f"rtol {self.rtol:g}, atol {self.atol:g}·max(1, ‖g‖∞, max|∂L/∂v|)"


POLICY: dict[str, Tolerance] = {
    "float64": Tolerance(rtol=1e-9, atol=1e-11),
    "float32": Tolerance(rtol=1e-4, atol=1e-5),
}
FINITE_DIFFERENCES = Tolerance(rtol=1e-7, atol=1e-9)
DTYPES = tuple(POLICY)


def policy(dtype: str) -> Tolerance:
    """The tolerance for gradients computed in ``dtype``, or a `DeriveError` naming the known dtypes.

    >>> policy("float32")
    Tolerance(rtol=0.0001, atol=1e-05)
    """
    try:
        return POLICY[dtype]
    except (KeyError, TypeError):
        raise DeriveError(f"unknown dtype {dtype!r}; use one of {', '.join(DTYPES)}") from None


def magnitude(values: list[float]) -> float:
    """``max(1, max |v|)`` over finite values: the scale of ``atol``.

    >>> magnitude([0.5, -3.0]), magnitude([1e-3])
    (3.0, 1.0)
    """
    return max([1.0, *(abs(v) for v in values if math.isfinite(v))])


def relative_error(value: float, reference: float) -> float:
    """``|value − reference| / |reference|`` (0 when both are 0, inf when only the reference is)."""
    error = abs(value - reference)
    if reference:
        return error / abs(reference)
    return 0.0 if error == 0 else math.inf
