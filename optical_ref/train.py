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
``kd-score``           T^2 KL(softmax(S(e, D) / T) || softmax(S(x, D) / T))   (S: the teacher's scorer, D: the
                       batch's English sentences as documents; T: ``score_temperature``)
``target-supervised``  cross-entropy of W s(x) with x's own label (the upper bound; labels!)
=====================  ==========================================================================

``zero-shot`` trains nothing: the teacher's encoder is applied to target text as it is.
The teacher's outputs on the English sentences are computed once (it is frozen) and reused.

A **retrieval teacher** (``teacher_train=retrieval``, OPTICAL's kind) is first trained as a retrieval model on
English only (:func:`train_retrieval_teacher`: an utterance is a query, the other utterances of its intent are its
relevant documents), in a matching space (the encoder's ``projection``); every loss above then reads that space.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence

from .config import TrainConfig  # noqa: F401 (re-exported: the one home of every training choice)
from .losses import NonFiniteValues, kd_kl, kd_mse, kd_score, ot_distill, retrieval_infonce, supervised_ce
from .ot import SinkhornBreakdownError

from .methods import DISTILLATION_METHODS, METHODS  # noqa: F401 (re-exported for the tests)


class TrainingDiverged(ValueError):
    """A loss (or the model's outputs) became non-finite: the run stops and is recorded as failed, never scored."""


def diverged_message(method: str, step: int, cfg) -> str:
    knob = {"kd-kl": f"kd_temperature={cfg.kd_temperature}", "kd-score": f"score_temperature={cfg.score_temperature}",
            "ot": f"ot_eps={cfg.ot_eps}",
            "ot+kd": f"ot_eps={cfg.ot_eps}, kd_weight={cfg.kd_weight}"}.get(method)
    return (f"{method} diverged at step {step}: the loss is not finite; lower lr={cfg.lr}"
            + (f" or check {knob}" if knob else ""))


def shuffled_batches(n: int, batch_size: int, rng: np.random.Generator) -> list:
    order = rng.permutation(n)
    return [order[i:i + batch_size] for i in range(0, n, batch_size)]


# --------------------------------------------------------------------------------------------------
# The teacher
# --------------------------------------------------------------------------------------------------
def train_teacher(encoder, head, tokenizer, train_texts, train_labels, dev_texts, dev_labels, cfg: TrainConfig,
                  seed: int, progress=None) -> dict:
    """Supervised English training; keeps the parameters with the best English dev accuracy.

    ``cfg.teacher_train == "head"``: the encoder stays as it is (a pretrained retrieval model) and only the
    linear intent head learns, on sentence embeddings computed once (see :func:`train_head_only`).
    """
    from .encoder import encode_sentences

    if cfg.teacher_train == "head":
        return train_head_only(encoder, head, tokenizer, train_texts, train_labels, dev_texts, dev_labels, cfg, seed,
                               progress)
    if cfg.teacher_train == "retrieval":   # a retrieval model first; then a linear probe for the head's readers
        retrieval = train_retrieval_teacher(encoder.in_role("query"), encoder.in_role("passage"), tokenizer, train_texts,
                                            train_labels, dev_texts, dev_labels, cfg, seed, progress)
        probe = train_head_only(encoder, head, tokenizer, train_texts, train_labels, dev_texts, dev_labels, cfg, seed)
        return {**probe, "retrieval": retrieval}

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    set_trainable(encoder, cfg.freeze)
    params = [p for p in encoder.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW([{"params": params}, {"params": list(head.parameters()), "lr": cfg.effective_head_lr}],
                                  lr=cfg.effective_teacher_lr, weight_decay=cfg.weight_decay)
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
        with torch.no_grad():
            head.eval()
            dev_pred = head(encode_sentences(encoder, tokenizer, dev_texts, cfg.device).to(cfg.device)).argmax(-1)
        dev_acc = float(np.mean(dev_pred.cpu().numpy() == np.asarray(dev_labels)))
        history.append({"epoch": epoch + 1, "train_loss": total / len(train_texts), "dev_acc": dev_acc})
        if dev_acc > best[0]:
            best = (dev_acc, copy.deepcopy((encoder.state_dict(), head.state_dict())))
        if progress:
            progress(epoch + 1, cfg.teacher_epochs, history[-1])
    encoder.load_state_dict(best[1][0])
    head.load_state_dict(best[1][1])
    encoder.eval(), head.eval()
    return {"best_dev_acc": best[0], "history": history}


def intent_pair_batches(labels, batch_size: int, rng: np.random.Generator) -> list:
    """One epoch of batches in which every utterance has a same-intent partner: each utterance of an intent with at
    least two (in a shuffled order) is an anchor once, beside one other utterance of its intent drawn at random."""
    labels = np.asarray(labels)
    by_intent = {y: np.flatnonzero(labels == y) for y in np.unique(labels)}
    anchors = rng.permutation([i for i in range(len(labels)) if len(by_intent[labels[i]]) > 1])
    batches = []
    for start in range(0, len(anchors), max(1, batch_size // 2)):
        chunk = anchors[start:start + max(1, batch_size // 2)]
        partners = [rng.choice(by_intent[labels[i]][by_intent[labels[i]] != i]) for i in chunk]
        batches.append(np.array(list(dict.fromkeys([*chunk.tolist(), *map(int, partners)]))))
    return batches


def train_retrieval_teacher(queries, docs, tokenizer, train_texts, train_labels, dev_texts, dev_labels, cfg, seed,
                            progress=None) -> dict:
    """English retrieval training of the encoder and its matching space; keeps the epoch with the best English dev
    intent-by-retrieval accuracy (dev utterances retrieve among the training utterances).

    ``queries`` and ``docs`` are the encoder in its two roles (the same weights; e5: "query: "/"passage: "
    prefixes); a projection must be attached (``Encoder.add_projection``). Reads English texts and labels only.
    """
    if queries.projection is None:
        raise ValueError("a retrieval teacher needs a matching space: call encoder.add_projection(proj_dim, seed)")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    set_trainable(queries, cfg.freeze)
    optimizer = torch.optim.AdamW([p for p in queries.parameters() if p.requires_grad], lr=cfg.effective_teacher_lr,
                                  weight_decay=cfg.weight_decay)
    labels = torch.as_tensor(np.asarray(train_labels))
    check = (dev_texts, dev_labels, train_texts, train_labels)
    start = english_dev_retrieval(queries, docs, tokenizer, *check, cfg)
    best, history = (start, copy.deepcopy(queries.state_dict())), []
    for epoch in range(cfg.retrieval_epochs):
        queries.train()
        total, seen = 0.0, 0
        for idx in intent_pair_batches(train_labels, cfg.batch_size, rng):
            loss = retrieval_batch_loss(queries, docs, tokenizer, [train_texts[i] for i in idx], labels[idx], cfg)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total, seen = total + loss.item() * len(idx), seen + len(idx)
        dev = english_dev_retrieval(queries, docs, tokenizer, *check, cfg)
        history.append({"epoch": epoch + 1, "train_loss": total / max(seen, 1), "dev_ir_acc": dev})
        if dev > best[0]:
            best = (dev, copy.deepcopy(queries.state_dict()))
        if progress:
            progress(epoch + 1, cfg.retrieval_epochs, history[-1])
    queries.load_state_dict(best[1])
    queries.eval()
    return {"start_dev_ir_acc": start, "best_dev_ir_acc": best[0], "history": history}


def retrieval_batch_loss(queries, docs, tokenizer, texts, labels, cfg):
    """InfoNCE of one batch under the teacher's scorer; one forward pass when both roles read the same text."""
    from .evaluate import score_matrix

    q = queries(queries.batch(tokenizer, texts, cfg.device))
    d = q if docs.prefix == queries.prefix else docs(docs.batch(tokenizer, texts, cfg.device))
    scores = score_matrix(q.tokens, q.token_mask, d.tokens, d.token_mask, cfg.teacher_scorer)
    return retrieval_infonce(scores, labels.to(scores.device), cfg.retrieval_temperature)


@torch.no_grad()
def english_dev_retrieval(queries, docs, tokenizer, dev_texts, dev_labels, pool_texts, pool_labels, cfg) -> float:
    """Top-1 intent accuracy of English dev utterances retrieving among the training utterances."""
    from .encoder import encode_texts
    from .evaluate import intent_retrieval

    q = encode_texts(queries, tokenizer, dev_texts, cfg.device)
    d = encode_texts(docs, tokenizer, pool_texts, cfg.device)
    return intent_retrieval(q.tokens, q.token_mask, d.tokens, d.token_mask, pool_labels, dev_labels,
                            cfg.teacher_scorer)["top1_acc"]


def train_head_only(encoder, head, tokenizer, train_texts, train_labels, dev_texts, dev_labels, cfg, seed, progress=None):
    """A linear probe: the encoder is frozen (its sentence embeddings are computed once, without dropout) and
    the head is trained on them for ``teacher_epochs`` epochs at ``head_lr``; the best English dev epoch is kept."""
    from .encoder import encode_sentences

    for p in encoder.parameters():
        p.requires_grad_(False)
    train_x = encode_sentences(encoder, tokenizer, train_texts, cfg.device).to(cfg.device)
    dev_x = encode_sentences(encoder, tokenizer, dev_texts, cfg.device).to(cfg.device)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    optimizer = torch.optim.AdamW(head.parameters(), lr=cfg.effective_head_lr, weight_decay=cfg.weight_decay)
    labels, dev_gold = torch.as_tensor(train_labels).to(cfg.device), np.asarray(dev_labels)
    best, history = (-1.0, None), []
    for epoch in range(cfg.teacher_epochs):
        head.train()
        total = 0.0
        for idx in shuffled_batches(len(train_texts), cfg.batch_size, rng):
            loss = supervised_ce(head(train_x[idx]), labels[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        head.eval()
        with torch.no_grad():
            dev_acc = float(np.mean(head(dev_x).argmax(-1).cpu().numpy() == dev_gold))
        history.append({"epoch": epoch + 1, "train_loss": total / len(train_texts), "dev_acc": dev_acc})
        if dev_acc > best[0]:
            best = (dev_acc, copy.deepcopy(head.state_dict()))
        if progress:
            progress(epoch + 1, cfg.teacher_epochs, history[-1])
    head.load_state_dict(best[1])
    head.eval(), encoder.eval()
    return {"best_dev_acc": best[0], "history": history}


# --------------------------------------------------------------------------------------------------
# The frozen teacher's outputs on the English side, computed once
# --------------------------------------------------------------------------------------------------
@dataclass
class TeacherOutputs:
    tokens: list          # per sentence: (L_i, d) states of the real, non-special tokens
    sentence: torch.Tensor  # (N, d)
    logits: torch.Tensor | None   # (N, n_intents); None without an intent head (distil)
    docs: "TeacherOutputs | None" = None   # the same sentences as documents (kd-score), the teacher's passage role

    def batch(self, idx):
        """Padded token states and their mask for the sentences ``idx``."""
        tokens = [self.tokens[i] for i in idx]
        padded = pad_sequence(tokens, batch_first=True)
        mask = pad_sequence([torch.ones(len(t), dtype=torch.bool) for t in tokens], batch_first=True)
        return padded, mask, self.sentence[idx], None if self.logits is None else self.logits[idx]


@torch.no_grad()
def teacher_outputs(encoder, head, tokenizer, texts, device="cpu", batch_size=128) -> TeacherOutputs:
    """The frozen teacher's token states, sentence embeddings and (with a ``head``) intent logits of ``texts``."""
    encoder.eval()
    if head is not None:
        head.eval()
    tokens, sentences, logits = [], [], []
    for start in range(0, len(texts), batch_size):
        out = encoder(encoder.batch(tokenizer, texts[start:start + batch_size], device))
        for k in range(out.tokens.shape[0]):
            tokens.append(out.tokens[k][out.token_mask[k]].cpu())
        sentences.append(out.sentence.cpu())
        if head is not None:
            logits.append(head(out.sentence).cpu())
    return TeacherOutputs(tokens, torch.cat(sentences), torch.cat(logits) if logits else None)


# --------------------------------------------------------------------------------------------------
# The students: one loss function per method, dispatched by name (an unknown method raises)
# --------------------------------------------------------------------------------------------------
def set_trainable(encoder, freeze: str) -> None:
    """All parameters trainable, except: ``embeddings`` the word-embedding matrix; ``embeddings+K`` also the
    position/type embeddings and the lower K transformer layers (backward then stops above them).

    Freezing the word embeddings is the pretrained encoder's CPU default: e5-small's 250k x 384 matrix is 96M
    of its 118M parameters, and the words of a small bitext touch a few thousand of its rows.
    """
    from .config import frozen_layers

    k = frozen_layers(freeze)
    if k is None:
        raise ValueError(f"unknown freeze setting {freeze!r}; choose none, embeddings or embeddings+K")
    for p in encoder.parameters():
        p.requires_grad_(True)
    if k >= 0:
        encoder.model.get_input_embeddings().weight.requires_grad_(False)
    if k >= 1:
        for p in encoder.model.embeddings.parameters():
            p.requires_grad_(False)
        layers = encoder.model.encoder.layer
        if k > len(layers):
            raise ValueError(f"freeze={freeze}: the encoder has only {len(layers)} layers")
        for layer in layers[:k]:
            for p in layer.parameters():
                p.requires_grad_(False)


def _teacher_side(teacher, idx, cfg):
    return (None if x is None else x.to(cfg.device) for x in teacher.batch(idx))


def loss_kd_mse(s, idx, *, teacher, cfg, **_):
    _, _, t_sentence, _ = _teacher_side(teacher, idx, cfg)
    return kd_mse(s.sentence, t_sentence)


def loss_kd_kl(s, idx, *, head, teacher, cfg, **_):
    _, _, _, t_logits = _teacher_side(teacher, idx, cfg)
    return kd_kl(head(s.sentence), t_logits, cfg.kd_temperature)


def _ot_term(s, t_tokens, t_mask, cfg):
    return ot_distill(s.tokens, t_tokens, s.token_mask, t_mask, eps=cfg.ot_eps, eps_mode=cfg.ot_eps_mode,
                      n_iter=cfg.ot_n_iter, grad=cfg.ot_grad, cost=cfg.ot_cost, marginals=cfg.ot_marginals,
                      tau=cfg.ot_tau)


def loss_ot(s, idx, *, teacher, cfg, **_):
    t_tokens, t_mask, _, _ = _teacher_side(teacher, idx, cfg)
    return _ot_term(s, t_tokens, t_mask, cfg)


def loss_ot_kd(s, idx, *, teacher, cfg, **_):
    t_tokens, t_mask, t_sentence, _ = _teacher_side(teacher, idx, cfg)   # padded once for both terms
    return _ot_term(s, t_tokens, t_mask, cfg) + cfg.kd_weight * kd_mse(s.sentence, t_sentence)


def loss_kd_score(s, idx, *, teacher, cfg, **_):
    from .evaluate import score_matrix

    if teacher.docs is None:
        raise ValueError("kd-score needs the teacher's outputs on the English sentences as documents (teacher.docs)")
    t_tokens, t_mask, _, _ = _teacher_side(teacher, idx, cfg)
    d_tokens, d_mask, _, _ = _teacher_side(teacher.docs, idx, cfg)
    with torch.no_grad():
        t_scores = score_matrix(t_tokens, t_mask, d_tokens, d_mask, cfg.teacher_scorer)
    s_scores = score_matrix(s.tokens, s.token_mask, d_tokens, d_mask, cfg.teacher_scorer)
    return kd_score(s_scores, t_scores, cfg.score_temperature)


def loss_target_supervised(s, idx, *, head, labels, cfg, **_):
    return supervised_ce(head(s.sentence), labels[idx].to(cfg.device))


STUDENT_LOSSES = {"kd-mse": loss_kd_mse, "kd-kl": loss_kd_kl, "ot": loss_ot, "ot+kd": loss_ot_kd,
                  "target-supervised": loss_target_supervised, "kd-score": loss_kd_score}
assert set(STUDENT_LOSSES) == set(METHODS) - {"zero-shot"}, "every trainable method needs its loss here"


def frozen_to_eval(encoder, freeze: str) -> None:
    """With ``embeddings+K`` the embeddings and the lower K layers are a fixed feature extractor: no dropout in
    them (eval mode) while the layers above train, so that their output can be computed once (FrozenPrefix)."""
    from .config import frozen_layers

    k = frozen_layers(freeze)
    if k is not None and k >= 1:
        encoder.model.embeddings.eval()
        for layer in encoder.model.encoder.layer[:k]:
            layer.eval()


def train_student(method: str, teacher_encoder, head, tokenizer, target_texts, cfg: TrainConfig, seed: int, *,
                  teacher: TeacherOutputs | None = None, target_labels=None, progress=None, frozen_prefix=None,
                  eval_steps=(), on_eval=None):
    """Train one student from a copy of the teacher's encoder; returns (student, per-step losses).

    ``teacher`` holds the frozen teacher's outputs on the English side of the pairs (row i of it belongs
    to ``target_texts[i]``); ``target_labels`` are read only by ``target-supervised``. ``frozen_prefix`` (an
    :class:`optical_ref.encoder.FrozenPrefix` of ``teacher_encoder`` for ``freeze=embeddings+K``) replaces the
    frozen layers' computation by a look-up: the same numbers, cheaper steps. ``on_eval(step, student, losses)``
    is called (the student in eval mode, no gradient) after each step listed in ``eval_steps``: one run gives a
    learning curve, and its point at step s is the run of s steps (the batches and the random state of the
    first s steps do not depend on the total).
    """
    check_student_inputs(method, head, cfg, teacher, target_labels, frozen_prefix, eval_steps)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    student, optimizer = new_student(teacher_encoder, head, cfg, frozen_prefix)
    compute_loss = STUDENT_LOSSES[method]
    labels = torch.as_tensor(target_labels) if target_labels is not None else None

    losses = []
    student.train()
    frozen_to_eval(student, cfg.freeze)
    for step, idx in enumerate(student_batches(len(target_texts), cfg, rng), start=1):
        s = student(student.batch(tokenizer, [target_texts[i] for i in idx], cfg.device))
        loss = finite_loss(compute_loss, s, idx, method, step, cfg, head=head, teacher=teacher, labels=labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if progress:
            progress(step, cfg.student_steps, losses[-1])
        if step in eval_steps and on_eval is not None:
            evaluate_midway(student, cfg, on_eval, step, losses)
    student.eval()
    return student, losses


def check_student_inputs(method, head, cfg, teacher, target_labels, frozen_prefix, eval_steps) -> None:
    """Everything train_student needs is there and consistent, or a ValueError before any work."""
    from .config import frozen_layers

    if method not in STUDENT_LOSSES:
        raise ValueError(f"cannot train a student with method {method!r}; trainable: {', '.join(STUDENT_LOSSES)}")
    if method == "target-supervised" and target_labels is None:
        raise ValueError("target-supervised needs target_labels")
    if method != "target-supervised" and teacher is None:
        raise ValueError(f"{method} needs the teacher's outputs on the English side")
    if frozen_prefix is not None and frozen_prefix.k != frozen_layers(cfg.freeze):
        raise ValueError(f"the frozen prefix covers {frozen_prefix.k} layers but freeze={cfg.freeze}")
    if any(not 1 <= s <= cfg.student_steps for s in eval_steps):
        raise ValueError(f"eval_steps {list(eval_steps)} must lie in 1..student_steps={cfg.student_steps}")
    if head is None and method in ("kd-kl", "target-supervised"):
        raise ValueError(f"{method} reads the teacher's intent head; none was given")


def new_student(teacher_encoder, head, cfg, frozen_prefix):
    """A trainable copy of the teacher's encoder and its optimiser; the teacher's head is frozen."""
    student = copy.deepcopy(teacher_encoder).to(cfg.device)
    student.frozen_prefix = frozen_prefix
    set_trainable(student, cfg.freeze)               # the copy is trainable even if the teacher is frozen
    if head is not None:
        head.eval()
        for p in head.parameters():
            p.requires_grad_(False)                  # the teacher's head stays frozen
    optimizer = torch.optim.AdamW([p for p in student.parameters() if p.requires_grad], lr=cfg.lr,
                                  weight_decay=cfg.weight_decay)
    return student, optimizer


def student_batches(n: int, cfg, rng):
    """Exactly cfg.student_steps batches of indices, epoch after epoch, each epoch freshly shuffled."""
    step = 0
    while True:
        for idx in shuffled_batches(n, cfg.batch_size, rng):
            if step == cfg.student_steps:
                return
            yield idx
            step += 1


def finite_loss(compute_loss, s, idx, method, step, cfg, **inputs):
    """The loss of one step, or TrainingDiverged (naming method, step and the setting to lower) when the
    student's outputs or the loss stop being finite: a diverged run is never scored."""
    if not (torch.isfinite(s.sentence).all() and torch.isfinite(s.tokens[s.token_mask]).all()):
        raise TrainingDiverged(diverged_message(method, step, cfg))   # the student's outputs, not the loss
    try:
        loss = compute_loss(s, idx, cfg=cfg, **inputs)
    except NonFiniteValues:
        raise TrainingDiverged(diverged_message(method, step, cfg)) from None
    except SinkhornBreakdownError as err:   # eps too small for these costs: the run cannot go on
        raise TrainingDiverged(f"{method} stopped at step {step}: {err}") from None
    if not torch.isfinite(loss):
        raise TrainingDiverged(diverged_message(method, step, cfg))
    return loss


def evaluate_midway(student, cfg, on_eval, step, losses) -> None:
    """on_eval on the student in eval mode without gradients, then back to training (frozen parts stay in eval)."""
    student.eval()
    with torch.no_grad():
        on_eval(step, student, losses)
    student.train()
    frozen_to_eval(student, cfg.freeze)
