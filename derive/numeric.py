"""Evaluate SymPy expressions in float64, with derive's own functions evaluated stably.

A small tree walker (no code generation, no ``eval``): fast for the short definitions of a straight-line
program, and exact in its use of float64 (each operation rounds once, as NumPy would).

>>> import sympy as sp
>>> from derive.ops.activations import Sigmoid
>>> z = sp.Symbol("z")
>>> evaluate(Sigmoid(z) * (1 - Sigmoid(z)), {z: 0.0})
0.25
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import sympy as sp

from derive.errors import DeriveError
from derive.ops.activations import Sigmoid

_FUNCTIONS: dict[type, Callable[..., float]] = {
    sp.exp: math.exp,
    sp.log: lambda v: math.log(v) if v > 0 else (-math.inf if v == 0 else math.nan),  # torch's log
    sp.tanh: math.tanh,
    sp.erf: math.erf,
    sp.Abs: abs,
    sp.sign: lambda v: float((v > 0) - (v < 0)),  # 0 at 0, as torch's sign
    sp.Max: max,
    sp.Min: min,
    sp.sin: math.sin,
    sp.cos: math.cos,
    sp.sinh: math.sinh,
    sp.cosh: math.cosh,
    sp.atan: math.atan,
}


def evaluate(
    expr: sp.Expr, values: Mapping[sp.Symbol, float], definitions: Mapping[sp.Symbol, sp.Expr] | None = None,
    *, zero_adjoints: bool = False,
) -> float:
    """The float64 value of ``expr`` with every free symbol taken from ``values``.

    Raises `DeriveError` for a symbol without a value, a function derive cannot evaluate, or a value
    outside a function's domain. The log of a sigmoid, log σ(z) and log(1 − σ(z)), is taken as −softplus(∓z),
    finite where σ(z) itself rounds to 0 or 1; a symbol in ``definitions`` counts as its definition there
    (``log(a)`` with ``a = σ(z)``), without building the substituted expression.

    >>> a, z = sp.symbols("a z")
    >>> evaluate(sp.log(a), {a: 1.0, z: -800.0}, {a: Sigmoid(z)})
    -800.0

    ``zero_adjoints``: a product with a factor that is a symbol of value 0 is 0, its other factors not
    evaluated: an adjoint that is 0 (a branch of ``where`` the data does not take) times the local derivative
    of a value of the data alone (1/y at y = 0) is 0, as autograd, which never differentiates data, has it.

    >>> d, y = sp.symbols("d y")
    >>> evaluate(d / y, {d: 0.0, y: 0.0}, zero_adjoints=True)
    0.0
    """
    try:
        return _Evaluator(values, definitions or {}, zero_adjoints)._evaluate(expr)  # the top level is not memoised: not hashed
    except (ValueError, ZeroDivisionError, OverflowError) as err:
        if isinstance(err, DeriveError):
            raise
        raise DeriveError(f"cannot evaluate in float64 at this point ({err})") from None


def _softplus(z: float) -> float:
    return max(z, 0.0) + math.log1p(math.exp(-abs(z)))


class _Evaluator:
    def __init__(self, values: Mapping[sp.Symbol, float], definitions: Mapping[sp.Symbol, sp.Expr],
                 zero_adjoints: bool = False) -> None:
        self.values = values
        self.definitions = definitions
        self.zero_adjoints = zero_adjoints
        self.memo: dict[sp.Basic, float] = {}

    def __call__(self, expr: sp.Basic) -> float:
        cached = self.memo.get(expr)
        if cached is None:
            cached = self.memo[expr] = self._evaluate(expr)
        return cached

    def _term(self, term: sp.Basic) -> float:
        """A term of a sum: a product of two symbols (a convolution's W·x, δ·x …) directly, without memo."""
        if term.is_Mul and len(term.args) == 2:
            a, b = term.args
            if a.is_Symbol and b.is_Symbol:
                try:
                    return float(self.values[a]) * float(self.values[b])
                except KeyError:
                    pass  # reported by the general case
        return self(term)

    def _evaluate(self, expr: sp.Basic) -> float:
        if expr.is_Symbol:
            try:
                return float(self.values[expr])
            except KeyError:
                raise DeriveError(f"no value for symbol {expr}") from None
        if expr.is_Rational:  # exact int arithmetic: float(Integer) goes through mpmath, 50 µs a call
            return expr.p / expr.q
        if expr.is_Number or expr.is_NumberSymbol:
            return float(expr)
        if expr.is_Add:
            return math.fsum(self._term(arg) for arg in expr.args)
        if expr.is_Mul:
            if self.zero_adjoints and any(arg.is_Symbol and self.values.get(arg) == 0 for arg in expr.args):
                return 0.0
            result = 1.0
            for arg in expr.args:
                result *= self(arg)
            return result
        if expr.is_Pow:
            base, exponent = self(expr.base), self(expr.exp)
            if exponent == -1:
                return 1.0 / base
            if exponent == 2:
                return base * base
            return base**exponent
        numeric = getattr(expr.func, "numeric", None)
        if numeric is not None:
            return float(numeric(*(self(arg) for arg in expr.args)))
        if expr.func is sp.Heaviside:
            z = self(expr.args[0])
            at_zero = self(expr.args[1]) if len(expr.args) > 1 else 0.5
            return 1.0 if z > 0 else (0.0 if z < 0 else at_zero)
        if expr.func is sp.log:
            stable = self._log_of_sigmoid(expr.args[0])
            if stable is not None:
                return stable
        function = _FUNCTIONS.get(expr.func)
        if function is None:
            raise DeriveError(f"cannot evaluate {expr.func} numerically")
        return float(function(*(self(arg) for arg in expr.args)))

    def _log_of_sigmoid(self, arg: sp.Expr) -> float | None:
        """log σ(z) = −softplus(−z) and log(1 − σ(z)) = −softplus(z); None for any other argument."""
        arg = self.definitions.get(arg, arg)
        if isinstance(arg, Sigmoid):
            return -_softplus(-self(arg.args[0]))
        if arg.is_Add and len(arg.args) == 2 and sp.S.One in arg.args:
            rest = arg.args[1] if arg.args[0] == 1 else arg.args[0]
            if rest.is_Mul and rest.args[0] == -1 and len(rest.args) == 2:
                sigmoid = self.definitions.get(rest.args[1], rest.args[1])
                if isinstance(sigmoid, Sigmoid):
                    return -_softplus(self(sigmoid.args[0]))
        return None
