r"""Recurrent layers read as their equations unrolled through time: ``nn.RNN``, ``nn.LSTM``, ``nn.GRU`` and
their cells, with torch's gate order and equations. Every step is a few named ops of the graph (``rnn_h3``: the
hidden state after step 3), and each weight is one parameter used at every step, so its gradient is the sum
over time (backpropagation through time) without anything special.

- RNN: $h_t = f(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh})$, f = tanh or ReLU;
- LSTM: $[i, f, g, o] = W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh}$ (in that order), $i, f, o$ through σ,
  $g$ through tanh; $c_t = f \odot c_{t-1} + i \odot g$, $h_t = o \odot \tanh c_t$;
- GRU: $r, z = σ(\ldots)$, $n = \tanh(W_{in} x_t + b_{in} + r \odot (W_{hn} h_{t-1} + b_{hn}))$,
  $h_t = (1 - z) \odot n + z \odot h_{t-1}$.

A missing initial state is a constant of zeros (``rnn.h0``: h₀ = 0).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from derive.model.build import Ref

if TYPE_CHECKING:
    from derive.sources.torch_ops import Call

#: gates per cell type (rows of weight_ih: torch's order)
GATES = {"RNN": 1, "LSTM": 4, "GRU": 3}


class _Cell:
    """Emits one step of a cell type with the parameters of one layer."""

    def __init__(self, call: Call, kind: str, prefix: str, suffix: str, hidden: int, nonlinearity: str) -> None:
        self.call, self.kind, self.hidden, self.nonlinearity = call, kind, hidden, nonlinearity
        #: the hidden states' role: one sequence per module (and layer), in the order of the steps
        self.role = f"state:{call.node.target}{suffix}"
        reader, path = call.reader, call.node.target
        self.W_ih = reader.parameter(path, f"weight_ih{suffix}")
        self.W_hh = reader.parameter(path, f"weight_hh{suffix}")
        self.b_ih = reader.parameter(path, f"bias_ih{suffix}")
        self.b_hh = reader.parameter(path, f"bias_hh{suffix}")
        self.prefix = prefix
        self.t = 0

    def op(self, key: str, *args: Any, step: str, **attributes: Any) -> Ref:
        role = self.role if step == f"h{self.t}" else ""
        return self.call.op(key, *args, name=f"{self.prefix}_{step}", role=role, **attributes)

    def gate(self, tensor: Ref, k: int, step: str) -> Ref:
        """Rows k·H to (k+1)·H of a stacked pre-activation (torch's gate order)."""
        H = self.hidden
        return self.op("index", tensor, step=step, items=(("slice", None, None, None), ("slice", k * H, (k + 1) * H, None)))

    def step(self, x: Ref, state: Any, t: int) -> Any:
        """The new state after input ``x``: h (RNN, GRU) or (h, c) (LSTM)."""
        self.t = t
        h = state[0] if self.kind == "LSTM" else state
        gi = self.op("linear", x, self.W_ih, self.b_ih, step=f"xW{t}")
        gh = self.op("linear", h, self.W_hh, self.b_hh, step=f"hW{t}")
        if self.kind == "RNN":
            z = self.op("add", gi, gh, step=f"z{t}")
            return self.op("activate", z, step=f"h{t}", activation=self.nonlinearity)
        if self.kind == "LSTM":
            z = self.op("add", gi, gh, step=f"z{t}")
            i, f, g, o = (self.gate(z, k, f"{name}{t}_pre") for k, name in enumerate("ifgo"))
            i, f, o = (self.op("activate", v, step=f"{name}{t}", activation="sigmoid") for v, name in
                       ((i, "i"), (f, "f"), (o, "o")))
            g = self.op("activate", g, step=f"g{t}", activation="tanh")
            c = self.op("add", self.op("mul", f, state[1], step=f"fc{t}"), self.op("mul", i, g, step=f"ig{t}"),
                        step=f"c{t}")
            h = self.op("mul", o, self.op("activate", c, step=f"tanh_c{t}", activation="tanh"), step=f"h{t}")
            return h, c
        r = self.op("activate", self.op("add", self.gate(gi, 0, f"xr{t}"), self.gate(gh, 0, f"hr{t}"),
                                        step=f"r{t}_pre"), step=f"r{t}", activation="sigmoid")
        u = self.op("activate", self.op("add", self.gate(gi, 1, f"xz{t}"), self.gate(gh, 1, f"hz{t}"),
                                        step=f"u{t}_pre"), step=f"u{t}", activation="sigmoid")
        reset = self.op("mul", r, self.gate(gh, 2, f"hn{t}"), step=f"rhn{t}")
        n = self.op("activate", self.op("add", self.gate(gi, 2, f"xn{t}"), reset, step=f"n{t}_pre"),
                    step=f"n{t}", activation="tanh")
        keep = self.op("mul", u, h, step=f"uh{t}")
        return self.op("add", self.op("mul", self.op("sub", 1.0, u, step=f"not_u{t}"), n, step=f"un{t}"), keep,
                       step=f"h{t}")


def _zeros(call: Call, name: str, shape: tuple[int, ...]) -> Ref:
    return call.reader.builder.constant(f"{call.node.target}.{name}", np.zeros(shape))


def _kind(module: Any) -> str:
    return type(module).__name__.removesuffix("Cell")


def _check(call: Call, module: Any) -> None:
    if getattr(module, "bidirectional", False):
        call.refuse("bidirectional=True")
    if getattr(module, "proj_size", 0):
        call.refuse("proj_size")
    if not getattr(module, "bias", True):
        call.refuse("bias=False")
    if getattr(module, "dropout", 0) and module.training:
        call.refuse("dropout between layers in train mode (call model.eval())")


def recurrent_layer(call: Call) -> tuple:
    """``nn.RNN``/``nn.LSTM``/``nn.GRU`` over a sequence: (output, h_n) or (output, (h_n, c_n))."""
    module = call.module
    _check(call, module)
    kind, H, layers = _kind(module), module.hidden_size, module.num_layers
    x = call.args[0]
    if x.real.dim() != 3:
        call.refuse(f"a {x.real.dim()}-D input (give batch × time × features or time × batch × features)")
    batch_first = module.batch_first
    N, T = (x.real.shape[0], x.real.shape[1]) if batch_first else (x.real.shape[1], x.real.shape[0])
    given = call.arg(1, "hx")
    path = call.node.target
    sequence = [call.op("index", x, name=f"{path}_x{t + 1}", items=(("slice", None, None, None), ("int", t))
                        if batch_first else (("int", t),)) for t in range(T)]
    cells = []
    for layer in range(layers):
        cell = _Cell(call, kind, f"{path}" if layers == 1 else f"{path}_l{layer}", f"_l{layer}", H,
                     getattr(module, "nonlinearity", "tanh"))
        state = _initial(call, kind, given, layer, N, H)
        outputs = []
        for t, x_t in enumerate(sequence, start=1):
            state = cell.step(x_t, state, t)
            outputs.append(state[0] if kind == "LSTM" else state)
        sequence, cells = outputs, [*cells, state]
    out = call.op("stack", *sequence, name=f"{path}_out", dim=1 if batch_first else 0)
    hs = [s[0] if kind == "LSTM" else s for s in cells]
    h_n = call.op("stack", *hs, name=f"{path}_h_n", dim=0)
    if kind == "LSTM":
        c_n = call.op("stack", *(s[1] for s in cells), name=f"{path}_c_n", dim=0)
        return out, (h_n, c_n)
    return out, h_n


def _initial(call: Call, kind: str, given: Any, layer: int, N: int, H: int) -> Any:
    """The state before step 1 of ``layer``: from ``hx`` (indexed by layer) or zeros."""
    path = call.node.target
    if given is None:
        h = _zeros(call, f"h0_l{layer}", (N, H))
        return (h, _zeros(call, f"c0_l{layer}", (N, H))) if kind == "LSTM" else h

    def pick(tensor: Any, what: str) -> Ref:
        return call.op("index", tensor, name=f"{path}_{what}0_l{layer}", items=(("int", layer),))

    return (pick(given[0], "h"), pick(given[1], "c")) if kind == "LSTM" else pick(given, "h")


def recurrent_cell(call: Call) -> Any:
    """``nn.RNNCell``/``nn.LSTMCell``/``nn.GRUCell``: one step, (h') or (h', c')."""
    module = call.module
    _check(call, module)
    kind, H = _kind(module), module.hidden_size
    x = call.args[0]
    if x.real.dim() != 2:
        call.refuse(f"a {x.real.dim()}-D input (give batch × features)")
    N = x.real.shape[0]
    given = call.arg(1, "hx")
    if given is None:
        state = _zeros(call, "h0", (N, H))
        state = (state, _zeros(call, "c0", (N, H))) if kind == "LSTM" else state
    else:
        state = given
    cell = _Cell(call, kind, call.node.name, "", H, getattr(module, "nonlinearity", "tanh"))
    return cell.step(x, state, 1)
