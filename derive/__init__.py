"""derive: exact symbolic gradients of neural networks, with reports and numeric verification.

>>> import derive
>>> net = derive.examples.seed()
>>> d = derive.derive(net)
>>> round(d.gradient("b3"), 9)
0.415433183

``import derive`` never imports torch.
"""

from derive.startup import interruptible_start

with interruptible_start():  # Ctrl-C while the command imports: one line, status 130
    from derive.code import code
    from derive.derivation import Derivation, derive, gradients
    from derive.hessian import Hessian, hessian, hessian_vector_product
    from derive.errors import DeriveError, ShapeError, SpecError, UnknownOpError, ValueDomainError
    from derive.forms import grads_document
    from derive.network import Linear, Network, Parameter
    from derive.sources import examples
    from derive.sources.spec import load_spec, loads_spec
    from derive.sources.torch_module import from_torch
    from derive.report import report
    from derive.training import History, sgd, train
    from derive.training.optimizers import OPTIMIZERS, Optimizer

__version__ = "0.1.0"

__all__ = [
    "Derivation",
    "DeriveError",
    "Hessian",
    "History",
    "OPTIMIZERS",
    "Optimizer",
    "Linear",
    "Network",
    "Parameter",
    "ShapeError",
    "SpecError",
    "UnknownOpError",
    "ValueDomainError",
    "code",
    "derive",
    "examples",
    "from_torch",
    "gradients",
    "hessian",
    "hessian_vector_product",
    "grads_document",
    "load_spec",
    "loads_spec",
    "report",
    "sgd",
    "train",
]
