"""Exercise kd-kl: Hinton's knowledge distillation with temperature.

Read first: tutorials/06_kd_loop.py.

Task. Given student and teacher logits (B, K) and a temperature T > 0, return

    T^2 * mean_b KL( softmax(teacher_b / T) || softmax(student_b / T) ).

Hints.
- The teacher's distribution is the target: KL(p_teacher || p_student) = sum_k p_t (log p_t - log p_s).
- Multiply by T^2: it keeps the gradient's scale independent of T (Hinton et al. 2015).
- Use log_softmax for numerical stability; average over the batch, not sum.

Check: python -m optical_ref check kd-kl --impl tutorials/exercises/ex05_kd_kl.py:kd_kl
"""
import torch  # noqa: F401 (you will need it)


def kd_kl(student_logits, teacher_logits, T):
    raise NotImplementedError("T^2 * KL(teacher || student) at temperature T")
