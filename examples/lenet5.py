"""LeNet-5 (LeCun et al., 1998) as it is usually written today: 61,706 parameters on a 1×32×32 image.

Two 5×5 convolutions (6 and 16 maps), each followed by tanh and 2×2 max pooling, then dense layers
400 → 120 → 84 → 10 with tanh, and cross-entropy over the 10 classes. The weights are torch's default
initialisation from a fixed seed, so every run reads the same network.

    derive grads --torch examples/lenet5.py:LeNet5 --x x.npy --y y.npy --loss cross_entropy \\
        --format json --max-params 70000 > lenet5.json

(``x.npy``: N×1×32×32 floats; ``y.npy``: N class indices.)
"""

import torch
import torch.nn.functional as F
from torch import nn


class LeNet5(nn.Module):
    def __init__(self, size: int = 32):
        super().__init__()
        torch.manual_seed(5)
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        side = ((size - 4) // 2 - 4) // 2  # 5 for a 32×32 image
        self.fc1 = nn.Linear(16 * side * side, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(torch.tanh(self.conv1(x)), 2)
        x = F.max_pool2d(torch.tanh(self.conv2(x)), 2)
        x = torch.tanh(self.fc1(x.flatten(1)))
        x = torch.tanh(self.fc2(x))
        return self.fc3(x)


class LeNet5Small(LeNet5):
    """The same layers on a 1×16×16 image (15,626 parameters): for the tests."""

    def __init__(self):
        super().__init__(16)
