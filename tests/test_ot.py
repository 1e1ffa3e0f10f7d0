"""The numpy OT reference, specified by its properties.

Read top to bottom: what a transport plan is, what Sinkhorn guarantees, how it relates to exact OT,
which transformations leave it unchanged, where the kernel form breaks and the log form does not,
and what counts as bad input.
"""
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linear_sum_assignment

from optical_ref.ot import (
    SinkhornBreakdownError,
    SinkhornConvergenceWarning,
    SinkhornResult,
    cosine_cost,
    exact_ot,
    frobenius,
    sinkhorn,
    sq_euclidean_cost,
)

@pytest.fixture
def ot():
    """POT, the cross-check: only the tests that compare with it skip without it (the property tests always run)."""
    return pytest.importorskip("ot", reason="POT (pip install pot) is the cross-check for the reference")


def random_problem(rng, n, m, mass=1.0):
    a = rng.random(n) + 0.05
    b = rng.random(m) + 0.05
    return mass * a / a.sum(), mass * b / b.sum(), rng.random((n, m))


# ------------------------------------------------------------------------------------------------
# Agreement with the field's reference library (POT)
# ------------------------------------------------------------------------------------------------
def test_pot_documented_2x2_example_is_reproduced():
    res = sinkhorn([0.5, 0.5], [0.5, 0.5], [[0.0, 1.0], [1.0, 0.0]], eps=1.0)
    expected = [[0.36552929, 0.13447071], [0.13447071, 0.36552929]]
    np.testing.assert_allclose(res.plan, expected, atol=1e-8)
    assert res.cost == pytest.approx(0.26894142136999516, abs=1e-10)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("method,pot_method", [("kernel", "sinkhorn"), ("log", "sinkhorn_log")])
def test_plan_equals_pot_on_random_problems(seed, method, pot_method, ot):
    rng = np.random.default_rng(seed)
    a, b, C = random_problem(rng, 7 + seed, 11 - seed)
    eps = 0.1
    ours = sinkhorn(a, b, C, eps, method=method, tol=1e-12)
    theirs = ot.sinkhorn(a, b, C, eps, method=pot_method, numItermax=100_000, stopThr=1e-13)
    np.testing.assert_allclose(ours.plan, theirs, atol=1e-7)
    assert ours.cost == pytest.approx(ot.sinkhorn2(a, b, C, eps, method=pot_method, stopThr=1e-13), abs=1e-7)


# ------------------------------------------------------------------------------------------------
# The plan is a coupling: it meets both marginals and is non-negative
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["log", "kernel"])
def test_plan_meets_both_marginals_within_tol(method):
    rng = np.random.default_rng(0)
    a, b, C = random_problem(rng, 20, 30)
    res = sinkhorn(a, b, C, eps=0.05, method=method, tol=1e-10)
    assert res.converged
    assert np.abs(res.plan.sum(1) - a).sum() <= 1e-10          # rows: checked by the stopping rule
    np.testing.assert_allclose(res.plan.sum(0), b, atol=1e-14)  # columns: exact after the last update
    assert res.marginal_error <= 1e-10


def test_result_fields_follow_the_documented_conventions():
    rng = np.random.default_rng(1)
    a, b, C = random_problem(rng, 5, 6)
    eps = 0.2
    for method in ["log", "kernel"]:
        res = sinkhorn(a, b, C, eps, method=method)
        assert isinstance(res, SinkhornResult)
        assert res.plan.shape == (5, 6) and res.f.shape == (5,) and res.g.shape == (6,)
        # P_ij = exp((f_i + g_j - C_ij) / eps) in both methods
        np.testing.assert_allclose(np.exp((res.f[:, None] + res.g[None, :] - C) / eps), res.plan, rtol=1e-10)
        assert res.cost == pytest.approx(frobenius(res.plan, C))
        assert 1 <= res.n_iter <= 10_000


def test_log_and_kernel_methods_agree_where_both_are_stable():
    rng = np.random.default_rng(2)
    a, b, C = random_problem(rng, 12, 9)
    log = sinkhorn(a, b, C, 0.05, method="log", tol=1e-12)
    kernel = sinkhorn(a, b, C, 0.05, method="kernel", tol=1e-12)
    np.testing.assert_allclose(log.plan, kernel.plan, atol=1e-12)
    np.testing.assert_allclose(log.f - log.f[0], kernel.f - kernel.f[0], atol=1e-9)  # potentials up to a constant


# ------------------------------------------------------------------------------------------------
# Exact OT and the eps -> 0 limit
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(3))
def test_exact_ot_equals_the_optimal_assignment_on_permutation_problems(seed):
    rng = np.random.default_rng(seed)
    n = 8
    C = rng.random((n, n))
    uniform = np.full(n, 1 / n)
    plan, cost = exact_ot(uniform, uniform, C)
    rows, cols = linear_sum_assignment(C)
    assert cost == pytest.approx(C[rows, cols].sum() / n, abs=1e-9)
    permutation = np.zeros((n, n))
    permutation[rows, cols] = 1 / n
    np.testing.assert_allclose(plan, permutation, atol=1e-9)


def test_exact_ot_equals_pot_emd_with_unequal_weights(ot):
    rng = np.random.default_rng(3)
    a, b, C = random_problem(rng, 6, 9)
    _, cost = exact_ot(a, b, C)
    assert cost == pytest.approx(ot.emd2(a, b, C), abs=1e-9)


def test_sinkhorn_cost_decreases_to_the_exact_cost_and_plan_tends_to_the_permutation():
    # A permutation problem with a unique optimal assignment: the matched entries cost at most 0.2,
    # every other entry at least 0.5 (a gap keeps the eps -> 0 limit reachable in few iterations).
    rng = np.random.default_rng(4)
    n = 6
    C = 0.5 + 0.5 * rng.random((n, n))
    permutation = rng.permutation(n)
    C[np.arange(n), permutation] = 0.2 * rng.random(n)
    uniform = np.full(n, 1 / n)
    exact_plan, exact_cost = exact_ot(uniform, uniform, C)
    assert np.all(exact_plan[np.arange(n), permutation] == pytest.approx(1 / n))
    gaps, plan_errors = [], []
    for eps in [1e-1, 1e-2, 1e-3]:
        res = sinkhorn(uniform, uniform, C, eps, tol=1e-10)
        gaps.append(res.cost - exact_cost)
        plan_errors.append(np.abs(res.plan - exact_plan).sum())
    assert all(gap >= -1e-12 for gap in gaps)                 # no coupling beats the optimum
    assert gaps[0] > gaps[1] >= gaps[2] - 1e-15              # monotone in eps
    assert gaps[2] < 1e-9 and plan_errors[2] < 1e-9           # the plan becomes the permutation
    assert plan_errors[0] > plan_errors[1]


# ------------------------------------------------------------------------------------------------
# Invariances and closed forms
# ------------------------------------------------------------------------------------------------
def test_adding_a_constant_to_the_cost_gives_the_same_plan():
    rng = np.random.default_rng(5)
    a, b, C = random_problem(rng, 5, 7)
    np.testing.assert_allclose(sinkhorn(a, b, C, 0.1).plan, sinkhorn(a, b, C + 3.7, 0.1).plan, atol=1e-10)


def test_swapping_a_and_b_with_the_transposed_cost_transposes_the_plan():
    rng = np.random.default_rng(6)
    a, b, C = random_problem(rng, 5, 7)
    np.testing.assert_allclose(sinkhorn(a, b, C, 0.1, tol=1e-12).plan,
                               sinkhorn(b, a, C.T, 0.1, tol=1e-12).plan.T, atol=1e-10)


def test_scaling_cost_and_eps_together_gives_the_same_plan():
    rng = np.random.default_rng(7)
    a, b, C = random_problem(rng, 5, 7)
    np.testing.assert_allclose(sinkhorn(a, b, C, 0.1).plan, sinkhorn(a, b, 10 * C, 1.0).plan, atol=1e-10)


def test_a_constant_cost_gives_the_independent_coupling():
    rng = np.random.default_rng(8)
    a, b, _ = random_problem(rng, 4, 6)
    res = sinkhorn(a, b, np.full((4, 6), 2.5), eps=0.3)
    np.testing.assert_allclose(res.plan, np.outer(a, b), atol=1e-14)
    assert res.cost == pytest.approx(2.5)


def test_a_single_source_point_sends_all_its_mass_along_b():
    b = np.array([0.2, 0.5, 0.3])
    res = sinkhorn([1.0], b, [[0.4, 0.1, 0.9]], eps=0.01)
    np.testing.assert_allclose(res.plan, b[None, :], atol=1e-14)


def test_total_mass_other_than_one_is_transported_whole():
    rng = np.random.default_rng(9)
    a, b, C = random_problem(rng, 4, 5, mass=3.0)
    res = sinkhorn(a, b, C, 0.1)
    assert res.plan.sum() == pytest.approx(3.0)


def test_zero_weights_get_exactly_zero_rows_and_columns():
    a = np.array([0.5, 0.0, 0.5])
    b = np.array([0.25, 0.75, 0.0])
    C = np.random.default_rng(10).random((3, 3))
    for method in ["log", "kernel"]:
        res = sinkhorn(a, b, C, 0.1, method=method)
        assert np.all(res.plan[1] == 0) and np.all(res.plan[:, 2] == 0)
        assert not np.any(np.isnan(res.plan))


# ------------------------------------------------------------------------------------------------
# Property-based: any valid problem gives a finite, non-negative coupling
# ------------------------------------------------------------------------------------------------
@st.composite
def ot_problems(draw):
    n = draw(st.integers(1, 20))
    m = draw(st.integers(1, 20))
    weights = st.floats(0.01, 1.0)
    a = np.array(draw(st.lists(weights, min_size=n, max_size=n)))
    b = np.array(draw(st.lists(weights, min_size=m, max_size=m)))
    C = np.array(draw(st.lists(st.floats(0.0, 10.0), min_size=n * m, max_size=n * m))).reshape(n, m)
    # eps relative to the cost scale, as in practice (OTT-JAX: 0.05 * std(C)); at eps << max(C)
    # Sinkhorn still converges but may need millions of iterations on near-degenerate costs.
    eps = draw(st.floats(0.1, 5.0)) * max(C.max(), 1e-3)
    return a / a.sum(), b / b.sum(), C, eps


@settings(max_examples=60, deadline=None)
@given(ot_problems())
def test_any_valid_problem_gives_a_finite_nonnegative_plan_meeting_the_marginals(problem):
    a, b, C, eps = problem
    res = sinkhorn(a, b, C, eps, tol=1e-9, max_iter=100_000)
    assert np.all(np.isfinite(res.plan)) and np.all(res.plan >= 0)
    assert res.converged
    assert np.abs(res.plan.sum(1) - a).sum() <= 1e-9
    np.testing.assert_allclose(res.plan.sum(0), b, atol=1e-12)
    assert np.isfinite(res.cost)


# ------------------------------------------------------------------------------------------------
# Small eps: the log domain stays finite, the kernel form breaks down loudly
# ------------------------------------------------------------------------------------------------
def test_log_method_at_tiny_eps_stays_finite_and_meets_the_marginals():
    rng = np.random.default_rng(11)
    a, b, C = random_problem(rng, 10, 10)
    C = 100 * C
    res = sinkhorn(a, b, C, eps=1e-4 * C.max(), tol=1e-9, max_iter=100_000)
    assert np.all(np.isfinite(res.plan)) and np.all(np.isfinite(res.f)) and np.all(np.isfinite(res.g))
    assert res.marginal_error <= 1e-9
    np.testing.assert_allclose(res.plan.sum(0), b, atol=1e-12)


def test_kernel_method_at_tiny_eps_raises_a_clear_breakdown_error():
    rng = np.random.default_rng(11)
    a, b, C = random_problem(rng, 10, 10)
    C = 100 * C + 1.0   # every entry far from zero: whole rows of K underflow
    with pytest.raises(SinkhornBreakdownError, match="method='log'"):
        sinkhorn(a, b, C, eps=1e-4 * C.max(), method="kernel")


def test_isolated_zeros_in_the_kernel_are_not_a_breakdown(ot):
    C = np.array([[0.0, 50.0], [50.0, 0.0], [1.0, 1.0]])
    a, b = np.full(3, 1 / 3), np.full(2, 1 / 2)
    eps = 1.0  # exp(-50/1) ~ 2e-22 is fine; push two entries to exact zero:
    C[0, 1] = C[1, 0] = 1e4
    res = sinkhorn(a, b, C, eps, method="kernel")
    np.testing.assert_allclose(res.plan, ot.sinkhorn(a, b, C, eps), atol=1e-8)
    assert res.plan[0, 1] == 0.0


def test_non_convergence_warns_and_returns_no_nan():
    rng = np.random.default_rng(12)
    a, b, C = random_problem(rng, 10, 10)
    with pytest.warns(SinkhornConvergenceWarning, match="did not converge"):
        res = sinkhorn(a, b, C, eps=0.001, max_iter=3)
    assert not res.converged and res.n_iter == 3
    assert np.all(np.isfinite(res.plan))


def test_convergence_gives_no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sinkhorn(None, None, np.eye(3), eps=0.5)


# ------------------------------------------------------------------------------------------------
# Cost helpers
# ------------------------------------------------------------------------------------------------
def test_cost_helpers_equal_pot_and_scipy_distances(ot):
    rng = np.random.default_rng(13)
    X, Y = rng.normal(size=(5, 3)), rng.normal(size=(4, 3))
    np.testing.assert_allclose(sq_euclidean_cost(X, Y), ot.dist(X, Y), atol=1e-12)
    from scipy.spatial.distance import cdist
    np.testing.assert_allclose(cosine_cost(X, Y), cdist(X, Y, "cosine"), atol=1e-12)


def test_cosine_cost_is_zero_on_identical_directions_and_in_0_2():
    X = np.array([[1.0, 0.0], [0.0, 2.0], [-3.0, 0.0]])
    C = cosine_cost(X, X)
    np.testing.assert_allclose(np.diag(C), 0.0, atol=1e-15)
    assert C.min() >= -1e-15 and C.max() <= 2 + 1e-15


# ------------------------------------------------------------------------------------------------
# Bad input: a ValueError that says what is wrong and how to fix it
# ------------------------------------------------------------------------------------------------
GOOD_C = np.ones((2, 3))


@pytest.mark.parametrize(
    "a,b,C,kwargs,message",
    [
        (None, None, np.ones(3), {}, "2-d cost matrix"),
        (None, None, np.ones((2, 3, 1)), {}, "2-d cost matrix"),
        (None, None, np.ones((0, 3)), {}, "empty"),
        ([], None, GOOD_C, {}, "a is empty"),
        (None, [], GOOD_C, {}, "b is empty"),
        ([0.5, 0.5, 0.0], None, GOOD_C, {}, "one weight per row"),
        (None, [0.5, 0.5], GOOD_C, {}, "one weight per column"),
        (np.ones((2, 1)) / 2, None, GOOD_C, {}, "1-d array"),
        (None, None, [[0.0, np.nan, 1.0], [1.0, 1.0, 1.0]], {}, "NaN or inf"),
        (None, None, [[0.0, np.inf, 1.0], [1.0, 1.0, 1.0]], {}, "NaN or inf"),
        ([1.5, -0.5], None, GOOD_C, {}, "negative"),
        ([0.0, 0.0], None, GOOD_C, {}, "sums to 0"),
        ([0.5, 0.6], None, GOOD_C, {}, "same total mass"),
        (None, None, GOOD_C, {"eps": 0.0}, "eps must be finite and > 0"),
        (None, None, GOOD_C, {"eps": -1.0}, "eps must be finite and > 0"),
        (None, None, GOOD_C, {"eps": np.nan}, "eps must be finite and > 0"),
        (None, None, GOOD_C, {"eps": "big"}, "eps must be a positive number"),
        (None, None, GOOD_C, {"method": "sinkhorn"}, "unknown method"),
        (None, None, GOOD_C, {"tol": -1.0}, "tol must be"),
        (None, None, GOOD_C, {"max_iter": 0}, "max_iter must be"),
        (None, None, GOOD_C, {"max_iter": 2.5}, "max_iter must be"),
    ],
)
def test_bad_input_raises_a_value_error_that_says_what_is_wrong(a, b, C, kwargs, message):
    kwargs = {"eps": 0.1, **kwargs}
    eps = kwargs.pop("eps")
    with pytest.raises(ValueError, match=message):
        sinkhorn(a, b, C, eps, **kwargs)


def test_masses_equal_within_relative_1e_6_are_accepted_and_made_exactly_equal():
    res = sinkhorn([0.5, 0.5 + 1e-8], None, GOOD_C, 0.1)
    assert res.converged and res.plan.sum() == pytest.approx(1.0 + 1e-8, abs=1e-15)


def test_bad_point_sets_and_plan_shapes_are_rejected():
    with pytest.raises(ValueError, match="same dimension"):
        cosine_cost(np.ones((2, 3)), np.ones((2, 4)))
    with pytest.raises(ValueError, match="zero vector"):
        cosine_cost(np.zeros((1, 3)), np.ones((2, 3)))
    with pytest.raises(ValueError, match="same shape"):
        frobenius(np.ones((2, 2)), np.ones((2, 3)))


# ------------------------------------------------------------------------------------------------
# A fixed number of iterations: the setting of training
# ------------------------------------------------------------------------------------------------
def test_n_iter_runs_exactly_that_many_iterations_and_never_warns():
    import warnings as _warnings
    C = np.random.default_rng(0).random((5, 7))
    with _warnings.catch_warnings():
        _warnings.simplefilter("error")
        res = sinkhorn(None, None, C, 0.01, n_iter=3)
    assert res.n_iter == 3 and res.marginal_error > 1e-9   # not converged after 3 iterations, as expected


def test_tol_zero_means_never_stop_early_like_pots_stopthr_zero():
    C = np.random.default_rng(1).random((4, 4))
    res = sinkhorn(None, None, C, 0.1, tol=0, max_iter=25)
    assert res.n_iter == 25


def test_the_numpy_reference_reproduces_the_torch_plan_at_the_same_fixed_iterations():
    import torch

    from optical_ref import ot_torch
    C = np.random.default_rng(2).random((6, 9))
    for method in ("log", "kernel"):
        ours = sinkhorn(None, None, C, 0.05, n_iter=50, method=method).plan
        theirs = ot_torch.sinkhorn(None, None, torch.tensor(C), 0.05, n_iter=50, method=method).plan.numpy()
        np.testing.assert_allclose(ours, theirs, atol=1e-13, rtol=0)


def test_a_plan_that_cannot_be_represented_raises_instead_of_returning_nan():
    from optical_ref.ot import SinkhornBreakdownError
    C = np.random.default_rng(3).random((3, 3))
    with pytest.raises(SinkhornBreakdownError, match="non-finite"):
        sinkhorn(None, None, C, 1e-310, max_iter=5)
    with pytest.raises(SinkhornBreakdownError, match="non-finite"):
        sinkhorn(None, None, C * 1e308, 1.0, max_iter=5)
