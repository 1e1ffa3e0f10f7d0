"""The sentence encoder and the intent head.

The encoder is a small transformer built from a ``transformers.BertConfig`` (default: 2 layers, hidden
size 128, 2 heads: it trains on 2 CPU cores in seconds), or a local pretrained checkpoint loaded with
``from_pretrained(..., local_files_only=True)`` (nothing is downloaded). It returns

- token states H (B, L, d) of the aligned layer (``layer``, the ``ot_layer`` setting; default -1, the last),
  for OT distillation, with ``token_mask`` (B, L):
  True on real word-piece tokens, False on padding and on [CLS]/[SEP] (our choice: the special tokens
  have no counterpart to align across languages);
- the sentence embedding, mean-pooled over all non-padding positions (our choice; Reimers & Gurevych
  2020 use mean pooling too).

A retrieval teacher (``teacher_train=retrieval``) adds a **matching space**: ``projection``, a linear map without
bias from the aligned layer's states to ``proj_dim`` dimensions, applied to the token states and to the sentence
embedding alike (linear, so projecting the mean is the mean of the projections). Everything downstream (the
teacher's scores, the students' losses, the evaluation) then reads the projected vectors; a student's copy of the
encoder carries its own copy of the projection (only the query encoder is distilled, as in OPTICAL).

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
    tokens: torch.Tensor       # (B, L, d) hidden states of the aligned layer (Encoder.layer)
    token_mask: torch.Tensor   # (B, L) bool: real, non-special tokens
    sentence: torch.Tensor     # (B, d) mean over non-padding positions


class Encoder(nn.Module):
    """A transformers encoder plus the pooling above; ``max_length`` truncates long inputs."""

    def __init__(self, model, max_length: int = 64, prefix: str = "", layer: int = -1, prefixes=None):
        super().__init__()
        self.model = model
        self.max_length = min(max_length, model.config.max_position_embeddings)
        self.prefix = prefix      # prepended to every input text
        self.layer = layer        # hidden layer returned as ``tokens`` (OT aligns these); -1: the last
        self.prefixes = dict(prefixes or {})   # role -> prefix; e5: {"query": "query: ", "passage": "passage: "}
        self.frozen_prefix = None # a FrozenPrefix: the frozen lower layers' outputs, looked up instead of recomputed
        self.projection = None    # a retrieval teacher's matching space (nn.Linear without bias), or None

    def prefix_for(self, role: str) -> str:
        return self.prefixes.get(role, "")

    def in_role(self, role: str) -> "Encoder":
        """The same weights in a role: "query" for the students (target-language queries), "passage" for the
        frozen teacher on the English side; e5 prefixes each role's texts, other encoders prefix nothing."""
        return self.with_prefix(self.prefix_for(role))

    def with_prefix(self, prefix: str) -> "Encoder":
        """The same weights (shared, not copied), another text prepended to every input."""
        view = Encoder.__new__(Encoder)
        nn.Module.__init__(view)
        view.model, view.max_length, view.prefix, view.layer = self.model, self.max_length, prefix, self.layer
        view.prefixes, view.frozen_prefix, view.projection = dict(self.prefixes), None, self.projection
        return view

    def add_projection(self, proj_dim: int, seed: int) -> None:
        """A new matching space of ``proj_dim`` dimensions (seeded, so a cached teacher is rebuilt bit for bit)."""
        torch.manual_seed(seed)
        self.projection = nn.Linear(self.model.config.hidden_size, proj_dim, bias=False)

    @property
    def dim(self) -> int:
        """The size of the vectors it returns (the matching space's, when it has one)."""
        return self.projection.out_features if self.projection is not None else self.model.config.hidden_size

    def batch(self, tokenizer, texts, device="cpu"):
        if any(not t or not t.strip() for t in texts):
            raise ValueError("empty sentence in a batch; remove empty texts before encoding")
        enc = tokenizer([self.prefix + t for t in texts], padding=True, truncation=True, max_length=self.max_length,
                        return_tensors="pt", return_special_tokens_mask=True)
        batch = {k: v.to(device) for k, v in enc.items()}
        batch["texts"] = [self.prefix + t for t in texts]   # the frozen-prefix cache's keys
        if self.prefix:   # the prefix's tokens (right after <s>) are not aligned by OT: they are the same in every sentence
            n_prefix = len(tokenizer(self.prefix.strip(), add_special_tokens=False)["input_ids"])
            prefix_mask = torch.zeros_like(batch["attention_mask"], dtype=torch.bool)
            prefix_mask[:, 1:1 + n_prefix] = True
            batch["prefix_mask"] = prefix_mask
        real = batch["attention_mask"].bool() & ~batch["special_tokens_mask"].bool()
        if "prefix_mask" in batch:
            real &= ~batch["prefix_mask"]
        empty = [texts[i] for i in (~real.any(1)).nonzero()[:, 0].tolist()]
        if empty:
            raise ValueError(f"sentence {empty[0]!r} has no tokens after tokenization (only characters the tokenizer "
                             "drops, or max_length too small); remove it or raise max_length")
        return batch

    @property
    def n_layers(self) -> int:
        return self.model.config.num_hidden_layers

    def forward(self, batch) -> Encoded:
        attention = batch["attention_mask"]
        if self.frozen_prefix is not None:
            states, tokens = self.frozen_prefix.forward_upper(self, batch)
        else:
            hidden = self.layer != -1
            out = self.model(input_ids=batch["input_ids"], attention_mask=attention, output_hidden_states=hidden)
            states = out.last_hidden_state
            tokens = out.hidden_states[self.layer] if hidden else states
        token_mask = attention.bool() & ~batch["special_tokens_mask"].bool()
        if "prefix_mask" in batch:
            token_mask = token_mask & ~batch["prefix_mask"]
        weights = attention.unsqueeze(-1).to(states.dtype)
        sentence = (states * weights).sum(1) / weights.sum(1)
        if self.projection is not None:
            tokens, sentence = self.projection(tokens), self.projection(sentence)
        return Encoded(tokens, token_mask, sentence)


class FrozenPrefix:
    """The frozen embeddings and lower ``k`` layers of an encoder, computed once per sentence and looked up.

    With ``freeze=embeddings+K`` the student's first K layers never change, so their output for a sentence is a
    constant: it is computed once (eval mode: frozen layers are a fixed feature extractor, without dropout, in
    the uncached path too, see ``train.frozen_to_eval``) and every step runs only the upper layers forward and
    backward. Keys are the input texts with their role prefix; a row holds the states of the sentence's real
    positions (specials and prefix included) after layer k, and after the aligned layer when that is below k.
    Attached to an encoder (``encoder.frozen_prefix = FrozenPrefix(...)``), it changes nothing but the cost.
    """

    def __init__(self, encoder: "Encoder", tokenizer, k: int, device="cpu", batch_size: int = 128):
        if not 1 <= k <= encoder.n_layers:
            raise ValueError(f"a frozen prefix needs 1 <= k <= {encoder.n_layers} layers, got {k}")
        self.encoder, self.tokenizer, self.k, self.device, self.batch_size = encoder, tokenizer, k, device, batch_size
        self.aligned = encoder.layer % (encoder.n_layers + 1)      # hidden_states index of the aligned layer
        self.rows = {}

    @torch.no_grad()
    def _fill(self, texts) -> None:
        missing = sorted({t for t in texts} - set(self.rows))
        plain = self.encoder.with_prefix("")                  # texts already carry their prefix
        plain.eval()
        for start in range(0, len(missing), self.batch_size):
            chunk = missing[start:start + self.batch_size]
            batch = plain.batch(self.tokenizer, chunk, self.device)
            out = self.encoder.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                                     output_hidden_states=True)
            lengths = batch["attention_mask"].sum(1).tolist()
            for i, text in enumerate(chunk):
                at_k = out.hidden_states[self.k][i, :lengths[i]]
                aligned = out.hidden_states[self.aligned][i, :lengths[i]] if self.aligned < self.k else None
                self.rows[text] = (at_k, aligned)

    def _padded(self, texts, which: int, length: int) -> torch.Tensor:
        rows = [self.rows[t][which] for t in texts]
        out = torch.zeros(len(rows), length, rows[0].shape[-1], dtype=rows[0].dtype, device=rows[0].device)
        for i, r in enumerate(rows):
            out[i, :len(r)] = r
        return out

    def forward_upper(self, encoder: "Encoder", batch) -> tuple:
        """(last hidden states, the aligned layer's states) of ``batch``: the cached prefix, then layers k+1.. of
        ``encoder`` (whose upper layers may be training)."""
        from transformers.masking_utils import create_bidirectional_mask

        texts, attention = batch["texts"], batch["attention_mask"]
        self._fill(texts)
        hidden = self._padded(texts, 0, attention.shape[1])
        mask = create_bidirectional_mask(config=encoder.model.config, inputs_embeds=hidden, attention_mask=attention)
        states = {self.k: hidden}
        for index, layer in enumerate(encoder.model.encoder.layer[self.k:], start=self.k + 1):
            hidden = layer(hidden, mask)
            states[index] = hidden
        aligned = states[self.aligned] if self.aligned >= self.k else self._padded(texts, 1, attention.shape[1])
        return hidden, aligned


def build_encoder(vocab_size: int, seed: int, max_length: int = 64, layer: int = -1, **overrides) -> Encoder:
    """A freshly initialised small BERT encoder (deterministic for a seed)."""
    from transformers import BertConfig, BertModel

    config = BertConfig(vocab_size=vocab_size, **{**DEFAULT_ENCODER, **overrides})
    torch.manual_seed(seed)
    return Encoder(BertModel(config, add_pooling_layer=False), max_length=max_length, layer=layer)


ROLES_FILE = "optical_ref.json"   # beside a checkpoint: {"prefixes": {"query": ..., "passage": ...}}


def load_pretrained_encoder(path, max_length: int = 64, layer: int = -1) -> Encoder:
    """A local pretrained checkpoint (any transformers encoder); its tokenizer is loaded beside it.

    If the folder holds ``optical_ref.json`` (written by :mod:`optical_ref.pretrained`), its role prefixes
    are used (e5: "query: " for target-language queries, "passage: " for the English side).
    """
    import json
    from pathlib import Path

    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"--encoder {path}: no such directory; give a local checkpoint folder with "
                                "config.json, the weights and the tokenizer files (nothing is downloaded)")
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"--encoder {path}: no config.json there; this folder is not a transformers checkpoint")
    try:
        model = _load_model(path)
    except Exception as err:   # OSError, ValueError, safetensors' own error on truncated or damaged weights, ...
        raise ValueError(f"--encoder {path}: cannot load the model; are its weights damaged or cut short? "
                         f"({type(err).__name__}: {(str(err).splitlines() or [''])[0][:200]})") from None
    roles = path / ROLES_FILE
    prefixes = json.loads(roles.read_text(encoding="utf-8")).get("prefixes", {}) if roles.is_file() else {}
    return Encoder(model, max_length=max_length, layer=layer, prefixes=prefixes)


def _load_model(path):
    """The model of a checkpoint folder, without building a pooler (never used) unless the weights hold one: a
    pooler built and left random, or one saved and not built, makes transformers warn on every load."""
    from transformers import AutoModel

    if _saved_keys(path) & {"pooler.dense.weight"}:
        return AutoModel.from_pretrained(str(path), local_files_only=True)
    try:
        return AutoModel.from_pretrained(str(path), local_files_only=True, add_pooling_layer=False)
    except TypeError:   # a model class without that argument
        return AutoModel.from_pretrained(str(path), local_files_only=True)


def _saved_keys(path) -> set:
    """The tensor names of ``model.safetensors`` (read from its header), or an empty set."""
    weights = path / "model.safetensors"
    if not weights.is_file():
        return set()
    from safetensors import safe_open
    with safe_open(str(weights), framework="pt") as fh:
        return set(fh.keys())


@torch.no_grad()
def encode_texts(encoder, tokenizer, texts, device="cpu", batch_size=128) -> Encoded:
    """Token states (padded to the longest sentence), token masks and sentence embeddings of ``texts``
    (eval mode, no gradient), in batches, on the CPU."""
    encoder.eval()
    parts = [encoder(encoder.batch(tokenizer, texts[i:i + batch_size], device))
             for i in range(0, len(texts), batch_size)]
    length = max(p.tokens.shape[1] for p in parts)

    def pad(x, value):
        return torch.nn.functional.pad(x.cpu(), (0, 0, 0, length - x.shape[1]) if x.dim() == 3 else
                                       (0, length - x.shape[1]), value=value)

    return Encoded(torch.cat([pad(p.tokens, 0.0) for p in parts]), torch.cat([pad(p.token_mask, False) for p in parts]),
                   torch.cat([p.sentence.cpu() for p in parts]))


@torch.no_grad()
def encode_sentences(encoder, tokenizer, texts, device="cpu", batch_size=128) -> torch.Tensor:
    """Sentence embeddings of ``texts`` (eval mode, no gradient), in batches, on the CPU."""
    encoder.eval()
    out = [encoder(encoder.batch(tokenizer, texts[i:i + batch_size], device)).sentence.cpu()
           for i in range(0, len(texts), batch_size)]
    return torch.cat(out)


class IntentHead(nn.Module):
    def __init__(self, dim: int, n_intents: int):
        super().__init__()
        self.linear = nn.Linear(dim, n_intents)

    def forward(self, sentence: torch.Tensor) -> torch.Tensor:
        return self.linear(sentence)
