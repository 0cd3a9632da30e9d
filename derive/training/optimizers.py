r"""Optimizers with ``torch.optim``'s update equations, one class each, parameter by parameter in float64.

Every optimizer here is elementwise: one scalar parameter p, its gradient g = ∂L/∂p, its state (momentum
buffer, moments, sums) and the step number t (from 1) give its new value and state. The options keep torch's
names and defaults, except ``lr``: ``None`` takes the network's learning rate.

>>> opt = Adam(lr=0.1)
>>> new, state, q = opt.update(0.1, 1, 0.5, 0.2, opt.initial(0.5))
>>> round(new, 12), round(state["exp_avg"], 12), round(q["m_hat"], 12)
(0.400000005, 0.02, 0.2)

Each class also writes its update for the report (``equations``): the quantities of one step, each as its
formula, the numbers substituted and its value, in the note's form W(t+1) = W(t) − α ∂L/∂W(t).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar

from derive.errors import DeriveError, did_you_mean

#: One line of the written update: left side, formula, numbers substituted (may be empty), value (LaTeX).
Line = tuple[str, str, str, str]
Number = Callable[[float], str]


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise DeriveError(message)


def constant(value: float) -> str:
    r"""An option as LaTeX, short and exact: ``0.9``, ``1``, ``10^{-8}``, ``5 \cdot 10^{-5}``.

    >>> constant(0.999), constant(1.0), constant(1e-08), constant(5e-05), constant(1 - 0.9)
    ('0.999', '1', '10^{-8}', '5 \\cdot 10^{-5}', '0.1')
    """
    text = f"{value:.6g}"
    if "e" not in text:
        return text
    mantissa, exponent = text.split("e")
    power = f"10^{{{int(exponent)}}}"
    return power if mantissa == "1" else rf"{mantissa} \cdot {power}"


def _paren(text: str) -> str:
    """A printed number in parentheses when negative (so that ``a - (-b)`` reads right)."""
    return f"\\left({text}\\right)" if text.startswith("-") else text


@dataclass(frozen=True)
class Optimizer:
    """Base of the optimizers: options as fields (torch's names), the update of one scalar parameter."""

    lr: float | None = None

    #: the name in ``derive.train(optimizer=…)``, the CLI and spec files
    name: ClassVar[str] = ""
    #: the ``torch.optim`` class with these semantics
    torch_name: ClassVar[str] = ""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "lr" and value is None:
                continue
            if isinstance(value, bool) or f.name == "betas":
                continue
            _check(isinstance(value, (int, float)) and math.isfinite(value),
                   f"{self.name}: {f.name} must be a finite number, got {value!r}")
            object.__setattr__(self, f.name, float(value))
        if self.lr is not None:
            _check(self.lr >= 0, f"{self.name}: lr must be >= 0, got {self.lr}")

    def options(self) -> dict[str, Any]:
        """The options that differ from torch's defaults (lr always, when set)."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "lr" or value != f.default:
                out[f.name] = value
        return out

    def initial(self, value: float) -> dict[str, float]:
        """The state of a parameter before its first step (torch creates it lazily; the values agree)."""
        return {}

    def update(self, lr: float, t: int, p: float, g: float, state: Mapping[str, float]):
        """``(new value, new state, quantities)`` for parameter value ``p`` with gradient ``g`` at step ``t``."""
        raise NotImplementedError

    def equations(self, name: str, q: Mapping[str, float], num: Number, lr: str, t: int) -> list[Line]:
        """The update of one parameter written out (``name``: its LaTeX; ``num``: how numbers print)."""
        raise NotImplementedError

    # shared pieces ------------------------------------------------------------------------------------

    def _direction(self, p: float, g: float, q: dict, decay: bool = True) -> float:
        """torch's first lines: the sign for ``maximize``, then L2 weight decay added to the gradient."""
        d = -g if getattr(self, "maximize", False) else g
        if decay and getattr(self, "weight_decay", 0.0):
            d = d + self.weight_decay * p
        q["d"] = d
        return d

    def _gradient_lines(self, name: str, q: Mapping[str, float], num: Number, decay: bool = True) -> list[Line]:
        """g(t) = ∂L/∂p (−∂L/∂p when maximizing) + λ p(t) when weight decay is in the gradient."""
        grad = rf"\frac{{\partial \mathcal{{L}}}}{{\partial {name}(t)}}"
        sign = "-" if getattr(self, "maximize", False) else ""
        wd = getattr(self, "weight_decay", 0.0) if decay else 0.0
        if not sign and not wd:
            return []
        formula = f"{sign}{grad}" + (rf" + \lambda \, {name}(t)" if wd else "")
        numbers = f"{sign}{_paren(num(q['g'])) if sign else num(q['g'])}" + (
            rf" + {constant(wd)} \cdot {_paren(num(q['p']))}" if wd else "")
        return [(f"g_{{{name}}}", formula, numbers, num(q["d"]))]

    def _g(self, name: str, q: Mapping[str, float], num: Number, decay: bool = True) -> tuple[str, str]:
        """How the (possibly decayed) gradient is written in the later lines: symbol and number."""
        sign = getattr(self, "maximize", False)
        if sign or (decay and getattr(self, "weight_decay", 0.0)):
            return f"g_{{{name}}}", _paren(num(q["d"]))
        return rf"\frac{{\partial \mathcal{{L}}}}{{\partial {name}(t)}}", _paren(num(q["d"]))


@dataclass(frozen=True)
class SGD(Optimizer):
    r"""torch.optim.SGD: d = g + λp; b = μ b + (1 − τ) d (b = d at the first step); p ← p − α (d + μ b) with
    Nesterov, else p − α b; without momentum p ← p − α d."""

    momentum: float = 0.0
    dampening: float = 0.0
    weight_decay: float = 0.0
    nesterov: bool = False
    maximize: bool = False

    name: ClassVar[str] = "sgd"
    torch_name: ClassVar[str] = "SGD"

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self.momentum >= 0, f"sgd: momentum must be >= 0, got {self.momentum}")
        _check(self.weight_decay >= 0, f"sgd: weight_decay must be >= 0, got {self.weight_decay}")
        _check(not self.nesterov or (self.momentum > 0 and self.dampening == 0),
               "sgd: nesterov needs a momentum > 0 and zero dampening")

    def plain(self) -> bool:
        """W(t+1) = W(t) − α ∂L/∂W(t) exactly: no momentum, no weight decay, minimizing."""
        return not (self.momentum or self.weight_decay or self.maximize)

    def update(self, lr, t, p, g, state):
        q: dict[str, float] = {"p": p, "g": g}
        d = self._direction(p, g, q)
        new_state = dict(state)
        if self.momentum:
            if "momentum_buffer" in state:
                q["b_prev"] = state["momentum_buffer"]
                buf = self.momentum * state["momentum_buffer"] + (1 - self.dampening) * d
            else:
                buf = d
            q["b"] = new_state["momentum_buffer"] = buf
            d = d + self.momentum * buf if self.nesterov else buf
        q["u"] = d
        q["new"] = p - lr * d
        return q["new"], new_state, q

    def equations(self, name, q, num, lr, t):
        lines = self._gradient_lines(name, q, num)
        g_sym, g_num = self._g(name, q, num)
        step_sym, step_num = g_sym, g_num
        if self.momentum:
            b = f"b_{{{name}}}"
            if "b_prev" in q:
                mu, tau = constant(self.momentum), constant(1 - self.dampening)
                lines.append((f"{b}(t)", rf"\mu \, {b}(t-1) + (1 - \tau) \, {g_sym}",
                               rf"{mu} \cdot {_paren(num(q['b_prev']))} + {tau} \cdot {g_num}", num(q["b"])))
            else:
                lines.append((f"{b}(t)", g_sym, "", num(q["b"])))
            if self.nesterov:
                step_sym = rf"\left({g_sym} + \mu \, {b}(t)\right)"
                step_num = rf"\left({g_num} + {constant(self.momentum)} \cdot {_paren(num(q['b']))}\right)"
            else:
                step_sym, step_num = f"{b}(t)", _paren(num(q["b"]))
        lines.append((f"{name}(t+1)", rf"{name}(t) - \alpha \, {step_sym}",
                       rf"{num(q['p'])} - {lr} \cdot {step_num}", num(q["new"])))
        return lines


def _check_betas(opt: Any) -> None:
    betas = opt.betas
    _check(isinstance(betas, (tuple, list)) and len(betas) == 2,
           f"{opt.name}: betas must be two numbers, got {betas!r}")
    b1, b2 = (float(b) for b in betas)
    _check(0 <= b1 < 1 and 0 <= b2 < 1, f"{opt.name}: betas must be in [0, 1), got {betas!r}")
    object.__setattr__(opt, "betas", (b1, b2))
    _check(opt.eps >= 0, f"{opt.name}: eps must be >= 0, got {opt.eps}")
    _check(opt.weight_decay >= 0, f"{opt.name}: weight_decay must be >= 0, got {opt.weight_decay}")


@dataclass(frozen=True)
class Adam(Optimizer):
    r"""torch.optim.Adam: d = g + λp; m = β₁m + (1−β₁)d; v = β₂v + (1−β₂)d²; m̂ = m/(1−β₁ᵗ);
    v̂ = v/(1−β₂ᵗ) (its running maximum with amsgrad); p ← p − α m̂/(√v̂ + ε)."""

    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0
    amsgrad: bool = False
    maximize: bool = False

    name: ClassVar[str] = "adam"
    torch_name: ClassVar[str] = "Adam"
    #: weight decay multiplies the parameter (AdamW) instead of entering the gradient
    decoupled: ClassVar[bool] = False

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_betas(self)

    def initial(self, value):
        state = {"exp_avg": 0.0, "exp_avg_sq": 0.0}
        if self.amsgrad:
            state["max_exp_avg_sq"] = 0.0
        return state

    def update(self, lr, t, p, g, state):
        b1, b2 = self.betas
        q: dict[str, float] = {"p": p, "g": g}
        d = self._direction(p, g, q, decay=not self.decoupled)
        if self.decoupled:
            p = q["p_decayed"] = p * (1 - lr * self.weight_decay)
        m = b1 * state["exp_avg"] + (1 - b1) * d
        v = b2 * state["exp_avg_sq"] + (1 - b2) * d * d
        q.update(m_prev=state["exp_avg"], v_prev=state["exp_avg_sq"], m=m, v=v)
        c1, c2 = 1 - b1**t, 1 - b2**t
        new_state = {"exp_avg": m, "exp_avg_sq": v}
        if self.amsgrad:
            v_used = new_state["max_exp_avg_sq"] = max(state["max_exp_avg_sq"], v)
            q.update(v_max_prev=state["max_exp_avg_sq"], v_max=v_used)
        else:
            v_used = v
        q.update(m_hat=m / c1, v_hat=v_used / c2)
        denominator = math.sqrt(v_used) / math.sqrt(c2) + self.eps
        q["step"] = (lr / c1) * (m / denominator)
        q["new"] = p - q["step"]
        return q["new"], new_state, q

    def equations(self, name, q, num, lr, t):
        b1, b2 = self.betas
        lines = self._gradient_lines(name, q, num, decay=not self.decoupled)
        g_sym, g_num = self._g(name, q, num, decay=not self.decoupled)
        m, v = f"m_{{{name}}}", f"v_{{{name}}}"
        lines.append((f"{m}(t)", rf"\beta_1 \, {m}(t-1) + (1 - \beta_1) \, {g_sym}",
                      rf"{constant(b1)} \cdot {_paren(num(q['m_prev']))} + {constant(1 - b1)} \cdot {g_num}", num(q["m"])))
        lines.append((f"{v}(t)", rf"\beta_2 \, {v}(t-1) + (1 - \beta_2) \, {g_sym}^2",
                      rf"{constant(b2)} \cdot {num(q['v_prev'])} + {constant(1 - b2)} \cdot {g_num}^2", num(q["v"])))
        v_used = v
        if self.amsgrad:
            v_used = rf"\hat{{v}}^{{\max}}_{{{name}}}"
            lines.append((f"{v_used}(t)", rf"\max\left({v_used}(t-1), {v}(t)\right)",
                          rf"\max\left({num(q['v_max_prev'])}, {num(q['v'])}\right)", num(q["v_max"])))
        lines.append((rf"\hat{{m}}_{{{name}}}", rf"\frac{{{m}(t)}}{{1 - \beta_1^{{{t}}}}}",
                      rf"\frac{{{num(q['m'])}}}{{1 - {constant(b1)}^{{{t}}}}}", num(q["m_hat"])))
        lines.append((rf"\hat{{v}}_{{{name}}}", rf"\frac{{{v_used}(t)}}{{1 - \beta_2^{{{t}}}}}",
                      rf"\frac{{{num(q['v_max'] if self.amsgrad else q['v'])}}}{{1 - {constant(b2)}^{{{t}}}}}",
                      num(q["v_hat"])))
        base_sym, base_num = f"{name}(t)", num(q["p"])
        if self.decoupled and self.weight_decay:
            base_sym = rf"(1 - \alpha \lambda) \, {name}(t)"
            base_num = rf"(1 - {lr} \cdot {constant(self.weight_decay)}) \cdot {_paren(num(q['p']))}"
        lines.append((f"{name}(t+1)",
                      rf"{base_sym} - \alpha \frac{{\hat{{m}}_{{{name}}}}}{{\sqrt{{\hat{{v}}_{{{name}}}}} + \epsilon}}",
                      rf"{base_num} - {lr} \cdot \frac{{{num(q['m_hat'])}}}{{\sqrt{{{num(q['v_hat'])}}} + {constant(self.eps)}}}",
                      num(q["new"])))
        return lines


@dataclass(frozen=True)
class AdamW(Adam):
    r"""torch.optim.AdamW: Adam with decoupled weight decay, p ← (1 − αλ) p first; torch's default λ = 0.01."""

    weight_decay: float = 0.01

    name: ClassVar[str] = "adamw"
    torch_name: ClassVar[str] = "AdamW"
    decoupled: ClassVar[bool] = True


@dataclass(frozen=True)
class RMSprop(Optimizer):
    r"""torch.optim.RMSprop: d = g + λp; v = a v + (1−a) d²; centered: ḡ = a ḡ + (1−a) d, v − ḡ² under the
    root; s = √v + ε; with momentum b = μ b + d/s, p ← p − α b, else p ← p − α d/s."""

    alpha: float = 0.99
    eps: float = 1e-8
    weight_decay: float = 0.0
    momentum: float = 0.0
    centered: bool = False
    maximize: bool = False

    name: ClassVar[str] = "rmsprop"
    torch_name: ClassVar[str] = "RMSprop"

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(0 <= self.alpha, f"rmsprop: alpha must be >= 0, got {self.alpha}")
        _check(self.eps >= 0, f"rmsprop: eps must be >= 0, got {self.eps}")
        _check(self.momentum >= 0, f"rmsprop: momentum must be >= 0, got {self.momentum}")
        _check(self.weight_decay >= 0, f"rmsprop: weight_decay must be >= 0, got {self.weight_decay}")

    def initial(self, value):
        state = {"square_avg": 0.0}
        if self.momentum > 0:
            state["momentum_buffer"] = 0.0
        if self.centered:
            state["grad_avg"] = 0.0
        return state

    def update(self, lr, t, p, g, state):
        a = self.alpha
        q: dict[str, float] = {"p": p, "g": g}
        d = self._direction(p, g, q)
        v = a * state["square_avg"] + (1 - a) * d * d
        q.update(v_prev=state["square_avg"], v=v)
        new_state = {"square_avg": v}
        if self.centered:
            mean = a * state["grad_avg"] + (1 - a) * d
            q.update(gbar_prev=state["grad_avg"], gbar=mean)
            new_state["grad_avg"] = mean
            root = math.sqrt(v - mean * mean)
        else:
            root = math.sqrt(v)
        q["s"] = root + self.eps
        if self.momentum > 0:
            buf = self.momentum * state["momentum_buffer"] + d / q["s"]
            q.update(b_prev=state["momentum_buffer"], b=buf)
            new_state["momentum_buffer"] = buf
            q["new"] = p - lr * buf
        else:
            q["new"] = p - lr * (d / q["s"])
        return q["new"], new_state, q

    def equations(self, name, q, num, lr, t):
        a = constant(self.alpha)
        lines = self._gradient_lines(name, q, num)
        g_sym, g_num = self._g(name, q, num)
        v, s = f"v_{{{name}}}", f"s_{{{name}}}"
        lines.append((f"{v}(t)", rf"a \, {v}(t-1) + (1 - a) \, {g_sym}^2",
                      rf"{a} \cdot {num(q['v_prev'])} + {constant(1 - self.alpha)} \cdot {g_num}^2", num(q["v"])))
        if self.centered:
            gb = rf"\bar{{g}}_{{{name}}}"
            lines.append((f"{gb}(t)", rf"a \, {gb}(t-1) + (1 - a) \, {g_sym}",
                          rf"{a} \cdot {_paren(num(q['gbar_prev']))} + {constant(1 - self.alpha)} \cdot {g_num}",
                          num(q["gbar"])))
            lines.append((s, rf"\sqrt{{{v}(t) - {gb}(t)^2}} + \epsilon",
                          rf"\sqrt{{{num(q['v'])} - {_paren(num(q['gbar']))}^2}} + {constant(self.eps)}", num(q["s"])))
        else:
            lines.append((s, rf"\sqrt{{{v}(t)}} + \epsilon", rf"\sqrt{{{num(q['v'])}}} + {constant(self.eps)}",
                          num(q["s"])))
        if self.momentum > 0:
            b = f"b_{{{name}}}"
            lines.append((f"{b}(t)", rf"\mu \, {b}(t-1) + \frac{{{g_sym}}}{{{s}}}",
                          rf"{constant(self.momentum)} \cdot {_paren(num(q['b_prev']))} + \frac{{{g_num}}}{{{num(q['s'])}}}",
                          num(q["b"])))
            lines.append((f"{name}(t+1)", rf"{name}(t) - \alpha \, {b}(t)",
                          rf"{num(q['p'])} - {lr} \cdot {_paren(num(q['b']))}", num(q["new"])))
        else:
            lines.append((f"{name}(t+1)", rf"{name}(t) - \alpha \frac{{{g_sym}}}{{{s}}}",
                          rf"{num(q['p'])} - {lr} \cdot \frac{{{g_num}}}{{{num(q['s'])}}}", num(q["new"])))
        return lines


@dataclass(frozen=True)
class Adagrad(Optimizer):
    r"""torch.optim.Adagrad: d = g + λp; α_t = α/(1 + (t−1)η); G = G + d²; p ← p − α_t d/(√G + ε)."""

    lr_decay: float = 0.0
    weight_decay: float = 0.0
    initial_accumulator_value: float = 0.0
    eps: float = 1e-10
    maximize: bool = False

    name: ClassVar[str] = "adagrad"
    torch_name: ClassVar[str] = "Adagrad"

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self.lr_decay >= 0, f"adagrad: lr_decay must be >= 0, got {self.lr_decay}")
        _check(self.weight_decay >= 0, f"adagrad: weight_decay must be >= 0, got {self.weight_decay}")
        _check(self.initial_accumulator_value >= 0,
               f"adagrad: initial_accumulator_value must be >= 0, got {self.initial_accumulator_value}")
        _check(self.eps >= 0, f"adagrad: eps must be >= 0, got {self.eps}")

    def initial(self, value):
        return {"sum": self.initial_accumulator_value}

    def update(self, lr, t, p, g, state):
        q: dict[str, float] = {"p": p, "g": g}
        d = self._direction(p, g, q)
        q["clr"] = lr / (1 + (t - 1) * self.lr_decay)
        total = state["sum"] + d * d
        q.update(G_prev=state["sum"], G=total)
        q["s"] = math.sqrt(total) + self.eps
        q["new"] = p - q["clr"] * (d / q["s"])
        return q["new"], {"sum": total}, q

    def equations(self, name, q, num, lr, t):
        lines = self._gradient_lines(name, q, num)
        g_sym, g_num = self._g(name, q, num)
        G = f"G_{{{name}}}"
        rate = r"\alpha"
        if self.lr_decay:
            rate = r"\alpha_t"
            lines.append((r"\alpha_t", r"\frac{\alpha}{1 + (t - 1) \eta}",
                          rf"\frac{{{lr}}}{{1 + {t - 1} \cdot {constant(self.lr_decay)}}}", num(q["clr"])))
        rate_num = num(q["clr"]) if self.lr_decay else lr
        lines.append((f"{G}(t)", rf"{G}(t-1) + {g_sym}^2", rf"{num(q['G_prev'])} + {g_num}^2", num(q["G"])))
        lines.append((f"{name}(t+1)", rf"{name}(t) - {rate} \frac{{{g_sym}}}{{\sqrt{{{G}(t)}} + \epsilon}}",
                      rf"{num(q['p'])} - {rate_num} \cdot \frac{{{g_num}}}{{\sqrt{{{num(q['G'])}}} + {constant(self.eps)}}}",
                      num(q["new"])))
        return lines


#: The optimizers by name (``derive.train(optimizer=…)``, ``--optimizer``, a spec's ``[optimizer]``).
OPTIMIZERS: dict[str, type[Optimizer]] = {cls.name: cls for cls in (SGD, Adam, AdamW, RMSprop, Adagrad)}


def optimizer(spec: str | Optimizer | None = None, **options: Any) -> Optimizer:
    """An optimizer from its name and options (torch's names), or the one given; ``None`` is plain SGD.

    >>> optimizer("adam", lr=0.1, betas=(0.8, 0.9))
    Adam(lr=0.1, betas=(0.8, 0.9), eps=1e-08, weight_decay=0.0, amsgrad=False, maximize=False)
    """
    if isinstance(spec, Optimizer):
        if options:
            raise DeriveError("give the options to the optimizer, or its name with the options, not both")
        return spec
    name = "sgd" if spec is None else str(spec).lower()
    if name not in OPTIMIZERS:
        raise DeriveError(f"unknown optimizer {spec!r}; known: {', '.join(OPTIMIZERS)}.{did_you_mean(name, OPTIMIZERS)}")
    cls = OPTIMIZERS[name]
    known = [f.name for f in fields(cls)]
    unknown = [k for k in options if k not in known]
    if unknown:
        raise DeriveError(f"{name} has no option {unknown[0]!r}; its options: {', '.join(known)}."
                          f"{did_you_mean(unknown[0], known)}")
    return cls(**{k: v for k, v in options.items() if v is not None})
