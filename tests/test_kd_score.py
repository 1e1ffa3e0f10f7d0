"""Retrieval-score KD (optical_ref.losses.kd_score) against a hand computation."""
import math

import pytest
import torch

from optical_ref.losses import kd_score


def test_kd_score_equals_the_hand_computed_tempered_kl():
    teacher = torch.tensor([[2.0, 0.0], [0.0, 0.0]])      # two queries, two documents
    student = torch.tensor([[0.0, 0.0], [0.0, 2.0]])
    T = 2.0
    # row 0: p = softmax([1, 0]) = (e/(e+1), 1/(e+1)), q = (1/2, 1/2); row 1: p = (1/2, 1/2), q = softmax([0, 1])
    p0 = (math.e / (math.e + 1), 1 / (math.e + 1))
    q1 = (1 / (math.e + 1), math.e / (math.e + 1))
    kl0 = sum(p * math.log(p / 0.5) for p in p0)
    kl1 = sum(0.5 * math.log(0.5 / q) for q in q1)
    assert kd_score(student, teacher, T).item() == pytest.approx(T * T * (kl0 + kl1) / 2, rel=1e-6)


def test_kd_score_is_zero_when_the_student_scores_as_the_teacher():
    scores = torch.randn(4, 6)
    assert kd_score(scores.clone(), scores, 1.0).item() == pytest.approx(0.0, abs=1e-7)
