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

The scalar engine and its reports walk those steps. The tensor program does not: the reader records each layer
call (all its layers and directions, as ``aten.lstm`` takes them) as an `OpGroup` of the structure, and the
program keeps it as one op, `Recurrent`, whose value S holds every state through time
(`derive.ops.recurrent_steps`) and whose rule is backpropagation through time; its proof lowers the same steps
(`Recurrent.lower` shares `_unroll` and `_Cell` with the reader). Cells called in a Python loop stay their steps.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from derive.errors import DeriveError, ShapeError
from derive.ops.tensor import Sample, TensorOp, register


class _Cell:
    """Emits one step of a cell type with the parameters of one layer and direction."""

    def __init__(self, call: Any, kind: str, stem: str, weights: list[Any], hidden: int, nonlinearity: str,
                 role: str | None = None) -> None:
        self.call, self.kind, self.hidden, self.nonlinearity, self.stem = call, kind, hidden, nonlinearity, stem
        #: the hidden states' role: one sequence per module, layer and direction, in the order of the steps
        self.role = role or f"state:{stem}"
        #: W_hr: a projected LSTM's projection of h (``proj_size``), else None
        self.W_ih, self.W_hh, self.b_ih, self.b_hh, self.W_hr = (weights + [None, None, None])[:5]
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
            m = self.op("activate", c, step=f"tanh_c{t}", activation="tanh")
            if self.W_hr is None:
                return self.op("mul", o, m, step=f"h{t}"), c
            return self.op("linear", self.op("mul", o, m, step=f"m{t}"), self.W_hr, None, step=f"h{t}"), c
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
    through time (linear, add, index, activate, mul, stack, cat); in the tensor program a layer call is one
    primitive whose rule is backpropagation through time.

    As one op, its inputs are x, each layer-direction's initial h (and c), then W_ih, W_hh, b_ih, b_hh of each:

    >>> Recurrent("LSTM", layers=2).split(["x", "h0", "h1", "c0", "c1", *range(8)])
    ('x', ['h0', 'h1'], ['c0', 'c1'], [0, 1, 2, 3, 4, 5, 6, 7])
    """

    #: "RNN", "LSTM" or "GRU"
    kind: str = "RNN"
    #: an RNN's f: "tanh" or "relu"
    nonlinearity: str = "tanh"
    layers: int = 1
    bidirectional: bool = False
    batch_first: bool = False
    key = "recurrent"
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

    # --- one layer call as one op: inputs x, the initial h (and c) of each layer-direction, the weights ---------

    def __post_init__(self) -> None:
        if self.kind not in ("RNN", "LSTM", "GRU") or self.nonlinearity not in ("tanh", "relu") or \
                isinstance(self.layers, bool) or not isinstance(self.layers, int) or self.layers < 1:
            raise DeriveError(f"recurrent takes kind RNN, LSTM or GRU, nonlinearity tanh or relu and layers ≥ 1; got "
                              f"kind={self.kind!r}, nonlinearity={self.nonlinearity!r}, layers={self.layers!r}")

    def check(self, inputs: Sequence[Any]) -> None:
        """A `ShapeError` unless the inputs are x (3-D) and, per layer-direction, the initial states and weights."""
        K = self.count
        states = K * (2 if self.kind == "LSTM" else 1)
        if len(inputs) != 1 + states + 4 * K or any(v is None for v in inputs) or len(np.shape(inputs[0])) != 3:
            article = "a" if self.kind == "GRU" else "an"
            raise ShapeError(f"{article} {self.kind} of {self.layers} layer(s), {K // self.layers} direction(s) takes "
                             f"x (3-D), {states} initial state(s), then W_ih, W_hh, b_ih, b_hh per layer and "
                             f"direction: {1 + states + 4 * K} inputs, got {len(inputs)}")

    @property
    def count(self) -> int:
        """K: layers × directions."""
        return self.layers * (2 if self.bidirectional else 1)

    def split(self, inputs: Sequence[Any]) -> tuple[Any, list[Any], list[Any], list[Any]]:
        """x, the initial hidden states, the initial cell states (an LSTM's) and the weights
        (W_ih, W_hh, b_ih, b_hh per layer-direction) of the op's inputs."""
        K = self.count
        cells = K if self.kind == "LSTM" else 0
        return inputs[0], list(inputs[1:1 + K]), list(inputs[1 + K:1 + K + cells]), list(inputs[1 + K + cells:])

    def lower(self, lowering: Any, *inputs: np.ndarray) -> np.ndarray:
        """The steps the reader emits (`_unroll`), lowered one after another; the value S of
        `derive.ops.recurrent_steps` (each state's scalars, the initial ones as given)."""
        self.check(inputs)
        x, hs, cs, params = self.split(inputs)
        call = _Lowered(lowering)
        steps = x.shape[1] if self.batch_first else x.shape[0]
        sequence = [call.op("index", x, step="", items=_time_item(self.batch_first, t)) for t in range(steps)]
        initial = (lambda k, prefix: (hs[k], cs[k])) if self.kind == "LSTM" else (lambda k, prefix: hs[k])
        _, _, _, every = _unroll(call, self, "", sequence, initial, params, hs[0].shape[-1])
        rows = [np.stack([np.concatenate(s, axis=-1) if self.kind == "LSTM" else s for s in kept]) for kept in every]
        return np.stack(rows)

    def numpy_forward(self, *inputs: Any) -> Any:
        return self.tensor_function("", list(inputs), self.options(), "numpy")

    def forward(self, *inputs: Any) -> Any:
        return self.tensor_function("", list(inputs), self.options(), "torch")

    def backward(self, g: Any, inputs: Sequence[Any], out: Any, wanted: Sequence[bool], saved: Any = None) -> list:
        """The tensor rule (`tensor_rule`: BPTT, then each input's term) on torch tensors."""
        from derive.tensor.expr import Ref, substitute
        from derive.tensor.functions import evaluate

        env: dict[str, Any] = {"none": None, "G": g, "O": out}
        refs = []
        for k, value in enumerate(inputs):
            env[f"I{k}"] = value
            refs.append(Ref(f"I{k}"))
        shapes = [tuple(v.shape) for v in inputs]
        parts: dict[str, Any] = {"": Ref("O")}
        for part, expr in self.tensor_adjoint_parts(Ref("G"), refs, parts, shapes, tuple(out.shape)):
            env[f"d{part}"] = evaluate(substitute(expr, {f"@{p}": r for p, r in parts.items()}), env, "torch")
            parts["d" + part] = Ref(f"d{part}")
        rules = self.tensor_rule(Ref("G"), refs, parts, list(wanted), shapes, tuple(out.shape))
        return [None if rule is None else evaluate(rule, env, "torch") for rule in rules]

    @classmethod
    def samples(cls) -> Iterable[Sample]:
        """An RNN (tanh, batch-first), a ReLU RNN both ways, a 2-layer LSTM both ways with its initial states
        given, a 2-layer GRU: 3 steps, batch 2, 3 inputs, 2 hidden units."""
        rng = np.random.default_rng(20)

        def instance(op: Recurrent) -> Sample:
            gates = {"RNN": 1, "LSTM": 4, "GRU": 3}[op.kind]
            directions = 2 if op.bidirectional else 1
            inputs = [rng.uniform(-1, 1, (2, 3, 3) if op.batch_first else (3, 2, 3))]
            inputs += [rng.uniform(-1, 1, (2, 2)) for _ in range(op.count * (2 if op.kind == "LSTM" else 1))]
            for k in range(op.count):
                width = 3 if k < directions else 2 * directions
                inputs += [rng.uniform(-1, 1, shape) for shape in ((2 * gates, width), (2 * gates, 2), (2 * gates,),
                                                                    (2 * gates,))]
            return Sample(op, tuple(inputs))

        return [instance(op) for op in (cls("RNN", batch_first=True), cls("RNN", "relu", bidirectional=True),
                                        cls("LSTM", layers=2, bidirectional=True), cls("GRU", layers=2))]

    def proof_instance(self, shapes: Sequence[tuple[int, ...] | None], data: Sequence[Any]) -> tuple[Any, list, list]:
        """T = 3 (or fewer), batch 2, hidden 2, an input size other than the hidden size where they differ;
        initial states that are data keep their first rows and columns."""
        x = shapes[0]
        T, B, I = (x[1], x[0], x[2]) if self.batch_first else x
        H = shapes[-3][1]
        small_h, small_t, small_b = min(H, 2), min(T, 3), min(B, 2)
        small_i = min(I, 3)
        if small_i == small_h and I != H:
            small_i = 1 if I < H else 3
        directions = 2 if self.bidirectional else 1
        gates = {"RNN": 1, "LSTM": 4, "GRU": 3}[self.kind]
        K = self.count
        new = [(small_b, small_t, small_i) if self.batch_first else (small_t, small_b, small_i)]
        new += [(small_b, small_h)] * (K * (2 if self.kind == "LSTM" else 1))
        for k in range(K):
            width = small_i if k < directions else directions * small_h
            new += [(gates * small_h, width), (gates * small_h, small_h), (gates * small_h,), (gates * small_h,)]
        cut = [None if d is None else np.asarray(d)[tuple(slice(0, n) for n in shape)] for d, shape in zip(data, new)]
        return self, new, cut

    # --- the tensor program: S, then BPTT ----------------------------------------------------------------------

    def tensor_outputs(self, states: Any) -> list[Any]:
        """The layer call's outputs from S: the output sequence, h_n, and an LSTM's c_n."""
        from derive.tensor.expr import call

        rules = ("out", "h_n", "c_n") if self.kind == "LSTM" else ("out", "h_n")
        return [call(f"recurrent.{rule}", states, **self.options()) for rule in rules]

    def tensor_scatter(self, states: Any, adjoints: list[Any]) -> Any:
        """∂L/∂S from the outputs' adjoints (``none`` where an output is not used)."""
        from derive.tensor.expr import call

        return call("recurrent.scatter", states, *adjoints, **self.options())

    def tensor_adjoint_parts(self, g, inputs, parts, shapes, shape) -> list[tuple[str, Any]]:
        """∂L/∂h_t in full (through later steps and layers above: `recurrent_steps.bptt`), then each step's δ."""
        from derive.tensor.expr import Ref, call

        x, _, _, params = self.split(inputs)
        states = parts[""]
        return [("h", call("recurrent.bptt", g, x, *params, states, **self.options())),
                ("z", call("recurrent.deltas", Ref("@dh"), x, *params, states, **self.options()))]

    def tensor_rule(self, g, inputs, parts, wanted, shapes, shape) -> list[Any]:
        """∂x = Σ_d δ_t W_ih; ∂h_0, ∂c_0: the initial states' adjoints; ∂W_ih = Σ_t δ_tᵀ x_t,
        ∂W_hh = Σ_t δ_tᵀ h_{t−1}, ∂b_ih = ∂b_hh = Σ_t δ_t, per layer-direction."""
        from derive.tensor.expr import call

        x, hs, cs, params = self.split(inputs)
        d_states, delta, states = parts["dh"], parts["dz"], parts[""]
        options = self.options()
        directions = 2 if self.bidirectional else 1
        rules = [call("recurrent.x", delta, *[params[4 * d] for d in range(directions)], **options)]
        rules += [call("recurrent.initial", d_states, k=k, cell=False, **options) for k in range(len(hs))]
        rules += [call("recurrent.initial", d_states, k=k, cell=True, **options) for k in range(len(cs))]
        for k in range(self.count):
            rules += [call("recurrent.w_ih", delta, x, states, k=k, **options),
                      call("recurrent.w_hh", delta, states, k=k, **options),
                      call("recurrent.b_ih", delta, states, k=k, **options),
                      call("recurrent.b_hh", delta, states, k=k, **options)]
        return [rule if want else None for rule, want in zip(rules, wanted)]

    @classmethod
    def tensor_function(cls, rule: str, args: list[Any], options: dict[str, Any], backend: str) -> Any:
        """"" (x, h_0…, c_0…, weights…): S; ``out``, ``h_n``, ``c_n`` (S): the layer's outputs; ``scatter``
        (S, ∂out, ∂h_n, ∂c_n): ∂L/∂S from them; ``bptt`` (G, x, weights…, S): ∂L/∂S in full; ``deltas`` (∂L/∂S,
        x, weights…, S): δ; ``x`` (δ, W_ih…), ``initial`` (∂L/∂S; k, cell), ``w_ih`` (δ, x, S; k), ``w_hh``,
        ``b_ih``, ``b_hh`` (δ, S; k): the rule's terms (`derive.ops.recurrent_steps`)."""
        from derive.ops import recurrent_steps as steps

        options = dict(options)
        k, cell = options.pop("k", None), options.pop("cell", False)
        op = cls(**options)
        if rule == "":
            op.check(args)
            x, hs, cs, params = op.split(args)
            return steps.states(op, x, hs, cs, params, backend)
        if rule == "out":
            return steps.out(op, args[0], backend)
        if rule in ("h_n", "c_n"):
            return steps.final(op, args[0], rule == "c_n", backend)
        if rule == "scatter":
            S, *adjoints = args
            return steps.scatter(op, S, *(adjoints + [None] * (3 - len(adjoints))), backend)
        if rule in ("bptt", "deltas"):
            return getattr(steps, rule)(op, args[0], args[1], list(args[2:-1]), args[-1], backend)
        if rule == "x":
            return steps.input_gradient(op, args[0], list(args[1:]), backend)
        if rule == "initial":
            return steps.initial_gradient(op, args[0], k, cell)
        if rule == "w_ih":
            return steps.weight_gradient(op, args[0], args[1], args[2], k, rule, backend)
        if rule in ("w_hh", "b_ih", "b_hh"):
            return steps.weight_gradient(op, args[0], None, args[1], k, rule, backend)
        return super().tensor_function(rule, args, options, backend)

    @classmethod
    def tensor_latex(cls, rule: str, args: list[str], options: dict[str, Any]) -> str:
        from derive.ops.recurrent_latex import recurrent_latex

        return recurrent_latex(cls(**{k: v for k, v in options.items() if k not in ("k", "cell")}), rule, args,
                               options)


class _Lowered:
    """`_Cell`'s calls on a scalar lowering: each op lowered at once (the reader's steps, as scalars)."""

    def __init__(self, lowering: Any) -> None:
        self.lowering = lowering

    def op(self, key: str, *args: Any, step: str = "", role: str = "", **attributes: Any) -> np.ndarray:
        from derive.ops.tensor import OPS, as_tensor

        return OPS[key](**attributes).lower(self.lowering, *(a if isinstance(a, np.ndarray) else as_tensor(a)
                                                             for a in args))


def _time_item(batch_first: bool, t: int) -> tuple:
    return (("slice", None, None, None), ("int", t)) if batch_first else (("int", t),)


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


def _unroll(call: Any, op: Recurrent, stem: str, sequence: list[Any], initial: Any, params: list[Any],
            hidden: int) -> tuple[list[Any], list[Any], list[Any], list[list[Any]]]:
    """Every layer and direction over the sequence, step by step (`_Cell`): the last layer's outputs in time
    order, the final h and c of each layer-direction, and each one's states in the order it read them."""
    directions = 2 if op.bidirectional else 1
    T = len(sequence)
    finals_h, finals_c, every = [], [], []
    per = len(params) // op.count  # W_ih, W_hh, b_ih, b_hh (and a projected LSTM's W_hr) per layer-direction
    for layer in range(op.layers):
        outputs = []
        for direction in range(directions):
            k = layer * directions + direction
            suffix = ("" if op.layers == 1 and directions == 1 else f"_l{layer}") + ("r" if direction else "")
            role = f"state:{stem}_l{layer}" + ("_reverse" if direction else "")
            cell = _Cell(call, op.kind, f"{stem}{suffix}", params[k * per:(k + 1) * per], hidden, op.nonlinearity, role)
            state = initial(k, f"{stem}{suffix}")
            kept = [state]
            order = range(T) if direction == 0 else range(T - 1, -1, -1)
            steps: dict[int, Any] = {}
            for n, t in enumerate(order, start=1):
                state = cell.step(sequence[t], state, n)
                kept.append(state)
                steps[t] = state[0] if op.kind == "LSTM" else state
            outputs.append([steps[t] for t in range(T)])
            finals_h.append(state[0] if op.kind == "LSTM" else state)
            if op.kind == "LSTM":
                finals_c.append(state[1])
            every.append(kept)
        sequence = outputs[0] if directions == 1 else [
            call.op("cat", f, r, step=f"{stem}_l{layer}_out{t + 1}" if op.layers > 1 else f"{stem}_out{t + 1}", dim=-1)
            for t, (f, r) in enumerate(zip(*outputs))]
    return sequence, finals_h, finals_c, every


def _read_layer(call: Any, kind: str, nonlinearity: str, stem: str) -> Any:
    if float(call.arg("dropout")) > 0 and call.arg("train"):
        call.refuse("dropout between layers in train mode (call model.eval())")
    if not call.arg("has_biases"):
        call.refuse("bias=False")
    op = Recurrent(kind, nonlinearity, int(call.arg("num_layers")), bool(call.arg("bidirectional")),
                   bool(call.arg("batch_first")))
    params = call.tensors("params")
    projected = kind == "LSTM" and len(params) == op.count * 5  # proj_size: h = W_hr (o ⊙ tanh c)
    x_shape = call.shape("input")
    T = x_shape[1] if op.batch_first else x_shape[0]
    hidden = call.arg("params")[1].shape[0] // {"RNN": 1, "LSTM": 4, "GRU": 3}[kind]  # W_hh's rows: gates × H
    x = call.input("input")
    h0, c0 = call.arguments["hx"] if kind == "LSTM" else (call.arguments["hx"], None)
    first = call.next_node()
    sequence = [call.op("index", x, step=f"{stem}_x{t + 1}", items=_time_item(op.batch_first, t)) for t in range(T)]
    initial_h: list[Any] = []
    initial_c: list[Any] = []

    def initial(k: int, prefix: str) -> Any:
        initial_h.append(_initial(call, h0, k, f"{prefix}_h0"))
        if kind != "LSTM":
            return initial_h[-1]
        initial_c.append(_initial(call, c0, k, f"{prefix}_c0"))
        return initial_h[-1], initial_c[-1]

    sequence, finals_h, finals_c, _ = _unroll(call, op, stem, sequence, initial, params, hidden)
    outputs = [call.op("stack", *sequence, step=f"{stem}_out", dim=1 if op.batch_first else 0),
               call.op("stack", *finals_h, step=f"{stem}_h_n", dim=0)]
    if kind == "LSTM":
        outputs.append(call.op("stack", *finals_c, step=f"{stem}_c_n", dim=0))
    if not projected:  # one op of the tensor program (BPTT); a projected LSTM's program walks its steps
        call.group(op, [x, *initial_h, *initial_c, *params], outputs, first, stem)
    return tuple(outputs)
