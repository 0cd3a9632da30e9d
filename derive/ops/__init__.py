"""The op registry: activations, losses and tensor ops, one class each (see `activations`, `losses`, `tensor`)."""

from derive.ops.activations import ACTIVATIONS, Activation, Step, activation
from derive.ops.softmax import LogSumExp, Softmax
from derive.ops import more_activations  # noqa: F401 - registers ELU, SiLU, Hardtanh, GELU (tanh)
from derive.ops.losses import LOSSES, REDUCTIONS, Loss, loss
from derive.ops.tensor import ATEN, OPS, TensorOp
from derive.ops import (  # noqa: F401 - register the tensor ops
    attention, conv, elementwise, linalg, norm, pool, recurrent, reduce, shape, upsample,
)

__all__ = [
    "ACTIVATIONS", "ATEN", "LOSSES", "OPS", "REDUCTIONS", "Activation", "LogSumExp", "Loss", "Softmax", "Step", "TensorOp",
    "activation", "loss",
]
