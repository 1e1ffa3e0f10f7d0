"""Hidden cases for grading: fresh cases of a reference kind drawn from a seed at grading time, answered by the
library then (so looking up the public expected values gains nothing). Built like the public cases of
:mod:`optical_ref.classroom.reference` (the same ``case`` record), which the files beside this module hold.
"""
from __future__ import annotations

import numpy as np

from . import case, clear_assignment_cost


def _case(name, inputs, expected, tolerance):
    return case(f"hidden-{name}", inputs, expected, tolerance)


def hidden_cases(kind: str, rng: np.random.Generator, n: int, small_eps: bool = True) -> list:
    """``n`` fresh cases of ``kind``; the expected values come from the library. A draw whose reference solve
    does not converge within its budget (Sinkhorn contracts slowly when the cost spread is large against eps)
    is replaced by another draw, so every expected value is exact to far below the tolerance."""
    import warnings

    cases = []
    while len(cases) < n:
        with warnings.catch_warnings():
            warnings.simplefilter("error", category=UserWarning)   # SinkhornConvergenceWarning: draw again
            try:
                cases.append(_hidden_case(kind, rng, len(cases), n, small_eps))
            except UserWarning:
                continue
    return cases


def _hidden_case(kind, rng, k, n, small_eps):
    import torch

    from ... import losses, ot, ot_torch

    seed = int(rng.integers(2**31))
    g = torch.Generator().manual_seed(seed)
    r = np.random.default_rng(seed)
    if kind == "sinkhorn":
        n_rows, n_cols = int(r.integers(2, 8)), int(r.integers(2, 8))
        a, b = r.random(n_rows) + 0.05, r.random(n_cols) + 0.05
        a, b = a / a.sum(), b / b.sum()
        C = r.random((n_rows, n_cols)) * float(r.choice([1.0, 5.0]))
        tiny = small_eps and k == n - 1
        if tiny:   # a clear optimal assignment at eps = 1e-3 max C: only the log domain survives
            n_rows = n_cols = 4
            a = b = np.full(4, 0.25)
            C = clear_assignment_cost(r)
        eps = (1e-3 if tiny else float(r.choice([0.5, 0.1, 0.05]))) * C.max()
        res = ot.sinkhorn(a, b, C, eps, tol=1e-12, max_iter=200_000)
        return _case(f"{k}-{n_rows}x{n_cols}-eps{eps:.2g}", {"a": a, "b": b, "C": C, "eps": eps},
                     {"plan": res.plan, "cost": res.cost}, {"plan": 1e-7, "cost": 1e-7})
    if kind == "frobenius":
        shape = (int(r.integers(1, 7)), int(r.integers(1, 7)))
        P, C = r.random(shape), r.random(shape)
        return _case(f"{k}-{shape[0]}x{shape[1]}", {"P": P, "C": C}, {"value": ot.frobenius(P, C)}, {"value": 1e-12})
    if kind == "kd_mse":
        shape = (int(r.integers(1, 9)), int(r.integers(2, 9)))
        s, t = torch.randn(*shape, generator=g, dtype=torch.float64), torch.randn(*shape, generator=g, dtype=torch.float64)
        return _case(f"{k}-{shape[0]}x{shape[1]}", {"student": s, "teacher": t},
                     {"value": float(losses.kd_mse(s, t))}, {"value": 1e-10})
    if kind == "kd_kl":
        B, m, T = int(r.integers(1, 6)), int(r.integers(2, 7)), float(r.choice([0.5, 1.5, 3.0, 5.0]))
        zs, zt = 3 * torch.randn(B, m, generator=g, dtype=torch.float64), 3 * torch.randn(B, m, generator=g, dtype=torch.float64)
        return _case(f"{k}-{B}x{m}-T{T}", {"student_logits": zs, "teacher_logits": zt, "T": T},
                     {"value": float(losses.kd_kl(zs, zt, T))}, {"value": 1e-10})
    if kind not in ("ot_loss", "batched_sinkhorn"):
        raise ValueError(f"no hidden cases for kind {kind!r}")
    B, n_max, m_max = int(r.integers(2, 5)), int(r.integers(2, 6)), int(r.integers(2, 6))
    mask_a = torch.zeros(B, n_max, dtype=torch.bool)
    mask_b = torch.zeros(B, m_max, dtype=torch.bool)
    for i in range(B):
        mask_a[i, :int(r.integers(1, n_max + 1))] = True
        mask_b[i, :int(r.integers(1, m_max + 1))] = True
    eps = float(r.choice([0.1, 0.2, 0.3]))
    padded = not bool(mask_a.all() and mask_b.all())
    name = f"{k}-B{B}-eps{eps}-" + ("nan-in-padding" if padded else "no-padding")   # says what the case holds
    if kind == "ot_loss":
        d = int(r.integers(2, 7))
        X = torch.randn(B, n_max, d, generator=g, dtype=torch.float64)
        Y = torch.randn(B, m_max, d, generator=g, dtype=torch.float64)
        X_in = torch.where(mask_a[..., None], X, torch.full_like(X, float("nan")))   # NaN in padding
        out = ot_torch.ot_loss(X_in, Y, mask_a, mask_b, eps=eps, tol=1e-12, max_iter=50_000)
        return _case(name, {"X": X_in, "Y": Y, "mask_x": mask_a, "mask_y": mask_b, "eps": eps},
                     {"losses": out}, {"losses": 1e-7})
    C = torch.rand(B, n_max, m_max, generator=g, dtype=torch.float64)
    C_in = torch.where(mask_a[:, :, None] & mask_b[:, None, :], C, torch.full_like(C, float("nan")))
    res = ot_torch.sinkhorn(None, None, C_in, eps, mask_a=mask_a, mask_b=mask_b, tol=1e-12, max_iter=50_000)
    return _case(name, {"C": C_in, "mask_a": mask_a, "mask_b": mask_b, "eps": eps},
                 {"plan": res.plan, "cost": res.cost}, {"plan": 1e-7, "cost": 1e-7})


