"""The OT loss's marginals as a setting (ot_marginals = uniform | norm | unbalanced, ot_tau)."""
import numpy as np
import pytest
import torch

from optical_ref import ot, ot_torch
from optical_ref.config import TrainConfig, parse_settings


def batch(seed=0, B=3, n=5, m=4, d=6):
    g = torch.Generator().manual_seed(seed)
    X, Y = torch.randn(B, n, d, generator=g, dtype=torch.float64), torch.randn(B, m, d, generator=g, dtype=torch.float64)
    mx, my = torch.ones(B, n, dtype=torch.bool), torch.ones(B, m, dtype=torch.bool)
    mx[0, 3:], my[1, 2:] = False, False
    return X, Y, mx, my


def test_torch_unbalanced_plan_equals_the_numpy_reference():
    X, Y, mx, my = batch()
    C = ot_torch.cost_matrix(X, Y)
    plan = ot_torch.sinkhorn_unbalanced(None, None, C, 0.1, 0.5, mask_a=mx, mask_b=my, n_iter=3000).plan
    for k in range(C.shape[0]):
        n, m = int(mx[k].sum()), int(my[k].sum())
        ref = ot.sinkhorn_unbalanced(None, None, C[k, :n, :m].numpy(), 0.1, 0.5, tol=1e-13, max_iter=100_000).plan
        assert np.allclose(plan[k, :n, :m].numpy(), ref, atol=1e-9)
        assert float(plan[k, n:].abs().sum() + plan[k, :, m:].abs().sum()) == 0.0   # padding carries nothing


def test_unbalanced_loss_with_a_very_large_tau_approaches_the_balanced_loss():
    X, Y, mx, my = batch(1)
    kw = dict(eps=0.1, n_iter=400)
    balanced = ot_torch.ot_loss(X, Y, mx, my, **kw)
    gaps = [float((ot_torch.ot_loss(X, Y, mx, my, marginals="unbalanced", tau=tau, **kw) - balanced).abs().max())
            for tau in (1.0, 1e2, 1e6)]
    assert gaps[0] > gaps[1] > gaps[2] and gaps[2] < 1e-5


def test_norm_marginals_equal_uniform_ones_when_every_token_has_the_same_norm():
    X, Y, mx, my = batch(2)
    X, Y = torch.nn.functional.normalize(X, dim=-1), torch.nn.functional.normalize(Y, dim=-1)
    uniform = ot_torch.ot_loss(X, Y, mx, my, eps=0.1, n_iter=50)
    assert torch.allclose(ot_torch.ot_loss(X, Y, mx, my, eps=0.1, n_iter=50, marginals="norm"), uniform, atol=1e-12)


def test_norm_marginals_weigh_long_tokens_more():
    X, Y, mx, my = batch(3)
    X2 = X.clone()
    X2[:, 0] *= 10.0                                     # the cosine cost is unchanged; only the weights move
    assert not torch.allclose(ot_torch.ot_loss(X2, Y, mx, my, eps=0.1, n_iter=50, marginals="norm"),
                              ot_torch.ot_loss(X2, Y, mx, my, eps=0.1, n_iter=50))


def test_uniform_marginals_are_the_default_bit_for_bit():
    X, Y, mx, my = batch(4)
    assert torch.equal(ot_torch.ot_loss(X, Y, mx, my, eps=0.1, n_iter=20, marginals="uniform"),
                       ot_torch.ot_loss(X, Y, mx, my, eps=0.1, n_iter=20))
    assert TrainConfig().ot_marginals == "uniform"


def test_a_bad_marginals_setting_names_the_choices():
    with pytest.raises(ValueError, match="ot_marginals.*uniform, norm, unbalanced"):
        TrainConfig(**parse_settings(["ot_marginals=sparse"]))
    with pytest.raises(ValueError, match="ot_tau"):
        TrainConfig(**parse_settings(["ot_tau=-1"]))
