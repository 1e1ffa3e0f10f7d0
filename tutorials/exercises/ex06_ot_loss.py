"""Exercise ot-loss: the OPTICAL-style token-alignment loss, with padding masks.

Read first: tutorials/07_ot_distillation_loop.py (and tutorials/05_tokens_as_point_clouds.py).

Task. X (B, n, d): student token embeddings; Y (B, m, d): teacher token embeddings; mask_x (B, n) and
mask_y (B, m): True on real tokens, False on padding. For each pair b return <P_b, C_b>_F where
C_ij = 1 - cos(x_i, y_j), and P_b is the entropic OT plan (eps given) between uniform weights on the
*real* tokens of each side. eps is absolute: use it as given, for every pair (do not scale it by the cost,
e.g. by C.max(); the library's eps_mode options are not asked for). Return a (B,) torch tensor, one loss
per pair, converged to 1e-10 or better, computed from X in torch so that the gradient reaches X (it is a
training loss: a result computed in numpy, or detached, fails).

Hints.
- Padded tokens carry zero mass: a_i = 1 / (number of real tokens) on real rows, 0 on padded ones.
- Solve each pair on its real tokens only (slice them out), or use -inf potentials on padding.
- You may call optical_ref.ot.sinkhorn for each pair; the point is the cost and the masks.

Check: python -m optical_ref check ot-loss --impl tutorials/exercises/ex06_ot_loss.py:ot_loss
"""
import torch  # noqa: F401 (you will need it)


def ot_loss(X, Y, mask_x, mask_y, eps):
    raise NotImplementedError("per pair: cosine cost on real tokens, Sinkhorn plan, <P, C>_F")
