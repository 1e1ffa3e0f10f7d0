"""The sentence encoder and the intent head.

The encoder is a small transformer built from a ``transformers.BertConfig`` (default: 2 layers, hidden
size 128, 2 heads: it trains on 2 CPU cores in seconds), or a local pretrained checkpoint loaded with
``from_pretrained(..., local_files_only=True)`` (nothing is downloaded). It returns

- token states H (B, L, d), the last hidden layer, for OT distillation, with ``token_mask`` (B, L):
  True on real word-piece tokens, False on padding and on [CLS]/[SEP] (our choice: the special tokens
  have no counterpart to align across languages);
- the sentence embedding, mean-pooled over all non-padding positions (our choice; Reimers & Gurevych
  2020 use mean pooling too).

The intent head is one linear layer on the sentence embedding; the teacher trains it on English, and
every student is evaluated through the teacher's (frozen) head.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

DEFAULT_ENCODER = {"hidden_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2,
                   "intermediate_size": 256, "max_position_embeddings": 64, "hidden_dropout_prob": 0.1,
                   "attention_probs_dropout_prob": 0.1}


@dataclass
class Encoded:
    tokens: torch.Tensor       # (B, L, d) last hidden states
    token_mask: torch.Tensor   # (B, L) bool: real, non-special tokens
    sentence: torch.Tensor     # (B, d) mean over non-padding positions


class Encoder(nn.Module):
    """A transformers encoder plus the pooling above; ``max_length`` truncates long inputs."""

    def __init__(self, model, max_length: int = 64):
        super().__init__()
        self.model = model
        self.max_length = min(max_length, model.config.max_position_embeddings)

    @property
    def dim(self) -> int:
        return self.model.config.hidden_size

    def batch(self, tokenizer, texts, device="cpu"):
        if any(not t or not t.strip() for t in texts):
            raise ValueError("empty sentence in a batch; remove empty texts before encoding")
        enc = tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_length,
                        return_tensors="pt", return_special_tokens_mask=True)
        return {k: v.to(device) for k, v in enc.items()}

    def forward(self, batch) -> Encoded:
        attention = batch["attention_mask"]
        out = self.model(input_ids=batch["input_ids"], attention_mask=attention)
        states = out.last_hidden_state
        token_mask = attention.bool() & ~batch["special_tokens_mask"].bool()
        weights = attention.unsqueeze(-1).to(states.dtype)
        sentence = (states * weights).sum(1) / weights.sum(1)
        return Encoded(states, token_mask, sentence)


def build_encoder(vocab_size: int, seed: int, **overrides) -> Encoder:
    """A freshly initialised small BERT encoder (deterministic for a seed)."""
    from transformers import BertConfig, BertModel

    config = BertConfig(vocab_size=vocab_size, **{**DEFAULT_ENCODER, **overrides})
    torch.manual_seed(seed)
    return Encoder(BertModel(config, add_pooling_layer=False))


def load_pretrained_encoder(path) -> Encoder:
    """A local pretrained checkpoint (any transformers encoder); its tokenizer is loaded beside it."""
    from pathlib import Path

    from transformers import AutoModel

    if not Path(path).is_dir():
        raise FileNotFoundError(f"--encoder {path}: no such directory; give a local checkpoint folder with "
                                "config.json, the weights and the tokenizer files (nothing is downloaded)")
    return Encoder(AutoModel.from_pretrained(str(path), local_files_only=True))


class IntentHead(nn.Module):
    def __init__(self, dim: int, n_intents: int):
        super().__init__()
        self.linear = nn.Linear(dim, n_intents)

    def forward(self, sentence: torch.Tensor) -> torch.Tensor:
        return self.linear(sentence)
