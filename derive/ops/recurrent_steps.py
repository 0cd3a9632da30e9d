r"""A recurrent layer call as one primitive: its states through time and backpropagation through time (BPTT),
on NumPy float64 arrays, torch tensors, or a proof's object arrays (exact Fractions, 60-digit mpmath).

The primitive's value is S, of shape K × (T+1) × B × S: for each layer and direction k (layer-major,
forward before reverse), its state after each step n of the order it reads the sequence in (n = 0: the
initial state); a state is h (S = H), or [h, c] for an LSTM (S = 2H). Step n of the reverse direction reads
time T − n; the forward direction's, time n − 1. A layer above the first reads, at time t, its directions'
hidden states concatenated. Each step's equations are `derive.ops.recurrent`'s, with torch's gate order.

>>> import numpy as np
>>> from derive.ops.recurrent import Recurrent
>>> op = Recurrent("RNN")
>>> W = np.eye(1)
>>> states(op, np.ones((2, 1, 1)), [np.zeros((1, 1))], [], [W, W, 0 * W[0], 0 * W[0]], "numpy").round(4).ravel().tolist()
[0.0, 0.7616, 0.9427]
"""

from __future__ import annotations

from typing import Any

import numpy as np


class Arrays:
    """The few array operations a recurrence needs, in one backend ("numpy", "torch", "object", "mpmath")."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.torch = backend == "torch"

    def stack(self, items: list[Any], axis: int = 0) -> Any:
        if self.torch:
            import torch

            return torch.stack(items, dim=axis)
        return np.stack(items, axis=axis)

    def cat(self, items: list[Any]) -> Any:
        """Concatenated along the last dim."""
        if len(items) == 1:
            return items[0]
        if self.torch:
            import torch

            return torch.cat(items, dim=-1)
        return np.concatenate(items, axis=-1)

    def t(self, a: Any) -> Any:
        """The last two dims swapped."""
        return a.transpose(-1, -2) if self.torch else np.swapaxes(a, -1, -2)

    def total(self, a: Any) -> Any:
        """Summed over the first dim (the batch)."""
        return a.sum(0) if self.torch else np.sum(a, axis=0)

    def sigmoid(self, a: Any) -> Any:
        return self._function("sigmoid", a)

    def tanh(self, a: Any) -> Any:
        return self._function("tanh", a)

    def relu(self, a: Any) -> Any:
        if self.torch:
            return a.clamp(min=0)
        return np.maximum(a, 0) if self.backend == "numpy" else np.where(a > 0, a, a * 0)

    def step(self, a: Any) -> Any:
        """1 where ``a`` > 0, else 0 (ReLU's derivative, 0 at the kink as torch)."""
        if self.torch:
            return (a > 0).to(a.dtype)
        return (a > 0).astype(np.float64) if self.backend == "numpy" else np.where(a > 0, a * 0 + 1, a * 0)

    def _function(self, name: str, a: Any) -> Any:
        from derive.tensor.functions import apply

        return apply(name, [a], {}, self.backend)


def _time(n: int, direction: int, steps: int) -> int:
    """The time step n (1-based) of a direction reads: n − 1 forward, T − n in reverse."""
    return n - 1 if direction == 0 else steps - n


def _step_of(t: int, direction: int, steps: int) -> int:
    """The step (1-based) at which a direction reads time t."""
    return t + 1 if direction == 0 else steps - t


def _sequence(op: Any, x: Any) -> list[Any]:
    """The input at each time, B × I (time-major or batch-first, as the op was called)."""
    steps = x.shape[1] if op.batch_first else x.shape[0]
    return [x[:, t] if op.batch_first else x[t] for t in range(steps)]


def _split(a: Any, parts: int) -> list[Any]:
    size = a.shape[-1] // parts
    return [a[..., k * size:(k + 1) * size] for k in range(parts)]


def cell(op: Any, x: Any, h: Any, c: Any, weights: list[Any], A: Arrays) -> dict[str, Any]:
    """One step from input x and state (h, c): the new state and what its gradient reads."""
    W_ih, W_hh, b_ih, b_hh = weights
    gi = x @ A.t(W_ih) + b_ih
    gh = h @ A.t(W_hh) + b_hh
    if op.kind == "RNN":
        z = gi + gh
        return {"z": z, "h": A.relu(z) if op.nonlinearity == "relu" else A.tanh(z)}
    if op.kind == "LSTM":
        i, f, g, o = _split(gi + gh, 4)
        i, f, g, o = A.sigmoid(i), A.sigmoid(f), A.tanh(g), A.sigmoid(o)
        c_new = f * c + i * g
        tanh_c = A.tanh(c_new)
        return {"i": i, "f": f, "g": g, "o": o, "c": c_new, "tanh_c": tanh_c, "h": o * tanh_c}
    xr, xz, xn = _split(gi, 3)
    hr, hz, hn = _split(gh, 3)
    r, u = A.sigmoid(xr + hr), A.sigmoid(xz + hz)
    n = A.tanh(xn + r * hn)
    return {"r": r, "u": u, "n": n, "hn": hn, "h": (1 - u) * n + u * h}


def states(op: Any, x: Any, initial_h: list[Any], initial_c: list[Any], params: list[Any], backend: str) -> Any:
    """S: every layer-direction's state after every step (see the module's docstring)."""
    A = Arrays(backend)
    sequence = _sequence(op, x)
    steps, directions = len(sequence), 2 if op.bidirectional else 1
    every = []
    for layer in range(op.layers):
        outputs = []
        for direction in range(directions):
            k = layer * directions + direction
            h, c = initial_h[k], initial_c[k] if op.kind == "LSTM" else None
            kept = [A.cat([h, c]) if c is not None else h]
            by_time: dict[int, Any] = {}
            for n in range(1, steps + 1):
                t = _time(n, direction, steps)
                step = cell(op, sequence[t], h, c, params[4 * k:4 * k + 4], A)
                h, c = step["h"], step.get("c")
                kept.append(A.cat([h, c]) if c is not None else h)
                by_time[t] = h
            outputs.append([by_time[t] for t in range(steps)])
            every.append(A.stack(kept))
        sequence = [A.cat(list(hs)) for hs in zip(*outputs)]
    return A.stack(every)


def _layer_input(op: Any, x: Any, S: Any, layer: int, A: Arrays) -> list[Any]:
    """The input the layer reads at each time: x, or the layer below's hidden states (directions concatenated)."""
    if layer == 0:
        return _sequence(op, x)
    directions, steps = 2 if op.bidirectional else 1, S.shape[1] - 1
    hidden = S.shape[-1] // (2 if op.kind == "LSTM" else 1)
    below = (layer - 1) * directions
    return [A.cat([S[below + d, _step_of(t, d, steps), :, :hidden] for d in range(directions)]) for t in range(steps)]


def _local(op: Any, step: dict[str, Any], dh: Any, dc: Any, h_prev: Any, c_prev: Any, A: Arrays) -> tuple[Any, Any]:
    """δ of one step from ∂L/∂h_t (and, for an LSTM, ∂L/∂c_t in full): the adjoints of x_t W_ihᵀ + b_ih and
    of h_{t−1} W_hhᵀ + b_hh (equal but for a GRU's n gate, where r multiplies the second)."""
    if op.kind == "RNN":
        dz = dh * (A.step(step["z"]) if op.nonlinearity == "relu" else 1 - step["h"] * step["h"])
        return dz, dz
    if op.kind == "LSTM":
        i, f, g, o = step["i"], step["f"], step["g"], step["o"]
        delta = A.cat([dc * g * i * (1 - i), dc * c_prev * f * (1 - f), dc * i * (1 - g * g),
                       dh * step["tanh_c"] * o * (1 - o)])
        return delta, delta
    r, u, n = step["r"], step["u"], step["n"]
    dn = dh * (1 - u) * (1 - n * n)
    dr, du = dn * step["hn"] * r * (1 - r), dh * (h_prev - n) * u * (1 - u)
    return A.cat([dr, du, dn]), A.cat([dr, du, dn * r])


def through_hidden(op: Any, step: dict[str, Any], dh: Any, dhh: Any, W_hh: Any) -> Any:
    """What ∂L/∂h_t gives ∂L/∂h_{t−1}: δ_t W_hh (the recurrence), and a GRU's z ⊙ ∂L/∂h_t (its direct path)."""
    return dhh @ W_hh + (dh * step["u"] if op.kind == "GRU" else 0)


def through_cell(step: dict[str, Any], dc: Any) -> Any:
    """What ∂L/∂c_t gives ∂L/∂c_{t−1} (an LSTM's): f ⊙ ∂L/∂c_t, through the forget gate."""
    return dc * step["f"]


def _walk(op: Any, G: Any, x: Any, params: list[Any], S: Any, backend: str) -> tuple[list, list]:
    """Backpropagation through time, top layer first: ∂L/∂ every state (in full, through later steps and
    layers above), and each step's δ pair (`_local`), by layer-direction and step."""
    A = Arrays(backend)
    K, steps = S.shape[0], S.shape[1] - 1
    directions = 2 if op.bidirectional else 1
    hidden = S.shape[-1] // (2 if op.kind == "LSTM" else 1)
    lstm = op.kind == "LSTM"
    direct_h = [[G[k, n, :, :hidden] for n in range(steps + 1)] for k in range(K)]
    direct_c = [[G[k, n, :, hidden:] for n in range(steps + 1)] for k in range(K)] if lstm else None
    adjoints: list[list[Any]] = [[None] * (steps + 1) for _ in range(K)]
    deltas: list[list[Any]] = [[None] * steps for _ in range(K)]
    for layer in reversed(range(op.layers)):
        inputs = _layer_input(op, x, S, layer, A)
        d_input: list[Any] = [0] * steps
        for direction in range(directions):
            k = layer * directions + direction
            weights = params[4 * k:4 * k + 4]
            carry_h, carry_c = 0, 0  # what reaches state n from step n + 1
            for n in range(steps, 0, -1):
                t = _time(n, direction, steps)
                h_prev = S[k, n - 1, :, :hidden]
                c_prev = S[k, n - 1, :, hidden:] if lstm else None
                step = cell(op, inputs[t], h_prev, c_prev, weights, A)
                dh = direct_h[k][n] + carry_h
                dc = None
                if lstm:
                    dc = direct_c[k][n] + carry_c + dh * step["o"] * (1 - step["tanh_c"] * step["tanh_c"])
                adjoints[k][n] = A.cat([dh, dc]) if lstm else dh
                dx, dhh = _local(op, step, dh, dc, h_prev, c_prev, A)
                deltas[k][n - 1] = (dx, dhh)
                carry_h = through_hidden(op, step, dh, dhh, weights[1])
                if lstm:
                    carry_c = through_cell(step, dc)
                d_input[t] = d_input[t] + dx @ weights[0]
            first_h = direct_h[k][0] + carry_h
            adjoints[k][0] = A.cat([first_h, direct_c[k][0] + carry_c]) if lstm else first_h
        if layer > 0:  # the layer's input is the hidden states of the layer below: their direct adjoints
            below = (layer - 1) * directions
            for t in range(steps):
                for d, part in enumerate(_split(d_input[t], directions)):
                    n = _step_of(t, d, steps)
                    direct_h[below + d][n] = direct_h[below + d][n] + part
    return adjoints, deltas


def bptt(op: Any, G: Any, x: Any, params: list[Any], S: Any, backend: str) -> Any:
    """∂L/∂S in full (K × (T+1) × B × S): each state's adjoint through later steps and layers above, from
    ``G``, what the layer's outputs give the states directly."""
    A = Arrays(backend)
    adjoints, _ = _walk(op, G, x, params, S, backend)
    return A.stack([A.stack(per_k) for per_k in adjoints])


def deltas(op: Any, dS: Any, x: Any, params: list[Any], S: Any, backend: str) -> Any:
    """Each step's δ from the states' adjoints: K × T × B × 4H for a GRU ([δr, δz, δn, δn ⊙ r]: the input and
    hidden sides differ in the n gate), else K × T × B × G·H (the pre-activations' adjoint)."""
    A = Arrays(backend)
    K, steps = S.shape[0], S.shape[1] - 1
    directions = 2 if op.bidirectional else 1
    hidden = S.shape[-1] // (2 if op.kind == "LSTM" else 1)
    lstm = op.kind == "LSTM"
    every = []
    for k in range(K):
        layer, direction = divmod(k, directions)
        inputs = _layer_input(op, x, S, layer, A)
        per_step = []
        for n in range(1, steps + 1):
            h_prev, c_prev = S[k, n - 1, :, :hidden], (S[k, n - 1, :, hidden:] if lstm else None)
            step = cell(op, inputs[_time(n, direction, steps)], h_prev, c_prev, params[4 * k:4 * k + 4], A)
            dx, dhh = _local(op, step, dS[k, n, :, :hidden], dS[k, n, :, hidden:] if lstm else None, h_prev,
                             c_prev, A)
            per_step.append(A.cat([dx, dhh[..., 2 * hidden:]]) if op.kind == "GRU" else dx)
        every.append(A.stack(per_step))
    return A.stack(every)


def delta_sides(op: Any, delta: Any, hidden: int, A: Arrays) -> tuple[Any, Any]:
    """The input side and the hidden side of a δ of `deltas`."""
    if op.kind != "GRU":
        return delta, delta
    return delta[..., :3 * hidden], A.cat([delta[..., :2 * hidden], delta[..., 3 * hidden:]])


def out(op: Any, S: Any, backend: str) -> Any:
    """The layer's output sequence: the last layer's hidden states in time order, directions concatenated."""
    A = Arrays(backend)
    return A.stack(_layer_input(op, None, S, op.layers, A), axis=1 if op.batch_first else 0)


def final(op: Any, S: Any, cell_state: bool, backend: str) -> Any:
    """h_n (or c_n): every layer-direction's last state, K × B × H."""
    A = Arrays(backend)
    hidden = S.shape[-1] // (2 if op.kind == "LSTM" else 1)
    steps = S.shape[1] - 1
    return A.stack([S[k, steps, :, hidden:] if cell_state else S[k, steps, :, :hidden] for k in range(S.shape[0])])


def scatter(op: Any, S: Any, d_out: Any, d_h: Any, d_c: Any, backend: str) -> Any:
    """∂L/∂S directly from the outputs: ∂L/∂out at the last layer's steps, ∂L/∂h_n and ∂L/∂c_n at each
    layer-direction's last step (absent ones: zeros)."""
    A = Arrays(backend)
    K, steps = S.shape[0], S.shape[1] - 1
    directions = 2 if op.bidirectional else 1
    hidden = S.shape[-1] // (2 if op.kind == "LSTM" else 1)
    lstm = op.kind == "LSTM"
    zero = S[0, 0, :, :hidden] * 0
    h = [[zero] * (steps + 1) for _ in range(K)]
    c = [[zero] * (steps + 1) for _ in range(K)]
    if d_out is not None:
        top = (op.layers - 1) * directions
        for t in range(steps):
            at = d_out[:, t] if op.batch_first else d_out[t]
            for d, part in enumerate(_split(at, directions)):
                n = _step_of(t, d, steps)
                h[top + d][n] = h[top + d][n] + part
    for k in range(K):
        if d_h is not None:
            h[k][steps] = h[k][steps] + d_h[k]
        if d_c is not None and lstm:
            c[k][steps] = c[k][steps] + d_c[k]
    rows = [[A.cat([h[k][n], c[k][n]]) if lstm else h[k][n] for n in range(steps + 1)] for k in range(K)]
    return A.stack([A.stack(per_k) for per_k in rows])


def input_gradient(op: Any, delta: Any, input_weights: list[Any], backend: str) -> Any:
    """∂L/∂x: at each time, Σ over the first layer's directions of δ_t W_ih (input side)."""
    A = Arrays(backend)
    steps = delta.shape[1]
    hidden = input_weights[0].shape[0] // {"RNN": 1, "LSTM": 4, "GRU": 3}[op.kind]
    by_time = []
    for t in range(steps):
        total = 0
        for d, W_ih in enumerate(input_weights):
            side, _ = delta_sides(op, delta[d, _step_of(t, d, steps) - 1], hidden, A)
            total = total + side @ W_ih
        by_time.append(total)
    return A.stack(by_time, axis=1 if op.batch_first else 0)


def weight_gradient(op: Any, delta: Any, x: Any, S: Any, k: int, which: str, backend: str) -> Any:
    """∂L/∂W_ih = Σ_t δ_tᵀ x_t, ∂L/∂W_hh = Σ_t δ_tᵀ h_{t−1}, ∂L/∂b_ih and ∂L/∂b_hh = Σ_t δ_t (summed over the
    batch) of layer-direction k, from its δ (`deltas`)."""
    A = Arrays(backend)
    directions, steps = 2 if op.bidirectional else 1, delta.shape[1]
    hidden = S.shape[-1] // (2 if op.kind == "LSTM" else 1)
    layer, direction = divmod(k, directions)
    inputs = _layer_input(op, x, S, layer, A) if which == "w_ih" else None
    total = 0
    for n in range(1, steps + 1):
        side_x, side_h = delta_sides(op, delta[k, n - 1], hidden, A)
        if which == "w_ih":
            term = A.t(side_x) @ inputs[_time(n, direction, steps)]
        elif which == "w_hh":
            term = A.t(side_h) @ S[k, n - 1, :, :hidden]
        else:
            term = A.total(side_x if which == "b_ih" else side_h)
        total = total + term
    return total


def initial_gradient(op: Any, dS: Any, k: int, cell_state: bool) -> Any:
    """∂L/∂h_0 (or ∂L/∂c_0) of layer-direction k: its state's adjoint at step 0."""
    hidden = dS.shape[-1] // (2 if op.kind == "LSTM" else 1)
    return dS[k, 0, :, hidden:] if cell_state else dS[k, 0, :, :hidden]
