"""Answer key of exercise kd-kl (value = f(student_logits, teacher_logits, T): Hinton KD with temperature).

Written out with numpy / torch only; graded like a
student's file: `python -m optical_ref check kd-kl --impl instructor/ex05_kd_kl.py:kd_kl`.
"""
import torch.nn.functional as F
def kd_kl(student_logits, teacher_logits, T):
    return T * T * F.kl_div(F.log_softmax(student_logits / T, -1), F.log_softmax(teacher_logits / T, -1),
                            log_target=True, reduction="batchmean")
