"""Models written the way people write them today: transformers, attention with causal masks, RMSNorm and
SwiGLU, transposed convolutions, bidirectional LSTMs, losses written in ``forward``.

Every class seeds its own initialisation, so ``--torch modern_zoo.py:CLASS`` reads the same weights as the
tests. ``CASES`` maps a class name to (x, y, loss): the data each is checked on (``loss`` None: the module's
``forward(x, y)`` returns its own loss).
"""

import math

import torch
import torch.nn.functional as F
from torch import nn


class EncoderLayer(nn.Module):
    """torch's own TransformerEncoderLayer (d_model 4, 2 heads), mean over tokens, a linear head."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(21)
        self.enc = nn.TransformerEncoderLayer(4, 2, dim_feedforward=8, dropout=0.0, batch_first=True)
        self.head = nn.Linear(4, 3)

    def forward(self, x):
        return self.head(self.enc(x).mean(dim=1))


class CausalMHA(nn.Module):
    """nn.MultiheadAttention with a causal boolean mask made in ``forward`` from the sequence length."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(22)
        self.attn = nn.MultiheadAttention(4, 2, batch_first=True)
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        T = x.shape[1]
        mask = torch.triu(torch.ones(T, T), diagonal=1).bool()
        out, _ = self.attn(x, x, x, attn_mask=mask, need_weights=False)
        return self.head(out[:, -1])


class GPTBlock(nn.Module):
    """A GPT block written by hand: ``B, T, C = x.shape``, one qkv projection, a causal mask with
    ``masked_fill(-inf)``, pre-LayerNorm, a GELU MLP and two residuals."""

    def __init__(self, C=4, heads=2):
        super().__init__()
        torch.manual_seed(23)
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(C), nn.LayerNorm(C)
        self.qkv = nn.Linear(C, 3 * C)
        self.proj = nn.Linear(C, C)
        self.fc, self.out = nn.Linear(C, 2 * C), nn.Linear(2 * C, C)
        self.register_buffer("bias", torch.tril(torch.ones(8, 8)).view(1, 1, 8, 8))
        self.head = nn.Linear(C, 2)

    def attention(self, x):
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        q = q.view(B, T, self.heads, C // self.heads).transpose(1, 2)
        k = k.view(B, T, self.heads, C // self.heads).transpose(1, 2)
        v = v.view(B, T, self.heads, C // self.heads).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        att = att.masked_fill(self.bias[:, :, :T, :T] == 0, float("-inf"))
        att = F.softmax(att, dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
        return self.proj(y)

    def forward(self, x):
        x = x + self.attention(self.ln1(x))
        x = x + self.out(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))
        return self.head(x[:, -1, :])


class RMSNormWritten(nn.Module):
    """RMSNorm written out, as Llama's reference code does."""

    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim) + 0.1 * torch.randn(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class SwiGLU(nn.Module):
    """RMSNorm (torch's and a written one) and a SwiGLU feed-forward: w2(silu(w1 x) * w3 x)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(24)
        self.norm = nn.RMSNorm(4)
        self.norm2 = RMSNormWritten(4)
        self.w1, self.w3 = nn.Linear(4, 6, bias=False), nn.Linear(4, 6, bias=False)
        self.w2 = nn.Linear(6, 4, bias=False)
        self.head = nn.Linear(4, 1)

    def forward(self, x):
        h = self.norm(x)
        h = x + self.w2(F.silu(self.w1(h)) * self.w3(h))
        return self.head(self.norm2(h).mean(dim=1))


class PaddedEmbedding(nn.Module):
    """Embedding with ``padding_idx`` (its row gets no gradient), a mean over the non-padding tokens."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(25)
        self.embed = nn.Embedding(6, 3, padding_idx=0)
        self.head = nn.Linear(3, 2)

    def forward(self, ids):
        mask = (ids != 0).unsqueeze(-1).to(torch.float64)
        pooled = (self.embed(ids) * mask).sum(1) / mask.sum(1).clamp(min=1)
        return self.head(pooled)


class MiniResNet(nn.Module):
    """A ResNet basic block: conv-BN-ReLU-conv-BN, the identity added, ReLU, global average pool, a head."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(26)
        self.stem = nn.Conv2d(1, 2, 3, padding=1, bias=False)
        self.bn0 = nn.BatchNorm2d(2)
        self.conv1 = nn.Conv2d(2, 2, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(2)
        self.conv2 = nn.Conv2d(2, 2, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2, 3)

    def forward(self, x):
        x = F.relu(self.bn0(self.stem(x)))
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out = F.relu(out + x)
        return self.fc(torch.flatten(self.pool(out), 1))


class DepthwiseSeparable(nn.Module):
    """MobileNet's depthwise-separable convolution (groups = channels, then 1×1) with Hardswish."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(27)
        self.depthwise = nn.Conv2d(2, 2, 3, padding=1, groups=2)
        self.pointwise = nn.Conv2d(2, 3, 1)
        self.act = nn.Hardswish()
        self.fc = nn.Linear(3, 2)

    def forward(self, x):
        h = self.act(self.pointwise(self.act(self.depthwise(x))))
        return self.fc(h.mean(dim=(2, 3)))


class ConvAutoencoder(nn.Module):
    """A convolutional autoencoder: strided Conv2d down, ConvTranspose2d up, sigmoid out (MSE to the input)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(28)
        self.down = nn.Conv2d(1, 2, 3, stride=2, padding=1)
        self.up = nn.ConvTranspose2d(2, 1, 3, stride=2, padding=1, output_padding=1)

    def forward(self, x):
        return torch.sigmoid(self.up(F.relu(self.down(x))))


class UpsampleConv(nn.Module):
    """Upsample (nearest, then bilinear) followed by Conv2d, as decoders do."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(29)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.fc = nn.Linear(2, 1)

    def forward(self, x):
        h = self.conv(self.up(x))
        h = F.interpolate(h, scale_factor=0.5, mode="bilinear", align_corners=False)
        return self.fc(torch.tanh(h).mean(dim=(2, 3)))


class BiLSTM(nn.Module):
    """A 2-layer bidirectional LSTM over a batch-first sequence; the last step's features classified."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(30)
        self.lstm = nn.LSTM(2, 3, num_layers=2, bidirectional=True, batch_first=True)
        self.fc = nn.Linear(6, 2)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.fc(out[:, -1, :])


class GRUZeroState(nn.Module):
    """A GRU whose initial state is built in ``forward`` from the batch size (the tutorials' style)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(31)
        self.hidden = 3
        self.gru = nn.GRU(2, 3, batch_first=True)
        self.fc = nn.Linear(3, 1)

    def forward(self, x):
        h0 = torch.zeros(1, x.size(0), self.hidden)  # no dtype: the default, as tutorials write it
        out, h = self.gru(x, h0)
        return self.fc(h[-1])


class RNNCellLoop(nn.Module):
    """An RNNCell loop from ``torch.zeros(x.shape[0], H)``, the most common RNN tutorial style."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(32)
        self.H = 3
        self.cell = nn.RNNCell(2, 3)
        self.fc = nn.Linear(3, 2)

    def forward(self, x):
        h = torch.zeros(x.shape[0], self.H)  # no dtype: the default, as tutorials write it
        for t in range(x.shape[1]):
            h = self.cell(x[:, t, :], h)
        return self.fc(h)


class FocalLoss(nn.Module):
    """A focal loss written in ``forward(x, y)``: p_t chosen with ``torch.where(y == 1, p, 1 - p)``."""

    def __init__(self, gamma=2.0, alpha=0.25):
        super().__init__()
        torch.manual_seed(33)
        self.fc = nn.Linear(3, 1)
        self.gamma, self.alpha = gamma, alpha

    def forward(self, x, y):
        p = torch.sigmoid(self.fc(x)).squeeze(1)
        p_t = torch.where(y == 1, p, 1 - p)
        alpha_t = torch.where(y == 1, self.alpha, 1 - self.alpha)
        return (-alpha_t * (1 - p_t) ** self.gamma * torch.log(p_t)).mean()


class FiveLosses(nn.Module):
    """Five torch losses with their options, summed in ``forward(x, y)``: cross-entropy with label smoothing
    and class weights, BCE with logits and pos_weight, smooth L1, Huber and KL divergence."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(34)
        self.fc = nn.Linear(3, 3)
        self.register_buffer("class_weight", torch.tensor([1.0, 2.0, 0.5]))

    def forward(self, x, y):
        logits = self.fc(x)
        total = F.cross_entropy(logits, y, weight=self.class_weight, label_smoothing=0.1)
        target = F.one_hot(y, 3).to(logits.dtype)
        total = total + F.binary_cross_entropy_with_logits(logits, target, pos_weight=torch.tensor([1.0, 2.0, 3.0]))
        total = total + F.smooth_l1_loss(logits, target, beta=0.5)
        total = total + F.huber_loss(logits, target, delta=0.7, reduction="sum")
        total = total + F.kl_div(F.log_softmax(logits, dim=1), F.softmax(target * 2, dim=1), reduction="batchmean")
        return total


class ShapeMix(nn.Module):
    """Element-wise and shape ops mixed: rsqrt, log1p, expm1, maximum, clamp, abs, einsum, flip, roll of
    dims by permute, split, chunk, repeat, narrow, gather, where with a comparison of values."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(35)
        self.W = nn.Parameter(torch.randn(4, 4) * 0.5)
        self.b = nn.Parameter(torch.randn(4) * 0.1)

    def forward(self, x):
        h = torch.einsum("bi,ij->bj", x, self.W) + self.b
        a, b = h.chunk(2, dim=1)
        g = torch.maximum(a, b) + torch.minimum(a, -b).abs()
        g = torch.log1p(g.clamp(min=-0.5)) + torch.expm1(-g.pow(2))
        g = torch.cat([g, g.flip(1)], dim=1) * torch.rsqrt(h.pow(2).sum(1, keepdim=True) + 1)
        g = torch.where(g > 0, g, 0.1 * g)
        picked = torch.gather(g, 1, torch.tensor([[3, 0], [1, 2]]))
        return picked.repeat(1, 2).narrow(1, 1, 2).sum(1)


class TiedLM(nn.Module):
    """A tiny language model with the output layer's weight tied to the embedding's."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(36)
        self.embed = nn.Embedding(5, 4)
        self.mix = nn.Linear(4, 4)
        self.out = nn.Linear(4, 5, bias=False)
        self.out.weight = self.embed.weight

    def forward(self, ids):
        h = torch.tanh(self.mix(self.embed(ids)))
        return self.out(h).view(-1, 5)


class GroupInstance(nn.Module):
    """GroupNorm and InstanceNorm (affine) in a small conv net."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(37)
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.gn = nn.GroupNorm(2, 4)
        self.inorm = nn.InstanceNorm2d(4, affine=True)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        h = F.silu(self.gn(self.conv(x)))
        h = self.inorm(h)
        return self.fc(h.mean(dim=(2, 3)))


def _rng(seed):
    return torch.Generator().manual_seed(seed)


def _uniform(seed, *shape):
    return (torch.rand(*shape, generator=_rng(seed), dtype=torch.float64) * 2 - 1).tolist()


CASES = {
    "EncoderLayer": (_uniform(1, 1, 3, 4), [1], "cross_entropy"),
    "CausalMHA": (_uniform(2, 2, 3, 4), [1, 0], "cross_entropy"),
    "GPTBlock": (_uniform(3, 1, 3, 4), [0], "cross_entropy"),
    "SwiGLU": (_uniform(4, 2, 3, 4), [[0.5], [-0.5]], "mse"),
    "PaddedEmbedding": ([[0, 3, 4, 0], [2, 5, 0, 0]], [1, 0], "cross_entropy"),
    "MiniResNet": (_uniform(5, 2, 1, 4, 4), [2, 0], "cross_entropy"),
    "DepthwiseSeparable": (_uniform(6, 2, 2, 4, 4), [1, 0], "cross_entropy"),
    "ConvAutoencoder": ([[[[0.1 * (i + j) for j in range(4)] for i in range(4)]]], [[[[0.1 * (i + j) for j in range(4)]
                                                                                     for i in range(4)]]], "mse"),
    "UpsampleConv": (_uniform(7, 2, 1, 3, 3), [[0.5], [-0.5]], "mse"),
    "BiLSTM": (_uniform(8, 2, 3, 2), [1, 0], "cross_entropy"),
    "GRUZeroState": (_uniform(9, 2, 4, 2), [[0.3], [-0.2]], "mse"),
    "RNNCellLoop": (_uniform(10, 2, 3, 2), [0, 1], "cross_entropy"),
    "FocalLoss": (_uniform(11, 4, 3), [1.0, 0.0, 1.0, 0.0], None),
    "FiveLosses": (_uniform(12, 3, 3), [0, 2, 1], None),
    "ShapeMix": (_uniform(13, 2, 4), [0.5, -0.5], "mse"),
    "TiedLM": ([[1, 2, 3], [4, 0, 1]], [2, 3, 4, 0, 1, 2], "cross_entropy"),
    "GroupInstance": (_uniform(14, 2, 1, 3, 3), [0, 1], "cross_entropy"),
}
