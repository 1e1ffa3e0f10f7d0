"""Tutorial 03 - kernel vs log domain: where the kernel method underflows, and why log-sum-exp fixes it.

What you learn: exp(-x) leaves the normal floating-point range below about 2.2e-308 (x > 708) in float64 and
1.2e-38 (x > 87) in float32, and becomes exactly 0 below the smallest subnormal, 4.9e-324 (x > 745) and
1.4e-45 (x > 103). So an entry of K = exp(-C/eps) is exactly 0 once its C_ij/eps passes about 745 (float64),
and a whole row of K is zero only once every C_ij/eps of that row passes about 745 (min_j C_ij / eps > 745):
then the scaling u = a / (K v) divides by zero. Before that, some entries are 0 and the plan loses accuracy
without any error. The log domain never forms K: it updates f = eps log u with a
max-shifted log-sum-exp, whose terms are all <= 1, so nothing overflows; at eps so small that C / eps leaves
the range of the float type (about 1e-308 x max C in float64) it fails too, and the solver says so.
Read first: 02_sinkhorn_numpy.py. Next: 04_sinkhorn_torch.py.
"""
# %% A cost matrix with values between 1 and 2
import warnings

import matplotlib.pyplot as plt
import numpy as np

from optical_ref.ot import SinkhornBreakdownError, SinkhornConvergenceWarning, logsumexp, sinkhorn
from optical_ref.tutorial import savefig, setup

out, smoke = setup(__doc__)
rng = np.random.default_rng(1)
C = 1 + rng.random((10, 10))

# %% How much of K underflows as eps shrinks?
eps_values = np.logspace(0, -3.5, 15)
zero_fraction = [(np.exp(-C / e) == 0).mean() for e in eps_values]
for e, z in zip(eps_values[::3], zero_fraction[::3]):
    print(f"eps={e:.1e}: {100 * z:5.1f}% of K is exactly 0")
fig, ax = plt.subplots(figsize=(5, 3))
ax.semilogx(eps_values, 100 * np.array(zero_fraction), marker="o")
ax.invert_xaxis()
ax.set_xlabel("eps")
ax.set_ylabel("% of K = exp(-C/eps) that is 0")
savefig(fig, out, "03_kernel_underflow.png")

# %% The kernel method stops with a clear error; the log method goes on
for eps in [0.1, 1e-3]:
    try:
        res = sinkhorn(None, None, C, eps, method="kernel")
        print(f"kernel, eps={eps}: fine, cost {res.cost:.4f}")
    except SinkhornBreakdownError as err:
        print(f"kernel, eps={eps}: {err}")
    with warnings.catch_warnings():   # at eps=1e-3 the log method needs more than 100,000 iterations for tol 1e-9
        warnings.simplefilter("ignore", SinkhornConvergenceWarning)   # (slow, not broken): the error is printed
        res = sinkhorn(None, None, C, eps, method="log", max_iter=100_000)
    print(f"log,    eps={eps}: cost {res.cost:.4f}, marginal error {res.marginal_error:.1e}")

# %% Why: log sum exp(z) of very negative z, naively and with the max shift
z = np.array([[-1000.0, -1001.0, -1002.0]])
with np.errstate(divide="ignore"):
    naive = np.log(np.exp(z).sum())
print(f"naive log(sum(exp(z))) = {naive}  (exp underflowed to 0)")
print(f"max-shifted            = {logsumexp(z, axis=1)[0]:.6f}  (= -1000 + log(1 + e^-1 + e^-2))")
