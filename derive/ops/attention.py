r"""Scaled dot-product attention, one primitive (``F.scaled_dot_product_attention``, what
``nn.MultiheadAttention`` and ``nn.TransformerEncoderLayer`` run): for each query row i,

    s_ij = (q_i · k_j)·scale (+ m_ij),   a_i = softmax(s_i),   o_i = Σ_j a_ij v_j,

with scale = 1/√E by default. A boolean mask (True: attend) or ``is_causal`` leaves the masked scores out of
the softmax (−∞, weight 0); a float mask is added to the scores. A fully masked row gives zeros, as torch.
The scores ``s`` and the weights ``a`` are named scalars of the derivation. Partials: ∂s_ij/∂q_ie = k_je·scale,
∂s_ij/∂k_je = q_ie·scale, ∂a_ij/∂s_il = a_ij(δ_jl − a_il), ∂o_ie/∂a_ij = v_je, ∂o_ie/∂v_je = a_ij.

In the tensor program the op is three definitions, S = QKᵀ·scale (+ M), A = softmax(S) (a fully masked row
zeros), O = A V, and its rule the textbook's: ∂L/∂A = ∂L/∂O Vᵀ, ∂L/∂S = A ⊙ (∂L/∂A − rowsum(∂L/∂A ⊙ A)),
∂Q = ∂L/∂S K·scale, ∂K = ∂L/∂Sᵀ Q·scale, ∂V = Aᵀ ∂L/∂O (a float mask: ∂M = ∂L/∂S).

>>> import numpy as np
>>> q = k = np.eye(2)[None]
>>> Attention.tensor_function("weights", [Attention.tensor_function("scores", [q, k], {"scale": 1.0}, "numpy")],
...                           {}, "numpy").round(4).tolist()
[[[0.7311, 0.2689], [0.2689, 0.7311]]]
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp

from derive.errors import ShapeError
from derive.ops.softmax import Softmax as SoftmaxFunction
from derive.ops.tensor import Sample, TensorOp, exact, register, symbols_only, torch_module
from derive.tensor.functions import constant
from derive.terms import dot


def softmax_rows(scores: np.ndarray) -> np.ndarray:
    """Each last-dim row's softmax in float64; −∞ scores get 0, and a row of them all gets zeros (as torch's
    ``scaled_dot_product_attention`` gives).

    >>> softmax_rows(np.array([[0.0, 0.0, -np.inf], [-np.inf, -np.inf, -np.inf]])).tolist()
    [[0.5, 0.5, 0.0], [0.0, 0.0, 0.0]]
    """
    top = np.max(scores, axis=-1, keepdims=True)
    shifted = np.exp(scores - np.where(np.isfinite(top), top, 0.0))
    total = np.sum(shifted, axis=-1, keepdims=True)
    return np.divide(shifted, total, out=np.zeros_like(shifted), where=total > 0)


def _softmax_rows(scores: Any, backend: str) -> Any:
    """`softmax_rows` in a backend's arithmetic: torch, NumPy, or a proof's 60-digit arrays."""
    if backend == "torch":
        return torch_module().softmax(scores, dim=-1).nan_to_num(0.0)
    if backend == "numpy":
        return softmax_rows(scores)
    if backend == "object":
        raise TypeError("the softmax of rationals is not rational")
    import mpmath  # a proof's arrays in 60 digits

    with mpmath.workdps(60):
        exps = np.vectorize(lambda s: mpmath.exp(s), otypes=[object])(scores)
        total = np.sum(exps, axis=-1, keepdims=True)
        return np.vectorize(lambda e, t: e / t if t else mpmath.mpf(0), otypes=[object])(exps, total)


@dataclass(frozen=True)
class _Flash:
    """What torch's flash-attention kernel keeps for its backward: the output and each row's log-sum-exp."""

    out: Any
    logsumexp: Any


@register
@dataclass(frozen=True)
class Attention(TensorOp):
    """softmax(Q Kᵀ·scale + mask) V over the last two dims (``F.scaled_dot_product_attention``); inputs
    Q, K, V and an optional mask (boolean: True attends; float: added to the scores)."""

    proof_shrinks = True

    scale: float | None = None
    causal: bool = False
    #: whether the mask is boolean (True attends) rather than added to the scores
    boolean_mask: bool = False
    key = "attention"
    aten = ("scaled_dot_product_attention.default",)

    @classmethod
    def read(cls, call: Any) -> Any:
        if float(call.arg("dropout_p", 0.0)) > 0:
            call.refuse(f"dropout_p={call.arg('dropout_p')} (it drops at random)")
        if call.arg("enable_gqa") and call.shape("query")[-3] != call.shape("key")[-3]:
            call.refuse("enable_gqa with fewer key heads than query heads")
        scale, mask = call.arg("scale"), call.arg("attn_mask")
        return call.op("attention", call.input("query"), call.input("key"), call.input("value"),
                       call.input("attn_mask"), scale=None if scale is None else float(scale),
                       causal=bool(call.arg("is_causal")), boolean_mask=mask is not None and not mask.is_floating_point())

    @classmethod
    def samples(cls) -> Iterable[Sample]:
        rng = np.random.default_rng(11)
        q, k, v = (rng.uniform(-1, 1, (1, 2, 3, 2)) for _ in range(3))
        mask = np.array([[True, False, True], [False, False, False], [True, True, True]])
        additive = np.where(mask, 0.0, -np.inf)
        additive[0, 0] = 0.5
        return [Sample(cls(), (q, k, v, None)), Sample(cls(None, True), (q, k, v, None)),
                Sample(cls(0.7, False, True), (q, k, v, mask)), Sample(cls(), (q, k, v, additive), (3,)),
                Sample(cls(), (rng.uniform(-1, 1, (2, 3)), rng.uniform(-1, 1, (4, 3)), rng.uniform(-1, 1, (4, 2)), None))]

    def _scale(self, features: int) -> float:
        return self.scale if self.scale is not None else 1 / math.sqrt(features)

    def lower(self, lowering, q: np.ndarray, k: np.ndarray, v: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        if q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
            raise ShapeError(f"attention: query {q.shape}, key {k.shape} and value {v.shape} do not fit")
        L, S, E = q.shape[-2], k.shape[-2], q.shape[-1]
        try:
            batch = np.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2],
                                        () if mask is None else np.shape(mask)[:-2])
        except ValueError:
            raise ShapeError(f"attention: batch dims of {q.shape}, {k.shape} and {v.shape} do not broadcast") from None
        Q, K, V = (np.broadcast_to(t, batch + t.shape[-2:]) for t in (q, k, v))
        masks = None if mask is None else np.broadcast_to(mask, batch + (L, S))
        scale = exact(self.scale) if self.scale is not None else 1 / sp.sqrt(E)  # 1/√E exactly
        scores, weights = lowering.new(batch + (L, S), "scores"), lowering.new(batch + (L, S), "weights")
        out = lowering.new(batch + (L, v.shape[-1]))
        for b in np.ndindex(batch):
            for i in range(L):
                kept = []
                for j in range(S):
                    extra = None if masks is None or self.boolean_mask else masks[b + (i, j)]
                    dropped = (self.causal and j > i) or (masks is not None and (
                        masks[b + (i, j)] == 0 if self.boolean_mask else extra is sp.S.NegativeInfinity))
                    if dropped:
                        scores[b + (i, j)], weights[b + (i, j)] = sp.S.NegativeInfinity, sp.S.Zero
                        continue
                    pairs = [(Q[b + (i, e)], K[b + (j, e)]) for e in range(E)]
                    partials = [(qe, scale * ke) for qe, ke in pairs] + [(ke, scale * qe) for qe, ke in pairs]
                    expr = scale * dot(pairs)
                    if extra is not None and extra != 0:
                        expr, partials = expr + extra, partials + [(extra, sp.S.One)]
                    lowering.define(scores[b + (i, j)], expr, symbols_only(partials))
                    kept.append(j)
                row = [scores[b + (i, j)] for j in kept]
                for n, j in enumerate(kept):
                    a = weights[b + (i, j)]
                    partials = [(scores[b + (i, l)], a * ((1 if l == j else 0) - weights[b + (i, l)])) for l in kept]
                    lowering.define(a, SoftmaxFunction(n + 1, *row), symbols_only(partials))
                for e in range(v.shape[-1]):
                    pairs = [(weights[b + (i, j)], V[b + (j, e)]) for j in kept]
                    partials = [(a, ve) for a, ve in pairs] + [(ve, a) for a, ve in pairs]
                    lowering.define(out[b + (i, e)], dot(pairs) if pairs else sp.S.Zero, symbols_only(partials))
        return out

    def _scores(self, q: Any, k: Any, mask: Any) -> Any:
        torch = torch_module()
        scores = (q @ k.transpose(-1, -2)) * self._scale(q.shape[-1])
        L, S = scores.shape[-2:]
        if self.causal:
            keep = torch.ones(L, S, dtype=torch.bool, device=q.device).tril()
            scores = scores.masked_fill(~keep, -math.inf)
        if mask is not None:
            scores = scores.masked_fill(~mask.bool(), -math.inf) if self.boolean_mask else scores + mask
        return scores

    def forward_saving(self, q: Any, k: Any, v: Any, mask: Any = None) -> tuple[Any, Any]:
        torch = torch_module()
        if self._fused(q, k, v, mask):  # torch's flash kernel; its backward is held to the rule like ours
            out, logsumexp = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
                q, k, v, 0.0, self.causal, scale=self._scale(q.shape[-1]))
            return out, _Flash(out, logsumexp)
        weights = torch.softmax(self._scores(q, k, mask), dim=-1).nan_to_num(0.0)  # a fully masked row: zeros
        return weights @ v, weights

    def _fused(self, q: Any, k: Any, v: Any, mask: Any) -> bool:
        """Whether torch's flash-attention kernel for the CPU computes this call: no mask, (B, H, L, E)
        tensors of one batch shape on the CPU, and a causal mask only where L = S (its corner is ours)."""
        return (mask is None and q.dim() == 4 and q.device.type == "cpu" and q.shape[:-2] == k.shape[:-2]
                == v.shape[:-2] and q.dtype == k.dtype == v.dtype and (not self.causal or q.shape[-2] == k.shape[-2]))

    def forward(self, q: Any, k: Any, v: Any, mask: Any = None) -> Any:
        if mask is not None and self.boolean_mask:
            mask = mask.bool()
        return torch_module().nn.functional.scaled_dot_product_attention(q, k, v, mask, 0.0, self.causal,
                                                                         scale=self.scale)

    def backward(self, g: Any, inputs: Sequence[Any], out: Any, wanted: Sequence[bool], saved: Any = None) -> list:
        from derive.ops.tensor import unbroadcast

        q, k, v = inputs[:3]
        mask = inputs[3] if len(inputs) > 3 else None
        if saved is None:
            saved = self.forward_saving(q, k, v, mask)[1]
        if isinstance(saved, _Flash):
            dq, dk, dv = torch_module().ops.aten._scaled_dot_product_flash_attention_for_cpu_backward(
                g.contiguous(), q, k, v, saved.out, saved.logsumexp, 0.0, self.causal, scale=self._scale(q.shape[-1]))
            return [dq, dk, dv, None]
        A = saved
        scale = self._scale(q.shape[-1])
        dv = A.transpose(-1, -2) @ g
        dA = g @ v.transpose(-1, -2)
        dS = A * (dA - (dA * A).sum(-1, keepdim=True))
        dq, dk = (dS @ k) * scale, (dS.transpose(-1, -2) @ q) * scale
        dmask = None
        if mask is not None and mask.is_floating_point() and len(wanted) > 3 and wanted[3]:
            dmask = unbroadcast(dS, tuple(mask.shape))
        return [unbroadcast(dq, tuple(q.shape)), unbroadcast(dk, tuple(k.shape)), unbroadcast(dv, tuple(v.shape)), dmask]

    def describe(self, *inputs: str) -> str:
        q, k, v = inputs[:3]
        return rf"\operatorname{{softmax}}\left(\frac{{{q} {{{k}}}^\top}}{{\sqrt{{d}}}}\right) {v}"

    # --- the tensor program: S, A and O, and the textbook's rule -------------------------------------------

    def tensor_forward(self, inputs: list[Any]) -> Any:
        """S = attention.scores(Q, K[, M]), A = attention.weights(S), O = A V: the scores and the weights are
        tensors of the program, as the textbook writes them."""
        from derive.tensor.expr import Ref, call

        q, k, v = inputs[:3]
        mask = [m for m in inputs[3:4] if not (isinstance(m, Ref) and m.name == "none")]
        return [("scores", call("attention.scores", q, k, *mask, **self.options())),
                ("weights", call("attention.weights", Ref("@scores"))),
                ("", Ref("@weights") @ v)]

    def tensor_adjoint_parts(self, g, inputs, parts, shapes, shape) -> list[tuple[str, Any]]:
        """∂L/∂A = ∂L/∂O Vᵀ; ∂L/∂S = A ⊙ (∂L/∂A − rowsum(∂L/∂A ⊙ A)): each row's softmax Jacobian
        diag(a) − a aᵀ applied to its row of ∂L/∂A."""
        from derive.tensor.expr import Ref, call

        weights, d_weights = parts["weights"], Ref("@dweights")
        return [("weights", g @ call("transpose", inputs[2])),
                ("scores", weights * (d_weights - call("sum", d_weights * weights, dims=(-1,), keepdim=True)))]

    def tensor_rule(self, g, inputs, parts, wanted, shapes, shape) -> list[Any]:
        """∂Q = ∂L/∂S K·scale, ∂K = ∂L/∂Sᵀ Q·scale, ∂V = Aᵀ ∂L/∂O, each summed back to its input's shape
        where the batch dims broadcast; a float mask: ∂M = ∂L/∂S summed back."""
        from derive.tensor.expr import call

        q, k = inputs[:2]
        d_scores, weights = parts["dscores"], parts["weights"]
        features = shapes[0][-1]
        rules = [call("attention.scale", d_scores @ k, features=features, scale=self.scale),
                 call("attention.scale", call("transpose", d_scores) @ q, features=features, scale=self.scale),
                 call("transpose", weights) @ g]
        if len(inputs) > 3:
            rules.append(None if self.boolean_mask or shapes[3] is None else d_scores)
        scores_shape = tuple(shape[:-1]) + (shapes[1][-2],)
        for n, rule in enumerate(rules):
            if rule is not None and shapes[n] is not None:
                full = scores_shape if n == 3 else tuple(shape[:-2]) + tuple(shapes[n][-2:])
                if tuple(shapes[n]) != full:
                    rules[n] = call("sum_to", rule, shape=tuple(shapes[n]))
        return [rule if n < len(wanted) and wanted[n] else None for n, rule in enumerate(rules)]

    @classmethod
    def tensor_function(cls, rule: str, args: list[Any], options: dict[str, Any], backend: str) -> Any:
        """``scores`` (Q, K[, M]): QKᵀ·scale, masked; ``weights`` (S): each row's softmax, a fully masked row
        zeros; ``scale`` (X; features): X·scale. NumPy float64, torch, or a proof's exact or 60-digit arrays
        (the scale as derive reads a float: the rational its shortest repr names)."""
        if rule == "scale":
            return args[0] * cls(options.get("scale"))._scale_in(options["features"], backend)
        if rule == "scores":
            op = cls(**options)
            q, k, *mask = args
            if backend == "torch":
                return op._scores(q, k, mask[0] if mask else None)
            return op._array_scores(q, k, mask[0] if mask else None, backend)
        if rule == "weights":
            return _softmax_rows(args[0], backend)
        return super().tensor_function(rule, args, options, backend)

    def _scale_in(self, features: int, backend: str) -> Any:
        """The scale in a backend's arithmetic: 1/√E exactly in a proof's (a rational where E is a square),
        a given scale as derive reads a float."""
        if self.scale is not None or backend in ("numpy", "torch"):
            return constant(self._scale(features), backend)
        root = math.isqrt(features)
        if root * root == features:
            return constant(1 / root, backend)
        if backend == "object":
            raise TypeError(f"1/√{features} is not rational")
        import mpmath

        with mpmath.workdps(60):
            return 1 / mpmath.sqrt(features)

    def _array_scores(self, q: Any, k: Any, mask: Any, backend: str) -> Any:
        scores = np.matmul(q, np.swapaxes(k, -1, -2)) * self._scale_in(q.shape[-1], backend)
        L, S = scores.shape[-2:]
        minus_infinity = constant(-math.inf, backend)
        if self.causal or (mask is not None and self.boolean_mask):
            keep = np.tril(np.ones((L, S), dtype=bool)) if self.causal else np.ones((L, S), dtype=bool)
            if mask is not None and self.boolean_mask:
                keep = keep & np.asarray(mask, dtype=bool)
            scores = np.where(keep, scores, minus_infinity)
        elif mask is not None:
            scores = scores + mask
        return scores

    @classmethod
    def tensor_latex(cls, rule: str, args: list[str], options: dict[str, Any]) -> str:
        if rule == "scale":
            scale = options.get("scale")
            return rf"\frac{{{args[0]}}}{{\sqrt{{{options['features']}}}}}" if scale is None else \
                rf"{scale!r} \, {args[0]}"
        if rule == "scores":
            scale = options.get("scale")
            product = rf"{args[0]} {{{args[1]}}}^\top"
            scaled = rf"\frac{{{product}}}{{\sqrt{{d}}}}" if scale is None else rf"{scale!r} \, {product}"
            masked = options.get("causal") or (len(args) > 2 and options.get("boolean_mask"))
            if len(args) > 2 and not options.get("boolean_mask"):
                scaled += f" + {args[2]}"
            return rf"\operatorname{{mask}}\left({scaled}\right)" if masked else scaled
        if rule == "weights":
            return rf"\operatorname{{softmax}}\left({args[0]}\right)"
        return super().tensor_latex(rule, args, options)
