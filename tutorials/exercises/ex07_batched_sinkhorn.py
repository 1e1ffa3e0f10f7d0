"""Exercise batched-sinkhorn: one torch Sinkhorn for a whole padded batch.

Read first: tutorials/04_sinkhorn_torch.py.

Task. C (B, n, m) float64 tensor; mask_a (B, n), mask_b (B, m) booleans (True = real entry). Return the
plans (B, n, m) for uniform weights over the real entries of each problem, converged to 1e-10 or better,
with exactly zero mass on padded rows and columns. Work on the whole batch at once (no Python loop over
problems): log-domain updates with torch.logsumexp over the last axes.

Hints.
- log a_i = -inf on padding gives f_i = -inf and exp(-inf) = 0: padding drops out by itself.
- Padded cost entries may hold anything: replace them (e.g. by 0) before using them.
- The result is (B, n, m): rows follow mask_a, columns mask_b.

Check: python -m optical_ref check batched-sinkhorn --impl tutorials/exercises/ex07_batched_sinkhorn.py:batched_sinkhorn
"""
import torch  # noqa: F401 (you will need it)


def batched_sinkhorn(C, mask_a, mask_b, eps):
    raise NotImplementedError("batched log-domain Sinkhorn with masks")
