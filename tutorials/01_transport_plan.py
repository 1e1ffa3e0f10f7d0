"""Tutorial 01 - a transport plan by hand.

What you learn: what a transport plan P is (a joint distribution whose rows sum to a and columns to b),
how the cost matrix C is built from two point sets, what the exact (unregularised) optimal plan looks like,
and that its cost is the Frobenius inner product <P, C>_F = sum_ij P_ij C_ij.
Read first: nothing; this is the start. Next: 02_sinkhorn_numpy.py.
Run: python tutorials/01_transport_plan.py [--out DIR]
"""
# %% Two tiny point sets: 3 "student" points and 4 "teacher" points in the plane
import matplotlib.pyplot as plt
import numpy as np

from optical_ref.ot import exact_ot, frobenius, sq_euclidean_cost
from optical_ref.tutorial import savefig, setup

out, smoke = setup(__doc__)
X = np.array([[0.0, 0.0], [1.0, 0.2], [2.0, 0.0]])
Y = np.array([[0.1, 1.0], [0.9, 1.2], [1.6, 0.9], [2.2, 1.1]])
a = np.full(3, 1 / 3)      # each student point carries mass 1/3
b = np.full(4, 1 / 4)      # each teacher point carries mass 1/4

# %% The cost of moving one unit of mass from x_i to y_j
C = sq_euclidean_cost(X, Y)
print("cost matrix C (3 x 4):\n", C.round(3))

# %% Any coupling is a plan: the independent one, a b^T, moves everything everywhere
independent = np.outer(a, b)
print("independent plan: rows sum to", independent.sum(1).round(3), "columns to", independent.sum(0).round(3))
print(f"its cost <P, C>_F = {frobenius(independent, C):.4f}")

# %% The optimal plan, by linear programming
plan, cost = exact_ot(a, b, C)
print("optimal plan (x 12 to show the fractions):\n", (12 * plan).round(3))
print(f"optimal cost <P*, C>_F = {cost:.4f} (lower than the independent plan's)")
assert np.allclose(plan.sum(1), a) and np.allclose(plan.sum(0), b)

# %% A picture: the width of each line is the mass it moves
fig, ax = plt.subplots(figsize=(5, 3))
for i in range(3):
    for j in range(4):
        if plan[i, j] > 1e-9:
            ax.plot([X[i, 0], Y[j, 0]], [X[i, 1], Y[j, 1]], "k-", lw=30 * plan[i, j], alpha=0.6)
ax.scatter(*X.T, s=120, label="student points (a)")
ax.scatter(*Y.T, s=120, marker="s", label="teacher points (b)")
ax.legend(loc="center right", fontsize=8)
ax.set_title(f"optimal transport plan, cost {cost:.3f}")
savefig(fig, out, "01_plan.png")
