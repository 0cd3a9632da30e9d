"""Every refusal of the torch reader that no other test reaches: each is one line naming the op and what is
not supported, raised before any work (and never a wrong gradient)."""

import pytest

import derive
from derive.sources.torch_module import UnsupportedModelError

torch = pytest.importorskip("torch")
nn, F = torch.nn, torch.nn.functional


class Attention(nn.Module):
    def __init__(self, heads_q=2, heads_kv=2, **options):
        super().__init__()
        torch.manual_seed(0)
        self.q, self.kv, self.options = nn.Linear(4, 2 * heads_q), nn.Linear(4, 2 * heads_kv), options
        self.heads = heads_q, heads_kv

    def forward(self, x):  # x: batch × 3 tokens × 4
        q = self.q(x).reshape(x.shape[0], 3, self.heads[0], 2).transpose(1, 2)
        k = self.kv(x).reshape(x.shape[0], 3, self.heads[1], 2).transpose(1, 2)
        return F.scaled_dot_product_attention(q, k, k, **self.options).sum(dim=(1, 2))


class Recurrent(nn.Module):
    def __init__(self, **options):
        super().__init__()
        torch.manual_seed(0)
        self.rnn = nn.LSTM(2, 3, batch_first=True, **options)

    def forward(self, x):
        return self.rnn(x)[0][:, -1]


class Function(nn.Module):
    def __init__(self, f):
        super().__init__()
        self.fc, self.f = nn.Linear(2, 2), f

    def forward(self, x):
        return self.f(self.fc(x))


class Embedded(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(5, 2, scale_grad_by_freq=True)

    def forward(self, x):
        return self.embed(x).sum(dim=1)


TOKENS = [[[0.5, -1.0, 0.25, 1.0], [1.0, 0.5, -0.5, 0.0], [0.0, 0.25, 1.5, -1.0]]]
SEQUENCE = [[[0.5, -1.0], [1.0, 0.5], [0.25, 0.0]]]
CASES = {
    "attention dropout": (lambda: Attention(dropout_p=0.25), TOKENS, [[0.5, 0.25]],
                          r"aten.scaled_dot_product_attention.default with dropout_p=0.25 \(it drops at random\)"),
    "grouped-query attention": (lambda: Attention(heads_q=2, heads_kv=1, enable_gqa=True), TOKENS, [[0.5, 0.25]],
                                "enable_gqa with fewer key heads than query heads"),
    "recurrent dropout in train mode": (lambda: Recurrent(num_layers=2, dropout=0.5), SEQUENCE, [[0.5, 0.25, 0.0]],
                                        r"dropout between layers in train mode \(call model.eval\(\)\)"),
    "recurrent without bias": (lambda: Recurrent(bias=False), SEQUENCE, [[0.5, 0.25, 0.0]], "with bias=False"),
    "scatter_add of part of src": (lambda: Function(lambda z: torch.zeros_like(z).scatter_add(
        1, torch.tensor([[1], [0]]), z)), [[1.0, 2.0], [0.5, 0.25]], [[0.5, 0.25], [1.0, 0.0]],
        r"an index of shape \[2, 1\] smaller than src's \[2, 2\]"),
    "division with rounding": (lambda: Function(lambda z: torch.div(z, 2, rounding_mode="floor")), [[1.0, 2.0]],
                               [[0.5, 0.25]], r"rounding_mode='floor' \(it has no gradient\)"),
    "a norm other than 2": (lambda: Function(lambda z: torch.linalg.vector_norm(z, ord=1, dim=1, keepdim=True)),
                            [[1.0, 2.0]], [[0.5]], r"ord=1(\.0)? \(the 2-norm only\)"),
    "a sum to another dtype": (lambda: Function(lambda z: z.sum(dim=1, keepdim=True, dtype=torch.float32)),
                               [[1.0, 2.0]], [[0.5]], r"with dtype=torch.float32"),
    "embedding gradients scaled by frequency": (Embedded, [[0, 3, 3]], [[0.5, 0.25]],
                                                "scale_grad_by_freq or sparse"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_reader_refuses_in_one_line(name):
    make, x, y, message = CASES[name]
    with pytest.raises(UnsupportedModelError, match=message) as refused:
        derive.from_torch(make(), loss="mse", x=x, y=y)
    assert "\n" not in str(refused.value) and "is not supported" in str(refused.value)
