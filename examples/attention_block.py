"""The attention chapter's blocks: three tokens of width 4, self-attention written out, the output projection,
the residual and LayerNorm, then a head (mean over tokens, a linear layer) for cross-entropy. Seeded weights,
drawn wider than torch's default so that the scores are large enough for the scale 1/√d to matter.

    derive report --torch examples/attention_block.py:TwoHeadBlock --x examples/attention_x.json --y 2 --loss cross_entropy

``OneHeadBlock``: one head, softmax(Q Kᵀ/√d) V written with matmuls. ``TwoHeadBlock``: two heads from one packed
projection (as GPT writes it), split, causally masked ``F.scaled_dot_product_attention``, concatenated.
``TorchMHABlock``: torch's ``nn.MultiheadAttention`` with its default ``need_weights=True``.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn


def _widen(module: nn.Module, std: float) -> None:
    """Weights drawn N(0, std²) and biases N(0, 0.1²): scores of a size where the softmax can saturate."""
    for name, p in module.named_parameters():
        if "norm" not in name:
            nn.init.normal_(p, std=std if name.endswith("weight") else 0.1)


class OneHeadBlock(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(31)
        self.q, self.k, self.v = nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 4)
        self.out = nn.Linear(4, 4)
        self.norm = nn.LayerNorm(4)
        self.head = nn.Linear(4, 3)
        _widen(self, 0.8)

    def forward(self, x):
        q, k, v = self.q(x), self.k(x), self.v(x)
        a = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1)
        h = self.norm(x + self.out(a @ v))
        return self.head(h.mean(dim=1))


class TwoHeadBlock(nn.Module):
    def __init__(self, heads=2):
        super().__init__()
        torch.manual_seed(32)
        self.heads = heads
        self.qkv = nn.Linear(4, 12)
        self.out = nn.Linear(4, 4)
        self.norm = nn.LayerNorm(4)
        self.head = nn.Linear(4, 3)
        _widen(self, 0.8)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = (t.view(B, T, self.heads, C // self.heads).transpose(1, 2) for t in self.qkv(x).split(C, dim=2))
        o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        h = self.norm(x + self.out(o.transpose(1, 2).reshape(B, T, C)))
        return self.head(h.mean(dim=1))


class TorchMHABlock(nn.Module):
    """torch's own ``nn.MultiheadAttention`` (two heads, ``need_weights=True``, its default: softmax(Q Kᵀ) is
    computed with matmuls, not by ``scaled_dot_product_attention``), the residual and LayerNorm."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(33)
        self.attn = nn.MultiheadAttention(4, 2, batch_first=True)
        self.norm = nn.LayerNorm(4)
        self.head = nn.Linear(4, 3)
        _widen(self, 0.8)

    def forward(self, x):
        o, _ = self.attn(x, x, x)
        return self.head(self.norm(x + o).mean(dim=1))
