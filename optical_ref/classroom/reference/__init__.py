"""Reference outputs: versioned inputs and expected outputs for checking outside implementations.

Each ``*.json`` file beside this module holds one kind of computation, in a form any language can read::

    {"format": "optical-ref reference outputs", "schema": 1, "version": "<optical-ref version>",
     "kind": "sinkhorn", "signature": "plan = f(a, b, C, eps)", "description": "...",
     "cases": [{"name": ..., "inputs": {...}, "expected": {...}, "tolerance": {...}}, ...]}

Arrays are nested lists (row-major); booleans are true/false; every expected value carries the absolute
tolerance it is held to. The kinds:

================  ==========================================  ===============================================
kind              signature                                   expected
================  ==========================================  ===============================================
sinkhorn          plan = f(a, b, C, eps)                      plan, f, g (log convention), cost; converged to
                                                              ||P 1 - a||_1 <= 1e-12; eps from 1 down to 1e-4
                                                              of max(C) (at 1e-4, K underflows: the log domain is needed)
sinkhorn_fixed    plan = f(a, b, C, eps, n_iter)              the training setting: C = 1 - cos of token vectors,
                                                              eps 0.05, exactly 50 iterations (not converged);
                                                              plan, f, g, cost
exact_ot          (plan, cost) = f(a, b, C)                   the LP optimum (plans unique in these cases)
batched_sinkhorn  plan = f(C, mask_a, mask_b, eps)            padded batches, uniform weights on real entries
                                                              (B, n, m); zero on padding
frobenius         value = f(P, C)                             <P, C>_F
kd_mse            value = f(student, teacher)                 mean squared error over all entries
kd_kl             value = f(student_logits, teacher_logits, T)  T^2 KL(softmax(z_t/T) || softmax(z_s/T)), batch mean
ot_loss           losses = f(X, Y, mask_x, mask_y, eps)       per pair <P, C>_F, C = 1 - cos; plus the
                                                              envelope gradient d sum(losses) / d X
================  ==========================================  ===============================================

``python -m optical_ref reference regenerate`` rebuilds the files from the library; a test fails when the
stored files drift from what the library computes. ``python -m optical_ref reference verify --impl
FILE.py:FUNCTION --kind KIND`` checks an outside implementation against them.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ... import __version__

HERE = Path(__file__).resolve().parent
SCHEMAS = ("reference.schema.json", "results.schema.json")   # the formats, beside the files
def _lists(x):
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return x


def case(name, inputs, expected, tolerance):
    """One reference case: arrays as nested lists, every expected field with its absolute tolerance. NaN in an
    input (padding may hold anything) is written as null: standard JSON has no NaN, and every reader maps it
    back (numpy: ``np.asarray(x, dtype=float)``)."""
    return {"name": name, "inputs": {k: _nan_as_null(_lists(v)) for k, v in inputs.items()},
            "expected": {k: _lists(v) for k, v in expected.items()}, "tolerance": tolerance}


def _nan_as_null(x):
    if isinstance(x, list):
        return [_nan_as_null(v) for v in x]
    return None if isinstance(x, float) and x != x else x


# --------------------------------------------------------------------------------------------------
# Building the cases from the library
# --------------------------------------------------------------------------------------------------
def clear_assignment_cost(rng: np.random.Generator, n: int = 4) -> np.ndarray:
    """An n x n cost with one clear optimal assignment (a random permutation costs 0..2, the rest 5..10), so
    that Sinkhorn converges in few iterations even at eps = 1e-3 x max C."""
    C = 10 * (0.5 + 0.5 * rng.random((n, n)))
    C[np.arange(n), rng.permutation(n)] = 2 * rng.random(n)
    return C


def _problems():
    rng = np.random.default_rng(2024)
    a5 = rng.random(5) + 0.1
    b7 = rng.random(7) + 0.1
    C57 = rng.random((5, 7))
    C88 = rng.random((8, 8))
    a6, b6, C66 = rng.random(6) + 0.1, rng.random(6) + 0.1, rng.random((6, 6))
    # small eps (1e-3 of max C) with a clear optimal assignment, so that Sinkhorn converges in few steps
    C44 = clear_assignment_cost(rng)
    return [
        ("pot-docstring-2x2", [0.5, 0.5], [0.5, 0.5], [[0.0, 1.0], [1.0, 0.0]], 1.0),
        ("random-5x7-eps0.1", a5 / a5.sum(), b7 / b7.sum(), C57, 0.1),
        ("random-5x7-eps0.01", a5 / a5.sum(), b7 / b7.sum(), C57, 0.01),
        ("uniform-8x8-eps0.05", np.full(8, 1 / 8), np.full(8, 1 / 8), C88, 0.05),
        ("square-unequal-weights-6x6-eps0.1", a6 / a6.sum(), b6 / b6.sum(), C66, 0.1),
        ("single-source-1x3", [1.0], [0.2, 0.5, 0.3], [[0.4, 0.1, 0.9]], 0.05),
        ("zero-mass-row-3x4-inf-potential", [0.5, 0.0, 0.5], [0.25, 0.25, 0.25, 0.25], rng.random((3, 4)), 0.1),
        ("small-eps-4x4-eps1e-3-of-maxC", np.full(4, 1 / 4), np.full(4, 1 / 4), C44, 1e-3 * C44.max()),
        ("small-eps-4x4-eps1e-4-of-maxC-kernel-underflows", np.full(4, 1 / 4), np.full(4, 1 / 4), C44,
         1e-4 * C44.max()),
    ]


def build_sinkhorn():
    from ...ot import sinkhorn
    cases = []
    for name, a, b, C, eps in _problems():
        res = sinkhorn(a, b, C, eps, tol=1e-12, max_iter=1_000_000)
        f = np.where(np.isfinite(res.f), res.f, None)
        cases.append(case(name, {"a": np.asarray(a, float), "b": np.asarray(b, float), "C": np.asarray(C, float),
                                  "eps": eps},
                           {"plan": res.plan, "f": f, "g": res.g, "cost": res.cost},
                           {"plan": 1e-7, "cost": 1e-7, "f_g_up_to_constant": 1e-6}))
    return cases


def build_sinkhorn_fixed():
    """The plan that training computes: cosine cost between token vectors, eps 0.05, 50 fixed iterations."""
    from ...ot import cosine_cost, sinkhorn
    rng = np.random.default_rng(50)
    cases = []
    for name, n, m, n_iter in (("training-setting-7x9-50-iterations", 7, 9, 50),
                               ("training-setting-12x5-50-iterations", 12, 5, 50),
                               ("training-setting-6x6-3-iterations", 6, 6, 3)):
        C = cosine_cost(rng.normal(size=(n, 16)), rng.normal(size=(m, 16)))
        a, b = np.full(n, 1 / n), np.full(m, 1 / m)
        res = sinkhorn(a, b, C, 0.05, n_iter=n_iter)
        cases.append(case(name, {"a": a, "b": b, "C": C, "eps": 0.05, "n_iter": n_iter},
                           {"plan": res.plan, "f": res.f, "g": res.g, "cost": res.cost},
                           {"plan": 1e-9, "cost": 1e-9, "f_g_up_to_constant": 1e-9}))
    return cases


def build_exact_ot():
    from ...ot import exact_ot
    rng = np.random.default_rng(7)
    cases = []
    for n in (3, 6):
        C = rng.random((n, n))
        plan, cost = exact_ot(None, None, C)
        cases.append(case(f"permutation-{n}x{n}", {"a": np.full(n, 1 / n), "b": np.full(n, 1 / n), "C": C},
                           {"plan": plan, "cost": cost}, {"plan": 1e-8, "cost": 1e-9}))
    a, b, C = np.array([0.5, 0.3, 0.2]), np.array([0.6, 0.4]), np.array([[0.0, 2.0], [1.0, 0.5], [3.0, 1.0]])
    plan, cost = exact_ot(a, b, C)
    cases.append(case("unequal-3x2", {"a": a, "b": b, "C": C}, {"plan": plan, "cost": cost},
                       {"plan": 1e-8, "cost": 1e-9}))
    return cases


def _padded_batch(seed):
    import torch
    g = torch.Generator().manual_seed(seed)
    sizes = [(3, 5), (4, 4), (1, 2)]
    C = torch.rand(3, 4, 5, generator=g, dtype=torch.float64)
    mask_a = torch.zeros(3, 4, dtype=torch.bool)
    mask_b = torch.zeros(3, 5, dtype=torch.bool)
    for k, (n, m) in enumerate(sizes):
        mask_a[k, :n] = True
        mask_b[k, :m] = True
    return C, mask_a, mask_b


def build_batched_sinkhorn():
    from ...ot_torch import sinkhorn
    cases = []
    for eps, garbage in ((0.1, None), (0.03, None), (0.05, 1e6), (0.1, float("nan")), (0.1, "no padding")):
        C, mask_a, mask_b = _padded_batch(11)
        if garbage == "no padding":   # every entry real: the masks are all True
            mask_a, mask_b = torch_ones_like(mask_a), torch_ones_like(mask_b)
        elif garbage is not None:   # padded entries may hold anything, even NaN: a solver must never read them
            real = mask_a[:, :, None] & mask_b[:, None, :]
            C = torch_where(real, C, garbage)
        C = C.clone().requires_grad_(True)
        res = sinkhorn(None, None, C, eps, mask_a=mask_a, mask_b=mask_b, tol=1e-12, max_iter=1_000_000,
                       grad="envelope")
        res.cost.sum().backward()
        name = {None: f"padded-batch-eps{eps}", 1e6: f"padded-batch-eps{eps}-garbage-1e6-in-padding",
                "no padding": f"full-batch-eps{eps}-no-padding"}.get(garbage, f"padded-batch-eps{eps}-nan-in-padding")
        cases.append(case(name, {"C": C, "mask_a": mask_a, "mask_b": mask_b, "eps": eps},
                           {"plan": res.plan, "cost": res.cost, "envelope_grad_C": C.grad},
                           {"plan": 1e-7, "cost": 1e-7, "envelope_grad_C": 1e-7}))
    return cases


def torch_ones_like(mask):
    import torch
    return torch.ones_like(mask)


def torch_where(mask, x, value):
    import torch
    return torch.where(mask, x, torch.full_like(x, value))


def build_frobenius():
    from ...ot import frobenius
    rng = np.random.default_rng(3)
    cases = []
    for name, shape in (("random-3x4", (3, 4)), ("single-entry-1x1", (1, 1)), ("sparse-plan-5x2", (5, 2))):
        P, C = rng.random(shape), rng.random(shape)
        if name.startswith("sparse"):
            P[P < 0.5] = 0.0
        cases.append(case(name, {"P": P, "C": C}, {"value": frobenius(P, C)}, {"value": 1e-12}))
    return cases


def build_kd_mse():
    import torch
    from ...losses import kd_mse
    g = torch.Generator().manual_seed(5)
    cases = []
    for shape in ((4, 6), (1, 3), (8, 2)):
        s, t = torch.randn(*shape, generator=g, dtype=torch.float64), torch.randn(*shape, generator=g, dtype=torch.float64)
        cases.append(case(f"random-{shape[0]}x{shape[1]}", {"student": s, "teacher": t},
                           {"value": float(kd_mse(s, t))}, {"value": 1e-10}))
    return cases


def build_kd_kl():
    import torch
    from ...losses import kd_kl
    g = torch.Generator().manual_seed(6)
    zs, zt = torch.randn(4, 5, generator=g, dtype=torch.float64), torch.randn(4, 5, generator=g, dtype=torch.float64)
    return [case(f"random-4x5-T{T}", {"student_logits": zs, "teacher_logits": zt, "T": T},
                  {"value": float(kd_kl(zs, zt, T))}, {"value": 1e-10}) for T in (1.0, 2.0, 4.0)]


def build_ot_loss():
    import torch
    from ...ot_torch import ot_loss
    cases = []
    for seed, eps, d, garbage in ((8, 0.05, 6, None), (9, 0.1, 4, None), (10, 0.05, 5, 1e3),
                                  (11, 0.1, 5, float("nan")), (12, 0.1, 4, "no padding")):
        g = torch.Generator().manual_seed(seed)
        X = torch.randn(3, 4, d, generator=g, dtype=torch.float64)
        Y = torch.randn(3, 5, d, generator=g, dtype=torch.float64)
        mask_x = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]], dtype=torch.bool)
        mask_y = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 1, 0, 0, 0]], dtype=torch.bool)
        if garbage == "no padding":
            mask_x, mask_y = torch.ones_like(mask_x), torch.ones_like(mask_y)
        elif garbage is not None:   # padded tokens may hold anything, even NaN
            X = torch.where(mask_x[..., None], X, torch.full_like(X, garbage))
        X = X.requires_grad_(True)
        losses = ot_loss(X, Y, mask_x, mask_y, eps=eps, tol=1e-12, max_iter=1_000_000, grad="envelope")
        losses.sum().backward()
        name = {None: f"padded-3-pairs-eps{eps}-d{d}", 1e3: f"padded-3-pairs-eps{eps}-d{d}-garbage-in-padding",
                "no padding": f"full-3-pairs-eps{eps}-d{d}-no-padding"}.get(garbage,
                                                                            f"padded-3-pairs-eps{eps}-d{d}-nan-in-padding")
        cases.append(case(name, {"X": X, "Y": Y, "mask_x": mask_x, "mask_y": mask_y, "eps": eps},
                           {"losses": losses, "envelope_grad_X": X.grad}, {"losses": 1e-7, "envelope_grad_X": 1e-6}))
    return cases


@dataclass(frozen=True)
class ReferenceKind:
    """One kind of reference computation: how an implementation is called, what it means, how cases are built.
    (How results are compared is the engine's record of the same name, :mod:`optical_ref.classroom.reference.engine`.)"""
    name: str
    signature: str
    description: str
    builder: object


REFERENCE_KINDS = {k.name: k for k in (
    ReferenceKind("sinkhorn", "plan = f(a, b, C, eps)",
                  "Entropic OT, converged (row-marginal L1 error <= 1e-12). f, g are defined up to an additive "
                  "constant (f + c, g - c); null marks -inf.", build_sinkhorn),
    ReferenceKind("sinkhorn_fixed", "plan = f(a, b, C, eps, n_iter)  (exactly n_iter iterations from f = g = 0)",
                  "Log-domain Sinkhorn from f = g = 0, exactly n_iter iterations (each: f update, then g update), as "
                  "in training; not converged, so the rows do not yet sum to a. f, g up to an additive constant.",
                  build_sinkhorn_fixed),
    ReferenceKind("exact_ot", "(plan, cost) = f(a, b, C)", "Unregularised OT by linear programming.", build_exact_ot),
    ReferenceKind("batched_sinkhorn",
                  "plan = f(C, mask_a, mask_b, eps)  (torch tensors; uniform weights on real entries)",
                  "Padded batches; mask True = real entry; the plan is exactly 0 on padding. "
                  "envelope_grad_C = d sum(cost) / d C with the plan held fixed (= the plan).", build_batched_sinkhorn),
    ReferenceKind("frobenius", "value = f(P, C)", "<P, C>_F = sum_ij P_ij C_ij.", build_frobenius),
    ReferenceKind("kd_mse", "value = f(student, teacher)", "mean over all entries of (student - teacher)^2.",
                  build_kd_mse),
    ReferenceKind("kd_kl", "value = f(student_logits, teacher_logits, T)",
                  "T^2 * KL(softmax(teacher/T) || softmax(student/T)), mean over the batch.", build_kd_kl),
    ReferenceKind("ot_loss", "losses = f(X, Y, mask_x, mask_y, eps)  (torch tensors; one loss per pair)",
                  "Per pair <P, C>_F with C_ij = 1 - cos(x_i, y_j) over real tokens, uniform marginals, converged "
                  "plan; envelope_grad_X = d sum(losses) / d X with P held fixed.", build_ot_loss),
)}
KINDS = tuple(REFERENCE_KINDS)
SIGNATURES = {name: k.signature for name, k in REFERENCE_KINDS.items()}   # for the command line's listing


def build(kind: str) -> dict:
    return {"format": "optical-ref reference outputs", "schema": 1, "version": __version__, "kind": kind,
            "signature": REFERENCE_KINDS[kind].signature, "description": REFERENCE_KINDS[kind].description,
            "cases": REFERENCE_KINDS[kind].builder()}


def path_of(kind: str) -> Path:
    return HERE / f"{kind}.json"


def load(kind: str) -> dict:
    if kind not in KINDS:
        raise ValueError(f"unknown reference kind {kind!r}; known: {', '.join(KINDS)}")
    path = path_of(kind)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; run `python -m optical_ref reference regenerate`")
    return json.loads(path.read_text(encoding="utf-8"))


def regenerate(kinds=KINDS, progress=print) -> list:
    written = []
    for kind in kinds:
        path = path_of(kind)
        path.write_text(json.dumps(build(kind), indent=1) + "\n", encoding="utf-8")
        written.append(path)
        progress(f"[reference] wrote {path}")
    return written


# --------------------------------------------------------------------------------------------------
# Comparing values
# --------------------------------------------------------------------------------------------------
def max_abs_error(actual, expected) -> float:
    """Largest absolute difference; inf when the shapes differ or a value is NaN."""
    actual = np.asarray(_lists(actual), dtype=float)
    expected = np.asarray([np.nan if v is None else v for v in np.ravel(np.asarray(expected, dtype=object))],
                          dtype=float).reshape(np.shape(expected))
    if actual.shape != expected.shape:
        return float("inf")
    diff = np.abs(actual - expected)
    if np.isnan(diff).any():
        return float("inf")
    return float(diff.max()) if diff.size else 0.0
