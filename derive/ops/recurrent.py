r"""Recurrent layers read as their equations unrolled through time: ``nn.RNN``, ``nn.LSTM``, ``nn.GRU``
(several layers, bidirectional, either layout) and their cells, with torch's gate order and equations.
Every step is a few named ops of the graph (``rnn_h3``: the hidden state after step 3; ``lstm_l1r_c2``: layer 2,
the reverse direction, the cell after step 2), and each weight is one parameter used at every step, so its
gradient is the sum over time (backpropagation through time) without anything special.

- RNN: $h_t = f(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh})$, f = tanh or ReLU;
- LSTM: $[i, f, g, o] = W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh}$ (in that order), $i, f, o$ through σ,
  $g$ through tanh; $c_t = f \odot c_{t-1} + i \odot g$, $h_t = o \odot \tanh c_t$;
- GRU: $r, z = σ(\ldots)$, $n = \tanh(W_{in} x_t + b_{in} + r \odot (W_{hn} h_{t-1} + b_{hn}))$,
  $h_t = (1 - z) \odot n + z \odot h_{t-1}$.

A reverse direction reads the sequence from its end; its outputs are put back in time order and
concatenated after the forward direction's features, as torch does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from derive.ops.tensor import TensorOp, register


class _Cell:
    """Emits one step of a cell type with the parameters of one layer and direction."""

    def __init__(self, call: Any, kind: str, stem: str, weights: list[Any], hidden: int, nonlinearity: str,
                 role: str | None = None) -> None:
        self.call, self.kind, self.hidden, self.nonlinearity, self.stem = call, kind, hidden, nonlinearity, stem
        #: the hidden states' role: one sequence per module, layer and direction, in the order of the steps
        self.role = role or f"state:{stem}"
        self.W_ih, self.W_hh, self.b_ih, self.b_hh = (weights + [None, None])[:4]
        self.t = 0

    def op(self, key: str, *args: Any, step: str, **attributes: Any) -> Any:
        role = self.role if step == f"h{self.t}" else ""
        return self.call.op(key, *args, step=f"{self.stem}_{step}", role=role, **attributes)

    def gate(self, tensor: Any, k: int, step: str) -> Any:
        """Rows k·H to (k+1)·H of a stacked pre-activation (torch's gate order)."""
        H = self.hidden
        return self.op("index", tensor, step=step, items=(("ellipsis",), ("slice", k * H, (k + 1) * H, None)))

    def step(self, x: Any, state: Any, t: int) -> Any:
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


_KINDS = {"lstm": "LSTM", "gru": "GRU", "rnn_tanh": "RNN", "rnn_relu": "RNN"}


@register
@dataclass(frozen=True)
class Recurrent(TensorOp):
    """``aten.lstm``/``gru``/``rnn_tanh``/``rnn_relu`` and their ``_cell``s: read as their steps unrolled
    through time (linear, add, index, activate, mul, stack, cat), never a node of its own."""

    key = "recurrent"
    composite: ClassVar[bool] = True
    aten = ("lstm.input", "gru.input", "rnn_tanh.input", "rnn_relu.input", "lstm_cell.default", "gru_cell.default",
            "rnn_tanh_cell.default", "rnn_relu_cell.default")

    @classmethod
    def read(cls, call: Any) -> Any:
        packet = call.name.partition(".")[0]
        cell = packet.endswith("_cell")
        base = packet.removesuffix("_cell")
        kind = _KINDS[base]
        nonlinearity = "relu" if base == "rnn_relu" else "tanh"
        stem = (call.path or call.node.name).replace(".", "_")
        if cell:
            return _read_cell(call, kind, nonlinearity, stem)
        return _read_layer(call, kind, nonlinearity, stem)


def _initial(call: Any, value: Any, k: int, step: str) -> Any:
    """The initial state of layer-direction ``k``: a literal when it was made in forward (zeros), else
    its row of the given state."""
    if value.level == 0:  # torch.zeros(…) in forward, or nn.LSTM's own zeros: folded, no op
        return call.node_of(call.literal(value.real[k], step))
    return call.op("index", call.node_of(value), step=step, items=(("int", k),))


def _read_cell(call: Any, kind: str, nonlinearity: str, stem: str) -> Any:
    hx = call.arguments["hx"]
    weights = [call.input(n) for n in ("w_ih", "w_hh", "b_ih", "b_hh")]
    hidden = call.shape("w_hh")[1]
    state = (call.node_of(hx[0]), call.node_of(hx[1])) if kind == "LSTM" else call.input("hx")
    calls = call.count_of_path()  # the k-th call of this cell: cell, cell_1, cell_2, …
    cell = _Cell(call, kind, stem if calls == 0 else f"{stem}_{calls}", weights, hidden, nonlinearity, f"state:{stem}")
    return cell.step(call.input("input"), state, 1)


def _read_layer(call: Any, kind: str, nonlinearity: str, stem: str) -> Any:
    if float(call.arg("dropout")) > 0 and call.arg("train"):
        call.refuse("dropout between layers in train mode (call model.eval())")
    if not call.arg("has_biases"):
        call.refuse("bias=False")
    layers, bidirectional, batch_first = int(call.arg("num_layers")), bool(call.arg("bidirectional")), \
        bool(call.arg("batch_first"))
    params = call.tensors("params")
    per = 4
    directions = 2 if bidirectional else 1
    if len(params) != layers * directions * per:
        call.refuse("proj_size (projected LSTM)")
    x_shape = call.shape("input")
    T = x_shape[1] if batch_first else x_shape[0]
    hidden = call.arg("params")[1].shape[1]
    x = call.input("input")
    h0, c0 = call.arguments["hx"] if kind == "LSTM" else (call.arguments["hx"], None)
    time_item = (lambda t: (("slice", None, None, None), ("int", t))) if batch_first else (lambda t: (("int", t),))
    sequence = [call.op("index", x, step=f"{stem}_x{t + 1}", items=time_item(t)) for t in range(T)]
    finals_h, finals_c = [], []
    for layer in range(layers):
        outputs = []
        for direction in range(directions):
            k = layer * directions + direction
            suffix = ("" if layers == 1 and directions == 1 else f"_l{layer}") + ("r" if direction else "")
            role = f"state:{stem}_l{layer}" + ("_reverse" if direction else "")
            cell = _Cell(call, kind, f"{stem}{suffix}", params[k * per:(k + 1) * per], hidden, nonlinearity, role)
            h = _initial(call, h0, k, f"{stem}{suffix}_h0")
            state = (h, _initial(call, c0, k, f"{stem}{suffix}_c0")) if kind == "LSTM" else h
            order = range(T) if direction == 0 else range(T - 1, -1, -1)
            steps: dict[int, Any] = {}
            for n, t in enumerate(order, start=1):
                state = cell.step(sequence[t], state, n)
                steps[t] = state[0] if kind == "LSTM" else state
            outputs.append([steps[t] for t in range(T)])
            finals_h.append(state[0] if kind == "LSTM" else state)
            if kind == "LSTM":
                finals_c.append(state[1])
        sequence = outputs[0] if directions == 1 else [
            call.op("cat", f, r, step=f"{stem}_l{layer}_out{t + 1}" if layers > 1 else f"{stem}_out{t + 1}", dim=-1)
            for t, (f, r) in enumerate(zip(*outputs))]
    out = call.op("stack", *sequence, step=f"{stem}_out", dim=1 if batch_first else 0)
    h_n = call.op("stack", *finals_h, step=f"{stem}_h_n", dim=0)
    if kind == "LSTM":
        return out, h_n, call.op("stack", *finals_c, step=f"{stem}_c_n", dim=0)
    return out, h_n
