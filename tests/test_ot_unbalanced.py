"""Unbalanced entropic OT (optical_ref.ot.sinkhorn_unbalanced): KL-relaxed marginals."""
import numpy as np
import pytest

from optical_ref.ot import sinkhorn, sinkhorn_unbalanced


def problem(seed=0, n=5, m=7):
    rng = np.random.default_rng(seed)
    C = rng.random((n, m))
    return rng.dirichlet(np.ones(n)), rng.dirichlet(np.ones(m)), C


def test_a_very_large_tau_approaches_the_balanced_plan():
    a, b, C = problem()
    balanced = sinkhorn(a, b, C, eps=0.1).plan
    gaps = [np.abs(sinkhorn_unbalanced(a, b, C, eps=0.1, tau=tau, tol=1e-7).plan - balanced).sum() for tau in (1.0, 100.0, 1e5)]
    assert gaps[0] > gaps[1] > gaps[2] and gaps[2] < 1e-4


def test_an_infinite_tau_is_the_balanced_plan():
    a, b, C = problem(1)
    assert np.allclose(sinkhorn_unbalanced(a, b, C, eps=0.1, tau=float("inf")).plan, sinkhorn(a, b, C, eps=0.1).plan,
                       atol=1e-9)


@pytest.mark.filterwarnings("ignore:If reg_type = entropy")
def test_matches_pots_unbalanced_sinkhorn_with_the_plain_entropy():
    ot = pytest.importorskip("ot")
    a, b, C = problem(2)
    b = 2 * b                                                # masses may differ
    ours = sinkhorn_unbalanced(a, b, C, eps=0.2, tau=0.5, tol=1e-12).plan
    pot = ot.unbalanced.sinkhorn_unbalanced(a, b, C, reg=0.2, reg_m=0.5, reg_type="entropy", numItermax=100_000,
                                            stopThr=1e-13)
    assert np.allclose(ours, pot, atol=1e-8)


def test_a_small_tau_moves_less_mass_across_an_expensive_cost():
    a, b = np.array([0.5, 0.5]), np.array([0.5, 0.5])
    C = np.array([[0.0, 10.0], [10.0, 0.0]])
    C_far = C + 5.0                                           # every move costs 5 more
    near, far = (sinkhorn_unbalanced(a, b, c, eps=0.5, tau=1.0).plan.sum() for c in (C, C_far))
    assert far < 0.2 * near


@pytest.mark.parametrize("tau", [0, -1.0, "big"])
def test_a_bad_tau_is_refused_with_its_meaning(tau):
    a, b, C = problem()
    with pytest.raises(ValueError, match="tau must be a number > 0"):
        sinkhorn_unbalanced(a, b, C, eps=0.1, tau=tau)
