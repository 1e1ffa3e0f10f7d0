"""Exercise kernel-sinkhorn: the classic Sinkhorn scaling loop.

Read first: tutorials/02_sinkhorn_numpy.py (and the docstring of optical_ref/ot.py, equations (1)-(3)).

Task. Given weights a (n,), b (m,) with equal total mass, a cost C (n, m) and eps > 0, return the
entropic transport plan P (n, m) = diag(u) K diag(v) with K = exp(-C / eps), by alternating

    u <- a / (K v)
    v <- b / (K^T u)

from v = 1, until the rows of P sum to a within 1e-12 in the L1 norm, sum_i |sum_j P_ij - a_i| <= 1e-12
(the columns sum to b after every v-update).

Hints.
- P must have one row per entry of a and one column per entry of b.
- Both updates are needed in every iteration; without the v-update the columns never match b.
- The rows of the current plan sum to u * (K v): use that to decide when to stop.
- Allow many iterations (e.g. up to 100,000): small eps converges slowly.

Check: python -m optical_ref check kernel-sinkhorn --impl tutorials/exercises/ex01_kernel_sinkhorn.py:kernel_sinkhorn
"""
import numpy as np  # noqa: F401 (you will need it)


def kernel_sinkhorn(a, b, C, eps):
    raise NotImplementedError("write the u/v scaling loop")
