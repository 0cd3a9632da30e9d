"""Training with the derived gradients: optimizers with torch.optim's equations, the history of the steps.

``derive.train(net, steps, optimizer="adam", lr=0.1, betas=(0.9, 0.999))`` runs the steps and returns the
`History`: the derivation before every step, the optimizer's state after every step, and the network after
the last. ``derive.sgd(net, steps)`` is plain gradient descent, W(t+1) = W(t) − α ∂L/∂W(t).

>>> import derive
>>> history = sgd(derive.examples.seed(), steps=3)
>>> [round(loss, 4) for loss in history.losses]
[0.5369, 0.2804, 0.1836]
>>> [round(loss, 4) for loss in train(derive.examples.seed(), 3, optimizer="adam", lr=0.1).losses]
[0.5369, 0.44, 0.3589]
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

from derive.derivation import Derivation
from derive.errors import DeriveError
from derive.model.graph import Model
from derive.network import Network
from derive.training.optimizers import OPTIMIZERS, SGD, Adagrad, Adam, AdamW, Optimizer, RMSprop, optimizer

State = Mapping[str, Mapping[str, float]]


@dataclass(frozen=True)
class History:
    """The derivation at every step (before its update) and the network after the last update.

    ``optimizer``: what made the steps; ``states[t]``: every free parameter's optimizer state after step t+1
    (momentum buffers, moments, sums), with ``"step"``; ``updates[t]``: the quantities of step t+1 per
    parameter (the gradient after weight decay, m, v, their bias corrections, the new value …).
    """

    steps: tuple[Derivation, ...]
    final: Network | Model
    optimizer: Optimizer = field(default_factory=SGD)
    states: tuple[State, ...] = ()
    updates: tuple[Mapping[str, Mapping[str, float]], ...] = ()

    @property
    def losses(self) -> list[float]:
        """The loss before each update."""
        return [d.loss for d in self.steps]

    def __repr__(self) -> str:
        losses = ", ".join(f"{v:.4g}" for v in self.losses)
        return f"History({self.optimizer.name}, {len(self.steps)} steps, losses [{losses}])"

    def _repr_markdown_(self) -> str:
        """The losses and the parameters before every step and after the last, as a Markdown table."""
        from derive.notebook import _number as num  # as reports show numbers (no 300-digit rows at lr 1e308)

        names = [p.name for p in self.steps[0].parameters][:8]
        final = {p.name: p.value for p in self.final.parameters()}
        rows = [[f"{t}", num(d.loss), *(num(p.parameter.value) for p in d.parameters[:8])]
                for t, d in enumerate(self.steps)]
        rows.append([f"{len(self.steps)}", "", *(num(final[n]) for n in names)])
        more = " (first 8 parameters)" if len(self.steps[0].parameters) > 8 else ""
        lines = [f"**Training**: {len(self.steps)} steps of {self.optimizer.name}{more}", "",
                 "| t | L | " + " | ".join(names) + " |", "|" + "---:|" * (len(names) + 2)]
        return "\n".join([*lines, *("| " + " | ".join(r) + " |" for r in rows)]) + "\n"


def learning_rate(opt: Optimizer, network: Network | Model) -> float:
    """The optimizer's ``lr``, else the network's."""
    return network.lr if opt.lr is None else opt.lr


def apply(
    opt: Optimizer, derivation: Derivation, t: int, state: State | None = None
) -> tuple[Network | Model, dict, dict]:
    """Step ``t`` (from 1) of ``opt`` on every parameter that is not frozen, simultaneously.

    ``state``: the state after step t−1 (``None`` before the first); returns the network, the new state and
    the quantities of the update per parameter.
    """
    lr = learning_rate(opt, derivation.network)
    new_values, new_state, quantities = {}, {}, {}
    for p in derivation.parameters:
        if p.parameter.frozen:
            continue
        before = opt.initial(p.parameter.value) if state is None else state[p.name]
        value, after, q = opt.update(lr, t, p.parameter.value, p.gradient, before)
        new_values[p.name] = value
        new_state[p.name] = {**after, "step": float(t)}
        quantities[p.name] = q
    return derivation.network.with_parameters(new_values), new_state, quantities


def step(derivation: Derivation) -> Network | Model:
    """One SGD update of every parameter that is not frozen, simultaneously, with the network's learning rate."""
    lr = derivation.network.lr
    return derivation.network.with_parameters(
        {p.name: p.parameter.value - lr * p.gradient for p in derivation.parameters if not p.parameter.frozen}
    )


def train(
    network: Network | Model, steps: int = 1, optimizer: Any = None, **options: Any
) -> History:
    """Run ``steps`` updates of ``optimizer`` (a name: sgd, adam, adamw, rmsprop, adagrad; an `Optimizer`;
    or a ``torch.optim`` optimizer, read for its class and options) with ``options`` named as in torch.optim
    (``lr``, ``momentum``, ``betas`` …); ``lr`` defaults to the network's. Without ``optimizer``, the
    network's own (from a spec's ``[optimizer]`` or ``from_torch(optimizer=…)``), else SGD. The derivation
    is computed once per architecture and reused."""
    opt = resolve(network, optimizer, options)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise DeriveError(f"steps must be at least 1, got {steps}")
    derivations, states, updates = [], [], []
    state = None
    for t in range(1, steps + 1):
        derivation = Derivation(network)
        derivations.append(derivation)
        network, state, quantities = apply(opt, derivation, t, state)
        states.append(state)
        updates.append(quantities)
    return History(tuple(derivations), network, opt, tuple(states), tuple(updates))


def sgd(network: Network | Model, steps: int = 1) -> History:
    """Run ``steps`` plain SGD updates with the network's learning rate."""
    return train(network, steps, SGD())


def resolve(network: Network | Model, spec: Any, options: Mapping[str, Any]) -> Optimizer:
    """The optimizer ``spec`` names (see `train`), with ``options`` over the network's own when none is named."""
    from derive.sources.torch_optimizer import is_torch_optimizer, read_optimizer

    if is_torch_optimizer(spec):
        spec = read_optimizer(spec)
    own = getattr(network, "optimizer", None)
    if spec is None and own is not None:
        try:
            return dataclasses.replace(own, **options)
        except TypeError:
            spec = own.name  # refused by name below, listing the optimizer's options
    return optimizer(spec, **options)


__all__ = [
    "OPTIMIZERS", "SGD", "Adagrad", "Adam", "AdamW", "History", "Optimizer", "RMSprop", "apply", "learning_rate",
    "optimizer", "sgd", "step", "train",
]
