"""Plain training loops: the teacher, then one student per method, with every loss written out.

No trainer framework: a visible ``for epoch / for batch`` loop, so the KD and OT losses stand side by side
in the same lines. The teacher (encoder + intent head) learns English intents; it is then frozen. A
student starts as a copy of the teacher's encoder (the vocabulary is shared) and learns from bitext only:

=====================  ==========================================================================
method                 loss on a batch of (English sentence e, translation x) pairs
=====================  ==========================================================================
``kd-mse``             || s(x) - t(e) ||^2                          (sentence embeddings)
``kd-kl``              T^2 KL(softmax(W t(e) / T) || softmax(W s(x) / T))   (W: the teacher's head)
``ot``                 <P, C>_F, C_ij = 1 - cos(s_i(x), t_j(e)) over the real tokens
``ot+kd``              ``ot`` + ``kd_weight`` x ``kd-mse``
``target-supervised``  cross-entropy of W s(x) with x's own label (the upper bound; labels!)
=====================  ==========================================================================

``zero-shot`` trains nothing: the teacher's encoder is applied to target text as it is.
The teacher's outputs on the English sentences are computed once (it is frozen) and reused.
"""
from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence

from .losses import kd_kl, kd_mse, ot_distill, supervised_ce

from .methods import DISTILLATION_METHODS, METHODS  # noqa: F401 (re-exported for the tests)


@dataclass
class TrainConfig:
    """Every training choice, with its default. Those the OPTICAL paper does not fix are ours."""

    batch_size: int = 32
    lr: float = 5e-4                 # AdamW; higher than fine-tuning rates since the encoder is small
    weight_decay: float = 0.01
    teacher_epochs: int = 30
    student_steps: int = 300         # optimisation steps per student, the same for every budget
    kd_temperature: float = 2.0      # Hinton KD
    ot_eps: float = 0.05             # absolute, on a cosine cost in [0, 2]
    ot_n_iter: int = 50              # fixed Sinkhorn iterations per step (predictable cost)
    ot_grad: str = "envelope"        # "envelope" (P fixed) or "unrolled" (through the iterations)
    ot_cost: str = "cosine"
    kd_weight: float = 1.0           # weight of kd-mse inside ot+kd
    device: str = "cpu"

    def as_dict(self) -> dict:
        return asdict(self)


def shuffled_batches(n: int, batch_size: int, rng: np.random.Generator) -> list:
    order = rng.permutation(n)
    return [order[i:i + batch_size] for i in range(0, n, batch_size)]


# --------------------------------------------------------------------------------------------------
# The teacher
# --------------------------------------------------------------------------------------------------
def train_teacher(encoder, head, tokenizer, train_texts, train_labels, dev_texts, dev_labels, cfg: TrainConfig,
                  seed: int, progress=None) -> dict:
    """Supervised English training; keeps the parameters with the best English dev accuracy."""
    from .evaluate import predict_intents

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    params = list(encoder.parameters()) + list(head.parameters())
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    labels = torch.as_tensor(train_labels)
    best = (-1.0, None)
    history = []
    for epoch in range(cfg.teacher_epochs):
        encoder.train(), head.train()
        total = 0.0
        for idx in shuffled_batches(len(train_texts), cfg.batch_size, rng):
            batch = encoder.batch(tokenizer, [train_texts[i] for i in idx], cfg.device)
            logits = head(encoder(batch).sentence)
            loss = supervised_ce(logits, labels[idx].to(cfg.device))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        dev_acc = float(np.mean(predict_intents(encoder, head, tokenizer, dev_texts, cfg.device) == np.asarray(dev_labels)))
        history.append({"epoch": epoch + 1, "train_loss": total / len(train_texts), "dev_acc": dev_acc})
        if dev_acc > best[0]:
            best = (dev_acc, copy.deepcopy((encoder.state_dict(), head.state_dict())))
        if progress:
            progress(epoch + 1, cfg.teacher_epochs, history[-1])
    encoder.load_state_dict(best[1][0])
    head.load_state_dict(best[1][1])
    encoder.eval(), head.eval()
    return {"best_dev_acc": best[0], "history": history}


# --------------------------------------------------------------------------------------------------
# The frozen teacher's outputs on the English side, computed once
# --------------------------------------------------------------------------------------------------
@dataclass
class TeacherOutputs:
    tokens: list          # per sentence: (L_i, d) states of the real, non-special tokens
    sentence: torch.Tensor  # (N, d)
    logits: torch.Tensor    # (N, n_intents)

    def batch(self, idx):
        """Padded token states and their mask for the sentences ``idx``."""
        tokens = [self.tokens[i] for i in idx]
        padded = pad_sequence(tokens, batch_first=True)
        mask = pad_sequence([torch.ones(len(t), dtype=torch.bool) for t in tokens], batch_first=True)
        return padded, mask, self.sentence[idx], self.logits[idx]


@torch.no_grad()
def teacher_outputs(encoder, head, tokenizer, texts, device="cpu", batch_size=128) -> TeacherOutputs:
    encoder.eval(), head.eval()
    tokens, sentences, logits = [], [], []
    for start in range(0, len(texts), batch_size):
        out = encoder(encoder.batch(tokenizer, texts[start:start + batch_size], device))
        for k in range(out.tokens.shape[0]):
            tokens.append(out.tokens[k][out.token_mask[k]].cpu())
        sentences.append(out.sentence.cpu())
        logits.append(head(out.sentence).cpu())
    return TeacherOutputs(tokens, torch.cat(sentences), torch.cat(logits))


# --------------------------------------------------------------------------------------------------
# The students
# --------------------------------------------------------------------------------------------------
def train_student(method: str, teacher_encoder, head, tokenizer, target_texts, cfg: TrainConfig, seed: int, *,
                  teacher: TeacherOutputs | None = None, target_labels=None, progress=None):
    """Train one student from a copy of the teacher's encoder; returns (student, per-step losses).

    ``teacher`` holds the frozen teacher's outputs on the English side of the pairs (row i of it belongs
    to ``target_texts[i]``); ``target_labels`` are read only by ``target-supervised``.
    """
    if method not in METHODS or method == "zero-shot":
        raise ValueError(f"cannot train a student with method {method!r}; trainable: {METHODS[1:]}")
    if method == "target-supervised" and target_labels is None:
        raise ValueError("target-supervised needs target_labels")
    if method != "target-supervised" and teacher is None:
        raise ValueError(f"{method} needs the teacher's outputs on the English side")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    student = copy.deepcopy(teacher_encoder).to(cfg.device)
    for p in student.parameters():
        p.requires_grad_(True)                       # the copy is trainable even if the teacher is frozen
    head.eval()
    for p in head.parameters():
        p.requires_grad_(False)                      # the teacher's head stays frozen
    optimizer = torch.optim.AdamW(student.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    labels = torch.as_tensor(target_labels) if target_labels is not None else None

    losses, step = [], 0
    n_epochs = math.ceil(cfg.student_steps / math.ceil(len(target_texts) / cfg.batch_size))
    student.train()
    for epoch in range(n_epochs):
        for idx in shuffled_batches(len(target_texts), cfg.batch_size, rng):
            if step == cfg.student_steps:
                break
            s = student(student.batch(tokenizer, [target_texts[i] for i in idx], cfg.device))
            if method == "target-supervised":
                loss = supervised_ce(head(s.sentence), labels[idx].to(cfg.device))
            else:
                t_tokens, t_mask, t_sentence, t_logits = (x.to(cfg.device) for x in teacher.batch(idx))
                if method == "kd-mse":
                    loss = kd_mse(s.sentence, t_sentence)
                elif method == "kd-kl":
                    loss = kd_kl(head(s.sentence), t_logits, cfg.kd_temperature)
                else:  # "ot" and "ot+kd"
                    loss = ot_distill(s.tokens, t_tokens, s.token_mask, t_mask, eps=cfg.ot_eps,
                                      n_iter=cfg.ot_n_iter, grad=cfg.ot_grad, cost=cfg.ot_cost)
                    if method == "ot+kd":
                        loss = loss + cfg.kd_weight * kd_mse(s.sentence, t_sentence)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            step += 1
            if progress:
                progress(step, cfg.student_steps, losses[-1])
    student.eval()
    return student, losses
