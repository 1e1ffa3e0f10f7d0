"""Tutorial 04 - Sinkhorn in torch: batching with padding masks, and gradients.

What you learn: sentences have different lengths, so a batch of OT problems is padded; masks give padded
rows and columns zero mass, and the plan is then exactly zero there. Two ways to differentiate the cost
<P, C>: unroll autograd through the iterations (exact for the computed plan, memory grows with the
iterations) or the envelope theorem (hold P fixed: d cost / d C = P; cheap, exact at convergence for the
entropic objective). A finite-difference check confirms the unrolled gradient.
Read first: 03_kernel_vs_log.py and the docstring of optical_ref/ot_torch.py. Next: 05_tokens_as_point_clouds.py.
"""
# %% A padded batch of three problems: 3x5, 4x4 and 2x3 inside a 4x5 tensor
import matplotlib.pyplot as plt
import numpy as np
import torch

from optical_ref import ot as reference
from optical_ref.ot_torch import sinkhorn
from optical_ref.tutorial import savefig, setup

out, smoke = setup(__doc__)
torch.manual_seed(0)
sizes = [(3, 5), (4, 4), (2, 3)]
C = torch.full((3, 4, 5), float("nan"), dtype=torch.float64)   # padding may hold anything, even NaN
mask_a = torch.zeros(3, 4, dtype=torch.bool)
mask_b = torch.zeros(3, 5, dtype=torch.bool)
for k, (n, m) in enumerate(sizes):
    C[k, :n, :m] = torch.rand(n, m, dtype=torch.float64)
    mask_a[k, :n], mask_b[k, :m] = True, True

# %% One call solves all three; each equals the numpy reference on its real part
res = sinkhorn(None, None, C, eps=0.1, mask_a=mask_a, mask_b=mask_b, tol=1e-10)
for k, (n, m) in enumerate(sizes):
    ref = reference.sinkhorn(None, None, C[k, :n, :m].numpy(), 0.1, tol=1e-10)
    print(f"problem {k}: max |torch - numpy| = {np.abs(res.plan[k, :n, :m].numpy() - ref.plan).max():.1e}, "
          f"largest plan entry on padding = {res.plan[k][~(mask_a[k][:, None] & mask_b[k][None, :])].abs().max():.1e}")

fig, axes = plt.subplots(1, 3, figsize=(9, 2.8))
for k, ax in enumerate(axes):
    ax.imshow(res.plan[k].numpy(), cmap="Blues")
    ax.set_title(f"problem {k}: real {sizes[k][0]}x{sizes[k][1]}", fontsize=9)
    ax.set_xlabel("column j (mask_b)")
    ax.set_ylabel("row i (mask_a)")
savefig(fig, out, "04_padded_plans.png")   # padded rows/columns are exactly 0 (white)

# %% Gradients: unrolled vs envelope
C_real = torch.rand(1, 4, 4, dtype=torch.float64)
grads = {}
for mode in ["unrolled", "envelope"]:
    Cg = C_real.clone().requires_grad_(True)
    out_mode = sinkhorn(None, None, Cg, 0.05, n_iter=300, grad=mode)
    out_mode.cost.sum().backward()
    grads[mode] = Cg.grad[0]
    if mode == "envelope":
        print("envelope gradient equals the plan:", torch.allclose(Cg.grad, out_mode.plan))
print("max |unrolled - envelope| =", float((grads["unrolled"] - grads["envelope"]).abs().max()),
      "(the envelope drops the term <dP/dC, C>: the loss <P, C> is not the entropic objective)")
for e in ([0.05] if smoke else [1.0, 0.1, 0.05, 0.01, 0.002]):   # the gap is not monotone in eps: measured, not assumed
    g = {}
    for mode in ["unrolled", "envelope"]:
        Cg = C_real.clone().requires_grad_(True)
        sinkhorn(None, None, Cg, e, n_iter=300 if e >= 0.01 else 3000, grad=mode).cost.sum().backward()
        g[mode] = Cg.grad[0]
    print(f"  eps={e}: max |unrolled - envelope| = {float((g['unrolled'] - g['envelope']).abs().max()):.3f}")

# %% Finite differences confirm the unrolled gradient
h, (i, j) = 1e-6, (1, 2)
plus, minus = C_real.clone(), C_real.clone()
plus[0, i, j] += h
minus[0, i, j] -= h
fd = (sinkhorn(None, None, plus, 0.05, n_iter=300).cost - sinkhorn(None, None, minus, 0.05, n_iter=300).cost) / (2 * h)
print(f"d cost / d C[{i},{j}]: unrolled {float(grads['unrolled'][i, j]):.6f}, finite differences {float(fd):.6f}")
