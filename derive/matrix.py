r"""The layer-level (matrix) form of the derivation for a batch: the δ rules as SymPy matrix expressions.

Samples are columns: $X = A^{(0)}$ is inputs × N; $Z^{(l)}$, $A^{(l)}$ and $\Delta^{(l)}$ are units × N.

- forward: $Z^{(l)} = W^{(l)} A^{(l-1)} + b^{(l)} \mathbf{1}^T$, $A^{(l)} = f(Z^{(l)})$;
- output: $\Delta^{(L)} = G \odot f'(Z^{(L)})$, with $G = \partial \ell / \partial A^{(L)}$ column by column
  ($\ell_n$: the sum of sample n's loss terms);
- hidden: $\Delta^{(l)} = (W^{(l+1)T} \Delta^{(l+1)}) \odot f'(Z^{(l)})$;
- softmax, a vector activation, takes the incoming gradient $H$ through its Jacobian instead:
  $\Delta = A \odot (H - \mathbf{1}\mathbf{1}^T (A \odot H))$;
- gradients: $\partial L/\partial W^{(l)} = c\,\Delta^{(l)} A^{(l-1)T}$ and $\partial L/\partial b^{(l)} = c\,\Delta^{(l)} \mathbf{1}$,
  where $c$ is the reduction's factor (1/N for a per-sample loss with ``mean``: the batch average;
  1/(N·outputs) for an element-wise one; 1 for ``sum``).

The rules are built directly (SymPy's own calculus on `MatrixSymbol` can silently return 0) and evaluated
explicitly by this module's small evaluator, entry by entry over the scalar graph's symbols, so that every
entry can be checked against the scalar derivation, which stays the ground truth.

>>> import derive
>>> form = matrix_form(derive.examples.seed().replace(x=[[1, 1], [0, 1]], y=[[0], [1]]).architecture)
>>> [str(rule) for rule in form.rules if rule.layer == 1]
['Z⁽¹⁾ = W⁽¹⁾*X + b⁽¹⁾*1ᵀ', 'A⁽¹⁾ = f(Z⁽¹⁾)', 'Δ⁽¹⁾ = (W⁽²⁾ᵀ*Δ⁽²⁾) ∘ f′(Z⁽¹⁾)', 'dL/dW⁽¹⁾ = (1/2)*Δ⁽¹⁾*Xᵀ', 'dL/db⁽¹⁾ = (1/2)*Δ⁽¹⁾*1']
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass

import sympy as sp
from sympy.printing.precedence import PRECEDENCE, precedence
from sympy.printing.str import StrPrinter

from derive.graph import Graph, build_graph
from derive.network import Architecture
from derive.numeric import evaluate
from derive.ops import activation, loss as lookup_loss

_SUPERSCRIPTS = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def _up(layer: int) -> str:
    return f"⁽{str(layer).translate(_SUPERSCRIPTS)}⁾"


class _Printer(StrPrinter):
    """Plain text of matrix rules: ∘ for the Hadamard product, ᵀ for the transpose."""

    def _print_HadamardProduct(self, expr: sp.HadamardProduct) -> str:
        return " ∘ ".join(self.parenthesize(arg, precedence(expr)) for arg in expr.args)

    def _print_Transpose(self, expr: sp.Transpose) -> str:
        return f"{self.parenthesize(expr.arg, PRECEDENCE['Pow'])}ᵀ"


@dataclass(frozen=True)
class Rule:
    """One line of the matrix form: ``lhs = rhs``; ``kind`` is forward, activation, delta, weight or bias."""

    lhs: sp.MatrixSymbol
    rhs: sp.MatrixExpr
    layer: int
    kind: str

    def __str__(self) -> str:
        return f"{self.lhs} = {_Printer().doprint(self.rhs)}"


class MatrixForm:
    """The matrix rules of one architecture, with the explicit matrix (over scalar symbols) of every name."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        arch = graph.architecture
        self.architecture = arch
        batch, sizes, depth = arch.batch, arch.sizes, len(arch.sizes) - 1
        loss = lookup_loss(arch.loss)
        self.scale = sp.S.One if arch.reduction == "sum" else sp.Rational(1, loss.term_count(batch, sizes[-1]))
        #: LaTeX of every matrix symbol
        self.latex_names: dict[sp.MatrixSymbol, str] = {}
        #: the explicit matrix of every matrix symbol, entries over the scalar graph's symbols
        self.explicit: dict[sp.MatrixSymbol, sp.ImmutableMatrix] = {}
        self.rules: list[Rule] = []
        self.ones = self._symbol("1ᵀ", r"\mathbf{1}^{T}", sp.ones(1, batch))
        ones_column = self._symbol("1", r"\mathbf{1}", sp.ones(batch, 1))
        columns = lambda rows: sp.ImmutableMatrix(len(rows[0]), batch, lambda i, n: rows[n][i])  # noqa: E731
        A = [self._symbol("X", "X", columns(graph.inputs))]
        W, b, Z, F = [], [], [], []
        for l in range(depth):
            up = _up(l + 1)
            W.append(self._symbol(f"W{up}", f"W^{{({l + 1})}}", sp.ImmutableMatrix(graph.weights[l])))
            b.append(self._symbol(f"b{up}", f"b^{{({l + 1})}}", sp.ImmutableMatrix([[v] for v in graph.biases[l]])))
            Z.append(self._symbol(f"Z{up}", f"Z^{{({l + 1})}}", columns(graph.pre[l])))
            A.append(self._symbol(f"A{up}", f"A^{{({l + 1})}}", columns(graph.post[l])))
            act = activation(arch.activations[l])
            self._rule(Z[l], W[l] * A[l] + b[l] * self.ones, l + 1, "forward")
            self._rule(A[l + 1], sp.MatrixSymbol(f"f({Z[l]})", *Z[l].shape), l + 1, "activation")
            derivative = None
            if not act.vector:
                derivative = sp.ImmutableMatrix(
                    sizes[l + 1], batch, lambda i, n: act.derivative(graph.pre[l][n][i], graph.post[l][n][i])
                )
                derivative = self._symbol(f"f′({Z[l]})", rf"f'\left(Z^{{({l + 1})}}\right)", derivative)
            F.append(derivative)
        gradient = sp.ImmutableMatrix(
            sizes[-1], batch, lambda k, n: loss.derivative(graph.predictions[n], graph.targets[n])[k]
        )
        output = rf"\frac{{\partial \ell}}{{\partial A^{{({depth})}}}}"
        incoming: sp.MatrixExpr = self._symbol("G", output, gradient)
        deltas: list[sp.MatrixSymbol] = [None] * depth  # type: ignore[list-item]
        for l in reversed(range(depth)):
            up = _up(l + 1)
            deltas[l] = sp.MatrixSymbol(f"Δ{up}", *Z[l].shape)
            self.latex_names[deltas[l]] = rf"\Delta^{{({l + 1})}}"
            if F[l] is not None:
                rhs = sp.HadamardProduct(incoming, F[l])
            else:  # softmax: the Jacobian diag(a) − a aᵀ, column by column
                units = Z[l].shape[0]
                square = self._symbol("11ᵀ", r"\mathbf{1}\mathbf{1}^{T}", sp.ones(units, units))
                rhs = sp.HadamardProduct(A[l + 1], incoming - square * sp.HadamardProduct(A[l + 1], incoming))
            self._rule(deltas[l], rhs, l + 1, "delta")
            incoming = W[l].T * deltas[l]
        for l in range(depth):
            up = _up(l + 1)
            dW = sp.MatrixSymbol(f"dL/dW{up}", *W[l].shape)
            db = sp.MatrixSymbol(f"dL/db{up}", *b[l].shape)
            self.latex_names[dW] = rf"\frac{{\partial \mathcal{{L}}}}{{\partial W^{{({l + 1})}}}}"
            self.latex_names[db] = rf"\frac{{\partial \mathcal{{L}}}}{{\partial b^{{({l + 1})}}}}"
            self._rule(dW, self.scale * deltas[l] * A[l].T, l + 1, "weight")
            self._rule(db, self.scale * deltas[l] * ones_column, l + 1, "bias")
        self.rules.sort(key=lambda rule: (rule.layer, ("forward", "activation", "delta", "weight", "bias").index(rule.kind)))
        self.weight_gradients, self.bias_gradients = (
            [self.explicit[r.lhs] for r in self.rules if r.kind == kind] for kind in ("weight", "bias")
        )

    def _symbol(self, name: str, latex: str, contents: sp.Matrix) -> sp.MatrixSymbol:
        symbol = sp.MatrixSymbol(name, *contents.shape)
        self.latex_names[symbol] = latex
        self.explicit[symbol] = sp.ImmutableMatrix(contents)
        return symbol

    def _rule(self, lhs: sp.MatrixSymbol, rhs: sp.MatrixExpr, layer: int, kind: str) -> None:
        self.rules.append(Rule(lhs, rhs, layer, kind))
        if kind != "activation" and lhs not in self.explicit:  # Z and A are already explicit (symbols z, a)
            self.explicit[lhs] = explicit(rhs, self.explicit)

    def gradient(self, name: str) -> sp.Expr:
        """The entry of ∂L/∂W⁽ˡ⁾ or ∂L/∂b⁽ˡ⁾ for scalar parameter ``name``, over the graph's symbols."""
        for symbol, (l, tensor, index) in self._parameters.items():
            if symbol.name == name:
                matrices = self.weight_gradients if tensor == "weight" else self.bias_gradients
                return matrices[l][index]
        raise KeyError(f"no parameter {name!r}")

    @functools.cached_property
    def _parameters(self) -> dict[sp.Symbol, tuple[int, str, tuple[int, int]]]:
        where = {}
        for l, rows in enumerate(self.graph.weights):
            where.update({w: (l, "weight", (i, j)) for i, row in enumerate(rows) for j, w in enumerate(row)})
        for l, column in enumerate(self.graph.biases):
            where.update({v: (l, "bias", (i, 0)) for i, v in enumerate(column)})
        return where

    def numbers(self, values: Mapping[sp.Symbol, float]) -> dict[sp.MatrixSymbol, list[list[float]]]:
        """Every explicit matrix in float64, given the value of every scalar symbol (`Derivation.values`)."""
        return {
            symbol: [[evaluate(entry, values) for entry in matrix.row(i)] for i in range(matrix.rows)]
            for symbol, matrix in self.explicit.items()
        }

    def latex(self, rule: Rule) -> str:
        """``lhs = rhs`` in LaTeX with the textbook names (W^{(1)}, \\Delta^{(2)}, …)."""
        names = self.latex_names | {
            r.rhs: rf"f\left(Z^{{({r.layer})}}\right)" for r in self.rules if r.kind == "activation"
        }
        printed = sp.latex(rule.rhs, symbol_names=names, mat_symbol_style="plain")
        return f"{names[rule.lhs]} = {printed}"


def explicit(expr: sp.MatrixExpr, contents: Mapping[sp.MatrixSymbol, sp.ImmutableMatrix]) -> sp.ImmutableMatrix:
    """The explicit matrix of a matrix expression, given the contents of its matrix symbols.

    Only the forms the rules use: sums, products with scalars, Hadamard products, transposes, all-ones.

    >>> a, b, c, d = sp.symbols("a b c d")
    >>> M, N = sp.MatrixSymbol("M", 1, 2), sp.MatrixSymbol("N", 1, 2)
    >>> explicit(sp.HadamardProduct(M, N) + 2 * M, {M: sp.ImmutableMatrix([[a, b]]), N: sp.ImmutableMatrix([[c, d]])})
    Matrix([[a*c + 2*a, b*d + 2*b]])
    """
    if isinstance(expr, sp.MatrixSymbol):
        return contents[expr]
    if isinstance(expr, sp.OneMatrix):
        return sp.ImmutableMatrix(sp.ones(*expr.shape))
    if isinstance(expr, sp.Transpose):
        return explicit(expr.arg, contents).T
    if isinstance(expr, sp.HadamardPower):
        return explicit(expr.base, contents).applyfunc(lambda entry: entry**expr.exp)
    parts = [explicit(arg, contents) if arg.is_Matrix else arg for arg in expr.args]
    if isinstance(expr, sp.MatAdd):
        return sp.ImmutableMatrix(functools.reduce(lambda x, y: x + y, parts))
    if isinstance(expr, sp.MatMul):
        return sp.ImmutableMatrix(functools.reduce(lambda x, y: x * y, parts))
    if isinstance(expr, sp.HadamardProduct):
        return sp.ImmutableMatrix(functools.reduce(lambda x, y: x.multiply_elementwise(y), parts))
    raise TypeError(f"no explicit rule for {type(expr).__name__}")


@functools.lru_cache(maxsize=32)
def matrix_form(arch: Architecture) -> MatrixForm:
    """The matrix form of an architecture (cached, like the scalar derivation)."""
    return MatrixForm(build_graph(arch))
