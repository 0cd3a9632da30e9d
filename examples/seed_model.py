"""The study note's model, as the note writes it: float32 tensors, weights set through ``.data``.

Use: ``derive grads --torch examples/seed_model.py:CustomModel --x 1,1 --y 0 --loss bce``.
"""

import torch
import torch.nn as nn


class CustomModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer1 = nn.Sequential(
            nn.Linear(2, 2),
            nn.Sigmoid()
        )
        self.layer2 = nn.Sequential(
            nn.Linear(2, 1),
            nn.Sigmoid()
        )
        self.layer1[0].weight.data = torch.nn.Parameter(
            torch.Tensor([[0.4352, 0.3545],
                          [0.1951, 0.4835]])
        )
        self.layer1[0].bias.data = torch.nn.Parameter(torch.Tensor([-0.1419, 0.0439]))
        self.layer2[0].weight.data = torch.nn.Parameter(torch.Tensor([[-0.1725, 0.1129]]))
        self.layer2[0].bias.data = torch.nn.Parameter(torch.Tensor([-0.3043]))

    def forward(self, x):
        x = self.layer1(x)
        x = self.layer2(x)
        return x
