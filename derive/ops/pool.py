r"""Pooling, 1-D and 2-D, with torch's semantics (``ceil_mode=False``): ``max_pool``, ``avg_pool`` and
``adaptive_avg_pool`` over the spatial dims of (N, C, *spatial) or unbatched (C, *spatial) input.

Max pooling must not depend on the values (a lowered graph is reused for other weights), so each output is
`MaxOf` its window, a function of its own, and its partial with respect to the k-th element of the window is
`Winner`\ (k, window): 1 where that element is the *first* maximal one in the window's row-major order, else
0 — torch's rule on ties (its kernels keep the first maximum: ``val > maxval``), checked against autograd in
tests/test_cnn_models.py. Padding for max pooling is −∞, which never wins: padded taps are left out of the
window. Average pooling is a mean over the window with padded zeros counted (``count_include_pad=True``,
torch's default) or not; adaptive average pooling uses torch's windows, [⌊iL/n⌋, ⌈(i+1)L/n⌉).

>>> import numpy as np, sympy as sp
>>> from derive.model.lower import Lowering
>>> low = Lowering()
>>> x = np.array(sp.symbols("a b c d"), dtype=object).reshape(1, 1, 4)
>>> MaxPool(kernel=(2,), stride=(2,), padding=(0,)).lower(low, x).shape, str(low.nodes[0].expr)
((1, 1, 2), 'Max(a, b)')
>>> [(str(s), str(d)) for s, d in low.nodes[0].partials]
[('a', 'winner(1, a, b)'), ('b', 'winner(2, a, b)')]
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import sympy as sp

from derive.errors import ShapeError
from derive.ops.activations import Step
from derive.ops.conv import windows
from derive.ops.reduce import average
from derive.ops.tensor import TensorOp, register


class MaxOf(sp.Function):
    """max(a, b, …), never evaluated (SymPy's ``Max`` would sort and simplify its arguments).

    Its derivative with respect to argument k is `Winner`\\ (k, a, b, …); in elementary form (JSON) it is
    SymPy's ``Max`` built unevaluated.

    >>> a, b = sp.symbols("a b")
    >>> MaxOf(b, a).args, MaxOf.numeric(1.0, 3.0, 3.0), MaxOf(a, b).diff(b)
    ((b, a), 3.0, winner(2, a, b))
    """

    @classmethod
    def eval(cls, *args: sp.Expr) -> None:
        return None

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return Winner(argindex, *self.args)

    @staticmethod
    def numeric(*values: float) -> float:
        return max(values)

    def _eval_rewrite_as_elementary(self, *args: sp.Expr, **kwargs: object) -> sp.Expr:
        return sp.Max(*args, evaluate=False)

    def _sympystr(self, printer: sp.printing.str.StrPrinter) -> str:
        return f"Max({', '.join(printer._print(a) for a in self.args)})"

    def _latex(self, printer: sp.printing.latex.LatexPrinter, exp: str | None = None) -> str:
        text = rf"\max\left({', '.join(printer._print(a) for a in self.args)}\right)"
        return text if exp is None else rf"{text}^{{{exp}}}"

    def _pythoncode(self, printer: sp.printing.pycode.PythonCodePrinter) -> str:
        return f"max({', '.join(printer._print(a) for a in self.args)})"  # math and mpmath alike

    _mpmathcode = _pythoncode

    def _numpycode(self, printer: sp.printing.numpy.NumPyPrinter) -> str:
        return _nested(printer, "numpy.maximum", self.args)

    def _torchcode(self, printer: sp.printing.pytorch.TorchPrinter) -> str:
        return _nested(printer, "torch.maximum", self.args)


def _nested(printer: sp.printing.printer.Printer, function: str, args: tuple[sp.Expr, ...]) -> str:
    name = printer._module_format(function)
    text = printer._print(args[-1])
    for arg in reversed(args[:-1]):
        text = f"{name}({printer._print(arg)}, {text})"
    return text


class Winner(sp.Function):
    """1 if argument k (1-based) is the first maximal one of a, b, …, else 0: ∂ max(a, b, …)/∂(argument k).

    The first maximum wins a tie, as in torch's max pooling. Its elementary form is a product of steps:
    the winner is greater than every argument before it and no less than every one after it.

    >>> a, b, c = sp.symbols("a b c")
    >>> [Winner.numeric(k, 1.0, 3.0, 3.0) for k in (1, 2, 3)]
    [0.0, 1.0, 0.0]
    >>> Winner(2, a, b, c).rewrite("elementary")
    (1 - Heaviside(-b + c, 0))*Heaviside(-a + b, 0)
    """

    @classmethod
    def eval(cls, k: sp.Expr, *args: sp.Expr) -> None:
        return None

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return sp.S.Zero

    @staticmethod
    def numeric(k: float, *values: float) -> float:
        return 1.0 if values.index(max(values)) == int(k) - 1 else 0.0

    def _steps(self, step: type = Step) -> sp.Expr:
        k, *args = self.args
        winner = args[int(k) - 1]
        factors = [step(winner - a) for a in args[: int(k) - 1]]
        factors += [1 - step(a - winner) for a in args[int(k):]]
        return sp.Mul(*factors)

    def _eval_rewrite_as_elementary(self, k: sp.Expr, *args: sp.Expr, **kwargs: object) -> sp.Expr:
        return Winner(k, *args)._steps(lambda z: sp.Heaviside(z, 0, evaluate=False))

    def _sympystr(self, printer: sp.printing.str.StrPrinter) -> str:
        return f"winner({', '.join(printer._print(a) for a in self.args)})"

    def _latex(self, printer: sp.printing.latex.LatexPrinter, exp: str | None = None) -> str:
        k, *args = self.args
        text = (rf"\mathbb{{1}}\left[\operatorname{{argmax}}\left({', '.join(printer._print(a) for a in args)}"
                rf"\right) = {printer._print(k)}\right]")
        return text if exp is None else rf"{text}^{{{exp}}}"

    def _pythoncode(self, printer: sp.printing.pycode.PythonCodePrinter) -> str:
        return f"({printer._print(self._steps())})"  # a product or 1 − step: parenthesised where it stands

    _mpmathcode = _numpycode = _torchcode = _pythoncode


def _spatial(x: np.ndarray, nd: int, what: str) -> tuple[np.ndarray, bool]:
    """The input as (N, C, *spatial), and whether it was unbatched (C, *spatial)."""
    if x.ndim == nd + 1:
        return x[None], True
    if x.ndim != nd + 2:
        raise ShapeError(f"{what}: a {nd}-D pooling takes (N, C, *spatial) or (C, *spatial), got shape {x.shape}")
    return x, False


@dataclass(frozen=True)
class _Pool(TensorOp):
    """Pooling over windows of the spatial dims; subclasses give the windows and one window's rule."""

    def lower(self, lowering, x: np.ndarray) -> np.ndarray:
        nd = self.dims()
        x, unbatched = _spatial(x, nd, self.key)
        batch, channels, spatial = x.shape[0], x.shape[1], x.shape[2:]
        out_spatial, taps, divisors = self.windows(spatial)
        X = x.reshape(batch, channels, -1)
        out = lowering.new((batch, channels, *out_spatial))
        flat = out.reshape(batch, channels, -1)
        for n in range(batch):
            for c in range(channels):
                for position, window in enumerate(taps):
                    elements = [X[n, c, i] for i in window]
                    expr, partials = self.element(elements, divisors[position])
                    lowering.define(flat[n, c, position], expr, _merged(partials))
        return out[0] if unbatched else out

    def dims(self) -> int:
        raise NotImplementedError

    def windows(self, spatial: tuple[int, ...]) -> tuple[tuple[int, ...], list[list[int]], list[int]]:
        """The output's spatial shape; per output position its input positions and the mean's divisor."""
        raise NotImplementedError

    def element(self, elements: list[sp.Expr], divisor: int) -> tuple[sp.Expr, list]:
        raise NotImplementedError


def _merged(partials: list[tuple[sp.Expr, sp.Expr]]) -> tuple[tuple[sp.Symbol, sp.Expr], ...]:
    """Partials with respect to symbols only, one per symbol (a symbol twice in a window adds up)."""
    merged: dict[sp.Symbol, sp.Expr] = {}
    for s, d in partials:
        if s.is_Symbol:
            merged[s] = merged[s] + d if s in merged else d
    return tuple(merged.items())


@dataclass(frozen=True)
class _Windowed(_Pool):
    kernel: tuple[int, ...] = (1,)
    stride: tuple[int, ...] = (1,)
    padding: tuple[int, ...] = (0,)

    def dims(self) -> int:
        return len(self.kernel)

    def _taps(self, spatial: tuple[int, ...], dilation: tuple[int, ...]) -> tuple[tuple[int, ...], list[list[int]]]:
        if any(2 * p > k for p, k in zip(self.padding, self.kernel)):
            raise ShapeError(f"{self.key}: padding {self.padding} is more than half the kernel {self.kernel}")
        padding = tuple((p, p) for p in self.padding)
        out, taps = windows(spatial, self.kernel, self.stride, padding, dilation, self.key)
        return out, [[i for _, i in window] for window in taps]


@register
@dataclass(frozen=True)
class MaxPool(_Windowed):
    """``nn.MaxPool1d/2d``: each output is `MaxOf` its window (padding is −∞: padded taps never win)."""

    key = "max_pool"
    dilation: tuple[int, ...] = (1,)

    def windows(self, spatial):
        out, taps = self._taps(spatial, self.dilation)
        return out, taps, [1] * len(taps)

    def element(self, elements, divisor):
        if not elements:
            raise ShapeError(f"{self.key}: a window lies wholly in the padding (torch gives −inf there)")
        if len(elements) == 1:
            return elements[0], [(elements[0], sp.S.One)]
        return MaxOf(*elements), [(e, Winner(k + 1, *elements)) for k, e in enumerate(elements)]

    def describe(self, *inputs: str) -> str:
        return rf"\operatorname{{maxpool}}_{{{_size(self.kernel)}}}\left({inputs[0]}\right)"


def _size(sizes: tuple[int, ...]) -> str:
    return r" \times ".join(map(str, sizes))


@register
@dataclass(frozen=True)
class AvgPool(_Windowed):
    """``nn.AvgPool1d/2d``: the mean of each window, padded zeros counted (torch's default) or not."""

    key = "avg_pool"
    count_include_pad: bool = True

    def windows(self, spatial):
        out, taps = self._taps(spatial, (1,) * len(spatial))
        size = math.prod(self.kernel)
        return out, taps, [size if self.count_include_pad else len(window) for window in taps]

    def element(self, elements, divisor):
        return average(elements, divisor)

    def describe(self, *inputs: str) -> str:
        return rf"\operatorname{{avgpool}}_{{{_size(self.kernel)}}}\left({inputs[0]}\right)"


@register
@dataclass(frozen=True)
class AdaptiveAvgPool(_Pool):
    """``nn.AdaptiveAvgPool1d/2d``: output i along a dim of length L averages [⌊iL/n⌋, ⌈(i+1)L/n⌉)."""

    key = "adaptive_avg_pool"
    output_size: tuple[int, ...] = (1,)

    def dims(self) -> int:
        return len(self.output_size)

    def windows(self, spatial):
        if any(n < 1 for n in self.output_size):
            raise ShapeError(f"{self.key}: output size {self.output_size} must be positive")
        ranges = [
            [range(i * L // n, -(-(i + 1) * L // n)) for i in range(n)] for L, n in zip(spatial, self.output_size)
        ]
        taps = [[int(np.ravel_multi_index(index, spatial)) for index in itertools.product(*along)]
                for along in itertools.product(*ranges)]
        return self.output_size, taps, [len(window) for window in taps]

    def element(self, elements, divisor):
        return average(elements, divisor)

    def describe(self, *inputs: str) -> str:
        return rf"\operatorname{{avgpool}}_{{\to {_size(self.output_size)}}}\left({inputs[0]}\right)"
