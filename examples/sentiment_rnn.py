"""A many-to-one recurrent classifier, the RNN chapter's first model: an nn.RNN reads 4 steps of 2 features,
its last output goes through a Linear layer and a sigmoid (binary cross-entropy). Seeded weights.

    derive report --torch examples/sentiment_rnn.py:SentimentRNN --x examples/sentiment_x.json \\
                  --y "1;0" --loss bce
"""

import torch
from torch import nn


class SentimentRNN(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(11)
        self.rnn = nn.RNN(input_size=2, hidden_size=3, batch_first=True)
        self.fc = nn.Linear(3, 1)

    def forward(self, x):
        out, h_n = self.rnn(x)  # out: batch × time × hidden
        return torch.sigmoid(self.fc(out[:, -1]))  # the last step's output
