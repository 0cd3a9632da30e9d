"""verify: check derive's gradients against torch autograd (torch needed; derive never imports verify).

>>> import derive, verify
>>> verify.check(derive.examples.seed()).ok
True
"""

from verify.compare import CheckReport, Row, check
from verify.reference import autograd_gradients, torch_model

__all__ = ["CheckReport", "Row", "autograd_gradients", "check", "torch_model"]
