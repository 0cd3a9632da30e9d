"""A ``torch.optim`` optimizer read as derive's: its class and the options of its one parameter group.

>>> import torch, derive
>>> model = torch.nn.Linear(2, 1)
>>> read_optimizer(torch.optim.Adam(model.parameters(), lr=0.1, betas=(0.8, 0.9)))
Adam(lr=0.1, betas=(0.8, 0.9), eps=1e-08, weight_decay=0.0, amsgrad=False, maximize=False)
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from derive.errors import DeriveError
from derive.training.optimizers import OPTIMIZERS, Optimizer

#: torch's class names and derive's optimizers
_BY_TORCH = {cls.torch_name: cls for cls in OPTIMIZERS.values()}
#: group options that change how torch computes, not what (or that are not numbers of the update)
_IGNORED = {"params", "foreach", "fused", "capturable", "differentiable", "initial_lr", "decoupled_weight_decay"}


def is_torch_optimizer(value: Any) -> bool:
    """Whether ``value`` looks like a ``torch.optim.Optimizer`` (without importing torch)."""
    return hasattr(value, "param_groups") and hasattr(value, "state") and hasattr(value, "step")


def read_optimizer(opt: Any) -> Optimizer:
    """derive's optimizer with the torch optimizer's class and options (one parameter group, no steps yet)."""
    name = type(opt).__name__
    if name not in _BY_TORCH:
        raise DeriveError(f"torch.optim.{name} is not supported; supported: {', '.join(_BY_TORCH)}")
    if len(opt.param_groups) != 1:
        raise DeriveError(f"{name} has {len(opt.param_groups)} parameter groups; derive reads one")
    if any(_stepped(state) for state in opt.state.values()):
        raise DeriveError(f"{name} has taken steps already (it has state): read it before its first step")
    group = opt.param_groups[0]
    cls = _BY_TORCH[name]
    if name == "Adam" and group.get("decoupled_weight_decay"):
        cls = _BY_TORCH["AdamW"]
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(group) - known - _IGNORED)
    if unknown:
        raise DeriveError(f"{name}: the option {unknown[0]!r} is not supported")
    options = {key: group[key] for key in known if key in group}
    if "betas" in options:
        options["betas"] = tuple(float(b) for b in options["betas"])
    return cls(**{key: float(v) if hasattr(v, "item") else v for key, v in options.items()})


def _stepped(state: dict) -> bool:
    """Whether a parameter's state comes from a step (Adagrad creates its state, at step 0, up front)."""
    return bool(state) and ("step" not in state or float(state["step"]) > 0)


def optimized_keys(opt: Any, module: Any) -> set[str]:
    """The keys of ``module.named_parameters()`` that ``opt`` updates."""
    ids = {id(p) for group in opt.param_groups for p in group["params"]}
    return {key for key, p in module.named_parameters() if id(p) in ids}
