"""The answer key of the exercises: each function adapts a library call to the signature that
``tutorials/exercises/`` asks for.

This folder is the teacher's side: it is not part of the installed ``optical_ref`` package, so students
cannot import it; give students only ``tutorials/exercises/``. Grading with the library's own functions is
refused (see ``python -m optical_ref check --grade``), so this key is for the teacher's own checks:
``python -m optical_ref check kernel-sinkhorn --impl instructor/solutions.py:kernel_sinkhorn``.
"""
from optical_ref import losses, ot, ot_torch


def kernel_sinkhorn(a, b, C, eps):
    return ot.sinkhorn(a, b, C, eps, method="kernel", tol=1e-12, max_iter=1_000_000).plan


def log_sinkhorn(a, b, C, eps):
    return ot.sinkhorn(a, b, C, eps, method="log", tol=1e-12, max_iter=1_000_000).plan


def frobenius(P, C):
    return ot.frobenius(P, C)


def kd_mse(student, teacher):
    return losses.kd_mse(student, teacher)


def kd_kl(student_logits, teacher_logits, T):
    return losses.kd_kl(student_logits, teacher_logits, T)


def ot_loss(X, Y, mask_x, mask_y, eps):
    return ot_torch.ot_loss(X, Y, mask_x, mask_y, eps=eps, tol=1e-12, max_iter=50_000)


def batched_sinkhorn(C, mask_a, mask_b, eps):
    return ot_torch.sinkhorn(None, None, C, eps, mask_a=mask_a, mask_b=mask_b, tol=1e-12, max_iter=20_000).plan
