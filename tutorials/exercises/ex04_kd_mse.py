"""Exercise kd-mse: sentence-embedding distillation (Reimers & Gurevych 2020).

Read first: tutorials/06_kd_loop.py.

Task. Given student embeddings (B, d) of the translations and teacher embeddings (B, d) of the English
sentences (float64 torch tensors), return the mean squared error over all B x d entries (a scalar).

Hints.
- Average, do not sum: the loss should not grow with the batch size or the dimension.
- It is the squared error, not its square root.

Check: python -m optical_ref check kd-mse --impl tutorials/exercises/ex04_kd_mse.py:kd_mse
"""
import torch  # noqa: F401 (you will need it)


def kd_mse(student, teacher):
    raise NotImplementedError("mean of (student - teacher) ** 2")
