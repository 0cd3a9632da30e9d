"""The op registry: activations and losses, one class each (see `activations` and `losses`)."""

from derive.ops.activations import ACTIVATIONS, Activation, Step, activation
from derive.ops.softmax import LogSumExp, Softmax
from derive.ops import more_activations  # noqa: F401 - registers ELU, SiLU, Hardtanh
from derive.ops.losses import LOSSES, REDUCTIONS, Loss, loss

__all__ = ["ACTIVATIONS", "LOSSES", "REDUCTIONS", "Activation", "LogSumExp", "Loss", "Softmax", "Step", "activation", "loss"]
