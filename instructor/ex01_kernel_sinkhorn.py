"""Answer key of exercise kernel-sinkhorn (plan = f(a, b, C, eps): the u/v scaling loop on K = exp(-C/eps)).

Written out with numpy / torch only; graded like a
student's file: `python -m optical_ref check kernel-sinkhorn --impl instructor/ex01_kernel_sinkhorn.py:kernel_sinkhorn`.
"""
import numpy as np
def kernel_sinkhorn(a, b, C, eps):
    K = np.exp(-C / eps)
    v = np.ones(len(b))
    for _ in range(100_000):
        u = a / (K @ v)
        v = b / (K.T @ u)
        if np.abs(u * (K @ v) - a).sum() < 1e-13:
            break
    return u[:, None] * K * v[None, :]
