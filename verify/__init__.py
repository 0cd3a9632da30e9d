"""verify: check derive's gradients against torch autograd and finite differences (torch needed).

derive never imports verify; verify imports derive, and torch where torch is the point.

>>> import derive, verify
>>> verify.check(derive.examples.seed()).ok
True
"""

from verify.backprop_check import BackpropReport, assert_backprop, check_backprop
from verify.compare import CheckReport, Row, check, reproducer, spec_json
from verify.compile import arguments, compile, compile_expressions, tensor_shapes  # noqa: A004
from verify.finite_diff import FiniteDifferences, finite_differences
from verify.reference import AutogradResult, autograd_gradients, torch_model
from verify.tolerances import POLICY, Tolerance, policy

__all__ = [
    "POLICY",
    "BackpropReport",
    "assert_backprop",
    "check_backprop",
    "AutogradResult",
    "CheckReport",
    "FiniteDifferences",
    "Row",
    "Tolerance",
    "arguments",
    "autograd_gradients",
    "check",
    "compile",
    "compile_expressions",
    "finite_differences",
    "policy",
    "reproducer",
    "spec_json",
    "tensor_shapes",
    "torch_model",
]
