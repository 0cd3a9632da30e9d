"""A residual block, as a course writes it after the MLP chapter: h = x + W₂ ReLU(W₁ x + b₁) + b₂, then a
sigmoid output. Its weights are seeded, so every run reads the same numbers.

    derive report --torch examples/residual_block.py:ResidualBlock --x "1,1;0.5,-1" --y "0;1" --loss bce
"""

import torch
import torch.nn.functional as F
from torch import nn


class ResidualBlock(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(2)
        self.fc1 = nn.Linear(2, 2)
        self.fc2 = nn.Linear(2, 2)
        self.out = nn.Linear(2, 1)

    def forward(self, x):
        h = x + self.fc2(F.relu(self.fc1(x)))  # the skip connection: x itself is added back
        return torch.sigmoid(self.out(h))
