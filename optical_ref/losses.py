r"""The distillation losses, side by side. Each takes the student's and the teacher's outputs for a batch
of (English sentence, translation) pairs and returns a scalar; padding never enters any of them.

``kd_mse``  (Reimers & Gurevych 2020)      mean_b || s_b - t_b ||^2 / d: student sentence embedding of the
                                           translation vs the teacher's embedding of the English sentence.
``kd_kl``   (Hinton et al. 2015)           T^2 KL(softmax(z_t / T) || softmax(z_s / T)), averaged over the
                                           batch; the T^2 keeps gradient scale roughly constant in T.
``ot_distill``  (OPTICAL-style)            mean_b <P_b, C_b>_F with C_ij = 1 - cos(student token i,
                                           teacher token j) over real tokens, P_b from the torch Sinkhorn.
``kd_score``  (retrieval KD)               ``kd_kl`` on retrieval scores: the student's translation and the
                                           teacher's English sentence, each against the batch's documents.
``retrieval_infonce``  (the retrieval teacher)   InfoNCE over same-intent positives (supervised contrastive).
``supervised_ce``                          cross-entropy with labels (the teacher, and the target-supervised
                                           upper bound).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .ot_torch import ot_loss


class NonFiniteValues(ValueError):
    """A loss was given NaN or infinite values (a diverged model, or bad input): never a NaN loss."""


def _check(name: str, **tensors) -> None:
    for what, x in tensors.items():
        if x.ndim == 0 or x.shape[0] == 0:
            raise ValueError(f"{name}: {what} is an empty batch; give at least one row")
        if not torch.isfinite(x).all():
            raise NonFiniteValues(f"{name}: {what} holds NaN or inf (a diverged model?); the loss would be NaN")


def kd_mse(student_sentence: torch.Tensor, teacher_sentence: torch.Tensor) -> torch.Tensor:
    _check("kd_mse", student=student_sentence, teacher=teacher_sentence)
    if student_sentence.shape != teacher_sentence.shape:
        raise ValueError(f"kd_mse needs equal shapes, got {tuple(student_sentence.shape)} and "
                         f"{tuple(teacher_sentence.shape)}")
    return F.mse_loss(student_sentence, teacher_sentence)


def kd_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"the KD temperature must be a finite number > 0, got {temperature}")
    _check("kd_kl", student_logits=student_logits, teacher_logits=teacher_logits)
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"kd_kl needs equal shapes, got {tuple(student_logits.shape)} and {tuple(teacher_logits.shape)}")
    T = temperature
    log_p_student = F.log_softmax(student_logits / T, dim=-1)
    log_p_teacher = F.log_softmax(teacher_logits / T, dim=-1)
    return T * T * F.kl_div(log_p_student, log_p_teacher, log_target=True, reduction="batchmean")


def kd_score(student_scores: torch.Tensor, teacher_scores: torch.Tensor, temperature: float) -> torch.Tensor:
    """Retrieval-score KD: the student's score distribution over documents matches the teacher's.

    Row i of ``teacher_scores`` scores the English sentence e_i, row i of ``student_scores`` its translation x_i,
    each against the same documents (the batch's English sentences, under the teacher's scorer). The loss is
    T^2 KL(softmax(t_i / T) || softmax(s_i / T)), averaged over rows: :func:`kd_kl` applied to scores instead of
    intent logits (the retrieval form of Hinton KD; the choice of documents and scorer is ours).
    """
    return kd_kl(student_scores, teacher_scores, temperature)


def retrieval_infonce(scores: torch.Tensor, labels: torch.Tensor, temperature: float) -> torch.Tensor:
    """InfoNCE with every same-intent document a positive: the retrieval teacher's training loss.

    ``scores`` (B, B): query i (utterance i) against document j (utterance j, the documents' role); ``labels`` (B,)
    their intents. Query i's positives are the other utterances of its intent, its candidates every utterance but
    itself (a sentence retrieving its own copy teaches nothing); per query with at least one positive,
    ``-log( sum_pos exp(s_ij / T) / sum_(j != i) exp(s_ij / T) )``, averaged (Khosla et al. 2020's form, ours).
    """
    _check("retrieval_infonce", scores=scores)
    if scores.ndim != 2 or scores.shape[0] != scores.shape[1] or labels.shape != scores.shape[:1]:
        raise ValueError("retrieval_infonce needs a square (B, B) score matrix and B labels")
    itself = torch.eye(len(labels), dtype=torch.bool, device=scores.device)
    positive = (labels[:, None] == labels[None, :]) & ~itself
    has_positive = positive.any(1)
    if not has_positive.any():
        raise ValueError("retrieval_infonce: no query in the batch has a same-intent document; batch pairs of one intent")
    logits = (scores / temperature).masked_fill(itself, -torch.inf)
    pos = torch.logsumexp(logits.masked_fill(~positive, -torch.inf), dim=1)
    return (torch.logsumexp(logits, dim=1) - pos)[has_positive].mean()


def ot_distill(student_tokens, teacher_tokens, student_mask, teacher_mask, *, eps, n_iter, grad, cost,
               eps_mode="absolute", marginals="uniform", tau=1.0, details=False):
    """Mean over the batch of the per-pair OT loss of :func:`optical_ref.ot_torch.ot_loss`.

    No defaults: the training values come from :class:`optical_ref.config.TrainConfig` (``ot_eps``,
    ``ot_n_iter``, ``ot_grad``, ``ot_cost``, ``ot_eps_mode``, ``ot_marginals``, ``ot_tau``).
    ``details=True`` returns what :func:`optical_ref.ot_torch.ot_loss` computed per pair (losses, plans, costs, eps).
    """
    out = ot_loss(student_tokens, teacher_tokens, student_mask, teacher_mask, eps=eps, cost=cost,
                  eps_mode=eps_mode, n_iter=n_iter, grad=grad, marginals=marginals, tau=tau, details=details)
    return out if details else out.mean()


def supervised_ce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits, labels)
