r"""LaTeX of tensor expressions: matrix products by juxtaposition, ⊙ for the element-wise product, ᵀ, Σ over
dims, each op as its class writes it (``describe``) and each rule function as its class writes it.

>>> from derive.tensor.expr import parse
>>> latex(parse("transpose(G) @ X + 2 * A * (1 - A)"), {"G": r"\Delta", "A": "A"})
'{\\Delta}^\\top X + 2 A \\odot \\left(1 - A\\right)'
"""

from __future__ import annotations

from collections.abc import Mapping

from derive.tensor.expr import Call, Num, Ref, TExpr

#: how tightly each form binds (higher: tighter), for parentheses
_LEVEL = {"add": 1, "sub": 1, "neg": 1, "mul": 2, "div": 3, "matmul": 2}


def latex(expr: TExpr, names: Mapping[str, str]) -> str:
    """``expr`` in LaTeX, each tensor shown by ``names`` (else its name, upright)."""
    return _latex(expr, names, 0)


def _name(name: str, names: Mapping[str, str]) -> str:
    if name in names:
        return names[name]
    if len(name) == 1:
        return name
    escaped = name.replace("_", r"\_")
    return rf"\mathrm{{{escaped}}}"


def _number(value: float) -> str:
    if value != value:
        return r"\mathrm{NaN}"
    if abs(value) == float("inf"):
        return r"\infty" if value > 0 else r"-\infty"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.6g}"


def _wrap(text: str, needed: bool) -> str:
    return rf"\left({text}\right)" if needed else text


def _latex(expr: TExpr, names: Mapping[str, str], context: int) -> str:
    if isinstance(expr, Ref):
        return _name(expr.name, names)
    if isinstance(expr, Num):
        return _wrap(_number(expr.value), expr.value < 0 and context > 0)
    assert isinstance(expr, Call)
    fn, args = expr.fn, expr.args
    level = _LEVEL.get(fn)
    if fn in ("add", "sub"):
        left = _latex(args[0], names, 1)
        right = _latex(args[1], names, 2 if fn == "sub" else 1)
        return _wrap(f"{left} {'+' if fn == 'add' else '-'} {right}", context > level)
    if fn == "neg":
        return _wrap(f"-{_latex(args[0], names, 2)}", context > 1)
    if fn == "mul":
        scalar = isinstance(args[0], Num)
        left, right = _latex(args[0], names, 2), _latex(args[1], names, 2)
        return _wrap(f"{left} {right}" if scalar else rf"{left} \odot {right}", context > 2)
    if fn == "div":
        return rf"\frac{{{_latex(args[0], names, 0)}}}{{{_latex(args[1], names, 0)}}}"
    if fn == "matmul":
        return _wrap(f"{_latex(args[0], names, 2)} {_latex(args[1], names, 3)}", context > 2)
    if fn == "pow":
        exponent = expr.option("exponent")
        return f"{{{_latex(args[0], names, 4)}}}^{{{_number(exponent)}}}"
    if fn == "transpose":
        return f"{{{_latex(args[0], names, 4)}}}^\\top"
    inner = ", ".join(_latex(a, names, 0) for a in args)
    if fn == "sum":
        dims = expr.option("dims")
        where = "" if not dims else r"_{" + ",".join(str(d) for d in dims) + "}"
        return rf"\textstyle\sum{where} {_wrap(inner, True)}"
    if fn == "sum_to":
        return rf"\operatorname{{sum}}_{{\to {_shape(expr.option('shape'))}}}\left({inner}\right)"
    if fn in ("reshape", "expand"):
        return rf"\operatorname{{{fn}}}_{{{_shape(expr.option('shape'))}}}\left({inner}\right)"
    if fn in ("permute", "unsqueeze"):
        return rf"\operatorname{{{fn}}}_{{{_shape(expr.option('dims'))}}}\left({inner}\right)"
    if fn in ("zeros", "ones"):
        return r"\mathbf{0}" if fn == "zeros" else r"\mathbf{1}"
    if fn in ("loss", "loss_grad"):
        prime = "'" if fn == "loss_grad" else ""
        return rf"\operatorname{{{expr.option('loss')}}}{prime}\left({inner}\right)"
    elementwise = _elementwise(fn, inner)
    if elementwise is not None:
        return elementwise
    return _op(expr, [_latex(a, names, 0) for a in args])


def _shape(values: object) -> str:
    return r"\times".join(str(v) for v in values) if isinstance(values, tuple) else str(values)


def _elementwise(fn: str, inner: str) -> str | None:
    from derive.ops import ACTIVATIONS

    if fn == "exp":
        return f"e^{{{inner}}}"
    if fn == "sqrt":
        return rf"\sqrt{{{inner}}}"
    if fn == "step":
        return rf"\mathbb{{1}}\left[{inner} > 0\right]"
    if fn == "Phi":
        return rf"\Phi\left({inner}\right)"
    if fn == "phi":
        return rf"\varphi\left({inner}\right)"
    if fn in ("log", "tanh", "sin", "cos", "sinh", "cosh"):
        return rf"\{fn}\left({inner}\right)"
    if fn in ("Abs", "abs"):
        return rf"\left|{inner}\right|"
    if fn in ACTIVATIONS:
        return rf"{ACTIVATIONS[fn].latex_symbol}\left({inner}\right)"
    if fn in ("sign", "erf", "erfc", "atan", "exp_left"):
        return rf"\operatorname{{{fn}}}\left({inner}\right)"
    return None


def _op(expr: Call, args: list[str]) -> str:
    from derive.ops.tensor import OPS

    key, _, rule = expr.fn.partition(".")
    cls = OPS.get(key)
    if cls is None:
        return rf"\operatorname{{{expr.fn}}}\left({', '.join(args)}\right)"
    return cls.tensor_latex(rule, args, dict(expr.options))
