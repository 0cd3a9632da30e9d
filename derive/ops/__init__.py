"""The op registry: activations, losses and tensor ops, one class each (see `activations`, `losses`, `tensor`)."""

from derive.ops.activations import ACTIVATIONS, Activation, Step, activation
from derive.ops.softmax import LogSumExp, Softmax
from derive.ops import more_activations  # noqa: F401 - registers ELU, SiLU, Hardtanh
from derive.ops.losses import LOSSES, REDUCTIONS, Loss, loss
from derive.ops.tensor import OPS, TensorOp
from derive.ops import conv, elementwise, linalg, pool, reduce, shape  # noqa: F401 - register the tensor ops

__all__ = [
    "ACTIVATIONS", "LOSSES", "OPS", "REDUCTIONS", "Activation", "LogSumExp", "Loss", "Softmax", "Step", "TensorOp",
    "activation", "loss",
]
