"""Activations: one SymPy `Function` subclass per activation, carrying everything derive needs of it.

Each class holds its elementary definition, its local derivative (in the textbook form, written over the
pre-activation ``z`` and the output ``a``), a float64 implementation, its LaTeX symbol, its torch
equivalent and its NumPy/torch code for lambdify. ``diff`` sees ``sigmoid(z)`` as one readable function.
Adding an activation means adding one class here and decorating it with `register`.

>>> import sympy as sp
>>> z = sp.Symbol("z")
>>> sp.diff(Sigmoid(z), z)
(1 - sigmoid(z))*sigmoid(z)
"""

from __future__ import annotations

import math
from typing import ClassVar

import sympy as sp
from sympy.core.function import ArgumentIndexError

from derive.errors import UnknownOpError, did_you_mean

ACTIVATIONS: dict[str, type[Activation]] = {}


def register(cls: type[Activation]) -> type[Activation]:
    """Add an activation class to the registry under its ``key``."""
    ACTIVATIONS[cls.key] = cls
    return cls


def activation(name: str) -> type[Activation]:
    """Look an activation up by name, with a clear error for unknown names.

    >>> activation("tanh").key
    'tanh'
    """
    try:
        return ACTIVATIONS[name]
    except (KeyError, TypeError):
        known = ", ".join(sorted(ACTIVATIONS))
        raise UnknownOpError(
            f"unknown activation {name!r}; known: {known}.{did_you_mean(str(name), ACTIVATIONS)}"
        ) from None


class Activation(sp.Function):
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

    @classmethod
    def definition(cls, z: sp.Expr) -> sp.Expr:
        """The activation in elementary SymPy functions."""
        raise NotImplementedError

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

    def _latex(self, printer: sp.printing.latex.LatexPrinter) -> str:
        return rf"{self.latex_symbol}\left({printer._print(self.args[0])}\right)"

    def _sympystr(self, printer: sp.printing.str.StrPrinter) -> str:
        return f"{self.key}({printer._print(self.args[0])})"


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


@register
class Sigmoid(Activation):
    r"""Logistic sigmoid, $\sigma(z) = 1/(1 + e^{-z})$, with $\sigma' = \sigma(1 - \sigma)$."""

    key = "sigmoid"
    latex_symbol = r"\sigma"
    output_letter = r"\sigma"
    torch_module = "Sigmoid"
    torch_function = "torch.sigmoid"
    output_range = (0.0, 1.0)

    @classmethod
    def definition(cls, z: sp.Expr) -> sp.Expr:
        return 1 / (1 + sp.exp(-z))

    @classmethod
    def derivative(cls, z: sp.Expr, a: sp.Expr) -> sp.Expr:
        return a * (1 - a)

    @staticmethod
    def numeric(z: float) -> float:
        if z >= 0:
            return 1.0 / (1.0 + math.exp(-z))
        e = math.exp(z)
        return e / (1.0 + e)


@register
class Tanh(Activation):
    r"""Hyperbolic tangent, with $\tanh' = 1 - \tanh^2$."""

    key = "tanh"
    latex_symbol = r"\tanh"
    torch_module = "Tanh"
    torch_function = "torch.tanh"
    output_range = (-1.0, 1.0)

    @classmethod
    def definition(cls, z: sp.Expr) -> sp.Expr:
        return sp.tanh(z)

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
    latex_symbol = r"\operatorname{ReLU}"
    torch_module = "ReLU"
    torch_function = "torch.relu"
    output_range = (0.0, math.inf)
    kinks = (0.0,)

    @classmethod
    def definition(cls, z: sp.Expr) -> sp.Expr:
        return sp.Max(0, z)

    @classmethod
    def derivative(cls, z: sp.Expr, a: sp.Expr) -> sp.Expr:
        return Step(z)

    @staticmethod
    def numeric(z: float) -> float:
        return z if z > 0 else 0.0


@register
class Identity(Activation):
    """No activation: a = z (a linear output layer)."""

    key = "identity"
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
