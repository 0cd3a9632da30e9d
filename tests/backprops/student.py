"""Hand-written backward passes of a 2-3-1 sigmoid network with BCE (mean): one right, two with the classic
mistakes. Each takes x (batch × 2), y (batch × 1), W1 (3 × 2), b1 (3,), W2 (1 × 3), b2 (1,) and returns
dW1, db1, dW2, db2."""

import numpy as np


def _forward(x, W1, b1, W2, b2):
    a1 = 1 / (1 + np.exp(-(x @ W1.T + b1)))
    a2 = 1 / (1 + np.exp(-(a1 @ W2.T + b2)))
    return a1, a2


def correct(x, y, W1, b1, W2, b2):
    a1, a2 = _forward(x, W1, b1, W2, b2)
    n = x.shape[0]
    delta2 = (a2 - y) / n  # BCE after a sigmoid: δ = ŷ − y, mean over the batch
    delta1 = (delta2 @ W2) * a1 * (1 - a1)
    return delta1.T @ x, delta1.sum(0), delta2.T @ a1, delta2.sum(0)


def wrong_sigmoid_derivative(x, y, W1, b1, W2, b2):
    a1, a2 = _forward(x, W1, b1, W2, b2)
    n = x.shape[0]
    delta2 = (a2 - y) / n
    delta1 = (delta2 @ W2) * a1  # σ' taken as a instead of a(1 − a)
    return delta1.T @ x, delta1.sum(0), delta2.T @ a1, delta2.sum(0)


def forgot_the_mean_in_the_bias(x, y, W1, b1, W2, b2):
    a1, a2 = _forward(x, W1, b1, W2, b2)
    n = x.shape[0]
    delta2 = (a2 - y) / n
    delta1 = (delta2 @ W2) * a1 * (1 - a1)
    return delta1.T @ x, delta1.sum(0), delta2.T @ a1, (a2 - y).sum(0)  # no 1/n in the output bias


def wrong_shape(x, y, W1, b1, W2, b2):
    dW1, db1, dW2, db2 = correct(x, y, W1, b1, W2, b2)
    return dW1.T, db1, dW2, db2
