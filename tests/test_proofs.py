"""The proofs of the tensor rules: every rule a program uses holds against the scalar derivation of a small
instance of the same op (exactly, or to 40 of 50 digits); a planted wrong rule is caught, naming the op and
the entry; proofs are cached by configuration."""

import json

import pytest

import derive
from derive.cli import main
from derive.ops.conv import Conv
from derive.ops.linalg import Linear
from derive.ops.reduce import Softmax
from derive.tensor import proof
from derive.tensor.expr import call
from tests.models import cnn_zoo, graph_zoo, modern_zoo


@pytest.fixture(autouse=True)
def fresh_cache(tmp_path, monkeypatch):
    """A cache of proofs of this test's own, and no program built under a planted rule kept for later tests."""
    from derive.tensor.program import build

    monkeypatch.setenv("DERIVE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(proof, "_shipped", dict)
    build.cache_clear()
    yield
    build.cache_clear()


def _model(zoo, name):
    x, y, loss = zoo.CASES[name]
    return derive.from_torch(getattr(zoo, name)(), loss=loss, x=x, y=y)


@pytest.mark.parametrize("zoo, name", [(modern_zoo, "GPTBlock"), (modern_zoo, "SwiGLU"), (graph_zoo, "Everything"),
                                       (cnn_zoo, "TinyCNN"), (modern_zoo, "FiveLosses")])
def test_every_rule_a_program_uses_holds(zoo, name):
    proofs = proof.prove(_model(zoo, name))
    assert proofs and all(p.holds for p in proofs), [p.statement() for p in proofs if not p.holds]
    assert {p.arithmetic for p in proofs} >= {"exact"}
    assert all(p.entries > 0 for p in proofs)


def test_a_softmax_rule_without_its_off_diagonal_terms_is_caught(monkeypatch):
    monkeypatch.setattr(Softmax, "tensor_rule", lambda self, g, inputs, parts, wanted, shapes, shape: [parts[""] * g])
    proofs = proof.prove(_model(graph_zoo, "AttentionHead"), cache=False)
    failed = [p for p in proofs if not p.holds]
    assert failed and failed[0].op.startswith("softmax(dim=")
    assert "entry (" in failed[0].failure and "the scalar derivation" in failed[0].failure


def test_a_linear_weight_rule_that_forgets_the_transpose_is_caught(monkeypatch, capsys):
    def wrong(self, g, inputs, parts, wanted, shapes, shape):
        return [g @ inputs[1] if wanted[0] else None, call("transpose", inputs[0]) @ g if wanted[1] else None,
                call("sum", g, dims=(0,), keepdim=False) if len(inputs) > 2 and wanted[2] else None]

    monkeypatch.setattr(Linear, "tensor_rule", wrong)
    status = main(["grads", "--torch", f"{graph_zoo.__file__}:ResidualBlock", "--x", "1,1;0.5,-1", "--y", "0;1",
                   "--loss", "bce", "--form", "tensor", "--prove", "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    assert status == 1
    failed = [p for p in doc["proofs"] if not p["holds"]]
    assert failed and failed[0]["op"].startswith("linear(") and "FAILS: input" in failed[0]["statement"]


def test_a_conv_input_rule_without_the_turned_kernel_is_caught(monkeypatch):
    right = Conv.tensor_rule

    def unturned(self, g, inputs, parts, wanted, shapes, shape):  # Δ ∗ K where the rule is Δ ∗ rot180(K)
        rules = right(self, g, inputs, parts, wanted, shapes, shape)
        if rules[0] is not None:
            full = rules[0]
            rules[0] = call("conv.full", full.args[0], inputs[1], **dict(full.options))
        return rules

    monkeypatch.setattr(Conv, "tensor_rule", unturned)
    proofs = proof.prove(_model(cnn_zoo, "DilatedGroups"), cache=False)
    failed = [p for p in proofs if not p.holds]
    assert failed and failed[0].op.startswith("conv(") and failed[0].arithmetic == "exact"
    assert failed[0].failure.startswith("input 0, entry (")


@pytest.mark.parametrize("name", ["DilatedGroups", "SamePadding", "StridedConv1d", "StridedTanh"])
def test_conv_rules_are_the_textbook_ones_and_proved_exactly(name):
    proofs = [p for p in proof.prove(_model(cnn_zoo, name)) if p.op.startswith("conv(")]
    assert proofs and all(p.holds and p.arithmetic == "exact" for p in proofs)
    rules = "\n".join(line for p in proofs for line in p.rule)
    assert "conv.weight(I0, G;" in rules
    if name != "StridedTanh":  # its only conv reads the data, whose gradient is not wanted
        assert "conv.full(G, conv.rot180(I1; groups=" in rules


def test_proofs_are_cached_by_configuration(monkeypatch):
    model = _model(graph_zoo, "ResidualBlock")
    first = proof.prove(model)
    monkeypatch.setattr(proof, "prove_configuration", lambda config: pytest.fail("proved again"))
    assert proof.prove(model) == first


def test_attention_rule_is_the_textbook_one_and_proved_in_50_digits():
    proofs = [p for p in proof.prove(_model(modern_zoo, "EncoderLayer")) if p.op.startswith("attention(")]
    assert proofs and all(p.holds and p.arithmetic == "50-digit" for p in proofs)
    rules = "\n".join(proofs[0].rule)
    assert "dO_weights = G @ transpose(I2)" in rules  # ∂L/∂A = ∂L/∂O Vᵀ
    assert "dO_scores = O_weights*(dO_weights - sum(dO_weights*O_weights; dims=[-1], keepdim=true))" in rules
    assert "dI0 = attention.scale(dO_scores @ I1;" in rules and "dI2 = transpose(O_weights) @ G" in rules


def test_an_attention_rule_without_its_scale_is_caught(monkeypatch):
    from derive.ops.attention import Attention

    right = Attention.tensor_rule

    def unscaled(self, g, inputs, parts, wanted, shapes, shape):  # ∂Q = ∂L/∂S K where the rule has K/√d
        rules = right(self, g, inputs, parts, wanted, shapes, shape)
        if rules[0] is not None and rules[0].fn == "attention.scale":
            rules[0] = rules[0].args[0]
        return rules

    monkeypatch.setattr(Attention, "tensor_rule", unscaled)
    proofs = proof.prove(_model(modern_zoo, "EncoderLayer"), cache=False)
    failed = [p for p in proofs if not p.holds]
    assert failed and failed[0].op.startswith("attention(") and failed[0].failure.startswith("input 0, entry (")


def test_a_cached_proof_of_another_rule_is_proved_anew(monkeypatch):
    model = _model(graph_zoo, "ResidualBlock")
    first = proof.prove(model)
    cache = proof._user_cache()
    known = json.loads(cache.read_text())
    for entry in known.values():
        entry["rule"] = ["dI0 = G"]  # what an older derive proved
    cache.write_text(json.dumps(known))
    proved = []
    monkeypatch.setattr(proof, "prove_configuration", lambda config, real=proof.prove_configuration: proved.append(1)
                        or real(config))
    assert proof.prove(model) == first and len(proved) == len(first)


@pytest.mark.parametrize("plant, name", [("through_hidden", "SentimentRNN"), ("through_cell", "LSTMClassifier")])
def test_a_recurrent_rule_without_its_recurrence_is_caught(monkeypatch, plant, name):
    """BPTT that drops δ_{t+1} W_hh (an RNN's recurrent term) or the forget gate's f ⊙ ∂L/∂c_{t+1} (an LSTM's
    cell path) fails its proof, naming the op and an entry."""
    from derive.ops import recurrent_steps
    from tests.models import rnn_zoo

    monkeypatch.setattr(recurrent_steps, plant, lambda *args: 0)
    proofs = proof.prove(_model(rnn_zoo, name), cache=False)
    failed = [p for p in proofs if not p.holds]
    assert failed and failed[0].op.startswith("recurrent(") and ", entry (" in failed[0].failure, \
        [p.statement() for p in proofs]


@pytest.mark.parametrize("name", ["LSTMClassifier", "GRURegressor", "ReluRNNWithState", "BiLSTM"])
def test_a_recurrent_layer_is_one_op_whose_rule_is_proved(name):
    from tests.models import rnn_zoo

    zoo = rnn_zoo if name in rnn_zoo.CASES else modern_zoo
    proofs = [p for p in proof.prove(_model(zoo, name), cache=False) if p.op.startswith("recurrent(")]
    assert len(proofs) == 1 and proofs[0].holds and proofs[0].entries > 0, [p.statement() for p in proofs]
    assert max(proofs[0].shapes[0]) <= 3  # the instance: T ≤ 3, batch ≤ 2, input ≤ 3
    rules = "\n".join(proofs[0].rule)
    assert "dO_h = recurrent.bptt(G, I0," in rules and "recurrent.w_hh(dO_z, O;" in rules
