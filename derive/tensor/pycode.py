r"""The tensor program as Python: printed for a reader (``derive code`` of a graph model), or compiled
(`compile_program`; a chain's compiled gradient, ``verify.compile(net, form="matrix")``, any batch).

Each definition of the program becomes one line, ``name = expression``, in evaluation order: arithmetic as
Python's operators (``@`` the matrix product, ``*`` the element-wise one), every other function of the notation
as ``F("conv.full", G, K, stride=(1, 1), …)``, which `derive.tensor.functions.apply` evaluates with NumPy
(float64) or torch. The compiled form binds each call's function and options once (`functions.bind`) and
drops each tensor after its last use, as autograd frees what its backward no longer needs.

>>> import derive
>>> source = python_source(derive.examples.seed())
>>> print(next(line for line in source.splitlines() if line.strip().startswith("dL_dW_1")))
    dL_dW_1 = F("transpose", dL_dZ_1) @ X
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from derive.errors import DeriveError
from derive.tensor.expr import Call, Num, Ref, TExpr
from derive.tensor.program import Definition, TensorProgram, program, structure_shapes

BACKENDS = ("numpy", "torch")
_INFIX = {"add": "+", "sub": "-", "mul": "*", "div": "/", "matmul": "@"}
#: Python's binding of each infix operator (higher: tighter)
_LEVEL = {"add": 1, "sub": 1, "mul": 2, "div": 2, "matmul": 2, "neg": 3, "pow": 4}


@dataclass(frozen=True)
class Argument:
    """One argument of ``gradients(…)``: the program's leaf name, what it holds, and its shape."""

    name: str
    what: str
    shape: tuple[int, ...]


def arguments(p: TensorProgram) -> list[Argument]:
    """The leaves ``gradients`` takes, in order: the input X, the targets T, the parameters, other data."""
    shapes = structure_shapes(p.structure)
    first, parameters, rest = [], [], []
    for index, name in p.leaves.items():
        leaf = p.structure.nodes[index]
        argument = Argument(name, f"{leaf.kind} {leaf.name}", shapes[index])
        (first if name == "X" else parameters if leaf.kind == "parameter" else rest).append(argument)
    loss = next(d.expr for d in p.definitions if d.kind == "loss")
    if "T" in loss.refs():
        first.append(Argument("T", "the targets as rows (class indices one-hot)", tuple(dict(loss.options)["rows"])))
    return first + parameters + rest


def _plain(text: str) -> str:
    """Text for a docstring: no quote or backslash can end it early."""
    return text.replace("\\", "/").replace('"', "'")


def python_source(network: Any, backend: str = "numpy") -> str:
    """A Python module whose ``gradients(X, T, …)`` runs the program of ``network`` with ``backend`` and returns
    ``{torch key: ∂L/∂p}`` (derive's function vocabulary imported from derive itself)."""
    if backend not in BACKENDS:
        raise DeriveError(f"unknown backend {backend!r}; known: {', '.join(BACKENDS)}")
    p = program(network)
    args = arguments(p)
    name = getattr(network, "name", "model")
    lines = [
        f'"""The tensor program of {_plain(name)}: ∂L/∂p of every parameter tensor, one line per tensor ({backend},',
        "float64), as derive derives it (derive grads --form tensor prints the same definitions).",
        "",
        "F evaluates a function of the program's notation (derive.tensor.functions) on "
        + ("NumPy arrays." if backend == "numpy" else "torch tensors."),
        '"""',
        "",
        "from derive.tensor.functions import apply",
        "",
        "",
        "def F(fn, *args, **options):",
        f'    return apply(fn, list(args), options, "{backend}")',
        "",
        "",
        f"def gradients({', '.join(a.name for a in args)}):",
        '    """∂L/∂p of every parameter tensor, {torch key: gradient}, from:',
        "",
        *(f"    {a.name}: {_plain(a.what)} {_shape(a.shape)}" for a in args),
        '    """',
    ]
    for d in p.definitions:
        lines.append(f"    {d.symbol} = {_python(d.expr)}")
    lines.append("    return {" + ", ".join(f"{key!r}: {symbol}" for key, symbol in p.gradients.items()) + "}")
    return "\n".join(lines) + "\n"


def _shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def _python(expr: TExpr, bound: dict[int, str] | None = None, context: int = 0) -> str:
    """``expr`` as a Python expression; ``bound``: the names of pre-bound functions, by call."""
    if isinstance(expr, Ref):
        return "None" if expr.name == "none" else expr.name  # an absent input (an output with no adjoint)
    if isinstance(expr, Num):
        text = repr(float(expr.value)) if expr.value != int(expr.value) or abs(expr.value) >= 1e15 else \
            f"{int(expr.value)}.0"
        if text in ("inf", "-inf", "nan"):
            text = f'float("{text}")'
        return f"({text})" if text.startswith("-") and context else text
    assert isinstance(expr, Call)
    if expr.fn in _INFIX and not expr.options:
        level = _LEVEL[expr.fn]
        left = _python(expr.args[0], bound, level)
        right = _python(expr.args[1], bound, level + 1)
        text = f"{left} {_INFIX[expr.fn]} {right}"
        return f"({text})" if context > level else text
    if expr.fn == "neg" and not expr.options:
        text = f"-{_python(expr.args[0], bound, _LEVEL['neg'])}"
        return f"({text})" if context > _LEVEL["neg"] else text
    arguments_ = [_python(a, bound) for a in expr.args]
    if bound is not None:
        return f"{bound[id(expr)]}({', '.join(arguments_)})"
    options = [f"{k}={_option(v)}" for k, v in expr.options]
    return f'F("{expr.fn}"' + "".join(f", {a}" for a in arguments_ + options) + ")"


def _option(value: Any) -> str:
    return repr(value)


def compiled_source(
    p: TensorProgram, backend: str, returns: Mapping[str, str] | None = None, written: Mapping[str, str] | None = None
) -> tuple[str, dict[str, Any]]:
    """The program as one Python function ``run(env)`` with every call bound, and its namespace; each tensor
    is deleted after its last use unless it is returned.

    ``run`` returns ``returns`` (``{key: symbol}``; the gradients by torch key if None), from the definitions
    they need only. ``written`` gives the Python of some definitions by symbol, written by the caller: it reads
    the tensors the definition's expression reads, and the other names it uses are the caller's to add to the
    namespace.
    """
    from derive.tensor.functions import bind

    returns = p.gradients if returns is None else returns
    written = written or {}
    definitions = _needed(p.definitions, set(returns.values()))
    namespace: dict[str, Any] = {}
    bound: dict[int, str] = {}

    def collect(expr: TExpr) -> None:
        if isinstance(expr, Call):
            for a in expr.args:
                collect(a)
            simple = (expr.fn in _INFIX or expr.fn == "neg") and not expr.options
            if not simple:
                name = f"_f{len(namespace)}"
                namespace[name] = bind(expr.fn, dict(expr.options), backend)
                bound[id(expr)] = name

    for d in definitions:
        if d.symbol not in written:
            collect(d.expr)
    last: dict[str, int] = {}
    for k, d in enumerate(definitions):
        for name in d.expr.refs():
            last[name] = k
    keep = set(returns.values())
    leaves = sorted(set(p.leaves.values()) | {"T"})
    lines = ["def run(env):"] + [f"    {n} = env.get({n!r})" for n in leaves]
    for k, d in enumerate(definitions):
        lines.append(f"    {d.symbol} = {written[d.symbol] if d.symbol in written else _python(d.expr, bound)}")
        done = [n for n in sorted(d.expr.refs()) if last.get(n) == k and n not in keep and n not in leaves]
        if done:
            lines.append(f"    del {', '.join(done)}")
    lines.append("    return {" + ", ".join(f"{key!r}: {symbol}" for key, symbol in returns.items()) + "}")
    return "\n".join(lines) + "\n", namespace


def _needed(definitions: list[Definition], wanted: set[str]) -> list[Definition]:
    """The definitions that ``wanted`` (symbols) read, directly or through others, in program order."""
    needed = set(wanted)
    for d in reversed(definitions):
        if d.symbol in needed:
            needed |= d.expr.refs()
    return [d for d in definitions if d.symbol in needed]


def compile_program(network: Any, backend: str = "torch") -> Any:
    """``run(env) -> {torch key: gradient}``: the program of ``network`` as one compiled Python function, its
    leaves' values by name in ``env`` (`derive.tensor.program.leaf_values`)."""
    source, namespace = compiled_source(program(network), backend)
    exec(compile(source, f"<tensor program of {getattr(network, 'name', 'model')}>", "exec"), namespace)  # noqa: S102
    return namespace["run"]


__all__ = ["Argument", "arguments", "compile_program", "compiled_source", "python_source"]
