"""Small convolutional networks, each a torch module with its data and loss (as `graph_zoo`).

Every class seeds its own initialisation, so ``--torch cnn_zoo.py:CLASS`` reads the same weights as the
tests. ``CASES`` maps a class name to (x, y, loss): the data each is checked on (x of any rank, from a seed).
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tests.models import example


def _data(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape).round(3).tolist()


TinyCNN = example("tiny_cnn").TinyCNN  # 1×4×4 image, two 2×2 kernels, ReLU, max pooling, dense, CE


class StridedTanh(nn.Module):
    """A 2-channel 5×5 input, a 3×3 convolution with stride 2 and padding 1, tanh, 2×2 average pooling
    with padding (the padded zeros counted in each mean, torch's default)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(11)
        self.conv = nn.Conv2d(2, 3, 3, stride=2, padding=1)
        self.pool = nn.AvgPool2d(2, stride=1, padding=1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(48, 2)

    def forward(self, x):
        return self.fc(self.flatten(self.pool(torch.tanh(self.conv(x)))))


class Signal1d(nn.Module):
    """A 1-D signal: Conv1d, ReLU, adaptive average pooling to 2 (overlapping windows), BCE with logits."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(12)
        self.conv = nn.Conv1d(1, 3, 3)
        self.pool = nn.AdaptiveAvgPool1d(2)
        self.fc = nn.Linear(6, 1)

    def forward(self, x):
        return self.fc(self.pool(F.relu(self.conv(x))).flatten(1))


class DilatedGroups(nn.Module):
    """Conv2d with dilation 2 and two groups, then one without bias; a dense head, MSE."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(13)
        self.conv = nn.Conv2d(4, 4, 3, dilation=2, groups=2)
        self.mix = nn.Conv2d(4, 2, (1, 2), bias=False)
        self.fc = nn.Linear(12, 2)

    def forward(self, x):
        return self.fc(self.mix(torch.sigmoid(self.conv(x))).flatten(1))


class SamePadding(nn.Module):
    """padding="same": an even kernel (uneven padding, the extra after), a dilated one, a 1-D one."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(14)
        self.even = nn.Conv2d(1, 2, (2, 3), padding="same")
        self.dilated = nn.Conv2d(2, 1, 3, padding="same", dilation=(1, 2))
        self.line = nn.Conv1d(4, 1, 4, padding="same")
        self.valid = nn.Conv1d(1, 1, 2, padding="valid")

    def forward(self, x):
        h = torch.tanh(self.dilated(torch.tanh(self.even(x))))  # N × 1 × 4 × 5
        return self.valid(self.line(h[:, 0])).flatten(1)  # rows as channels: N × 1 × 4


class StridedConv1d(nn.Module):
    """Conv1d with stride 2 (the last input sample unused), no bias; a second with stride 3 and padding."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(15)
        self.conv = nn.Conv1d(2, 2, 3, stride=2, bias=False)
        self.second = nn.Conv1d(2, 1, 2, stride=3, padding=2)

    def forward(self, x):
        return self.second(torch.tanh(self.conv(x))).flatten(1)


class MaxPoolTies(nn.Module):
    """Ties in max-pooling windows: a per-position shift (zeros) keeps the data's equal values equal.

    ∂L/∂shift is δ routed through the pooling: torch sends a tied window's δ to its first maximum (in
    row-major order), so a wrong tie rule moves gradient between positions of ``shift``.
    """

    def __init__(self):
        super().__init__()
        self.shift = nn.Parameter(torch.zeros(1, 1, 4, 4))
        self.line = nn.Parameter(torch.zeros(1, 1, 4))
        torch.manual_seed(16)
        self.fc = nn.Linear(15, 1)

    def forward(self, x):
        image = F.max_pool2d(x + self.shift, 2, stride=1)  # overlapping 2 × 2 windows: N × 1 × 3 × 3
        row = x[:, :, 0] + self.line  # the first row, N × 1 × 4
        padded = F.max_pool1d(row, 3, stride=1, padding=1)  # windows over the padding: N × 1 × 4
        dilated = F.max_pool1d(row, 2, stride=1, dilation=2)  # taps (0, 2) and (1, 3): N × 1 × 2
        return self.fc(torch.cat([image.flatten(1), padded.flatten(1), dilated.flatten(1)], dim=1))


class BatchNorm2dTrain(nn.Module):
    """Conv2d, BatchNorm2d in training mode (statistics over N, H, W), ReLU, global average pooling."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(17)
        self.conv = nn.Conv2d(2, 3, 2)
        self.bn = nn.BatchNorm2d(3)
        with torch.no_grad():
            self.bn.weight.uniform_(0.5, 1.5)
            self.bn.bias.uniform_(-0.5, 0.5)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(3, 2)

    def forward(self, x):
        return self.fc(self.pool(torch.relu(self.bn(self.conv(x)))).flatten(1))


class BatchNorm2dEval(BatchNorm2dTrain):
    """The same in eval mode: running statistics (set to other values than 0 and 1) are constants."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(18)
        self.bn.running_mean.uniform_(-0.5, 0.5)
        self.bn.running_var.uniform_(0.5, 2.0)
        self.eval()


class Functional(nn.Module):
    """The ``F.`` forms with bare parameters: conv2d, max_pool2d, avg_pool2d, adaptive pooling, conv1d."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(19)
        self.kernel = nn.Parameter(torch.randn(2, 1, 3, 3) * 0.5)
        self.bias = nn.Parameter(torch.randn(2) * 0.1)
        self.line = nn.Parameter(torch.randn(2, 1, 2) * 0.5)

    def forward(self, x):
        h = torch.tanh(F.conv2d(x, self.kernel, self.bias, stride=1, padding=1))  # N × 2 × 5 × 5
        a = F.max_pool2d(h, kernel_size=(2, 3), stride=(2, 1), padding=(1, 1))  # N × 2 × 3 × 5
        b = F.avg_pool2d(h, 3, 2, 1, count_include_pad=False)  # N × 2 × 3 × 3
        c = F.adaptive_avg_pool2d(h, (2, None))  # N × 2 × 2 × 5
        d = F.conv1d(a.mean(2), self.line, groups=2)  # N × 2 × 4
        e = torch.conv2d(b, self.kernel[:, :, :2, :2].sum(1, keepdim=True).transpose(0, 1))  # N × 1 × 2 × 2
        f = F.avg_pool1d(c.flatten(2), 4, 3) + F.adaptive_avg_pool1d(d, 3).sum(1, keepdim=True)
        return torch.cat([f.flatten(1), e.flatten(1)], dim=1).sum(1)


_TIES = np.array([[1.0, 3.0, 3.0, 0.0], [3.0, 2.0, 1.0, 1.0], [0.0, 0.0, 5.0, 5.0], [0.0, 0.0, 5.0, 5.0]])

CASES = {
    "TinyCNN": (_data((2, 1, 4, 4), 0), [2, 0], "cross_entropy"),
    "StridedTanh": (_data((2, 2, 5, 5), 1), _data((2, 2), 2), "mse"),
    "Signal1d": (_data((3, 1, 7), 3), [[1.0], [0.0], [1.0]], "bce_with_logits"),
    "DilatedGroups": (_data((2, 4, 7, 7), 4), _data((2, 2), 5), "mse"),
    "SamePadding": (_data((2, 1, 4, 5), 6), _data((2, 4), 7), "mse"),
    "StridedConv1d": (_data((2, 2, 8), 8), _data((2, 2), 9), "mse"),
    "MaxPoolTies": (np.stack([_TIES, _TIES[::-1]])[:, None].tolist(), [[0.5], [-1.0]], "mse"),
    "BatchNorm2dTrain": (_data((3, 2, 3, 3), 10), [1, 0, 1], "cross_entropy"),
    "BatchNorm2dEval": (_data((3, 2, 3, 3), 11), [0, 1, 1], "cross_entropy"),
    "Functional": (_data((2, 1, 5, 5), 12), [0.5, -1.0], "mse"),
}
