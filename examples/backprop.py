"""A hand-written backward pass, as a student would write it, for `derive check` and `verify.check_backprop`.

A 2-3-1 network of sigmoids with binary cross-entropy (mean over the batch). derive calls
``backprop(x, y, W1, b1, W2, b2)`` with NumPy arrays (x: batch × 2, y: batch × 1, weights out × in as torch
stores them, biases vectors) and expects ``dW1, db1, dW2, db2`` back, in the same shapes:

    derive check examples/backprop.py:backprop --sizes 2,3,1 --activations sigmoid,sigmoid --loss bce
"""

import numpy as np


def backprop(x, y, W1, b1, W2, b2):
    a1 = 1 / (1 + np.exp(-(x @ W1.T + b1)))
    a2 = 1 / (1 + np.exp(-(a1 @ W2.T + b2)))
    delta2 = (a2 - y) / len(x)  # BCE after a sigmoid: δ = ŷ − y, mean over the batch
    delta1 = (delta2 @ W2) * a1 * (1 - a1)
    return delta1.T @ x, delta1.sum(0), delta2.T @ a1, delta2.sum(0)
