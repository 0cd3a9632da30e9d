r"""Scaled dot-product attention, one primitive (``F.scaled_dot_product_attention``, what
``nn.MultiheadAttention`` and ``nn.TransformerEncoderLayer`` run): for each query row i,

    s_ij = (q_i · k_j)·scale (+ m_ij),   a_i = softmax(s_i),   o_i = Σ_j a_ij v_j,

with scale = 1/√E by default. A boolean mask (True: attend) or ``is_causal`` leaves the masked scores out of
the softmax (−∞, weight 0); a float mask is added to the scores. A fully masked row gives zeros, as torch.
The scores ``s`` and the weights ``a`` are named scalars of the derivation. Partials: ∂s_ij/∂q_ie = k_je·scale,
∂s_ij/∂k_je = q_ie·scale, ∂a_ij/∂s_il = a_ij(δ_jl − a_il), ∂o_ie/∂a_ij = v_je, ∂o_ie/∂v_je = a_ij.

The tensor rule: dV = Aᵀ dO, dA = dO Vᵀ, dS = A ⊙ (dA − rowsum(dA ⊙ A)), dQ = dS K·scale, dK = dSᵀ Q·scale.
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
from derive.terms import dot


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
        scale = exact(self._scale(E))
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
        weights = torch.softmax(self._scores(q, k, mask), dim=-1).nan_to_num(0.0)  # a fully masked row: zeros
        return weights @ v, weights

    def forward(self, q: Any, k: Any, v: Any, mask: Any = None) -> Any:
        if mask is not None and self.boolean_mask:
            mask = mask.bool()
        return torch_module().nn.functional.scaled_dot_product_attention(q, k, v, mask, 0.0, self.causal,
                                                                         scale=self.scale)

    def backward(self, g: Any, inputs: Sequence[Any], out: Any, wanted: Sequence[bool], saved: Any = None) -> list:
        from derive.ops.tensor import unbroadcast

        q, k, v = inputs[:3]
        mask = inputs[3] if len(inputs) > 3 else None
        A = saved if saved is not None else self.forward_saving(q, k, v, mask)[1]
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
