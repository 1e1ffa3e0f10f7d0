r"""Entropic optimal transport in torch: batched, padding-masked, differentiable. The fast path.

The maths is that of :mod:`optical_ref.ot` (read it first), equations (1)-(6) there, applied to a batch
of B problems at once. Distillation solves one small problem per sentence pair (student tokens x teacher
tokens), so problems come padded to the longest sentence of the batch:

- ``mask_a`` (B, n) and ``mask_b`` (B, m) say which rows and columns are real tokens (True) and which are
  padding (False). Padding carries exactly zero mass: a_i = 0 gives f_i = eps log a_i = -inf, so by (4)
  every plan entry in a padded row is exp(-inf) = 0, exactly. Every log-sum-exp in (5)-(6) still runs
  over at least one real entry, so nothing is -inf - (-inf) and no NaN appears, forward or backward.
  Cost entries at padded places are never read (they may hold garbage, even NaN).
- ``a``/``b`` = ``None`` means uniform weights over the real entries: 1/(number of real tokens).

Two gradient modes (the choice matters in training; POT and GeomLoss default to the second):

``grad="unrolled"``
    autograd through every iteration. The gradient is exact for the plan that the iterations computed
    (also before convergence, so it is right with a fixed small ``n_iter``); memory and backward time
    grow linearly with the number of iterations (every iterate of f, g and each B x n x m log-sum-exp
    input is kept).
``grad="envelope"``
    iterations under ``torch.no_grad()``; the plan P is then held fixed and ``cost`` = <P, C>_F, so
    d cost / d C = P. By Danskin's (envelope) theorem P is the exact gradient of the entropic
    objective OT_eps(C) = min_P <P, C> - eps H(P) at convergence — not of the loss <P(C), C>, whose
    gradient is P + <dP/dC, C>. The dropped term is not small at training eps: it is of the same order
    as the entries of P (tutorial 04 measures the gap per eps), so "envelope" trains the entropic
    objective, a choice of ours (as GeomLoss and OTTER do), not an approximation of the unrolled one. Constant memory in the iterations, backward as cheap as one
    elementwise product. Use it when the solve converges (or nearly); use "unrolled" for a fixed small
    number of iterations or when the exact derivative of the computed cost is needed.

Runs on the device and dtype of ``C`` (float32 or float64, CPU or CUDA). Batched matrix products
(``method="kernel"``) or batched log-sum-exps (``method="log"``) do the work; convergence is checked
every ``check_every`` iterations (each check synchronises with the device), or never with ``n_iter``.

References: Cuturi 2013; Peyré & Cuturi 2019 (ch. 4 and Remark 4.23, log domain; ch. 9.1.3 on
differentiation); Schmitzer 2019; Feydy et al., AISTATS 2019 (GeomLoss, envelope gradients);
Flamary et al. 2021 (POT's ``sinkhorn2`` and ``ot.batch``).
"""
from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass

import torch

from .ot import (
    MASS_RTOL,
    SinkhornBreakdownError,
    SinkhornConvergenceWarning,
    breakdown_message,
    check_eps,
    check_iteration_settings,
    check_method,
    check_tau,
)

__all__ = ["SinkhornResult", "sinkhorn", "sinkhorn_unbalanced", "ot_loss", "cost_matrix", "GRADS", "COSTS"]

EPS_MODES = ("absolute", "median", "std")
GRADS = ("unrolled", "envelope")
COSTS = ("cosine", "sq_euclidean")
MARGINALS = ("uniform", "norm", "unbalanced")


@dataclass
class SinkhornResult:
    """The fields of :class:`optical_ref.ot.SinkhornResult`, as tensors with a leading batch dimension
    (dropped when the input was a single (n, m) problem).

    plan (B, n, m); f (B, n) and g (B, m), -inf on padding; cost (B,) = <P, C>_F;
    n_iter (int, the iterations run for the whole batch); marginal_error (B,) = ||P 1 - a||_1;
    converged (B,) bool.
    """

    plan: torch.Tensor
    f: torch.Tensor
    g: torch.Tensor
    cost: torch.Tensor
    n_iter: int
    marginal_error: torch.Tensor
    converged: torch.Tensor


# --------------------------------------------------------------------------------------------------
# Input checks (the numpy reference's list, plus masks and gradient mode).
# --------------------------------------------------------------------------------------------------
def _as_batch(C, a, b, mask_a, mask_b, balanced=True):
    """Bring everything to batched form (B, n, m), (B, n), (B, m); returns also whether to squeeze.
    ``balanced``: a and b must carry the same mass (not so for unbalanced OT)."""
    if not torch.is_tensor(C):
        C = torch.as_tensor(C, dtype=torch.get_default_dtype())
    if not C.is_floating_point():
        C = C.to(torch.get_default_dtype())
    if C.ndim not in (2, 3):
        raise ValueError(f"C must be (n, m) or batched (B, n, m), got shape {tuple(C.shape)}")
    unbatched = C.ndim == 2
    if unbatched:
        C = C.unsqueeze(0)
    B, n, m = C.shape
    if B == 0 or n == 0 or m == 0:
        raise ValueError(f"C is empty (shape {tuple(C.shape)}); every problem needs at least one row and column")

    def batched(x, size, name, kind, side):
        if x is None:
            return None
        x = torch.as_tensor(x, device=C.device)
        if x.ndim == 1 and x.shape[0] == size:
            x = x.unsqueeze(0).expand(B, size)
        if tuple(x.shape) != (B, size):
            expected = f"({size},)" if unbatched else f"({size},) or ({B}, {size})"
            raise ValueError(f"{name} has shape {tuple(x.shape)}, but C has shape {tuple(C.shape)}; "
                             f"{name} needs one {kind} per {side} of C: shape {expected}")
        return x

    mask_a = batched(mask_a, n, "mask_a", "flag", "row")
    mask_b = batched(mask_b, m, "mask_b", "flag", "column")
    for name, mask in (("mask_a", mask_a), ("mask_b", mask_b)):
        if mask is not None and mask.dtype != torch.bool:
            raise ValueError(f"{name} must be a boolean tensor (True = real token, False = padding), got {mask.dtype}")
    mask_a = torch.ones(B, n, dtype=torch.bool, device=C.device) if mask_a is None else mask_a
    mask_b = torch.ones(B, m, dtype=torch.bool, device=C.device) if mask_b is None else mask_b
    for name, mask in (("mask_a", mask_a), ("mask_b", mask_b)):
        empty = ~mask.any(dim=1)
        if empty.any():
            raise ValueError(
                f"{name} has no real entry in problem(s) {empty.nonzero().flatten().tolist()}: every problem needs "
                "at least one real token on each side (drop empty sentences before building the batch)"
            )

    a = _weights(batched(a, n, "a", "weight", "row"), mask_a, C.dtype, "a", "row")
    b = _weights(batched(b, m, "b", "weight", "column"), mask_b, C.dtype, "b", "column")
    real = mask_a[:, :, None] & mask_b[:, None, :]
    C = torch.where(real, C, torch.zeros((), dtype=C.dtype, device=C.device))  # padded costs are never read
    if not torch.isfinite(C).all():
        raise ValueError("C contains NaN or inf at real (unmasked) entries; the cost must be finite there "
                         "(padded entries may hold anything)")
    if not balanced:
        return C, a, b, mask_a, mask_b, real, unbatched
    mass_a, mass_b = a.sum(1), b.sum(1)
    rtol = max(MASS_RTOL, 100 * torch.finfo(C.dtype).eps)
    unequal = (mass_a - mass_b).abs() > rtol * torch.maximum(mass_a, mass_b)
    if unequal.any():
        k = int(unequal.nonzero()[0])
        raise ValueError(
            f"a and b must have the same total mass in every problem; problem {k} has sum(a)={float(mass_a[k]):.8g}, "
            f"sum(b)={float(mass_b[k]):.8g}; normalise both (a / a.sum(-1, keepdim=True))"
        )
    b = b * (mass_a / mass_b)[:, None]
    return C, a, b, mask_a, mask_b, real, unbatched


def _weights(w, mask, dtype, name, kind):
    if w is None:
        return mask.to(dtype) / mask.sum(dim=1, keepdim=True).to(dtype)
    w = w.to(dtype)
    if not torch.isfinite(w).all():
        raise ValueError(f"{name} contains NaN or inf; weights must be finite")
    if (w < 0).any():
        raise ValueError(f"{name} has negative weights (min {float(w.min()):.3g}); weights must be >= 0")
    if (w[~mask] != 0).any():
        raise ValueError(f"{name} puts mass on padded {kind}s; padding must carry zero weight "
                         f"(multiply {name} by its mask, or pass {name}=None for uniform weights)")
    if (w.sum(dim=1) <= 0).any():
        raise ValueError(f"{name} sums to 0 in some problem; every problem needs positive mass")
    return w


# --------------------------------------------------------------------------------------------------
# The solver.
# --------------------------------------------------------------------------------------------------
def sinkhorn(a, b, C, eps, *, method="log", mask_a=None, mask_b=None, n_iter=None, tol=1e-6,
             max_iter=1000, grad="unrolled", check_every=10) -> SinkhornResult:
    r"""Batched entropic OT; the torch twin of :func:`optical_ref.ot.sinkhorn`.

    Parameters
    ----------
    a, b : (n,)/(m,) or (B, n)/(B, m) tensors, or None (uniform over the real entries).
    C : (n, m) or (B, n, m) cost tensor; its dtype and device are used throughout.
    eps : float, absolute entropic regularisation (> 0).
    method : "log" (stable for any eps) or "kernel" (``bmm`` on K = exp(-C/eps); raises
        :class:`SinkhornBreakdownError` where K or the scalings under- or overflow).
    mask_a, mask_b : (B, n)/(B, m) bool, True = real token. Default: all real.
    n_iter : run exactly this many iterations, no convergence checks (predictable cost in training).
    tol, max_iter : otherwise stop when every problem has ||P 1 - a||_1 <= tol, or warn at max_iter.
    grad : "unrolled" or "envelope" (see the module docstring). The envelope gradient is with respect to C
        only: a and b get no gradient (they are constants of the fixed plan); use "unrolled" to differentiate
        with respect to the marginals.
    check_every : iterations between two convergence checks.

    Returns
    -------
    SinkhornResult (tensors; see its docstring).
    """
    eps = check_eps(eps)
    check_method(method)
    check_iteration_settings(tol, max_iter)
    if grad not in GRADS:
        raise ValueError(f"unknown grad mode {grad!r}; choose one of {GRADS}")
    check_iteration_settings(tol, max_iter, n_iter)
    if isinstance(check_every, bool) or not isinstance(check_every, int) or check_every < 1:
        raise ValueError(f"check_every must be an integer >= 1 (iterations between convergence checks), got {check_every!r}")
    C, a, b, mask_a, mask_b, real, unbatched = _as_batch(C, a, b, mask_a, mask_b)

    iterate = _iterate_log if method == "log" else _iterate_kernel
    settings = dict(eps=eps, n_iter=n_iter, tol=tol, max_iter=max_iter, check_every=check_every)
    if grad == "envelope":
        with torch.no_grad():
            plan, f, g, iters, error = iterate(a, b, C.detach(), mask_a, mask_b, real, **settings)
    else:
        plan, f, g, iters, error = iterate(a, b, C, mask_a, mask_b, real, **settings)
    with torch.no_grad():   # the columns sum to b after every iteration: a plan that lost its mass broke down
        lost_mass = ((plan.detach().sum(dim=(1, 2)) - b.sum(1)).abs() > 1e-3 * b.sum(1)).any()
    if not bool(torch.isfinite(plan.detach()).all()) or bool(lost_mass):
        scale = float(C.detach()[real].abs().max()) if bool(real.any()) else 0.0
        raise SinkhornBreakdownError(
            f"torch Sinkhorn ({method}) produced a non-finite plan: eps={eps:.3g} is too small for {C.dtype} with "
            f"costs up to {scale:.3g} (C / eps leaves the range of the dtype). Use a larger eps (e.g. 1e-3 x max C), "
            "rescale C, or use float64.")
    cost = (plan * C).sum(dim=(1, 2))  # envelope: plan is a constant, so d cost / d C = plan

    converged = error <= tol
    if n_iter is None and not bool(converged.all()):
        warnings.warn(
            f"torch Sinkhorn ({method}) did not converge in {max_iter} iterations for "
            f"{int((~converged).sum())} of {len(converged)} problems (largest marginal error "
            f"{float(error.max()):.3g} > tol {tol:.3g}); raise max_iter or eps, or loosen tol",
            SinkhornConvergenceWarning, stacklevel=2)
    result = SinkhornResult(plan, f, g, cost, iters, error, converged)
    if unbatched:
        result = SinkhornResult(plan[0], f[0], g[0], cost[0], iters, error[0], converged[0])
    return result


def sinkhorn_unbalanced(a, b, C, eps, tau, *, mask_a=None, mask_b=None, n_iter, grad="unrolled") -> SinkhornResult:
    r"""Batched unbalanced entropic OT, the torch twin of :func:`optical_ref.ot.sinkhorn_unbalanced`: updates (7)-(8)
    there (the log-domain updates damped by lam = tau / (tau + eps)), exactly ``n_iter`` of them, as in training.

    a, b: weights or None (uniform over the real entries), masses need not agree; C (n, m) or (B, n, m);
    tau > 0 the strength of the KL penalties on the marginals; ``grad`` as in :func:`sinkhorn`.
    ``marginal_error`` is ||P 1 - a||_1, which need not vanish; ``converged`` is always True (no check is made).
    """
    eps = check_eps(eps)
    tau = check_tau(tau)
    check_iteration_settings(1e-6, 1000, n_iter)
    if grad not in GRADS:
        raise ValueError(f"unknown grad mode {grad!r}; choose one of {GRADS}")
    C, a, b, mask_a, mask_b, real, unbatched = _as_batch(C, a, b, mask_a, mask_b, balanced=False)
    lam = 1.0 if tau == float("inf") else tau / (tau + eps)
    with torch.no_grad() if grad == "envelope" else contextlib.nullcontext():
        C_over_eps = (C.detach() if grad == "envelope" else C) / eps
        log_a, log_b = torch.log(a), torch.log(b)          # -inf on padding: zero mass
        gamma = torch.zeros_like(b).masked_fill(~mask_b, float("-inf"))
        for _ in range(n_iter):
            phi = lam * (log_a - torch.logsumexp(gamma[:, None, :] - C_over_eps, dim=2))           # (7) / eps
            gamma = lam * (log_b - torch.logsumexp(phi[:, :, None] - C_over_eps, dim=1))       # (8) / eps
        plan = torch.exp(phi[:, :, None] + gamma[:, None, :] - C_over_eps)                      # (4)
    if not bool(torch.isfinite(plan.detach()).all()):
        raise SinkhornBreakdownError(f"unbalanced torch Sinkhorn produced a non-finite plan at eps={eps:.3g}; "
                                     "use a larger eps or float64")
    cost = (plan * C).sum(dim=(1, 2))
    error = (plan.detach().sum(2) - a).abs().sum(1)
    result = SinkhornResult(plan, eps * phi, eps * gamma, cost, n_iter, error, torch.ones_like(error, dtype=torch.bool))
    if unbatched:
        result = SinkhornResult(plan[0], eps * phi[0], eps * gamma[0], cost[0], n_iter, error[0], result.converged[0])
    return result


def _iterations(n_iter, max_iter, check_every):
    """Yield (iteration number, whether to check convergence after it)."""
    last = n_iter if n_iter is not None else max_iter
    for it in range(1, last + 1):
        yield it, n_iter is None and (it % check_every == 0 or it == last)


def _iterate_log(a, b, C, mask_a, mask_b, real, *, eps, n_iter, tol, max_iter, check_every):
    # Potentials in units of eps (phi = f/eps, gamma = g/eps) save two multiplications per update.
    log_a, log_b = torch.log(a), torch.log(b)          # -inf on padding: zero mass
    C_over_eps = C / eps
    gamma = torch.zeros_like(b).masked_fill(~mask_b, float("-inf"))

    log_Kv = torch.logsumexp(gamma[:, None, :] - C_over_eps, dim=2)                        # (B, n)
    for it, check in _iterations(n_iter, max_iter, check_every):
        phi = log_a - log_Kv                                                                # (5) / eps
        gamma = log_b - torch.logsumexp(phi[:, :, None] - C_over_eps, dim=1)               # (6) / eps
        log_Kv = torch.logsumexp(gamma[:, None, :] - C_over_eps, dim=2)
        if check and bool((_row_error_log(phi, log_Kv, a) <= tol).all()):
            break
    plan = torch.exp(phi[:, :, None] + gamma[:, None, :] - C_over_eps)                      # (4)
    return plan, eps * phi, eps * gamma, it, _row_error_log(phi, log_Kv, a)


def _row_error_log(phi, log_Kv, a):
    with torch.no_grad():  # rows of the plan sum to exp(f_i/eps) (K e^{g/eps})_i, see ot.py
        return (torch.exp(phi + log_Kv) - a).abs().sum(dim=1)


def _iterate_kernel(a, b, C, mask_a, mask_b, real, *, eps, n_iter, tol, max_iter, check_every):
    # Padded entries have C = 0, so K = 1 there: every row and column sum of K stays positive, a = 0
    # on padded rows gives u = 0 / (K v) = 0 exactly (and b = 0 gives v = 0), and the plan u K v is
    # exactly zero on padding without any masking inside the loop.
    K = torch.exp(-C / eps)                                                                 # (1)
    K_real = K * real
    if ((K_real.sum(2) == 0) & mask_a).any() or ((K_real.sum(1) == 0) & mask_b).any():
        raise SinkhornBreakdownError(breakdown_message("whole rows or columns of K underflow to zero", eps))
    K_times, KT_times, as_v = _kernel_products(K)
    a_col, b_v = a[:, :, None], as_v(b)          # u is a column (B, n, 1); v is laid out for K_times
    v = as_v(mask_b.to(C.dtype))

    Kv = K_times(v)
    for it, check in _iterations(n_iter, max_iter, check_every):
        u = a_col / Kv                                                                      # (2)
        v = b_v / KT_times(u)                                                               # (3)
        Kv = K_times(v)
        if check:
            error = (u * Kv - a_col).abs().sum(dim=(1, 2)).detach()
            if not torch.isfinite(error).all() or bool((error <= tol).all()):
                break
    u, v, Kv = u[:, :, 0], v.reshape(b.shape), Kv[:, :, 0]
    error = (u * Kv - a).abs().sum(dim=1).detach()
    if not (torch.isfinite(error).all() and torch.isfinite(u).all() and torch.isfinite(v).all()):
        raise SinkhornBreakdownError(breakdown_message("the scalings u, v over- or underflow", eps))
    plan = u[:, :, None] * K * v[:, None, :]                                                # (1)
    f, g = eps * torch.log(u), eps * torch.log(v)
    return plan, f, g, it, error


def _kernel_products(K):
    """The two products of the kernel loop, (v -> K v, u -> K^T u), and the layout of v they expect.

    For mid-sized matrices a broadcast product and sum beats the batched BLAS call (whose fixed cost per
    problem dominates there); for tiny ones, and for large ones (no B x n x m temporary), BLAS is faster.
    u is kept as a column (B, n, 1); v as a column for BLAS, as a row (B, 1, m) for the broadcast form.
    """
    if 256 < K.shape[1] * K.shape[2] <= 65536:
        return (lambda v: (K * v).sum(dim=2, keepdim=True), lambda u: (K * u).sum(dim=1, keepdim=True),
                lambda x: x[:, None, :])
    KT = K.transpose(1, 2)
    return lambda v: torch.bmm(K, v), lambda u: torch.bmm(KT, u), lambda x: x[:, :, None]


# --------------------------------------------------------------------------------------------------
# The distillation loss built on it.
# --------------------------------------------------------------------------------------------------
def cost_matrix(X, Y, cost="cosine"):
    """Batched cost between token embeddings X (B, n, d) and Y (B, m, d): 1 - cos, or squared distance."""
    if cost == "cosine":
        Xn = torch.nn.functional.normalize(X, dim=-1)  # zero vectors (padding) stay zero: no NaN
        Yn = torch.nn.functional.normalize(Y, dim=-1)
        return 1.0 - Xn @ Yn.transpose(-1, -2)
    if cost == "sq_euclidean":
        return ((X[:, :, None, :] - Y[:, None, :, :]) ** 2).sum(-1)
    raise ValueError(f"unknown cost {cost!r}; choose one of {COSTS}")


def ot_loss(X, Y, mask_x=None, mask_y=None, *, eps, cost="cosine", eps_mode="absolute", method="log", n_iter=None,
            tol=1e-6, max_iter=1000, grad="envelope", marginals="uniform", tau=1.0, details=False):
    r"""OPTICAL-style token-alignment loss <P, C>_F, one value per sentence pair, padding ignored.

    X (B, n, d): student token embeddings (the translation); Y (B, m, d): teacher token embeddings
    (the English sentence); masks (B, n)/(B, m), True = real token. C_ij = 1 - cos(x_i, y_j)
    (``cost="cosine"``) or ||x_i - y_j||^2, uniform marginals over the real tokens, P from :func:`sinkhorn`.
    ``eps_mode="absolute"`` uses ``eps`` as it is; ``"median"`` / ``"std"`` use ``eps`` x the median / the
    standard deviation of the batch's real costs (held fixed, like OTT-JAX's relative epsilon), so that
    eps follows the scale of the cost: a pretrained encoder's token costs sit in a narrow band where an
    absolute eps gives a nearly uniform plan. The training values (eps, cost, iterations, gradient) come
    from :class:`optical_ref.config.TrainConfig`; the paper does not state them.
    ``marginals`` (ours; the paper uses uniform token weights): ``uniform``; ``norm``, each side's token weights
    proportional to its token norms (held fixed, no gradient); ``unbalanced``, uniform reference weights with the
    marginals relaxed by KL penalties of strength ``tau`` (:func:`sinkhorn_unbalanced`; needs ``n_iter``).
    Returns a (B,) tensor; with ``details=True``, an :class:`OTLossDetails` (the losses, the plans, the cost
    matrices and the eps the solver got: the example plan of a run is drawn from it). float16 / bfloat16 inputs are solved in float32 (returned as float32: the gradient
    flows back to the 16-bit tensors, finite), since their range cannot hold a normalised cost and its plan.
    """
    if X.ndim != 3 or Y.ndim != 3 or X.shape[0] != Y.shape[0] or X.shape[2] != Y.shape[2]:
        raise ValueError(f"X and Y must be (B, n, d) and (B, m, d) with the same B and d, got "
                         f"{tuple(X.shape)} and {tuple(Y.shape)}")
    if X.dtype != Y.dtype:
        raise ValueError(f"X and Y must have the same dtype, got {X.dtype} and {Y.dtype}; convert one "
                         "(e.g. Y.to(X.dtype))")
    check_eps(eps)
    if mask_x is not None:   # padded positions may hold anything (even NaN): they must not reach the gradient
        X = torch.where(torch.as_tensor(mask_x, device=X.device)[..., None], X, torch.zeros((), dtype=X.dtype, device=X.device))
    if mask_y is not None:
        Y = torch.where(torch.as_tensor(mask_y, device=Y.device)[..., None], Y, torch.zeros((), dtype=Y.dtype, device=Y.device))
    low_precision = X.dtype in (torch.float16, torch.bfloat16)
    if low_precision:   # 16-bit floats: normalising underflows (1e-12) and the solve loses its mass; work in float32
        X, Y = X.float(), Y.float()
    C = cost_matrix(X, Y, cost)
    eps = effective_eps(C, mask_x, mask_y, eps, eps_mode)
    if marginals == "unbalanced":
        if n_iter is None:
            raise ValueError("marginals='unbalanced' runs a fixed number of iterations: give n_iter")
        result = sinkhorn_unbalanced(None, None, C, eps, tau, mask_a=mask_x, mask_b=mask_y, n_iter=n_iter, grad=grad)
    else:
        a, b = (token_weights(X, mask_x, marginals), token_weights(Y, mask_y, marginals))
        result = sinkhorn(a, b, C, eps, method=method, mask_a=mask_x, mask_b=mask_y, n_iter=n_iter, tol=tol,
                          max_iter=max_iter, grad=grad)
    losses = result.cost
    if details:
        return OTLossDetails(losses, result.plan, C, eps)
    return losses.to(torch.promote_types(losses.dtype, torch.float32)) if low_precision else losses


@dataclass
class OTLossDetails:
    """What :func:`ot_loss` computed: ``loss`` (B,), ``plan`` and ``cost_matrix`` (B, n, m), and ``eps`` (absolute)."""

    loss: torch.Tensor
    plan: torch.Tensor
    cost_matrix: torch.Tensor
    eps: float


def token_weights(X, mask, marginals: str):
    """One side's marginal: None (uniform over the real tokens) or, for ``norm``, the real tokens' norms over
    their sum (outside the graph: the weights are constants of the problem, like uniform ones)."""
    if marginals not in MARGINALS:
        raise ValueError(f"unknown marginals {marginals!r}; choose one of {', '.join(MARGINALS)}")
    if marginals != "norm":
        return None
    with torch.no_grad():
        norms = X.norm(dim=-1)
        if mask is not None:
            norms = norms * torch.as_tensor(mask, device=X.device)
        if not bool((norms.sum(-1) > 0).all()):
            raise ValueError("marginals='norm' needs a token of positive norm in every sentence")
        return norms / norms.sum(-1, keepdim=True)


def effective_eps(C, mask_x, mask_y, eps: float, eps_mode: str) -> float:
    """eps as the solver gets it: ``eps`` itself (``absolute``), or ``eps`` x the median / std of C's real entries."""
    if eps_mode not in EPS_MODES:
        raise ValueError(f"unknown eps_mode {eps_mode!r}; choose one of {EPS_MODES}")
    return eps if eps_mode == "absolute" else eps * relative_cost_scale(C, mask_x, mask_y, eps_mode)


def relative_cost_scale(C, mask_x, mask_y, eps_mode) -> float:
    """The median or the standard deviation of the real entries of C (a float, outside the graph)."""
    with torch.no_grad():
        real = torch.ones(C.shape, dtype=torch.bool, device=C.device)
        if mask_x is not None:
            real = real & torch.as_tensor(mask_x, device=C.device)[:, :, None]
        if mask_y is not None:
            real = real & torch.as_tensor(mask_y, device=C.device)[:, None, :]
        values = C[real]
        scale = float(values.median()) if eps_mode == "median" else float(values.std()) if values.numel() > 1 else 0.0
    if not scale > 0:
        raise ValueError(f"eps_mode={eps_mode!r} needs a cost with a positive {eps_mode}, got {scale:.3g} "
                         "(all token costs equal?); use eps_mode='absolute'")
    return scale
