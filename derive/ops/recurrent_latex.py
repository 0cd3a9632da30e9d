r"""LaTeX of the recurrent primitive and its rule functions, as a textbook writes backpropagation through time:
the recurrence for the states, δ_t from ∂L/∂h_t, ∂L/∂W_hh = Σ_t δ_tᵀ h_{t−1}.

>>> from derive.ops.recurrent import Recurrent
>>> recurrent_latex(Recurrent("RNN"), "w_hh", ["D", "S"], {"k": 0})
'\\sum_{t} {D_{t}}^\\top h_{t-1}'
"""

from __future__ import annotations

from typing import Any

_NONE = r"\mathrm{none}"


def _recurrence(op: Any, args: list[str]) -> str:
    """The step's equations over the first layer-direction's weights."""
    K = op.layers * (2 if op.bidirectional else 1)
    x = f"{{{args[0]}}}_{{t}}"
    W_ih, W_hh, b_ih, b_hh = args[-4 * K:][:4]
    pre = rf"{x} {{{W_ih}}}^\top + {b_ih} + h_{{t-1}} {{{W_hh}}}^\top + {b_hh}"
    every = r"\text{ (each layer and direction)}" if K > 1 else ""
    if op.kind == "LSTM":
        return (rf"\left[h_t, c_t\right]_{{t=0}}^{{T}}:\; \left[i, f, g, o\right] = {pre},\; "
                r"c_t = \sigma(f) \odot c_{t-1} + \sigma(i) \odot \tanh(g),\; h_t = \sigma(o) \odot \tanh(c_t)" + every)
    if op.kind == "GRU":
        return (rf"\left(h_t\right)_{{t=0}}^{{T}}:\; \left[r, z, n\right] = {x} {{{W_ih}}}^\top + {b_ih},\; "
                rf"\left[r', z', n'\right] = h_{{t-1}} {{{W_hh}}}^\top + {b_hh},\; "
                r"h_t = (1 - \sigma(z + z')) \odot \tanh(n + \sigma(r + r') \odot n') + \sigma(z + z') \odot h_{t-1}"
                + every)
    f = r"\operatorname{ReLU}" if op.nonlinearity == "relu" else r"\tanh"
    return rf"\left(h_t\right)_{{t=0}}^{{T}}:\; h_t = {f}\left({pre}\right)" + every


def _deltas(op: Any, d: str) -> str:
    if op.kind == "LSTM":
        return (rf"\delta_t = \left[\delta i, \delta f, \delta g, \delta o\right]_t:\; "
                rf"\delta o = {{{d}}}^{{h}}_{{t}} \odot \tanh c_t \odot o(1 - o),\; "
                rf"\delta i = {{{d}}}^{{c}}_{{t}} \odot g \odot i(1 - i),\; "
                rf"\delta f = {{{d}}}^{{c}}_{{t}} \odot c_{{t-1}} \odot f(1 - f),\; "
                rf"\delta g = {{{d}}}^{{c}}_{{t}} \odot i \odot (1 - g^2)")
    if op.kind == "GRU":
        return (rf"\delta_t = \left[\delta r, \delta z, \delta n, \delta n \odot r\right]_t:\; "
                rf"\delta n = {{{d}}}_{{t}} \odot (1 - z) \odot (1 - n^2),\; "
                rf"\delta z = {{{d}}}_{{t}} \odot (h_{{t-1}} - n) \odot z(1 - z),\; "
                r"\delta r = \delta n \odot n' \odot r(1 - r)")
    slope = r"\operatorname{step}(z_t)" if op.nonlinearity == "relu" else r"\left(1 - h_t^2\right)"
    return rf"\delta_t = {{{d}}}_{{t}} \odot {slope}"


#: the rule functions written over their first argument's LaTeX
_OVER_FIRST = {
    "out": lambda a: rf"\left(h_t\right)_{{t=1}}^{{T}} \text{{ of }} {a}",
    "h_n": lambda a: rf"h_T \text{{ of }} {a}",
    "c_n": lambda a: rf"c_T \text{{ of }} {a}",
    "w_ih": lambda a: rf"\sum_{{t}} {{{a}_{{t}}}}^\top x_t",
    "w_hh": lambda a: rf"\sum_{{t}} {{{a}_{{t}}}}^\top h_{{t-1}}",
    "b_ih": lambda a: rf"\sum_{{t}} {a}_{{t}}",
    "b_hh": lambda a: rf"\sum_{{t}} {a}_{{t}}",
}


def recurrent_latex(op: Any, rule: str, args: list[str], options: dict[str, Any]) -> str:
    """LaTeX of ``recurrent`` (rule "") or one of its rule functions over its arguments' LaTeX."""
    if rule == "":
        return _recurrence(op, args)
    if rule in _OVER_FIRST:
        return _OVER_FIRST[rule](args[0])
    if rule == "scatter":
        present = ", ".join(a for a in args[1:] if a != _NONE)
        return rf"\operatorname{{to\ states}}\left({present}\right)"
    if rule == "bptt":
        more = r",\; \text{and through } c_t" if op.kind == "LSTM" else ""
        return rf"{{{args[0]}}}_{{t}} + \delta_{{t+1}} {args[3]}{more},\; t = T, \ldots, 0"
    if rule == "deltas":
        return _deltas(op, args[0])
    if rule == "x":
        return " + ".join(rf"{{{args[0]}}}^{{({d})}}_{{t}} {w}" for d, w in enumerate(args[1:]))
    if rule == "initial":
        return rf"\left.{args[0]}\right|_{{{'c' if options.get('cell') else 'h'}_0^{{({options.get('k')})}}}}"
    name = rule.replace("_", r"\_")
    return rf"\operatorname{{recurrent.{name}}}\left({', '.join(args)}\right)"
