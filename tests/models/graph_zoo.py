"""Graph models written the way tutorials write them: each a torch module with its data and loss.

Every class seeds its own initialisation, so ``--torch graph_zoo.py:CLASS`` reads the same weights as the
tests. ``CASES`` maps a class name to (x, y, loss): the data each is checked on.
"""

import torch
import torch.nn.functional as F
from torch import nn

from tests.models import example


class FromScratch(nn.Module):
    """The from-scratch style: bare parameters, ``x @ W + b``, dropout off in eval, log_softmax + nll."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.W1 = nn.Parameter(torch.randn(3, 4) * 0.5)
        self.b1 = nn.Parameter(torch.zeros(4))
        self.W2 = nn.Parameter(torch.randn(4, 3) * 0.5)
        self.b2 = nn.Parameter(torch.full((3,), 0.1))
        self.eval()

    def forward(self, x):
        h = torch.sigmoid(x @ self.W1 + self.b1)
        h = F.dropout(h, 0.5, self.training)
        return F.log_softmax(h @ self.W2 + self.b2, dim=1)


ResidualBlock = example("residual_block").ResidualBlock  # a residual block: x + f(x), ReLU inside, sigmoid out


class NormSiLU(nn.Module):
    """LayerNorm then SiLU, flattened with ``view(x.size(0), -1)`` and squeezed to one output per sample."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.fc = nn.Linear(3, 4)
        self.norm = nn.LayerNorm(4)
        self.head = nn.Linear(4, 1)

    def forward(self, x):
        h = F.silu(self.norm(self.fc(x)))
        h = h.view(h.size(0), -1)
        return self.head(h).squeeze(1)


class BatchNormTrain(nn.Module):
    """BatchNorm1d in training mode: the batch statistics are part of the function."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(4)
        self.fc = nn.Linear(2, 3)
        self.bn = nn.BatchNorm1d(3)
        self.out = nn.Linear(3, 2)

    def forward(self, x):
        return self.out(torch.tanh(self.bn(self.fc(x))))


class TwoBranches(nn.Module):
    """Two branches concatenated, with a product and a division."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(5)
        self.a = nn.Linear(2, 2)
        self.b = nn.Linear(2, 2)
        self.out = nn.Linear(4, 1)

    def forward(self, x):
        p, q = torch.tanh(self.a(x)), torch.sigmoid(self.b(x))
        return self.out(torch.cat([p * q, p / (1 + q)], dim=1))


class AttentionHead(nn.Module):
    """One attention head over 3 tokens: softmax(Q Kᵀ/√d) V, mean-pooled, then a classifier."""

    def __init__(self, d=2):
        super().__init__()
        torch.manual_seed(6)
        self.q = nn.Linear(d, d, bias=False)
        self.k = nn.Linear(d, d, bias=False)
        self.v = nn.Linear(d, d, bias=False)
        self.out = nn.Linear(d, 2)
        self.scale = d**0.5

    def forward(self, x):
        q, k, v = self.q(x), self.k(x), self.v(x)
        weights = torch.softmax(q @ k.transpose(1, 2) / self.scale, dim=-1)
        return self.out((weights @ v).mean(dim=1))


class Everything(nn.Module):
    """The rest of the op set: shared weights used twice, broadcasting, clamp, abs, exp, log, sqrt, pow,
    permute, stack, slicing, logsumexp, sum, ELU and Hardtanh, BatchNorm1d in eval mode."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(7)
        self.shared = nn.Linear(3, 3)
        self.scale = nn.Parameter(torch.tensor([0.5, -1.0, 2.0]))
        self.bn = nn.BatchNorm1d(3)
        self.bn.running_mean.copy_(torch.tensor([0.1, -0.2, 0.3]))
        self.bn.running_var.copy_(torch.tensor([1.5, 0.5, 2.0]))
        self.bn.eval()

    def forward(self, x):
        h = self.shared(F.elu(self.shared(x)))  # the same Linear twice
        h = h * self.scale + 1.0  # broadcasting with a parameter and a constant
        h = torch.clamp(h, min=-1.5, max=2.5) + torch.abs(h) * 0.1
        h = torch.exp(-h**2) + torch.log(1 + h**2) + torch.sqrt(h**2 + 1)
        h = self.bn(F.hardtanh(h - 1.0))
        stacked = torch.stack([h, h.permute(1, 0).t() * 2], dim=0)
        return torch.logsumexp(stacked[:, :, :2], dim=0).sum(dim=1, keepdim=True) - stacked[0, :, 2:].pow(2)


class TokenMean(nn.Module):
    """An embedding of token ids, averaged, then a linear head (nn.Flatten on a one-token view)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(8)
        self.embed = nn.Embedding(5, 3)
        self.flatten = nn.Flatten()
        self.head = nn.Linear(3, 1)

    def forward(self, ids):
        return self.head(self.flatten(self.embed(ids).mean(dim=1, keepdim=True)))


class Functional(nn.Module):
    """The functional style: F.linear, torch.addmm, torch.mm, .T, unsqueeze/squeeze, flatten(1), integer
    indexing, negation, softplus and F.dropout with training=False."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(10)
        self.W = nn.Parameter(torch.randn(3, 2) * 0.5)
        self.b = nn.Parameter(torch.randn(3) * 0.1)
        self.V = nn.Parameter(torch.randn(3, 2) * 0.5)
        self.c = nn.Parameter(torch.zeros(2))

    def forward(self, x):
        h = F.softplus(F.linear(x, self.W, self.b))
        h = F.dropout(h, 0.3, training=False)
        g = torch.addmm(self.c, h, self.V) - torch.mm(h, self.V).neg() * 0.5
        first = g[:, 0].unsqueeze(1)  # integer indexing, then back to a column
        both = torch.flatten(torch.stack([g, g * first], dim=1), 1)
        return (both @ both.T).sum(dim=1, keepdim=True).squeeze(1)


CASES = {
    "FromScratch": ([[1.0, -0.5, 0.25], [0.5, 1.5, -1.0]], [2, 0], "nll"),
    "ResidualBlock": ([[1.0, 1.0], [0.5, -1.0]], [[0.0], [1.0]], "bce"),
    "NormSiLU": ([[0.2, -0.4, 1.0], [1.0, 0.5, -0.5], [-1.0, 0.0, 0.3]], [0.5, -0.5, 1.0], "mse"),
    "BatchNormTrain": ([[1.0, 2.0], [0.0, -1.0], [0.5, 0.5], [-1.5, 1.0]], [1, 0, 1, 1], "cross_entropy"),
    "TwoBranches": ([[0.3, -0.7], [1.2, 0.4]], [[1.0], [0.0]], "bce_with_logits"),
    "AttentionHead": ([[[1.0, 0.0], [0.5, -1.0], [-0.5, 2.0]]], [1], "cross_entropy"),
    "Everything": ([[0.5, -1.0, 1.5], [1.0, 0.2, -0.3]], [[0.1], [-0.4]], "half_sse"),
    "TokenMean": ([[0, 3, 4], [2, 2, 1]], [[0.5], [-1.0]], "mse"),
    "Functional": ([[0.5, -1.0], [1.0, 0.25], [-0.5, 2.0]], [0.5, 1.0, -1.0], "l1"),
}


class OwnLoss(nn.Module):
    """forward(x, y) returns the loss itself: squared error plus an L2 penalty on the weights."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(9)
        self.fc = nn.Linear(2, 2)

    def forward(self, x, y):
        p = torch.tanh(self.fc(x))
        return ((p - y) ** 2).mean() + 0.01 * (self.fc.weight**2).sum()


OWN_LOSS_DATA = ([[0.5, -1.0], [1.5, 0.25]], [[0.0, 1.0], [1.0, -0.5]])
