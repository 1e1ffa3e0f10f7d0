r"""Entropic optimal transport in plain numpy: the reference every other part of optical-ref is checked against.

The problem (Cuturi 2013; Peyré & Cuturi 2019, *Computational Optimal Transport*, ch. 4)
----------------------------------------------------------------------------------------
Given two histograms ``a`` (n,) and ``b`` (m,) with the same total mass and a cost matrix ``C`` (n, m),
entropic OT looks for the transport plan

    P* = argmin_P  <P, C>_F - eps H(P)      subject to  P 1_m = a,  P^T 1_n = b,  P >= 0,

with H(P) = -sum_ij P_ij (log P_ij - 1) and ``eps > 0`` the (absolute) regularisation strength.
Its solution has the form

    P = diag(u) K diag(v),     K = exp(-C / eps)                                        (1)

and Sinkhorn's algorithm finds the scalings u, v by alternately matching the two marginals:

    u <- a / (K v)                                                                       (2)
    v <- b / (K^T u)                                                                     (3)

That is ``method="kernel"``. For small eps, K underflows (exp(-C/eps) = 0 in floating point) and the
scalings overflow; ``method="log"`` runs the same iteration on the dual potentials f = eps log u,
g = eps log v (Schmitzer 2019; Peyré & Cuturi 2019, Remark 4.23), so that

    P_ij = exp((f_i + g_j - C_ij) / eps)                                                 (4)
    f_i <- eps log a_i - eps LSE_j((g_j - C_ij) / eps)                                   (5)
    g_j <- eps log b_j - eps LSE_i((f_i - C_ij) / eps)                                   (6)

where LSE_j(z_j) = log sum_j exp(z_j) is computed stably as max_j z_j + log sum_j exp(z_j - max_j z_j).
Both methods return f and g in the convention of (4); in the kernel method f = eps log u, g = eps log v.

The loss used for distillation is the Frobenius inner product <P, C>_F = sum_ij P_ij C_ij (the transport
cost of the plan, without the entropy term; POT's ``sinkhorn2`` returns the same quantity).
As eps -> 0 the entropic plan tends to an optimal plan of the unregularised problem, computed exactly
here by linear programming (:func:`exact_ot`).

References
----------
- M. Cuturi. Sinkhorn Distances: Lightspeed Computation of Optimal Transport. NeurIPS 2013.
- G. Peyré, M. Cuturi. Computational Optimal Transport. Foundations and Trends in ML, 2019. arXiv 1803.00567.
- B. Schmitzer. Stabilized Sparse Scaling Algorithms for Entropy Regularized Transport Problems.
  SIAM J. Sci. Comput. 41(3), 2019. arXiv 1610.06519.
- R. Flamary et al. POT: Python Optimal Transport. JMLR 22(78), 2021 (``ot.sinkhorn``, ``ot.emd``).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

__all__ = [
    "SinkhornResult",
    "SinkhornBreakdownError",
    "SinkhornConvergenceWarning",
    "sinkhorn",
    "sinkhorn_unbalanced",
    "frobenius",
    "exact_ot",
    "logsumexp",
    "sq_euclidean_cost",
    "cosine_cost",
]

METHODS = ("log", "kernel")
MASS_RTOL = 1e-6


class SinkhornConvergenceWarning(UserWarning):
    """Sinkhorn stopped at ``max_iter`` before the marginal error fell below ``tol``."""


class SinkhornBreakdownError(FloatingPointError):
    """The kernel method met an underflow or overflow it cannot recover from (use ``method="log"``)."""


@dataclass
class SinkhornResult:
    """What a Sinkhorn solve returns.

    Attributes
    ----------
    plan : (n, m) transport plan P; rows sum to ``a`` and columns to ``b`` (up to ``marginal_error``).
    f, g : (n,), (m,) dual potentials with P_ij = exp((f_i + g_j - C_ij) / eps); -inf where a mass is zero.
    cost : <P, C>_F, the transport cost of the plan (no entropy term).
    n_iter : number of full iterations (one u/f update and one v/g update each) that were run.
    marginal_error : || P 1 - a ||_1, the error of the row marginal after the last (column) update.
    converged : whether ``marginal_error <= tol`` was reached within ``max_iter`` iterations.
    """

    plan: np.ndarray
    f: np.ndarray
    g: np.ndarray
    cost: float
    n_iter: int
    marginal_error: float
    converged: bool


# --------------------------------------------------------------------------------------------------
# Input checks: every message says what is wrong and how to fix it.
# --------------------------------------------------------------------------------------------------
def check_eps(eps) -> float:
    """Return eps as a float, or raise ValueError unless it is a finite number > 0."""
    try:
        eps = float(eps)
    except (TypeError, ValueError):
        raise ValueError(f"eps must be a positive number, got {eps!r}") from None
    if not np.isfinite(eps) or eps <= 0:
        raise ValueError(
            f"eps must be finite and > 0 (it is the entropic regularisation strength), got {eps}; "
            "a common choice is a few percent of the cost scale, e.g. eps = 0.05 * C.max()"
        )
    return eps


def check_tau(tau) -> float:
    """The strength of unbalanced OT's marginal penalties: a number > 0 (``inf``: the balanced problem)."""
    if isinstance(tau, bool) or not (isinstance(tau, (int, float)) and tau > 0):
        raise ValueError(f"tau must be a number > 0 (the strength of the marginal penalties), got {tau!r}")
    return float(tau)


def check_iteration_settings(tol, max_iter, n_iter=None) -> None:
    """tol >= 0 (0: never stop early, as POT's ``stopThr=0``); max_iter >= 1; n_iter None or >= 1."""
    try:
        ok = bool(np.isfinite(tol) and tol >= 0)
    except TypeError:
        ok = False
    if not ok:
        raise ValueError(f"tol must be a finite number >= 0 (0 = never stop early), got {tol!r}; e.g. tol=1e-9")
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise ValueError(f"max_iter must be an integer >= 1, got {max_iter!r}")
    if n_iter is not None and (isinstance(n_iter, bool) or not isinstance(n_iter, (int, np.integer)) or n_iter < 1):
        raise ValueError(f"n_iter must be None (iterate to tol) or an integer >= 1, got {n_iter!r}")


def check_method(method) -> None:
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {METHODS} ('log' is stable for any eps)")


def check_cost_matrix(C) -> np.ndarray:
    C = np.asarray(C, dtype=np.float64)
    if C.ndim != 2:
        raise ValueError(f"C must be a 2-d cost matrix (n, m), got an array with shape {C.shape}")
    if C.size == 0:
        raise ValueError(f"C is empty (shape {C.shape}); both point sets need at least one point")
    if not np.all(np.isfinite(C)):
        bad = np.argwhere(~np.isfinite(C))[0]
        raise ValueError(
            f"C contains NaN or inf (first at index {tuple(int(i) for i in bad)}); "
            "the cost must be finite everywhere - check the embeddings or distances that produced it"
        )
    return C


def check_marginal(w, size: int, name: str, axis_name: str) -> np.ndarray:
    """Return the weights as float64; ``None`` means uniform weights 1/size."""
    if w is None:
        return np.full(size, 1.0 / size)
    w = np.asarray(w, dtype=np.float64)
    if w.ndim != 1:
        raise ValueError(f"{name} must be a 1-d array of weights, got shape {w.shape}")
    if w.size == 0:
        raise ValueError(f"{name} is empty; it needs one weight per {axis_name} of C")
    if w.size != size:
        raise ValueError(
            f"{name} has {w.size} weights but C has {size} {axis_name}s; "
            f"{name} must have one weight per {axis_name} of C (shape of C is (len(a), len(b)))"
        )
    if not np.all(np.isfinite(w)):
        raise ValueError(f"{name} contains NaN or inf; weights must be finite")
    if np.any(w < 0):
        raise ValueError(f"{name} has negative weights (min {w.min():.3g}); weights must be >= 0")
    if w.sum() <= 0:
        raise ValueError(f"{name} sums to 0; it needs positive total mass")
    return w


def check_problem(a, b, C):
    """Validate and convert (a, b, C) of one OT problem; returns float64 arrays."""
    C = check_cost_matrix(C)
    n, m = C.shape
    a = check_marginal(a, n, "a", "row")
    b = check_marginal(b, m, "b", "column")
    mass_a, mass_b = a.sum(), b.sum()
    if abs(mass_a - mass_b) > MASS_RTOL * max(mass_a, mass_b):
        raise ValueError(
            f"a and b must have the same total mass, got sum(a)={mass_a:.10g} and sum(b)={mass_b:.10g}; "
            "normalise both, e.g. a = a / a.sum() and b = b / b.sum()"
        )
    # Masses that agree to MASS_RTOL are made to agree exactly: otherwise no plan meets both marginals
    # and Sinkhorn could never reach a tol below the mismatch.
    return a, b * (mass_a / mass_b), C


# --------------------------------------------------------------------------------------------------
# Building blocks.
# --------------------------------------------------------------------------------------------------
def logsumexp(Z: np.ndarray, axis: int) -> np.ndarray:
    """log sum exp(Z) along ``axis``, computed as max + log sum exp(Z - max) so that nothing overflows.
    A slice of all -inf gives -inf (an empty sum), a slice holding +inf gives +inf; never NaN from them."""
    Z_max = Z.max(axis=axis, keepdims=True)
    Z_max = np.where(np.isfinite(Z_max), Z_max, 0.0)    # shift by 0 where the max is +-inf: exp gives 0 or inf
    shifted = Z - Z_max
    np.exp(shifted, out=shifted)  # in place: one n x m temporary instead of two
    with np.errstate(divide="ignore"):                  # log(0) = -inf is the right answer for an empty sum
        return np.log(shifted.sum(axis=axis)) + np.squeeze(Z_max, axis=axis)


def frobenius(P, C) -> float:
    """<P, C>_F = sum_ij P_ij C_ij, the transport cost of plan P under cost C."""
    P, C = np.asarray(P, dtype=np.float64), np.asarray(C, dtype=np.float64)
    if P.shape != C.shape:
        raise ValueError(f"P and C must have the same shape, got {P.shape} and {C.shape}")
    if not (np.all(np.isfinite(P)) and np.all(np.isfinite(C))):
        raise ValueError("P and C must be finite (no NaN or inf): <P, C>_F would be NaN; check the solve and the cost")
    return float(np.sum(P * C))


def _cost_or_nan(plan, C) -> float:
    """<P, C>_F of a solve; NaN for a broken-down plan, which :func:`sinkhorn` then reports as a breakdown."""
    return frobenius(plan, C) if np.all(np.isfinite(plan)) else float("nan")


def sq_euclidean_cost(X, Y) -> np.ndarray:
    """C_ij = ||x_i - y_j||^2 for point sets X (n, d) and Y (m, d)."""
    X, Y = _check_point_sets(X, Y)
    C = (X**2).sum(1)[:, None] + (Y**2).sum(1)[None, :] - 2.0 * X @ Y.T
    return np.maximum(C, 0.0)  # rounding can make ||x - x||^2 slightly negative


def cosine_cost(X, Y) -> np.ndarray:
    """C_ij = 1 - cos(x_i, y_j) in [0, 2], the token-alignment cost used for OT distillation."""
    X, Y = _check_point_sets(X, Y)
    norms_X, norms_Y = np.linalg.norm(X, axis=1), np.linalg.norm(Y, axis=1)
    if np.any(norms_X == 0) or np.any(norms_Y == 0):
        raise ValueError("cosine cost is undefined for a zero vector; remove all-zero rows from X and Y")
    return 1.0 - (X / norms_X[:, None]) @ (Y / norms_Y[:, None]).T


def _check_point_sets(X, Y):
    X, Y = np.asarray(X, dtype=np.float64), np.asarray(Y, dtype=np.float64)
    if X.ndim != 2 or Y.ndim != 2:
        raise ValueError(f"X and Y must be 2-d arrays (points x dims), got shapes {X.shape} and {Y.shape}")
    if X.shape[0] == 0 or Y.shape[0] == 0:
        raise ValueError(f"X and Y need at least one point each, got shapes {X.shape} and {Y.shape}")
    if X.shape[1] != Y.shape[1]:
        raise ValueError(f"X and Y must have the same dimension, got {X.shape[1]} and {Y.shape[1]}")
    if not (np.all(np.isfinite(X)) and np.all(np.isfinite(Y))):
        raise ValueError("X and Y must be finite (no NaN or inf)")
    return X, Y


# --------------------------------------------------------------------------------------------------
# Sinkhorn.
# --------------------------------------------------------------------------------------------------
def sinkhorn(a, b, C, eps, *, method: str = "log", tol: float = 1e-9, max_iter: int = 10_000,
             n_iter: int | None = None) -> SinkhornResult:
    r"""Solve entropic OT between histograms ``a`` and ``b`` with cost ``C`` by Sinkhorn's algorithm.

    Parameters
    ----------
    a : (n,) array or None
        Non-negative source weights (rows of C). ``None`` means uniform, 1/n each.
    b : (m,) array or None
        Non-negative target weights (columns of C), same total mass as ``a``. ``None`` means uniform.
    C : (n, m) array
        Finite cost matrix.
    eps : float
        Entropic regularisation, absolute (in the units of C), > 0.
    method : {"log", "kernel"}
        ``"log"``: updates (5)-(6) on potentials, stable for any eps. ``"kernel"``: updates (2)-(3) on
        scalings with K = exp(-C/eps): the textbook form, raises :class:`SinkhornBreakdownError` when K
        or the scalings under- or overflow.
    tol : float
        Stop when || P 1 - a ||_1 <= tol (the column marginal is exact after each iteration).
        ``tol=0`` never stops early (like POT's ``stopThr=0``): exactly ``max_iter`` iterations.
    max_iter : int
        Maximum number of iterations; reaching it without meeting a positive ``tol`` warns with
        :class:`SinkhornConvergenceWarning`.
    n_iter : int or None
        Run exactly this many iterations and never warn (``tol`` and ``max_iter`` are not used): the
        setting of training, where every step runs the same fixed number of iterations. The iterates are
        the same as :func:`optical_ref.ot_torch.sinkhorn` with the same ``n_iter`` and ``method``.

    Returns
    -------
    SinkhornResult with ``plan``, ``f``, ``g``, ``cost`` = <P, C>_F, ``n_iter``, ``marginal_error``, ``converged``.

    Examples
    --------
    The 2 x 2 example of POT's documentation:

    >>> res = sinkhorn([.5, .5], [.5, .5], [[0., 1.], [1., 0.]], eps=1.0)
    >>> res.plan.round(8)
    array([[0.36552929, 0.13447071],
           [0.13447071, 0.36552929]])
    """
    a, b, C = check_problem(a, b, C)
    eps = check_eps(eps)
    check_method(method)
    check_iteration_settings(tol, max_iter, n_iter)
    if n_iter is not None:
        tol, max_iter = 0.0, n_iter
    solve = _sinkhorn_log if method == "log" else _sinkhorn_kernel
    with np.errstate(over="ignore", invalid="ignore"):   # a breakdown is detected and reported just below
        result = solve(a, b, C, eps, tol, max_iter)
    # After each column update the plan's columns sum to b, so its total mass equals sum(b) whether or not
    # the rows have converged; a plan that is not finite or has lost its mass has broken down numerically.
    if not np.all(np.isfinite(result.plan)) or abs(result.plan.sum() - b.sum()) > 1e-6 * b.sum():
        raise SinkhornBreakdownError(
            f"Sinkhorn ({method}) produced a non-finite plan (or one that lost its mass) at eps={eps:.3g} with costs up to {np.abs(C).max():.3g}: "
            "C / eps is beyond the range of float64. Rescale C (e.g. C / C.max()) or use a larger eps.")
    if n_iter is None and tol > 0 and not result.converged:
        warnings.warn(
            f"Sinkhorn ({method}) did not converge in {max_iter} iterations: marginal error "
            f"{result.marginal_error:.3g} > tol {tol:.3g}. Raise max_iter, raise eps, or loosen tol.",
            SinkhornConvergenceWarning,
            stacklevel=2,
        )
    return result


def _sinkhorn_log(a, b, C, eps, tol, max_iter) -> SinkhornResult:
    with np.errstate(divide="ignore"):  # log 0 = -inf is the right potential for a zero mass
        log_a, log_b = np.log(a), np.log(b)
    f, g = np.zeros_like(a), np.zeros_like(b)
    minus_C_over_eps = -C / eps

    # log (K e^{g/eps})_i: shared by the f-update (5) and by the row marginal of the current plan
    log_Kv = logsumexp(minus_C_over_eps + g[None, :] / eps, axis=1)
    for n_iter in range(1, max_iter + 1):
        f = eps * (log_a - log_Kv)                                                        # (5)
        g = eps * (log_b - logsumexp(minus_C_over_eps + f[:, None] / eps, axis=0))        # (6)
        # After (6) the columns sum to b exactly; the rows drift. Their sums, by (4), are
        # exp(f_i/eps) (K e^{g/eps})_i, and that second factor is what the next (5) needs anyway,
        # so the convergence check costs no extra pass over C.
        log_Kv = logsumexp(minus_C_over_eps + g[None, :] / eps, axis=1)
        row_sums = np.exp(f / eps + log_Kv)  # f_i = -inf where a_i = 0 gives exp(-inf) = 0, as it should
        marginal_error = float(np.abs(row_sums - a).sum())
        if tol > 0 and marginal_error <= tol:   # tol = 0: never stop early
            break
        if not np.isfinite(marginal_error):      # numerical breakdown: reported by sinkhorn() below
            break

    plan = np.exp(minus_C_over_eps + f[:, None] / eps + g[None, :] / eps)                 # (4)
    return SinkhornResult(plan, f, g, _cost_or_nan(plan, C), n_iter, marginal_error, marginal_error <= tol)


def sinkhorn_unbalanced(a, b, C, eps, tau, *, tol: float = 1e-9, max_iter: int = 10_000) -> SinkhornResult:
    r"""Unbalanced entropic OT: the marginals are penalised by KL divergences instead of imposed.

    .. math::  P^* = \arg\min_P <P, C>_F - eps H(P) + tau KL(P 1 | a) + tau KL(P^T 1 | b)

    (Chizat, Peyré, Schmitzer & Vialard 2018, "Scaling algorithms for unbalanced optimal transport problems";
    Séjourné et al. 2019). The iteration is (5)-(6) with each potential damped by lam = tau / (tau + eps):

        f_i <- lam (eps log a_i - eps LSE_j((g_j - C_ij) / eps))                          (7)
        g_j <- lam (eps log b_j - eps LSE_i((f_i - C_ij) / eps))                          (8)

    As tau -> inf, lam -> 1 and the balanced plan of :func:`sinkhorn` comes back; a small tau lets the plan
    drop mass that is expensive to move. ``a`` and ``b`` need not have the same total mass.

    Parameters
    ----------
    a, b : (n,), (m,) arrays or None
        Non-negative reference weights (``None``: uniform, 1/n and 1/m).
    C : (n, m) array
        Finite cost matrix.
    eps : float
        Entropic regularisation (absolute), > 0.
    tau : float
        Strength of the marginal penalties, > 0 (``inf`` is the balanced problem).
    tol : float
        Stop when the plan's marginals (P 1, P^T 1) move by at most ``tol`` (L1) in one iteration.
    max_iter : int
        Maximum number of iterations (a warning when reached with a positive ``tol``).

    Returns
    -------
    SinkhornResult; ``marginal_error`` is || P 1 - a ||_1, which need not go to 0 here, and ``converged``
    says whether the marginals settled within ``tol``.
    """
    C = check_cost_matrix(C)
    a, b = check_marginal(a, C.shape[0], "a", "row"), check_marginal(b, C.shape[1], "b", "column")
    eps = check_eps(eps)
    tau = check_tau(tau)
    check_iteration_settings(tol, max_iter)
    lam = 1.0 if tau == float("inf") else tau / (tau + eps)
    with np.errstate(divide="ignore"):  # log 0 = -inf: a zero reference mass keeps its row or column empty
        log_a, log_b = np.log(a), np.log(b)
    f, g, minus_C_over_eps = np.zeros_like(a), np.zeros_like(b), -C / eps
    marginals = np.zeros(len(a) + len(b))
    for n_iter in range(1, max_iter + 1):
        f = lam * eps * (log_a - logsumexp(minus_C_over_eps + g[None, :] / eps, axis=1))              # (7)
        log_Ku = logsumexp(minus_C_over_eps + f[:, None] / eps, axis=0)
        g = lam * eps * (log_b - log_Ku)                                                              # (8)
        # the potentials may drift together (f + c, g - c) without changing P, so convergence is read on the
        # plan's two marginals, which do not drift: rows by (4) with the new g, columns from the LSE above
        new = np.exp(np.concatenate([f / eps + logsumexp(minus_C_over_eps + g[None, :] / eps, axis=1),
                                     g / eps + log_Ku]))
        change, marginals = float(np.abs(new - marginals).sum()), new
        if tol > 0 and change <= tol:
            break
    plan = np.exp(minus_C_over_eps + f[:, None] / eps + g[None, :] / eps)                           # (4)
    if tol > 0 and change > tol:
        warnings.warn(f"unbalanced Sinkhorn did not settle in {max_iter} iterations (its marginals still move by "
                      f"{change:.3g} > tol {tol:.3g}); raise max_iter or eps", SinkhornConvergenceWarning, stacklevel=2)
    return SinkhornResult(plan, f, g, _cost_or_nan(plan, C), n_iter, float(np.abs(plan.sum(1) - a).sum()),
                          bool(change <= tol))


def _sinkhorn_kernel(a, b, C, eps, tol, max_iter) -> SinkhornResult:
    # Points with zero mass carry nothing: solve on the support (a > 0, b > 0) and put zeros back,
    # so that every division below is by a positive number unless the kernel breaks down.
    rows, cols = a > 0, b > 0
    if not (rows.all() and cols.all()):
        inner = _sinkhorn_kernel(a[rows], b[cols], C[np.ix_(rows, cols)], eps, tol, max_iter)
        return _embed(inner, rows, cols, C)

    K = np.exp(-C / eps)                                                                  # (1)
    if np.any(K.sum(axis=1) == 0) or np.any(K.sum(axis=0) == 0):
        raise SinkhornBreakdownError(breakdown_message("whole rows or columns of K underflow to zero", eps))
    v = np.ones_like(b)

    Kv = K @ v
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):  # breakdown is checked below
        for n_iter in range(1, max_iter + 1):
            u = a / Kv                                                                    # (2)
            v = b / (K.T @ u)                                                             # (3)
            # Row sums of diag(u) K diag(v) are u * (K v); K v is also what the next (2) needs.
            Kv = K @ v
            marginal_error = float(np.abs(u * Kv - a).sum())
            # A zero in K v or K^T u makes u or v infinite, and that always reaches the error as inf or NaN.
            if not np.isfinite(marginal_error):
                raise SinkhornBreakdownError(breakdown_message("the scalings u, v under- or overflow", eps))
            if tol > 0 and marginal_error <= tol:
                break

    plan = u[:, None] * K * v[None, :]                                                    # (1)
    return SinkhornResult(plan, eps * np.log(u), eps * np.log(v), _cost_or_nan(plan, C), n_iter,
                          marginal_error, marginal_error <= tol)


def _embed(inner: SinkhornResult, rows, cols, C) -> SinkhornResult:
    """Put a solution on the support back into the full (n, m) problem: zeros and -inf potentials."""
    plan = np.zeros(C.shape)
    plan[np.ix_(rows, cols)] = inner.plan
    f, g = np.full(C.shape[0], -np.inf), np.full(C.shape[1], -np.inf)
    f[rows], g[cols] = inner.f, inner.g
    return SinkhornResult(plan, f, g, inner.cost, inner.n_iter, inner.marginal_error, inner.converged)


def breakdown_message(what: str, eps: float) -> str:
    return (
        f"kernel Sinkhorn broke down: {what} at eps={eps:.3g}. K = exp(-C/eps) under- or overflows "
        "in floating point at this eps relative to the cost scale; use method='log' (stable for any eps) "
        "or a larger eps."
    )


# --------------------------------------------------------------------------------------------------
# Exact OT (eps -> 0) by linear programming.
# --------------------------------------------------------------------------------------------------
def exact_ot(a, b, C):
    r"""Unregularised OT, min_P <P, C>_F s.t. P 1 = a, P^T 1 = b, P >= 0, as a linear program (HiGHS).

    The plan is flattened row-major, p = vec(P) with p[i*m + j] = P_ij; the n row constraints and the
    m column constraints form a sparse (n + m) x (n m) equality system. Fine for n, m up to a few hundred;
    POT's ``ot.emd`` (network simplex) is the tool for larger problems.

    Returns
    -------
    (plan, cost) : the (n, m) optimal plan and <plan, C>_F.
    """
    from scipy.optimize import linprog
    from scipy.sparse import csr_matrix, eye, kron, vstack

    a, b, C = check_problem(a, b, C)
    n, m = C.shape
    row_sums = kron(eye(n), csr_matrix(np.ones((1, m))))   # (n, nm): sum_j P_ij
    col_sums = kron(csr_matrix(np.ones((1, n))), eye(m))   # (m, nm): sum_i P_ij
    A_eq = vstack([row_sums, col_sums]).tocsr()
    res = linprog(C.ravel(), A_eq=A_eq, b_eq=np.concatenate([a, b]), bounds=(0, None), method="highs")
    if res.status != 0:
        raise RuntimeError(f"the exact OT linear program failed: {res.message}")
    plan = np.maximum(res.x.reshape(n, m), 0.0)
    return plan, frobenius(plan, C)
