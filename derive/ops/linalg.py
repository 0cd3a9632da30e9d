r"""Linear algebra: ``matmul`` (``@``, ``mm``, ``bmm``, ``matmul``, with torch's 1-D and batch rules) and
``linear`` (``nn.Linear``, ``F.linear``: $x W^\top + b$).

Each output element is a sum of products; its partials come from that structure: ∂(Σ_k a_k b_k)/∂a_k = b_k.

>>> import numpy as np, sympy as sp
>>> from derive.model.lower import Lowering
>>> low = Lowering()
>>> x = np.array(sp.symbols("x1 x2"), dtype=object)
>>> W = np.array([sp.symbols("W1 W2")], dtype=object)
>>> MatMul().lower(low, x, W.T).shape, str(low.nodes[0].expr)
((1,), 'W1*x1 + W2*x2')
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp

from derive.errors import ShapeError
from derive.ops.activations import activation
from derive.ops.tensor import Sample, TensorOp, register, symbols_only, torch_module, unbroadcast
from derive.terms import dot, product, total




def _dot(pairs: list[tuple[sp.Expr, sp.Expr]], extra: sp.Expr | None = None) -> tuple[sp.Expr, list]:
    """Σ a·b (+ extra) and its partials: ∂/∂a = b, ∂/∂b = a, ∂/∂extra = 1."""
    partials = [(a, b) for a, b in pairs] + [(b, a) for a, b in pairs]
    if extra is not None:
        partials.append((extra, sp.S.One))
    return dot(pairs, extra), partials


@register
@dataclass(frozen=True)
class MatMul(TensorOp):
    """``a @ b`` with torch's rules: 1-D operands are promoted and the added dim removed; batch dims broadcast."""

    proof_shrinks = True

    key = "matmul"
    formula = "{0} {1}"
    aten = ("mm.default", "bmm.default", "matmul.default", "addmm.default", "baddbmm.default", "mv.default",
            "dot.default")

    @classmethod
    def read(cls, call: Any) -> Any:
        first, second = ("mat1", "mat2") if call.given("mat1") else ("batch1", "batch2") if call.given("batch1") \
            else ("self", "vec") if call.name == "mv.default" else ("self", "mat2") if call.given("mat2") \
            else ("self", "tensor" if call.given("tensor") else "other")
        if call.name.startswith(("addmm", "baddbmm")):
            beta, alpha = call.arg("beta", 1), call.arg("alpha", 1)
            product = call.op("matmul", call.input(first), call.input(second), name=f"{call.node.name}_product")
            if alpha != 1:
                product = call.op("mul", product, alpha, name=f"{call.node.name}_alpha")
            bias = call.input("self") if beta == 1 else call.op("mul", call.input("self"), beta,
                                                                 name=f"{call.node.name}_beta")
            return call.op("add", product, bias)
        return call.op("matmul", call.input(first), call.input(second))

    @classmethod
    def samples(cls) -> Iterable[Sample]:
        return [Sample(cls(), (_random(1, 2, 3), _random(2, 3, 4))), Sample(cls(), (_random(3, 2, 2, 3), _random(4, 3, 2))),
                Sample(cls(), (_random(5, 3), _random(6, 3, 2))), Sample(cls(), (_random(7, 2, 3), _random(8, 3)))]

    def reads(self) -> tuple[bool, bool]:
        return True, False

    def forward(self, a: Any, b: Any) -> Any:
        return a @ b

    def numpy_forward(self, a: Any, b: Any) -> Any:
        return np.matmul(a, b)

    def tensor_forward(self, inputs: list[Any]) -> Any:
        return inputs[0] @ inputs[1]

    def tensor_rule(self, g, inputs, parts, wanted, shapes, shape) -> list[Any]:
        """∂A = G Bᵀ, ∂B = Aᵀ G (matrices; batch dims summed back; 1-D operands as torch promotes them)."""
        from derive.tensor.expr import call

        a, b = inputs
        sa, sb = shapes
        if len(sa) == 1 or len(sb) == 1:
            return super().tensor_rule(g, inputs, parts, wanted, shapes, shape)
        da = g @ call("transpose", b)
        db = call("transpose", a) @ g
        if tuple(da_shape := _matmul_shape(shape, sb, left=True)) != tuple(sa):
            da = call("sum_to", da, shape=sa)
        if tuple(_matmul_shape(shape, sa, left=False)) != tuple(sb):
            db = call("sum_to", db, shape=sb)
        del da_shape
        return [da if wanted[0] else None, db if wanted[1] else None]

    def backward(self, g: Any, inputs: Sequence[Any], out: Any, wanted: Sequence[bool], saved: Any = None) -> list:
        """∂A = G Bᵀ, ∂B = Aᵀ G, batch dims summed back; 1-D operands promoted and the added dim removed."""
        a, b = inputs
        a2 = a.unsqueeze(0) if a.dim() == 1 else a
        b2 = b.unsqueeze(-1) if b.dim() == 1 else b
        g2 = g
        if a.dim() == 1:
            g2 = g2.unsqueeze(-2)
        if b.dim() == 1:
            g2 = g2.unsqueeze(-1)
        da = unbroadcast(g2 @ b2.transpose(-1, -2), tuple(a2.shape)).reshape(a.shape) if wanted[0] else None
        db = unbroadcast(a2.transpose(-1, -2) @ g2, tuple(b2.shape)).reshape(b.shape) if wanted[1] else None
        return [da, db]

    def lower(self, lowering, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        if a.ndim == 0 or b.ndim == 0:
            raise ShapeError("matmul: both operands need at least one dimension (use * for a scalar)")
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        if a2.shape[-1] != b2.shape[-2]:
            raise ShapeError(f"matmul: shapes {a.shape} and {b.shape} do not multiply ({a2.shape[-1]} ≠ {b2.shape[-2]})")
        try:
            batch = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
        except ValueError:
            raise ShapeError(f"matmul: batch dimensions of {a.shape} and {b.shape} do not broadcast") from None
        n, m = a2.shape[-2], b2.shape[-1]
        A = np.broadcast_to(a2, batch + a2.shape[-2:])
        B = np.broadcast_to(b2, batch + b2.shape[-2:])
        shape = batch + ((n,) if a.ndim > 1 else ()) + ((m,) if b.ndim > 1 else ())
        out = lowering.new(shape).reshape(batch + (n, m))
        for index in np.ndindex(batch):
            rows, cols = A[index], B[index]
            for i in range(n):
                for j in range(m):
                    expr, partials = _dot(list(zip(rows[i], cols[:, j])))
                    lowering.define(out[index + (i, j)], expr, symbols_only(partials))
        return out.reshape(shape)


@register
@dataclass(frozen=True)
class Linear(TensorOp):
    r"""``nn.Linear``/``F.linear``: $x W^\top + b$ over the last dim of ``x`` (``W`` is out × in)."""

    proof_shrinks = True

    key = "linear"
    aten = ("linear.default",)

    @classmethod
    def read(cls, call: Any) -> Any:
        return call.op("linear", call.input("input"), call.input("weight"), call.input("bias"))

    @classmethod
    def samples(cls) -> Iterable[Sample]:
        return [Sample(cls(), (_random(1, 2, 3), _random(2, 4, 3), _random(3, 4))),
                Sample(cls(), (_random(4, 2, 2, 3), _random(5, 2, 3), None)), Sample(cls(), (_random(6, 3), _random(7, 2, 3), _random(8, 2)))]

    def reads(self) -> tuple[bool, bool]:
        return True, False

    def forward(self, x: Any, weight: Any, bias: Any = None) -> Any:
        return torch_module().nn.functional.linear(x, weight, bias)

    def numpy_forward(self, x: Any, weight: Any, bias: Any = None) -> Any:
        out = np.matmul(x, np.swapaxes(weight, -1, -2))
        return out if bias is None else out + bias

    def tensor_forward(self, inputs: list[Any]) -> Any:
        from derive.tensor.expr import call

        product = inputs[0] @ call("transpose", inputs[1])
        return product + inputs[2] if len(inputs) > 2 and getattr(inputs[2], "name", "") != "none" else product

    def tensor_rule(self, g, inputs, parts, wanted, shapes, shape) -> list[Any]:
        """∂X = G W, ∂W = Gᵀ X, ∂b = Σ G over the rows (every dim but the last)."""
        from derive.tensor.expr import call

        x = inputs[0]
        rows_g, rows_x = g, x
        if len(shape) != 2:  # batch dims: the rules on rows
            rows_g = call("reshape", g, shape=(-1, shape[-1]))
            rows_x = call("reshape", x, shape=(-1, shapes[0][-1]))
        rules = [g @ inputs[1] if wanted[0] else None, call("transpose", rows_g) @ rows_x if wanted[1] else None]
        if len(inputs) > 2:
            rules.append(call("sum", rows_g, dims=(0,), keepdim=False) if wanted[2] else None)
        return rules

    def backward(self, g: Any, inputs: Sequence[Any], out: Any, wanted: Sequence[bool], saved: Any = None) -> list:
        """∂X = G W, ∂W = Gᵀ X (rows of every batch dim), ∂b = Σ G."""
        x, W = inputs[0], inputs[1]
        b = inputs[2] if len(inputs) > 2 else None
        g2, x2 = g.reshape(-1, g.shape[-1]), x.reshape(-1, x.shape[-1])
        return [g @ W if wanted[0] else None, g2.T @ x2, None if b is None else g2.sum(0)]

    def lower(self, lowering, x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
        if weight.ndim != 2 or x.ndim == 0 or x.shape[-1] != weight.shape[1]:
            raise ShapeError(
                f"linear: input of shape {x.shape} and weight of shape {weight.shape} (out × in) do not fit"
            )
        if bias is not None and bias.shape != (weight.shape[0],):
            raise ShapeError(f"linear: bias of shape {bias.shape} for weight of shape {weight.shape}")
        out = lowering.new(x.shape[:-1] + (weight.shape[0],))
        for index in np.ndindex(x.shape[:-1]):
            row = x[index]
            for o in range(weight.shape[0]):
                expr, partials = _dot(list(zip(weight[o], row)), None if bias is None else bias[o])
                lowering.define(out[index + (o,)], expr, symbols_only(partials))
        return out

    def describe(self, *inputs: str) -> str:
        return f"{inputs[0]} {{{inputs[1]}}}^\\top" + (f" + {inputs[2]}" if len(inputs) > 2 else "")


@register
@dataclass(frozen=True)
class Dense(TensorOp):
    r"""A chain's layer: $z = W x + b$ then $a = f(z)$, unit by unit (``z1``, ``a1``, … in a chain's names);
    x is batch × in, W out × in (torch's layout), b (out,). A vector activation (softmax) takes all of the
    layer's z of a sample; its outputs come after them."""

    proof_shrinks = True

    activation: str = "identity"
    key = "dense"

    @classmethod
    def samples(cls) -> Iterable[Sample]:
        return [Sample(cls("sigmoid"), (_random(1, 2, 3), _random(2, 2, 3), _random(3, 2))),
                Sample(cls("softmax"), (_random(4, 1, 2), _random(5, 3, 2), _random(6, 3))),
                Sample(cls("relu"), (_random(7, 3, 2), _random(8, 2, 2), _random(9, 2)))]

    def lower(self, lowering, x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
        if x.ndim != 2 or weight.ndim != 2 or x.shape[1] != weight.shape[1] or bias.shape != (weight.shape[0],):
            raise ShapeError(f"dense: input {x.shape}, weight {weight.shape} (out × in) and bias {bias.shape} do not fit")
        act = activation(self.activation)
        batch, units = x.shape[0], weight.shape[0]
        z, a = lowering.new((batch, units), "z"), lowering.new((batch, units), "a", act.output_letter)
        for n in range(batch):
            ins = x[n]
            for i in range(units):
                W = weight[i]
                expr = total([*(product(W[j], ins[j]) for j in range(len(ins))), bias[i]])
                partials = [(ins[j], W[j]) for j in range(len(ins))]
                partials += [(W[j], ins[j]) for j in range(len(ins))] + [(bias[i], sp.S.One)]
                lowering.define(z[n, i], expr, symbols_only(partials), "z", i, n)
                if not act.vector:
                    lowering.define(a[n, i], act(z[n, i]), ((z[n, i], act.derivative(z[n, i], a[n, i])),), "a", i, n)
            if act.vector:  # every output uses every z of its layer (softmax): a_i after all the z
                zs, outs = list(z[n]), list(a[n])
                for i, expr in enumerate(act.outputs(zs)):
                    jacobian = tuple((zj, act.jacobian(i, j, outs)) for j, zj in enumerate(zs))
                    lowering.define(a[n, i], expr, jacobian, "a", i, n)
        return a

    def tensor_forward(self, inputs: list[Any]) -> Any:
        """Z = X Wᵀ + b, then A = f(Z): two definitions (Z⁽ˡ⁾ and A⁽ˡ⁾ in a chain)."""
        from derive.tensor.expr import Ref

        z = Linear().tensor_forward(inputs)
        return [("z", z), ("", self._activation().tensor_forward([Ref("@z")]))]

    def _activation(self) -> Any:
        from derive.ops.elementwise import Activate
        from derive.ops.reduce import Softmax

        return Softmax(-1) if self.activation == "softmax" else Activate(self.activation)

    def tensor_adjoint_parts(self, g, inputs, parts, shapes, shape) -> list[tuple[str, Any]]:
        """Δ = ∂L/∂Z = G ⊙ f′(Z) (softmax: A ⊙ (G − Σ G ⊙ A))."""
        (delta,) = self._activation().tensor_rule(g, [parts["z"]], {"": parts[""]}, [True], [shape], shape)
        return [("z", delta)]

    def tensor_rule(self, g, inputs, parts, wanted, shapes, shape) -> list[Any]:
        return Linear().tensor_rule(parts["dz"], inputs, {"": parts["z"]}, wanted, shapes, shape)

    def numpy_forward(self, x: Any, weight: Any, bias: Any) -> Any:
        from derive.tensor.functions import evaluate

        z = Linear().numpy_forward(x, weight, bias)
        return evaluate(self._activation().tensor_forward([_ref("Z")]), {"Z": z}, "numpy")

    def forward(self, x: Any, weight: Any, bias: Any) -> Any:
        torch = torch_module()
        z = torch.nn.functional.linear(x, weight, bias)
        if self.activation == "softmax":
            return torch.softmax(z, dim=-1)
        from derive.ops.elementwise import Activate

        return Activate(self.activation).forward(z)

    def backward(self, g: Any, inputs: Sequence[Any], out: Any, wanted: Sequence[bool], saved: Any = None) -> list:
        """δ = g ⊙ f′(z) (softmax: a ⊙ (g − Σ g ⊙ a)), then linear's rule: ∂X = δ W, ∂W = δᵀ X, ∂b = Σ δ."""
        x, weight, bias = inputs
        if self.activation == "softmax":
            delta = out * (g - (g * out).sum(-1, keepdim=True))
        else:
            from derive.ops.elementwise import Activate

            z = torch_module().nn.functional.linear(x, weight, bias)
            delta = Activate(self.activation).backward(g, [z], out, [True])[0]
        return Linear().backward(delta, [x, weight, bias], None, wanted)

    def describe(self, *inputs: str) -> str:
        return rf"{activation(self.activation).latex_symbol}\left({inputs[0]} {{{inputs[1]}}}^\top + {inputs[2]}\right)"


def _random(seed: int, *shape: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.5, 1.5, shape)


def _matmul_shape(out: tuple[int, ...], other: tuple[int, ...], left: bool) -> tuple[int, ...]:
    """The shape of G Bᵀ (left) or Aᵀ G: batch dims of the output, then the matrix dims."""
    if left:
        return (*out[:-1], other[-2])
    return (*out[:-2], other[-1], out[-1])


def _ref(name: str) -> Any:
    from derive.tensor.expr import Ref

    return Ref(name)
