"""The exercise catalogue and its hints (the ``check`` command that uses them is :mod:`optical_ref.classroom.check`).

Built on the verification engine (:mod:`optical_ref.classroom.reference.engine`, which ``reference verify`` uses too, and
which imports nothing from here): an exercise's function is called on the reference cases of
``optical_ref/classroom/reference/``, and ``check`` prints, per case,
PASS or FAIL with the largest absolute error and, on failure, a hint when it recognises a common mistake
(a transposed plan, a missing column update, swapped marginals, a temperature not squared, padding
counted, ...). A crash inside the function is that case's failure, with its message, shown at the student's
own line (:func:`optical_ref.classroom.reference.engine.call_case`); with a time limit each case has its own
(:func:`run_cases`). Exit status: 0 when every case passes, 1 otherwise.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np

from .reference import engine
from .reference.engine import _torch, load_function, report  # noqa: F401 (the command line and tests use them)


@dataclass
class Exercise:
    kind: str           # the reference file whose cases it is checked on
    skeleton: str       # file in tutorials/exercises/
    tutorial: str       # what to read first
    task: str
    case_filter: object = None
    allowed: tuple = ()  # library functions a submission may call (graded mode); everything else of optical_ref is refused

    @property
    def function(self) -> str:
        return self.skeleton.split("_", 1)[1].removesuffix(".py")


EXERCISES = {
    "kernel-sinkhorn": Exercise("sinkhorn", "ex01_kernel_sinkhorn.py", "tutorials/02_sinkhorn_numpy.py",
                                "plan = f(a, b, C, eps): the u/v scaling loop on K = exp(-C/eps)",
                                lambda case: "small-eps" not in case["name"]),
    "log-sinkhorn": Exercise("sinkhorn", "ex02_log_sinkhorn.py", "tutorials/03_kernel_vs_log.py",
                             "plan = f(a, b, C, eps): the log-domain updates of f and g"),
    "frobenius": Exercise("frobenius", "ex03_frobenius.py", "tutorials/01_transport_plan.py",
                          "value = f(P, C) = <P, C>_F"),
    "kd-mse": Exercise("kd_mse", "ex04_kd_mse.py", "tutorials/06_kd_loop.py",
                       "value = f(student, teacher): embedding MSE"),
    "kd-kl": Exercise("kd_kl", "ex05_kd_kl.py", "tutorials/06_kd_loop.py",
                      "value = f(student_logits, teacher_logits, T): Hinton KD with temperature"),
    "ot-loss": Exercise("ot_loss", "ex06_ot_loss.py", "tutorials/07_ot_distillation_loop.py",
                        "losses = f(X, Y, mask_x, mask_y, eps): OT distillation loss per pair, padding ignored",
                        allowed=("optical_ref.ot_torch.sinkhorn", "optical_ref.ot.sinkhorn")),
    "batched-sinkhorn": Exercise("batched_sinkhorn", "ex07_batched_sinkhorn.py", "tutorials/04_sinkhorn_torch.py",
                                 "plan = f(C, mask_a, mask_b, eps): batched, padding-masked torch Sinkhorn"),
}


# --------------------------------------------------------------------------------------------------
# Hints: the library's own answers to common mistakes, recomputed on the same inputs
# --------------------------------------------------------------------------------------------------
def _close(x, y, atol=1e-6) -> bool:
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    return x.shape == y.shape and bool(np.all(np.abs(x - y) <= atol))


def hint(kind: str, result, case, exercise: str | None = None) -> str | None:
    """Recognise the most common mistakes by recomputing them with the library on the same inputs: one function
    per kind of exercise (:data:`HINTS`), and one for a NaN result, whatever the kind (``exercise`` tells the
    kernel loop from the log-domain one, which share the kind "sinkhorn")."""
    x, expected = case["inputs"], case["expected"]
    r = np.asarray(result, dtype=float) if not isinstance(result, dict) else None
    if r is not None and np.isnan(r).any():
        return _hint_nan(kind, x, exercise)
    by_kind = HINTS.get(kind)
    return by_kind(result, r, x, expected) if by_kind else None


def hint_for(exercise: str):
    """:func:`hint` for one exercise, in the form the engine calls: (kind, result, case)."""
    return lambda kind, result, case: hint(kind, result, case, exercise)


NAN_KERNEL = ("NaN in the result: a 0 / 0 in u = a / (K v) or v = b / (K^T u): u or v started at 0, or a row or column "
              "of K that is entirely 0; exp(-C / eps) is exactly 0 only where C / eps passes about 745 (float64), "
              "which this exercise's cases never reach, so check how K is formed")
NAN_LOG = ("NaN in the result: a log-sum-exp that is not max-shifted overflows (exp of a large (g_j - C_ij) / eps is "
           "inf, and inf - inf is NaN) or underflows to log(0); subtract the maximum before exp: "
           "LSE(z) = max z + log sum exp(z - max z)")
NAN_ANY = ("NaN in the result: in a kernel loop, a row of K = exp(-C / eps) that is entirely 0 (every C_ij / eps "
           "of it past about 745 in float64: tutorial 03) gives 0 / 0; in the log domain, a log-sum-exp that is "
           "not max-shifted overflows (exp(z) = inf, and inf - inf = NaN): subtract the maximum before exp")


def _hint_nan(kind: str, x, exercise: str | None) -> str:
    """A NaN result: padding that held NaN, eps misplaced in the log domain, an unshifted log-sum-exp, or (in a
    kernel loop) a zero row of K."""
    padded = [k for k in ("C", "X") if k in x and np.isnan(np.asarray(x[k], dtype=float)).any()]
    if padded:
        return (f"NaN in the result: the padded entries of {padded[0]} hold NaN in this case (padding may hold "
                "anything); replace them (e.g. torch.where(mask, C, 0)) before using them")
    if kind != "sinkhorn":
        return NAN_ANY
    if exercise == "kernel-sinkhorn":
        return NAN_KERNEL          # no log-sum-exp in this exercise: nothing to say about one
    text = NAN_LOG if exercise == "log-sinkhorn" else NAN_ANY
    misplaced = _sinkhorn_mistakes(np.asarray(x["a"]), np.asarray(x["b"]), np.asarray(x["C"], dtype=float),
                                   x["eps"], keep_non_finite=True).get(EPS_MISPLACED)
    if misplaced is not None and not np.all(np.isfinite(misplaced)):   # this case breaks that way too: say both
        return f"{text}; or {EPS_MISPLACED} (the potentials then grow without bound)"
    return text


def _hint_sinkhorn(result, r, x, expected) -> str | None:
    plan, a, b = np.asarray(expected["plan"]), np.asarray(x["a"]), np.asarray(x["b"])
    if r.shape == plan.T.shape and (r.shape != plan.shape or _close(r, plan.T)) and _close(r, plan.T, 1e-5):
        return "transposed plan: P has one row per entry of a and one column per entry of b"
    if r.shape == plan.shape:
        C = np.asarray(x["C"], dtype=float)
        for name, mistaken in {**_eps_mistakes(a, b, C, x["eps"]), **_sinkhorn_mistakes(a, b, C, x["eps"])}.items():
            if mistaken is not None and _close(r, mistaken, 1e-5):
                return name
    if r.shape == plan.shape and len(a) == len(b) and not np.allclose(a, b):
        from ..ot import sinkhorn
        swapped = sinkhorn(b, a, np.asarray(x["C"]), x["eps"], tol=1e-12, max_iter=100_000).plan
        if _close(r, swapped, 1e-5):
            return "marginals swapped: rows must sum to a and columns to b"
    if r.shape == plan.shape:
        rows_ok = np.abs(r.sum(1) - a).sum() < 1e-6
        cols_ok = np.abs(r.sum(0) - b).sum() < 1e-6
        if rows_ok and not cols_ok:
            return "the columns do not sum to b: the v (or g) update, v = b / (K^T u), is missing or wrong"
        if cols_ok and not rows_ok and len(a) > 1:
            return "the rows do not sum to a: run the loop to convergence (or the u / f update is wrong)"
    if r.shape == plan.shape and not (r >= 0).all():
        return "negative entries: a transport plan is non-negative (P = diag(u) K diag(v))"
    return None



def _hint_batched_sinkhorn(result, r, x, expected) -> str | None:
    plan = np.asarray(expected["plan"])
    real = np.asarray(x["mask_a"])[:, :, None] & np.asarray(x["mask_b"])[:, None, :]
    if r.shape == plan.shape and np.abs(r[~real]).sum() > 1e-9:
        return "padding counted: padded rows and columns must carry zero mass (uniform weights over real entries only)"
    if r.shape == np.swapaxes(plan, 1, 2).shape and r.shape != plan.shape:
        return "transposed plan: the result must be (B, n, m), rows for mask_a and columns for mask_b"
    if r.shape == plan.shape:
        solved_then_zeroed, fixed_20 = _batched_mistakes(x)
        if _close(r, fixed_20, 1e-6):
            return ("a fixed 20 iterations: the plan is not converged; iterate until the row marginals are within "
                    "the tolerance (or run many more iterations)")
        if _close(r, solved_then_zeroed, 1e-6):
            return ("solved on the padded problem, then zeroed: the padding must carry no mass during the solve "
                    "(uniform weights over the real entries only), not be cut out afterwards")
    return None



def _hint_kd_kl(result, r, x, expected) -> str | None:
    T, value = x["T"], expected["value"]
    if T != 1 and abs(result * T * T - value) < 1e-6:
        return "temperature not squared: multiply the KL by T^2 (Hinton et al. 2015)"
    unsoftened = _kl_without_temperature(x)
    if T != 1 and min(abs(result - unsoftened), abs(result - T * T * unsoftened)) < 1e-6:
        return ("the logits are not divided by T: soften both distributions, softmax(z / T), before the KL "
                "(then multiply by T^2)")
    if abs(result - _reverse_kl(x)) < 1e-6:
        return "KL direction reversed: the loss is KL(teacher || student)"
    if T != 1 and abs(result * T - value) < 1e-6:
        return "multiplied by T instead of T^2: the Hinton loss is T^2 KL(...)"
    m = np.shape(x["student_logits"])[-1]
    if abs(result * m - value) < 1e-6:
        return "reduction='mean' averages over the classes too: use reduction='batchmean' (the mean over the batch)"
    if abs(result - _kl_div_of_probabilities(x)) < 1e-6:
        return ("F.kl_div expects log-probabilities as its input: pass log_softmax(student / T), not the "
                "probabilities (and log_target=True with log-probabilities as the target)")
    if abs(result - value * len(x["student_logits"])) < 1e-6:
        return "summed over the batch: take the batch mean"
    return None



def _hint_kd_mse(result, r, x, expected) -> str | None:
    value, (n, d) = expected["value"], np.shape(x["student"])
    if abs(result - value * d) < 1e-6 or abs(result - value * n * d) < 1e-6:
        return "summed instead of averaged: MSE is the mean of the squared differences"
    if abs(result - np.sqrt(value)) < 1e-6:
        return "square root taken: the loss is the mean squared error, not its root"
    return None



def _hint_frobenius(result, r, x, expected) -> str | None:
    P, C = np.asarray(x["P"]), np.asarray(x["C"])
    if abs(result - (P * C).mean()) < 1e-9:
        return "mean instead of sum: <P, C>_F = sum_ij P_ij C_ij"
    if abs(result - (P @ C.T).sum()) < 1e-9:
        return "matrix product instead of the elementwise product P_ij C_ij"
    return None



def _hint_ot_loss(result, r, x, expected) -> str | None:
    losses = np.asarray(expected["losses"])
    if r is not None and r.shape == () and abs(float(r) - losses.mean()) < 1e-6:
        return "one loss per pair is expected, not the batch mean"
    if r is not None and r.shape == losses.shape and _close(r, _ot_loss_padding_counted(x), 1e-5):
        return "padding counted: padded tokens must carry no mass (use the masks for the marginals)"
    if r is not None and r.shape == losses.shape and _close(r, _ot_loss_unnormalised(x), 1e-5):
        return "unnormalised cosine: C_ij = 1 - <x_i, y_j> / (|x_i| |y_j|); normalise the token vectors first"
    if r is not None and r.shape == losses.shape and _close(r, _ot_loss_solved_then_zeroed(x), 1e-5):
        return ("solved on the padded problem, then zeroed: the plan must be solved with the padding carrying no "
                "mass (uniform weights over the real tokens), not cut out of a plan solved with it")
    if r is not None and r.shape == losses.shape and _close(r, _ot_loss_relative_eps(x), 1e-5):
        return EPS_RELATIVE
    return None


HINTS = {
    "sinkhorn": _hint_sinkhorn,
    "batched_sinkhorn": _hint_batched_sinkhorn,
    "kd_kl": _hint_kd_kl,
    "kd_mse": _hint_kd_mse,
    "frobenius": _hint_frobenius,
    "ot_loss": _hint_ot_loss,
}


EPS_MISPLACED = ("eps in the wrong place: multiply the log-sum-exp by eps, "
                 "f = eps log a - eps LSE_j((g_j - C_ij) / eps)")
EPS_MULTIPLIED = "eps multiplied instead of divided: K = exp(-C / eps), not exp(-C * eps)"
EPS_RELATIVE = ("eps scaled by the cost (eps * C.max()): eps is absolute in this exercise, use it as given "
                "(the library's eps_mode options are not asked for)")


def _eps_mistakes(a, b, C, eps) -> dict:
    """The plans of eps used the wrong way: multiplied instead of divided (the plan at 1 / eps) and taken
    relative to the largest cost (the plan at eps * max C); None where that solve cannot run."""
    import warnings

    from ..ot import sinkhorn

    out = {}
    for name, wrong_eps in ((EPS_MULTIPLIED, 1.0 / eps), (EPS_RELATIVE, eps * float(np.max(C)))):
        if np.isclose(wrong_eps, eps):
            continue                          # the same plan as the right one: nothing to tell apart
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                out[name] = sinkhorn(a, b, C, wrong_eps, tol=1e-12, max_iter=100_000).plan
            except (ValueError, FloatingPointError):
                out[name] = None
    return out


def _sinkhorn_mistakes(a, b, C, eps, n_iter=2000, keep_non_finite=False) -> dict:
    """The plans that three common mistakes converge to (None where a mistake cannot even run)."""
    from ..ot import logsumexp

    out = {}
    with np.errstate(all="ignore"):
        if C.shape[0] == C.shape[1]:       # K instead of K^T in the v update only runs on square problems
            K, v = np.exp(-C / eps), np.ones(len(b))
            for _ in range(n_iter):
                u = a / (K @ v)
                v = b / (K @ u)
            out["the v update multiplies by K instead of K^T: v = b / (K^T u) (the columns' sums)"] = \
                u[:, None] * K * v[None, :]
        f, g = np.zeros(len(a)), np.zeros(len(b))
        for _ in range(n_iter):            # eps forgotten everywhere: the plan of eps = 1
            f = np.log(a) - logsumexp(g[None, :] - C, axis=1)
            g = np.log(b) - logsumexp(f[:, None] - C, axis=0)
        out["eps is missing in the log-domain update: f = eps log a - eps LSE_j((g_j - C_ij) / eps)"] = \
            np.exp(f[:, None] + g[None, :] - C)
        f, g = np.zeros(len(a)), np.zeros(len(b))
        for _ in range(n_iter):            # eps divides inside the LSE, but the result is not multiplied back
            f = eps * np.log(a) - logsumexp((g[None, :] - C) / eps, axis=1)
            g = eps * np.log(b) - logsumexp((f[:, None] - C) / eps, axis=0)
        out[EPS_MISPLACED] = np.exp((f[:, None] + g[None, :] - C) / eps)
    return out if keep_non_finite else {k: v for k, v in out.items() if np.all(np.isfinite(v))}


def _reverse_kl(x) -> float:
    zs, zt, T = _torch(x["student_logits"]), _torch(x["teacher_logits"]), x["T"]
    log_ps, log_pt = (zs / T).log_softmax(-1), (zt / T).log_softmax(-1)
    return float(T * T * (log_ps.exp() * (log_ps - log_pt)).sum(-1).mean())


def _kl_without_temperature(x) -> float:
    """KL(softmax(teacher) || softmax(student)), batch mean: the logits never divided by T."""
    zs, zt = _torch(x["student_logits"]), _torch(x["teacher_logits"])
    log_ps, log_pt = zs.log_softmax(-1), zt.log_softmax(-1)
    return float((log_pt.exp() * (log_pt - log_ps)).sum(-1).mean())


def _kl_div_of_probabilities(x) -> float:
    zs, zt, T = _torch(x["student_logits"]), _torch(x["teacher_logits"]), x["T"]
    p_s, p_t = (zs / T).softmax(-1), (zt / T).softmax(-1)
    return float(T * T * (p_t * (p_t.log() - p_s)).sum(-1).mean())


def _batched_mistakes(x):
    """(solved on the whole padded matrix then zeroed, stopped after 20 iterations) for a batched case."""
    import torch

    from ..ot_torch import sinkhorn
    C, mask_a, mask_b = _torch(x["C"]), torch.tensor(x["mask_a"]), torch.tensor(x["mask_b"])
    real = mask_a[:, :, None] & mask_b[:, None, :]
    C0 = torch.where(real, C, torch.zeros_like(C))
    zeroed = sinkhorn(None, None, C0, x["eps"], tol=1e-10, max_iter=20_000).plan * real
    fixed = sinkhorn(None, None, C0, x["eps"], mask_a=mask_a, mask_b=mask_b, n_iter=20).plan
    return zeroed.numpy(), fixed.numpy()


def _ot_loss_unnormalised(x):
    import torch

    from ..ot_torch import sinkhorn
    X, Y = _torch(x["X"]), _torch(x["Y"])
    mask_x, mask_y = torch.tensor(x["mask_x"]), torch.tensor(x["mask_y"])
    X = torch.where(mask_x[..., None], X, torch.zeros_like(X))
    C = 1 - X @ Y.transpose(1, 2)
    try:
        return sinkhorn(None, None, C, x["eps"], mask_a=mask_x, mask_b=mask_y, tol=1e-12, max_iter=100_000).cost.numpy()
    except (ValueError, FloatingPointError):
        return np.full(len(X), np.nan)


def _ot_cosine(x):
    """(C, mask_x, mask_y) of an ot-loss case: the cosine cost with the padded tokens set to 0 first."""
    import torch

    X, Y = _torch(x["X"]), _torch(x["Y"])
    mask_x, mask_y = torch.tensor(x["mask_x"]), torch.tensor(x["mask_y"])
    X = torch.where(mask_x[..., None], X, torch.zeros_like(X))
    Y = torch.where(mask_y[..., None], Y, torch.zeros_like(Y))
    Xn, Yn = torch.nn.functional.normalize(X, dim=-1), torch.nn.functional.normalize(Y, dim=-1)
    return 1 - Xn @ Yn.transpose(1, 2), mask_x, mask_y


def _ot_loss_solved_then_zeroed(x):
    """The plan solved with uniform weights over every token, padding included, then zeroed on the padding."""
    from ..ot_torch import sinkhorn
    C, mask_x, mask_y = _ot_cosine(x)
    real = mask_x[:, :, None] & mask_y[:, None, :]
    try:
        plan = sinkhorn(None, None, C, x["eps"], tol=1e-12, max_iter=100_000).plan * real
    except (ValueError, FloatingPointError):
        return np.full(len(C), np.nan)
    return (plan * C).sum(dim=(1, 2)).numpy()


def _ot_loss_relative_eps(x):
    """The losses with each pair's eps scaled by its largest real cost."""
    from ..ot_torch import sinkhorn
    C, mask_x, mask_y = _ot_cosine(x)
    real = mask_x[:, :, None] & mask_y[:, None, :]
    out = []
    for k in range(len(C)):
        scale = float(C[k][real[k]].max())
        try:
            out.append(float(sinkhorn(None, None, C[k:k + 1], x["eps"] * scale, mask_a=mask_x[k:k + 1],
                                      mask_b=mask_y[k:k + 1], tol=1e-12, max_iter=100_000).cost[0]))
        except (ValueError, FloatingPointError):
            out.append(float("nan"))
    return np.asarray(out)


def _ot_loss_padding_counted(x):
    from ..ot_torch import ot_loss
    X, Y = _torch(x["X"]), _torch(x["Y"])
    try:
        return ot_loss(X, Y, None, None, eps=x["eps"], tol=1e-12, max_iter=100_000).numpy()
    except (ValueError, FloatingPointError):   # NaN in the padding: counting it cannot give a number
        return np.full(len(X), np.nan)


SKIP_FIELDS = ("envelope_grad_X",)   # the exercises fix no gradient convention (see the engine's table)
NO_GRADIENT = ("the losses carry no gradient back to X (computed in numpy, or detached): training learns only "
               "through a torch tensor computed from X; the plan may be held fixed, the cost must not")


def judge_exercise_case(kind: str, case, outcome: tuple, hint_fn=hint):
    """The engine's verdict on one case, plus the exercises' own rule: ot-loss is a training loss, so its
    losses must reach X through autograd (the engine's ``reference verify`` takes numbers from any language
    and cannot ask that)."""
    result = engine.judge_case(kind, case, outcome, hint=hint_fn, skip_fields=SKIP_FIELDS)
    status, fields = outcome
    if kind == "ot_loss" and status == "ok" and fields.get("envelope_grad_X") is None:
        result.passed = False
        result.hint = result.hint or NO_GRADIENT
    return result


def run_cases(kind: str, fn, case_filter=None, cases=None, exercise: str | None = None,
              time_limit: float | None = None) -> list:
    """Run ``fn`` on the cases of ``kind`` (or on ``cases``) and judge each with this catalogue's hints (those
    of ``exercise`` where given). With ``time_limit``, each case gets that many seconds: a case past it fails
    on its own line, and after MAX_STRIKES such cases the others are listed as not run (bounded time, as in
    graded mode)."""
    from .reference import load
    from .runner import MAX_STRIKES
    from .sandbox import TimeLimit, alarm_after

    hint_fn, results, strikes = hint_for(exercise) if exercise else hint, [], 0
    for case in (cases if cases is not None else load(kind)["cases"]):
        if case_filter and not case_filter(case):
            continue
        if strikes >= MAX_STRIKES:
            outcome = ("crash", f"not run: {strikes} cases already ran past the time limit")
        else:
            try:
                with alarm_after(time_limit) if time_limit else contextlib.nullcontext():
                    outcome = engine.call_case(kind, fn, case)
            except TimeLimit:
                strikes += 1
                outcome = ("crash", f"ran past the time limit of {time_limit:g} s on this case (a correct solution "
                                    "takes well under 1 s): a loop that never ends, e.g. a while loop whose "
                                    "condition never changes?")
        results.append(judge_exercise_case(kind, case, outcome, hint_fn))   # hints run outside the limit
    return results


def check_exercise(name: str, fn, time_limit: float | None = None) -> list:
    if name not in EXERCISES:
        raise ValueError(f"unknown exercise {name!r}; `python -m optical_ref check --list` lists them")
    ex = EXERCISES[name]
    return run_cases(ex.kind, fn, ex.case_filter, exercise=name, time_limit=time_limit)
