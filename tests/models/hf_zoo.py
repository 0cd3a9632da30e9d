"""Tiny models of the ``transformers`` library, built from a configuration with random weights (nothing is
downloaded): GPT-2 (a language-model head over 3 tokens), BERT (sequence classification) and Llama (RMSNorm,
rotary embeddings, SwiGLU, grouped-query attention). Each wraps the library's model so that ``forward(ids)``
returns logits of shape (tokens or samples) × classes. ``CASES``: (x, y, loss) as in the other zoos."""

import torch
from transformers import (BertConfig, BertForSequenceClassification, GPT2Config, GPT2LMHeadModel, LlamaConfig,
                          LlamaForCausalLM)


class _Logits(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model.eval()

    def forward(self, ids):
        logits = self.model(input_ids=ids).logits
        return logits.reshape(-1, logits.shape[-1])


class TinyGPT2(_Logits):
    def __init__(self):
        torch.manual_seed(41)
        super().__init__(GPT2LMHeadModel(GPT2Config(vocab_size=11, n_positions=8, n_embd=4, n_layer=1, n_head=2,
                                                    resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)))


class TinyBERT(_Logits):
    def __init__(self):
        torch.manual_seed(42)
        super().__init__(BertForSequenceClassification(BertConfig(
            vocab_size=11, hidden_size=4, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8,
            max_position_embeddings=8, num_labels=2, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)))


class TinyLlama(_Logits):
    def __init__(self):
        torch.manual_seed(43)
        super().__init__(LlamaForCausalLM(LlamaConfig(
            vocab_size=11, hidden_size=4, intermediate_size=8, num_hidden_layers=1, num_attention_heads=2,
            num_key_value_heads=1, max_position_embeddings=8)))


CASES = {
    "TinyGPT2": ([[1, 5, 3]], [5, 3, 7], "cross_entropy"),
    "TinyBERT": ([[2, 5, 3, 9]], [1], "cross_entropy"),
    "TinyLlama": ([[1, 5, 3]], [5, 3, 7], "cross_entropy"),
}
