"""Tutorial 02 - Sinkhorn in numpy, step by step.

What you learn: entropic OT adds -eps H(P) to the cost; its plan is P = diag(u) K diag(v) with
K = exp(-C/eps), and Sinkhorn finds u, v by alternately fixing the rows (u = a / K v) and the columns
(v = b / K^T u). You watch the marginal error fall with the iterations, and see how eps blurs the plan.
Read first: 01_transport_plan.py and the docstring of optical_ref/ot.py. Next: 03_kernel_vs_log.py.
"""
# %% A small problem
import warnings

import matplotlib.pyplot as plt
import numpy as np

from optical_ref.ot import SinkhornConvergenceWarning, exact_ot, sinkhorn
from optical_ref.tutorial import savefig, setup

out, smoke = setup(__doc__)
rng = np.random.default_rng(0)
n = 12
X, Y = np.sort(rng.random(n)), np.sort(rng.random(n))
C = (X[:, None] - Y[None, :]) ** 2
a = b = np.full(n, 1 / n)

# %% One iteration by hand, to see the two half-steps (the library's loop does exactly this)
eps = 0.01
K = np.exp(-C / eps)
v = np.ones(n)
u = a / (K @ v)                    # rows now sum to a
P = u[:, None] * K * v[None, :]
print("after the u-step: row error", abs(P.sum(1) - a).sum().round(6), " column error", abs(P.sum(0) - b).sum().round(6))
v = b / (K.T @ u)                  # columns now sum to b, rows drift
P = u[:, None] * K * v[None, :]
print("after the v-step: row error", abs(P.sum(1) - a).sum().round(6), " column error", abs(P.sum(0) - b).sum().round(6))

# %% The marginal error per iteration: linear convergence (a straight line on a log scale)
iterations = range(1, 60 if smoke else 300)
errors = []
with warnings.catch_warnings():
    warnings.simplefilter("ignore", SinkhornConvergenceWarning)   # we stop early on purpose
    for k in iterations:
        errors.append(sinkhorn(a, b, C, eps, method="kernel", max_iter=k, tol=1e-15).marginal_error)
fig, ax = plt.subplots(figsize=(5, 3))
ax.semilogy(list(iterations), errors)
ax.set_xlabel("iteration")
ax.set_ylabel("||P 1 - a||_1")
ax.set_title(f"Sinkhorn converges linearly (eps={eps})")
savefig(fig, out, "02_marginal_error.png")

# %% The effect of eps: large eps spreads mass (blur), small eps approaches the exact plan
eps_values = [1.0, 0.1, 0.01, 0.001]
fig, axes = plt.subplots(1, len(eps_values) + 1, figsize=(3 * (len(eps_values) + 1), 3))
for ax, e in zip(axes, eps_values):
    with warnings.catch_warnings():   # eps=0.001 needs more than 100,000 iterations to reach tol 1e-9 here:
        warnings.simplefilter("ignore", SinkhornConvergenceWarning)   # the plan is still close; the warning says so
        res = sinkhorn(a, b, C, e, max_iter=100_000)
    ax.imshow(res.plan, cmap="Blues")
    ax.set_title(f"eps={e}: cost {res.cost:.4f}", fontsize=9)
    ax.set_xlabel("target point j")
    ax.set_ylabel("source point i")
exact_plan, exact_cost = exact_ot(a, b, C)
axes[-1].imshow(exact_plan, cmap="Blues")
axes[-1].set_title(f"exact: cost {exact_cost:.4f}", fontsize=9)
axes[-1].set_xlabel("target point j")
savefig(fig, out, "02_plans_by_eps.png")
print("as eps decreases, the entropic cost approaches the exact cost", round(exact_cost, 5))
