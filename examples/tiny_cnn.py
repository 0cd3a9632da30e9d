"""The CNN chapter's first network: a 1×4×4 image, two 2×2 kernels, ReLU, 2×2 max pooling (stride 1), a dense
layer and cross-entropy. Seeded weights.

    derive report --torch examples/tiny_cnn.py:TinyCNN --x examples/tiny_cnn_x.json --y 2 --loss cross_entropy
"""

import torch
from torch import nn


class TinyCNN(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(10)
        self.conv = nn.Conv2d(1, 2, 2)          # two 2×2 kernels
        self.pool = nn.MaxPool2d(2, stride=1)
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        return self.fc(self.pool(torch.relu(self.conv(x))).flatten(1))
