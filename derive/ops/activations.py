"""Activations: one SymPy `Function` subclass per activation, carrying everything derive needs of it.

Each class holds its elementary definition, its local derivative (in the textbook form, written over the
pre-activation ``z`` and the output ``a``), a float64 implementation, its LaTeX symbol, its torch
equivalent and its code for lambdify (math, mpmath, NumPy, torch; `derive.ops.code`). ``diff`` sees ``sigmoid(z)`` as one readable function.
Adding an activation means adding one class here and decorating it with `register`.

>>> import sympy as sp
>>> z = sp.Symbol("z")
>>> sp.diff(Sigmoid(z), z)
(1 - sigmoid(z))*sigmoid(z)
"""

from __future__ import annotations

import math
import re
from typing import ClassVar

import sympy as sp
from sympy.core.function import ArgumentIndexError

from derive.errors import UnknownOpError, did_you_mean
from derive.ops.code import ElementaryCode
from derive.ops.normal import NormalPDF, Phi

ACTIVATIONS: dict[str, type[Activation]] = {}
#: ``name(parameter)``, e.g. ``leaky_relu(0.1)``
_CALL = re.compile(r"\s*([a-z_]+)\s*\(([^()]*)\)\s*")


def register(cls: type[Activation]) -> type[Activation]:
    """Add an activation class to the registry under its ``key``."""
    ACTIVATIONS[cls.key] = cls
    return cls


def activation(name: str) -> type[Activation]:
    """Look an activation up by name, with a clear error for unknown names.

    >>> activation("tanh").key
    'tanh'

    A parameterised activation takes its parameter in parentheses (parsed as a number, never evaluated):

    >>> activation("leaky_relu(0.2)").key, activation("leaky_relu(0.01)").key
    ('leaky_relu(0.2)', 'leaky_relu')
    """
    try:
        return ACTIVATIONS[name]
    except (KeyError, TypeError):
        pass
    call = _CALL.fullmatch(name) if isinstance(name, str) else None
    if call and call[1] in ACTIVATIONS:
        try:
            value = float(call[2])
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise UnknownOpError(f"activation {name!r}: its parameter must be a finite number, got {call[2]!r}")
        return ACTIVATIONS[call[1]].with_parameter(value)
    known = ", ".join(sorted(ACTIVATIONS))
    raise UnknownOpError(
        f"unknown activation {name!r}; known: {known}.{did_you_mean(str(name), ACTIVATIONS)}"
    ) from None


class Activation(ElementaryCode, sp.Function):
    """An element-wise activation a = f(z), registered by its ``key``."""

    nargs = 1
    key: ClassVar[str]
    latex_symbol: ClassVar[str]
    #: LaTeX letter for the outputs of this activation in reports (the note writes sigma_1 for sigmoid).
    output_letter: ClassVar[str] = "a"
    #: torch.nn module class name and functional call (strings: derive never imports torch).
    torch_module: ClassVar[str]
    torch_function: ClassVar[str]
    #: the closed interval of outputs, used by losses that need predictions in a range.
    output_range: ClassVar[tuple[float, float]] = (-math.inf, math.inf)
    #: points where the derivative jumps (verification samples them on purpose).
    kinks: ClassVar[tuple[float, ...]] = ()
    #: the name of the one parameter of a parameterised activation (leaky ReLU's ``negative_slope``), or None.
    parameter: ClassVar[str | None] = None
    #: True when every output depends on all pre-activations of its layer (softmax), not on its own alone.
    vector: ClassVar[bool] = False
    #: torch's fused kernel for g·f′ (``torch.ops.aten``), what it reads ("a": the output, "z": the input) and
    #: its arguments after that, where f′ is one: the same rule as `derivative`, checked against it by the
    #: registry's tests and used by compiled gradients. None: g·f′ is computed from `derivative`.
    torch_backward: ClassVar[tuple[str | int, ...] | None] = None
    #: True for the activations of the textbook's layers: a torch module that is a chain of Linear layers
    #: with these (softmax last) is read as a `derive.Network` with the textbook's names; others make a model
    textbook: ClassVar[bool] = False

    @classmethod
    def with_parameter(cls, value: float) -> type[Activation]:
        """This activation with its parameter set to ``value`` (``activation("leaky_relu(0.1)")``)."""
        raise UnknownOpError(f"activation {cls.key!r} takes no parameter")

    @classmethod
    def torch_kwargs(cls) -> dict[str, float | int]:
        """Keyword arguments of the torch module beyond its defaults (``negative_slope``, ``dim``)."""
        return {}

    @classmethod
    def definition(cls, z: sp.Expr) -> sp.Expr:
        """The activation in elementary SymPy functions."""
        raise NotImplementedError

    @classmethod
    def written_out(cls, z: str, value: str) -> tuple[str, ...] | None:
        r"""How a report writes a = f(z) out for one unit, between f(z) and a's value: LaTeX over the name
        ``z`` and then over its rounded ``value``; None: `definition` is shown, then substituted.

        >>> Sigmoid.written_out("z_{1}", "-0.5")
        ('\\frac{1}{1 + e^{-z_{1}}}', '\\frac{1}{1 + e^{0.5}}')
        """
        return None

    @classmethod
    def derivative(cls, z: sp.Expr, a: sp.Expr) -> sp.Expr:
        """da/dz in textbook form, over the pre-activation ``z`` and the output ``a``."""
        raise NotImplementedError

    @staticmethod
    def numeric(z: float) -> float:
        """The activation in float64, stable for large |z|."""
        raise NotImplementedError

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        if argindex != 1:
            raise ArgumentIndexError(self, argindex)
        return self.derivative(self.args[0], self)

    def _eval_rewrite_as_elementary(self, z: sp.Expr, **kwargs: object) -> sp.Expr:
        return self.definition(z)

    def _latex(self, printer: sp.printing.latex.LatexPrinter, exp: str | None = None) -> str:
        # SymPy passes ``exp`` when it prints a power of the function: tanh(z)**2 as \tanh^{2}(z).
        power = f"^{{{exp}}}" if exp is not None else ""
        return rf"{self.latex_symbol}{power}\left({printer._print(self.args[0])}\right)"

    def _sympystr(self, printer: sp.printing.str.StrPrinter) -> str:
        return f"{self.key}({printer._print(self.args[0])})"

    def _eval_evalf(self, prec: int) -> sp.Expr:
        return self.rewrite("elementary")._eval_evalf(prec)

    def _numpycode(self, printer: sp.printing.numpy.NumPyPrinter) -> str:
        """NumPy code for ``lambdify``: the elementary definition (override where it is not stable)."""
        return printer._print(self.definition(self.args[0]))

    def _torchcode(self, printer: sp.printing.pytorch.TorchPrinter) -> str:
        """torch code for ``lambdify``: ``torch_function(z)`` (a string: derive never imports torch)."""
        if not self.torch_function:
            return printer._print(self.definition(self.args[0]))
        return f"{printer._module_format(self.torch_function)}({printer._print(self.args[0])})"


class Step(sp.Function):
    """The unit step with the torch convention at the kink: 1 for z > 0, else 0 (ReLU's derivative).

    SymPy's ``Heaviside(0)`` is 1/2; torch's ReLU gradient at 0 is 0, and this follows torch.

    >>> Step(0), Step(2)
    (0, 1)
    """

    nargs = 1

    @classmethod
    def eval(cls, z: sp.Expr) -> sp.Expr | None:
        if z.is_extended_positive:
            return sp.S.One
        if z.is_extended_nonpositive:
            return sp.S.Zero
        return None

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return sp.S.Zero

    def _sympystr(self, printer: sp.printing.str.StrPrinter) -> str:
        return f"step({printer._print(self.args[0])})"

    @staticmethod
    def numeric(z: float) -> float:
        return 1.0 if z > 0 else 0.0

    def _eval_rewrite_as_elementary(self, z: sp.Expr, **kwargs: object) -> sp.Expr:
        return sp.Heaviside(z, 0)

    def _latex(self, printer: sp.printing.latex.LatexPrinter) -> str:
        return rf"\mathbb{{1}}\left[{printer._print(self.args[0])} > 0\right]"

    def _numpycode(self, printer: sp.printing.numpy.NumPyPrinter) -> str:
        return f"{printer._module_format('numpy.heaviside')}({printer._print(self.args[0])}, 0.0)"

    def _pythoncode(self, printer: sp.printing.pycode.PythonCodePrinter) -> str:
        return f"(1.0 if ({printer._print(self.args[0])}) > 0 else 0.0)"  # math and mpmath alike

    _mpmathcode = _pythoncode

    def _torchcode(self, printer: sp.printing.pytorch.TorchPrinter) -> str:
        # SymPy prints Heaviside(z) as torch.heaviside(z, 1/2), which torch rejects (values must be a tensor).
        z = printer._print(self.args[0])
        zeros = f"{printer._module_format('torch.zeros_like')}({z})"
        return f"{printer._module_format('torch.heaviside')}({z}, {zeros})"


@register
class Sigmoid(Activation):
    r"""Logistic sigmoid, $\sigma(z) = 1/(1 + e^{-z})$, with $\sigma' = \sigma(1 - \sigma)$."""

    key = "sigmoid"
    textbook = True
    latex_symbol = r"\sigma"
    output_letter = r"\sigma"
    torch_module = "Sigmoid"
    torch_function = "torch.sigmoid"
    output_range = (0.0, 1.0)
    torch_backward = ("sigmoid_backward", "a")

    @classmethod
    def definition(cls, z: sp.Expr) -> sp.Expr:
        return 1 / (1 + sp.exp(-z))

    @classmethod
    def written_out(cls, z: str, value: str) -> tuple[str, ...]:
        exponent = value[1:] if value.startswith("-") else f"-{value}"  # e^{0.5}, not e^{--0.5}
        return rf"\frac{{1}}{{1 + e^{{-{z}}}}}", rf"\frac{{1}}{{1 + e^{{{exponent}}}}}"

    @classmethod
    def derivative(cls, z: sp.Expr, a: sp.Expr) -> sp.Expr:
        return a * (1 - a)

    @staticmethod
    def numeric(z: float) -> float:
        if z >= 0:
            return 1.0 / (1.0 + math.exp(-z))
        e = math.exp(z)
        return e / (1.0 + e)

    def _numpycode(self, printer: sp.printing.numpy.NumPyPrinter) -> str:
        # exp(-log(1 + e^{-z})): no overflow for any z, where 1/(1 + exp(-z)) overflows below z = -709.
        z = printer._print(self.args[0])
        log1p_exp = f"{printer._module_format('numpy.logaddexp')}(0, -({z}))"
        return f"{printer._module_format('numpy.exp')}(-{log1p_exp})"


@register
class Tanh(Activation):
    r"""Hyperbolic tangent, with $\tanh' = 1 - \tanh^2$."""

    key = "tanh"
    textbook = True
    latex_symbol = r"\tanh"
    torch_module = "Tanh"
    torch_function = "torch.tanh"
    output_range = (-1.0, 1.0)
    torch_backward = ("tanh_backward", "a")

    @classmethod
    def definition(cls, z: sp.Expr) -> sp.Expr:
        return sp.tanh(z)

    @classmethod
    def written_out(cls, z: str, value: str) -> tuple[str, ...]:
        return (rf"\tanh\left({value}\right)",)

    @classmethod
    def derivative(cls, z: sp.Expr, a: sp.Expr) -> sp.Expr:
        return 1 - a**2

    @staticmethod
    def numeric(z: float) -> float:
        return math.tanh(z)


@register
class ReLU(Activation):
    r"""Rectified linear unit, $\max(0, z)$; its derivative is 0 at the kink, as in torch."""

    key = "relu"
    textbook = True
    latex_symbol = r"\operatorname{ReLU}"
    torch_module = "ReLU"
    torch_function = "torch.relu"
    output_range = (0.0, math.inf)
    kinks = (0.0,)
    torch_backward = ("threshold_backward", "z", 0)  # g where z > 0: Step(z), 0 at the kink

    @classmethod
    def definition(cls, z: sp.Expr) -> sp.Expr:
        return sp.Max(0, z)

    @classmethod
    def written_out(cls, z: str, value: str) -> tuple[str, ...]:
        return rf"\max\left(0, {z}\right)", rf"\max\left(0, {value}\right)"

    @classmethod
    def derivative(cls, z: sp.Expr, a: sp.Expr) -> sp.Expr:
        return Step(z)

    @staticmethod
    def numeric(z: float) -> float:
        return z if z > 0 else 0.0

    def _numpycode(self, printer: sp.printing.numpy.NumPyPrinter) -> str:
        # SymPy prints Max(0, z) as numpy.amax((0, z), axis=0), which fails for a batch z.
        return f"{printer._module_format('numpy.maximum')}(0, {printer._print(self.args[0])})"


@register
class Identity(Activation):
    """No activation: a = z (a linear output layer)."""

    key = "identity"
    textbook = True
    latex_symbol = ""
    torch_module = "Identity"
    torch_function = ""

    @classmethod
    def eval(cls, z: sp.Expr) -> sp.Expr:
        return z

    @classmethod
    def definition(cls, z: sp.Expr) -> sp.Expr:
        return z

    @classmethod
    def derivative(cls, z: sp.Expr, a: sp.Expr) -> sp.Expr:
        return sp.S.One

    @staticmethod
    def numeric(z: float) -> float:
        return z


_VARIANTS: dict[str, type[Activation]] = {}


@register
class LeakyReLU(Activation):
    r"""Leaky ReLU with negative slope $s$: $z$ for $z > 0$, else $s z$; $f' = s + (1 - s)\,\mathbb{1}[z > 0]$.

    The slope is part of the name: ``"leaky_relu"`` has torch's default 0.01, ``"leaky_relu(0.1)"`` has 0.1.
    At the kink the derivative is $s$, as torch's.

    >>> activation("leaky_relu(0.1)").derivative(sp.Symbol("z"), None)
    9*step(z)/10 + 1/10
    """

    key = "leaky_relu"
    textbook = True
    latex_symbol = r"\operatorname{LeakyReLU}"
    torch_module = "LeakyReLU"
    torch_function = "torch.nn.functional.leaky_relu"
    kinks = (0.0,)
    parameter = "negative_slope"
    #: the negative slope, a float64; in expressions the exact rational of its shortest repr (0.1 as 1/10).
    slope: ClassVar[float] = 0.01

    @classmethod
    def with_parameter(cls, value: float) -> type[Activation]:
        value = float(value)
        if value == LeakyReLU.slope:
            return LeakyReLU
        key = f"{LeakyReLU.key}({value!r})"
        if key not in _VARIANTS:
            namespace = {"key": key, "slope": value, "__module__": __name__, "__doc__": LeakyReLU.__doc__}
            _VARIANTS[key] = type(LeakyReLU)("LeakyReLU", (LeakyReLU,), namespace)
        return _VARIANTS[key]

    @classmethod
    def torch_kwargs(cls) -> dict[str, float | int]:
        return {"negative_slope": cls.slope}

    @classmethod
    def exact_slope(cls) -> sp.Rational:
        return sp.Rational(repr(cls.slope))  # the float's shortest repr: rounds back to the same float

    @classmethod
    def definition(cls, z: sp.Expr) -> sp.Expr:
        return sp.Max(0, z) + cls.exact_slope() * sp.Min(0, z)

    @classmethod
    def derivative(cls, z: sp.Expr, a: sp.Expr) -> sp.Expr:
        s = cls.exact_slope()
        return s + (1 - s) * Step(z)

    @classmethod
    def numeric(cls, z: float) -> float:  # type: ignore[override]
        return z if z > 0 else cls.slope * z

    def _sympystr(self, printer: sp.printing.str.StrPrinter) -> str:
        return f"leaky_relu({printer._print(self.args[0])}, {self.slope!r})"

    def _latex(self, printer: sp.printing.latex.LatexPrinter, exp: str | None = None) -> str:
        power = f"^{{{exp}}}" if exp is not None else ""
        return rf"{self.latex_symbol}_{{{self.slope!r}}}{power}\left({printer._print(self.args[0])}\right)"

    def _numpycode(self, printer: sp.printing.numpy.NumPyPrinter) -> str:
        z = printer._print(self.args[0])
        return f"{printer._module_format('numpy.where')}(({z}) > 0, {z}, {self.slope!r}*({z}))"

    def _torchcode(self, printer: sp.printing.pytorch.TorchPrinter) -> str:
        return f"{printer._module_format(self.torch_function)}({printer._print(self.args[0])}, {self.slope!r})"


@register
class Softplus(Activation):
    r"""Softplus, $\log(1 + e^{z})$, with $f' = \sigma(z)$ (torch ``Softplus()``: beta 1).

    torch returns $z$ itself above its threshold $z > 20$; the exact value differs by less than $10^{-8}$ there.
    """

    key = "softplus"
    textbook = True
    latex_symbol = r"\operatorname{softplus}"
    torch_module = "Softplus"
    torch_function = "torch.nn.functional.softplus"
    output_range = (0.0, math.inf)

    @classmethod
    def definition(cls, z: sp.Expr) -> sp.Expr:
        return sp.log(1 + sp.exp(z))

    @classmethod
    def derivative(cls, z: sp.Expr, a: sp.Expr) -> sp.Expr:
        return Sigmoid(z)

    @staticmethod
    def numeric(z: float) -> float:
        return max(z, 0.0) + math.log1p(math.exp(-abs(z)))

    def _numpycode(self, printer: sp.printing.numpy.NumPyPrinter) -> str:
        return f"{printer._module_format('numpy.logaddexp')}(0, {printer._print(self.args[0])})"


@register
class GELU(Activation):
    r"""GELU in its exact (erf) form, $z\,\Phi(z)$, with $f' = \Phi(z) + z\,\varphi(z)$ (torch ``GELU()``)."""

    key = "gelu"
    textbook = True
    latex_symbol = r"\operatorname{GELU}"
    torch_module = "GELU"
    torch_function = "torch.nn.functional.gelu"
    output_range = (-0.17, math.inf)  # the minimum, z Φ(z) at z ≈ −0.7518, is −0.16997

    @classmethod
    def definition(cls, z: sp.Expr) -> sp.Expr:
        return z * sp.erfc(-z / sp.sqrt(2)) / 2  # erfc: no cancellation for numbers z < 0

    @classmethod
    def derivative(cls, z: sp.Expr, a: sp.Expr) -> sp.Expr:
        return Phi(z) + z * NormalPDF(z)

    @staticmethod
    def numeric(z: float) -> float:
        return z * Phi.numeric(z)

    def _numpycode(self, printer: sp.printing.numpy.NumPyPrinter) -> str:
        z = self.args[0]
        return printer._print(z * Phi(z))
