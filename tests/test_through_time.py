"""The through-time table (‖∂L/∂h_t‖, ‖∂h_T/∂h_t‖₂) of LSTM, GRU and the cells, against autograd of their
recurrences written out here from torch's documented equations (test_rnn_models.py does the plain RNN)."""

import pytest
import torch

import derive
from derive.report.recurrent import through_time
from tests.models import rnn_zoo

F = torch.nn.functional


def lstm_step(x, h, c, cell):
    """torch's LSTM: gates i, f, g, o from x W_ihᵀ + b_ih + h W_hhᵀ + b_hh; c' = f c + i g; h' = o tanh(c')."""
    W_ih, W_hh, b_ih, b_hh = cell
    i, f, g, o = (x @ W_ih.T + b_ih + h @ W_hh.T + b_hh).chunk(4, dim=-1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


def gru_step(x, h, cell):
    """torch's GRU: r, z from sigmoids; n = tanh(W_in x + b_in + r (W_hn h + b_hn)); h' = (1 − z) n + z h."""
    W_ih, W_hh, b_ih, b_hh = cell
    xr, xz, xn = (x @ W_ih.T + b_ih).chunk(3, dim=-1)
    hr, hz, hn = (h @ W_hh.T + b_hh).chunk(3, dim=-1)
    r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
    return (1 - z) * torch.tanh(xn + r * hn) + z * h


def rnn_step(x, h, cell):
    W_ih, W_hh, b_ih, b_hh = cell
    return torch.tanh(x @ W_ih.T + b_ih + h @ W_hh.T + b_hh)


def _cell(module, suffix=""):
    return tuple(getattr(module, f"{n}{suffix}") for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))


def _recorded(h):
    h.retain_grad()
    return h


def lstm_classifier(module, x, y):
    """(loss, {state: [h_t]}, {state: h_T as a function of h_t}) for LSTMClassifier (time-major)."""
    cell = _cell(module.lstm, "_l0")
    xs = torch.tensor(x, dtype=torch.float64)
    h = c = torch.zeros(xs.shape[1], 2, dtype=torch.float64)
    hs, cs = [], []
    for t in range(xs.shape[0]):
        h, c = lstm_step(xs[t], h, c, cell)
        hs.append(_recorded(h))
        cs.append(c.detach())

    def last(h, t):  # h_T from h_t, the cell state c_t held (it does not depend on h_t)
        c = cs[t]
        for s in range(t + 1, xs.shape[0]):
            h, c = lstm_step(xs[s], h, c, cell)
        return h

    loss = F.cross_entropy(module.fc(hs[-1]), torch.tensor(y))
    return loss, {"state:lstm_l0": hs}, {"state:lstm_l0": last}


def gru_regressor(module, x, y):
    xs = torch.tensor(x, dtype=torch.float64)
    layers = [_cell(module.gru, "_l0"), _cell(module.gru, "_l1")]
    inputs, states, lasts = [xs[:, t] for t in range(xs.shape[1])], {}, {}
    for k, cell in enumerate(layers):
        h, hs = torch.zeros(xs.shape[0], 2, dtype=torch.float64), []
        for t in range(len(inputs)):
            h = _recorded(gru_step(inputs[t], h, cell))
            hs.append(h)
        seen = [v.detach() for v in inputs]

        def last(h, t, cell=cell, seen=seen):  # the layer below's sequence held
            for s in range(t + 1, len(seen)):
                h = gru_step(seen[s], h, cell)
            return h

        states[f"state:gru_l{k}"], lasts[f"state:gru_l{k}"], inputs = hs, last, hs
    prediction = torch.stack([module.fc(h).squeeze(-1) for h in inputs], dim=1)
    return F.mse_loss(prediction, torch.tensor(y, dtype=torch.float64)), states, lasts


def gated_cells(module, x, y):
    xs = torch.tensor(x, dtype=torch.float64)
    lstm, gru = _cell(module.lstm), _cell(module.gru)
    h = c = g = torch.zeros(xs.shape[0], 2, dtype=torch.float64)
    hs, cs, gs = [], [], []
    for t in range(xs.shape[1]):
        h, c = lstm_step(xs[:, t], h, c, lstm)
        g = gru_step(xs[:, t], g, gru)
        hs.append(_recorded(h))
        cs.append(c.detach())
        gs.append(_recorded(g))

    def last_h(h, t):
        c = cs[t]
        for s in range(t + 1, xs.shape[1]):
            h, c = lstm_step(xs[:, s], h, c, lstm)
        return h

    def last_g(g, t):
        for s in range(t + 1, xs.shape[1]):
            g = gru_step(xs[:, s], g, gru)
        return g

    logits = module.out(torch.cat([hs[-1], gs[-1]], dim=1))
    loss = F.binary_cross_entropy_with_logits(logits, torch.tensor(y, dtype=torch.float64))
    return loss, {"state:lstm": hs, "state:gru": gs}, {"state:lstm": last_h, "state:gru": last_g}


def cell_loop(module, x, y):
    xs = torch.tensor(x, dtype=torch.float64)
    cell = _cell(module.cell)
    h, hs, total = torch.zeros(xs.shape[0], 2, dtype=torch.float64), [], 0
    for t in range(3):
        h = _recorded(rnn_step(xs[:, t], h, cell))
        hs.append(h)
        total = total + module.out(h)

    def last(h, t):
        for s in range(t + 1, 3):
            h = rnn_step(xs[:, s], h, cell)
        return h

    return F.mse_loss(total, torch.tensor(y, dtype=torch.float64)), {"state:cell": hs}, {"state:cell": last}


WRITTEN_OUT = {"LSTMClassifier": lstm_classifier, "GRURegressor": gru_regressor, "GatedCells": gated_cells,
               "CellLoop": cell_loop}


@pytest.mark.parametrize("name", sorted(WRITTEN_OUT))
def test_the_through_time_table_is_autograds_of_the_written_out_recurrence(name):
    x, y, loss = rnn_zoo.CASES[name]
    tables = through_time(derive.derive(derive.from_torch(getattr(rnn_zoo, name)(), loss=loss, x=x, y=y)))
    module = getattr(rnn_zoo, name)().double()
    value, states, lasts = WRITTEN_OUT[name](module, x, y)
    value.backward()
    assert set(tables) == set(states)
    for role, rows in tables.items():
        assert [t for t, _, _ in rows] == list(range(1, len(states[role]) + 1))
        for t, (_, delta, jacobian) in enumerate(rows):
            h = states[role][t]
            assert delta == pytest.approx(float(h.grad.norm()), rel=1e-10, abs=1e-15), (role, t)
            J = torch.autograd.functional.jacobian(lambda h0: lasts[role](h0, t), h.detach())
            expected = torch.linalg.matrix_norm(J.reshape(h.numel(), h.numel()), ord=2)
            assert jacobian == pytest.approx(float(expected), rel=1e-10, abs=1e-15), (role, t)
