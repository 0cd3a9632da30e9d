"""Recurrent models as courses write them, each seeded in ``__init__``; ``CASES``: (x, y, loss) to check on."""

import torch
from torch import nn

from tests.models import example


SentimentRNN = example("sentiment_rnn").SentimentRNN  # many-to-one nn.RNN over 4 steps, sigmoid output (BCE)


class CellLoop(nn.Module):
    """An RNNCell unrolled over 3 steps by a Python loop, the prediction summed over steps."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(12)
        self.cell = nn.RNNCell(2, 2)
        self.out = nn.Linear(2, 1)

    def forward(self, x):
        h = x.new_zeros(x.size(0), 2)  # torch.zeros(x.size(0), 2) cannot be traced by torch.fx
        total = 0
        for t in range(3):
            h = self.cell(x[:, t], h)
            total = total + self.out(h)
        return total


class LSTMClassifier(nn.Module):
    """An nn.LSTM (time-major) whose final hidden state is classified (cross-entropy)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(13)
        self.lstm = nn.LSTM(input_size=2, hidden_size=2)
        self.fc = nn.Linear(2, 3)

    def forward(self, x):
        out, (h_n, c_n) = self.lstm(x)
        return self.fc(h_n[-1])


class GRURegressor(nn.Module):
    """An nn.GRU with two layers, many-to-many: a value at every step (MSE over all steps)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(14)
        self.gru = nn.GRU(input_size=1, hidden_size=2, num_layers=2, batch_first=True)
        self.fc = nn.Linear(2, 1)

    def forward(self, x):
        out, _ = self.gru(x)
        return self.fc(out).squeeze(-1)


class ReluRNNWithState(nn.Module):
    """A 2-layer ReLU nn.RNN, time-major, with an initial state given (a parameter); the final hidden state
    of the top layer is the output (many-to-one through h_n)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(15)
        self.rnn = nn.RNN(input_size=2, hidden_size=2, num_layers=2, nonlinearity="relu")
        self.h0 = nn.Parameter(torch.randn(2, 1, 2) * 0.3)

    def forward(self, x):
        out, h_n = self.rnn(x, self.h0.expand(2, x.size(1), 2).contiguous())
        return h_n[-1]


class GatedCells(nn.Module):
    """An LSTMCell and a GRUCell side by side in a Python loop over 2 steps (states carried by hand)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(16)
        self.lstm = nn.LSTMCell(2, 2)
        self.gru = nn.GRUCell(2, 2)
        self.out = nn.Linear(4, 1)

    def forward(self, x):
        h = c = g = x.new_zeros(x.size(0), 2)
        for t in range(2):
            h, c = self.lstm(x[:, t], (h, c))
            g = self.gru(x[:, t], g)
        return self.out(torch.cat([h, g], dim=1))


CASES = {
    "SentimentRNN": ([[[0.5, -1.0], [1.0, 0.2], [-0.3, 0.8], [0.1, 0.1]],
                      [[1.0, 1.0], [-0.5, 0.5], [0.0, -1.0], [0.7, 0.3]]], [[1.0], [0.0]], "bce"),
    "CellLoop": ([[[0.5, -1.0], [1.0, 0.2], [-0.3, 0.8]], [[0.2, 0.4], [-1.0, 0.5], [0.3, 0.3]]], [[0.5], [-1.0]], "mse"),
    "LSTMClassifier": ([[[0.5, -1.0], [1.0, 0.5]], [[1.0, 0.2], [-0.3, 0.0]], [[-0.3, 0.8], [0.2, 0.9]]], [2, 0], "cross_entropy"),
    "ReluRNNWithState": ([[[0.5, -1.0]], [[1.0, 0.2]], [[-0.3, 0.8]]], [[0.2, -0.1]], "mse"),
    "GatedCells": ([[[0.5, -1.0], [1.0, 0.5]], [[1.0, 0.2], [-0.3, 0.0]]], [[1.0], [0.0]], "bce_with_logits"),
    "GRURegressor": ([[[0.5], [-1.0], [0.25]], [[1.0], [0.5], [-0.5]]], [[0.1, 0.2, 0.3], [-0.1, 0.0, 0.5]], "mse"),
}
