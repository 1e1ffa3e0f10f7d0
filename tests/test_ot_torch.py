"""The torch Sinkhorn, specified against the numpy reference.

Batching and padding must not change any answer; gradients must be right (unrolled: autograd through the
iterations, checked by finite differences; envelope: the gradient of the cost is the plan); float32 at
small eps must not produce a NaN anywhere; bad input fails with a clear message.
"""
import numpy as np
import pytest
import torch

from optical_ref import ot as ref
from optical_ref.ot import SinkhornBreakdownError, SinkhornConvergenceWarning
from optical_ref.ot_torch import cost_matrix, ot_loss, sinkhorn


def padded_batch(rng, sizes, dtype=torch.float64, width=None):
    """A batch of random problems of different sizes, padded with garbage (NaN) costs."""
    n_max = width or max(n for n, _ in sizes)
    m_max = width or max(m for _, m in sizes)
    C = torch.full((len(sizes), n_max, m_max), float("nan"), dtype=dtype)
    mask_a = torch.zeros(len(sizes), n_max, dtype=torch.bool)
    mask_b = torch.zeros(len(sizes), m_max, dtype=torch.bool)
    costs = []
    for k, (n, m) in enumerate(sizes):
        Ck = rng.random((n, m))
        costs.append(Ck)
        C[k, :n, :m] = torch.as_tensor(Ck, dtype=dtype)
        mask_a[k, :n] = True
        mask_b[k, :m] = True
    return C, mask_a, mask_b, costs


SIZES = [(3, 5), (6, 6), (1, 4), (5, 2)]


# ------------------------------------------------------------------------------------------------
# The same answers as the numpy reference, batched or not, padded or not
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["log", "kernel"])
def test_each_batch_element_equals_the_numpy_reference_without_padding(method):
    rng = np.random.default_rng(0)
    C = rng.random((4, 5, 7))
    res = sinkhorn(None, None, torch.as_tensor(C), 0.1, method=method, tol=1e-12, max_iter=10_000)
    for k in range(4):
        expected = ref.sinkhorn(None, None, C[k], 0.1, method=method, tol=1e-12)
        np.testing.assert_allclose(res.plan[k].numpy(), expected.plan, atol=1e-8)
        assert float(res.cost[k]) == pytest.approx(expected.cost, abs=1e-8)
        np.testing.assert_allclose((res.f[k] + res.g[k][0]).numpy(), expected.f + expected.g[0], atol=1e-8)


@pytest.mark.parametrize("method", ["log", "kernel"])
def test_each_padded_batch_element_equals_the_numpy_reference_on_its_real_part(method):
    rng = np.random.default_rng(1)
    C, mask_a, mask_b, costs = padded_batch(rng, SIZES)
    res = sinkhorn(None, None, C, 0.1, method=method, mask_a=mask_a, mask_b=mask_b, tol=1e-12, max_iter=10_000)
    for k, (n, m) in enumerate(SIZES):
        expected = ref.sinkhorn(None, None, costs[k], 0.1, method=method, tol=1e-12)
        np.testing.assert_allclose(res.plan[k, :n, :m].numpy(), expected.plan, atol=1e-8)
        assert float(res.cost[k]) == pytest.approx(expected.cost, abs=1e-8)


@pytest.mark.parametrize("method", ["log", "kernel"])
def test_padding_carries_exactly_zero_mass_and_no_nan(method):
    rng = np.random.default_rng(2)
    C, mask_a, mask_b, _ = padded_batch(rng, SIZES)
    res = sinkhorn(None, None, C, 0.1, method=method, mask_a=mask_a, mask_b=mask_b)
    padded = ~(mask_a[:, :, None] & mask_b[:, None, :])
    assert torch.all(res.plan[padded] == 0)
    assert torch.isfinite(res.plan).all() and torch.isfinite(res.cost).all()
    assert not torch.isnan(res.f).any() and not torch.isnan(res.g).any()


def test_a_padded_batch_equals_every_problem_solved_alone():
    rng = np.random.default_rng(3)
    C, mask_a, mask_b, costs = padded_batch(rng, SIZES)
    batch = sinkhorn(None, None, C, 0.05, mask_a=mask_a, mask_b=mask_b, n_iter=200)
    for k, (n, m) in enumerate(SIZES):
        alone = sinkhorn(None, None, torch.as_tensor(costs[k]), 0.05, n_iter=200)
        torch.testing.assert_close(batch.plan[k, :n, :m], alone.plan, atol=1e-12, rtol=0)
        torch.testing.assert_close(batch.cost[k], alone.cost, atol=1e-12, rtol=0)


def test_more_padding_never_changes_the_answer():
    rng = np.random.default_rng(4)
    C, mask_a, mask_b, _ = padded_batch(rng, SIZES)
    wide_C, wide_a, wide_b, _ = padded_batch(np.random.default_rng(4), SIZES, width=10)
    narrow = sinkhorn(None, None, C, 0.05, mask_a=mask_a, mask_b=mask_b, n_iter=50)
    wide = sinkhorn(None, None, wide_C, 0.05, mask_a=wide_a, mask_b=wide_b, n_iter=50)
    torch.testing.assert_close(narrow.cost, wide.cost, atol=1e-12, rtol=0)


def test_explicit_weights_and_an_unbatched_problem_follow_the_reference():
    rng = np.random.default_rng(5)
    a = rng.random(4); a /= a.sum()
    b = rng.random(6); b /= b.sum()
    C = rng.random((4, 6))
    res = sinkhorn(torch.as_tensor(a), torch.as_tensor(b), torch.as_tensor(C), 0.2, tol=1e-12)
    assert res.plan.shape == (4, 6) and res.cost.ndim == 0 and bool(res.converged)
    np.testing.assert_allclose(res.plan.numpy(), ref.sinkhorn(a, b, C, 0.2, tol=1e-12).plan, atol=1e-8)


def test_fixed_n_iter_runs_exactly_that_many_iterations():
    C = torch.rand(3, 4, 4, dtype=torch.float64)
    assert sinkhorn(None, None, C, 0.1, n_iter=7).n_iter == 7


def test_non_convergence_warns_and_reports_which_problems():
    C = torch.rand(3, 8, 8, dtype=torch.float64)
    with pytest.warns(SinkhornConvergenceWarning, match="did not converge"):
        res = sinkhorn(None, None, C, 1e-3, max_iter=5, tol=1e-12)
    assert not res.converged.any() and torch.isfinite(res.plan).all()


# ------------------------------------------------------------------------------------------------
# Gradients
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["log", "kernel"])
def test_unrolled_gradient_passes_gradcheck(method):
    torch.manual_seed(0)
    C = torch.rand(2, 3, 4, dtype=torch.float64, requires_grad=True)
    mask_a = torch.tensor([[True, True, True], [True, True, False]])
    mask_b = torch.tensor([[True, True, True, True], [True, False, True, False]])

    def cost(C):
        return sinkhorn(None, None, C, 0.3, method=method, mask_a=mask_a, mask_b=mask_b, n_iter=20).cost

    assert torch.autograd.gradcheck(cost, (C,), eps=1e-6, atol=1e-6)


def test_envelope_gradient_of_the_cost_is_the_plan():
    torch.manual_seed(1)
    C, mask_a, mask_b, _ = padded_batch(np.random.default_rng(6), SIZES)
    C = C.clone().requires_grad_(True)
    res = sinkhorn(None, None, C, 0.1, mask_a=mask_a, mask_b=mask_b, grad="envelope")
    res.cost.sum().backward()
    torch.testing.assert_close(C.grad, res.plan, atol=0, rtol=0)


def test_envelope_and_unrolled_gradients_agree_at_convergence_up_to_the_entropic_term():
    # Danskin: at the optimum, d/dC [<P,C> - eps H(P)] = P; the transport cost alone differs by
    # <dP/dC, C>, which vanishes with eps. At small eps the two gradients are close.
    torch.manual_seed(2)
    C = torch.rand(1, 5, 5, dtype=torch.float64)
    grads = {}
    for mode in ["unrolled", "envelope"]:
        Cg = C.clone().requires_grad_(True)
        sinkhorn(None, None, Cg, 0.01, grad=mode, n_iter=500).cost.sum().backward()
        grads[mode] = Cg.grad
    assert (grads["unrolled"] - grads["envelope"]).abs().max() < 0.05


def test_unrolled_gradient_matches_finite_differences_of_the_numpy_reference():
    rng = np.random.default_rng(7)
    C = rng.random((3, 4))
    Ct = torch.as_tensor(C, dtype=torch.float64).requires_grad_(True)
    sinkhorn(None, None, Ct, 0.5, n_iter=300).cost.backward()
    h = 1e-6
    i, j = 1, 2
    Cp, Cm = C.copy(), C.copy()
    Cp[i, j] += h
    Cm[i, j] -= h
    fd = (ref.sinkhorn(None, None, Cp, 0.5, tol=1e-14, max_iter=100_000).cost
          - ref.sinkhorn(None, None, Cm, 0.5, tol=1e-14, max_iter=100_000).cost) / (2 * h)
    assert float(Ct.grad[i, j]) == pytest.approx(fd, abs=1e-6)


@pytest.mark.parametrize("relative_eps", [1e-3, 1e-4])
@pytest.mark.parametrize("grad", ["unrolled", "envelope"])
def test_float32_at_small_eps_with_padding_gives_no_nan_or_inf(relative_eps, grad):
    C, mask_a, mask_b, _ = padded_batch(np.random.default_rng(8), SIZES, dtype=torch.float32)
    C = (10 * C).requires_grad_(True)
    eps = relative_eps * float(C.detach()[mask_a[:, :, None] & mask_b[:, None, :]].max())
    res = sinkhorn(None, None, C, eps, mask_a=mask_a, mask_b=mask_b, grad=grad, n_iter=100)
    res.cost.sum().backward()
    for tensor in (res.plan, res.cost, C.grad):
        assert torch.isfinite(tensor).all()


def test_kernel_method_refuses_where_the_kernel_underflows():
    C = torch.rand(2, 5, 5, dtype=torch.float32) + 20.0   # exp(-C/eps) < 1e-86: zero in float32
    with pytest.raises(SinkhornBreakdownError, match="method='log'"):
        sinkhorn(None, None, C, 0.1, method="kernel")
    assert torch.isfinite(sinkhorn(None, None, C, 0.1, method="log", n_iter=200).plan).all()


# ------------------------------------------------------------------------------------------------
# The distillation loss
# ------------------------------------------------------------------------------------------------
def test_ot_loss_is_zero_for_identical_token_sets_and_larger_for_perturbed_ones():
    torch.manual_seed(3)
    X = torch.randn(2, 6, 16, dtype=torch.float64)
    same = ot_loss(X, X.clone(), eps=0.01)
    perturbed = ot_loss(X, X + 0.5 * torch.randn_like(X), eps=0.01)
    assert torch.all(same < 0.02) and torch.all(perturbed > same)


def test_ot_loss_ignores_padding_whatever_it_holds():
    torch.manual_seed(4)
    X, Y = torch.randn(1, 4, 8, dtype=torch.float64), torch.randn(1, 5, 8, dtype=torch.float64)
    loss = ot_loss(X, Y, eps=0.05)
    Xp = torch.cat([X, torch.randn(1, 3, 8, dtype=torch.float64)], dim=1)
    Yp = torch.cat([Y, torch.zeros(1, 2, 8, dtype=torch.float64)], dim=1)
    mask_x = torch.tensor([[True] * 4 + [False] * 3])
    mask_y = torch.tensor([[True] * 5 + [False] * 2])
    torch.testing.assert_close(ot_loss(Xp, Yp, mask_x, mask_y, eps=0.05), loss, atol=1e-9, rtol=0)


def test_cost_matrix_equals_the_numpy_cost_helpers():
    rng = np.random.default_rng(9)
    X, Y = rng.normal(size=(4, 3)), rng.normal(size=(5, 3))
    Xt, Yt = torch.as_tensor(X)[None], torch.as_tensor(Y)[None]
    np.testing.assert_allclose(cost_matrix(Xt, Yt, "cosine")[0].numpy(), ref.cosine_cost(X, Y), atol=1e-12)
    np.testing.assert_allclose(cost_matrix(Xt, Yt, "sq_euclidean")[0].numpy(), ref.sq_euclidean_cost(X, Y), atol=1e-12)


# ------------------------------------------------------------------------------------------------
# Device
# ------------------------------------------------------------------------------------------------
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")
def test_cuda_gives_the_cpu_answer():
    C, mask_a, mask_b, _ = padded_batch(np.random.default_rng(10), SIZES)
    cpu = sinkhorn(None, None, C, 0.1, mask_a=mask_a, mask_b=mask_b, n_iter=100)
    gpu = sinkhorn(None, None, C.cuda(), 0.1, mask_a=mask_a.cuda(), mask_b=mask_b.cuda(), n_iter=100)
    assert gpu.plan.device.type == "cuda"
    torch.testing.assert_close(gpu.plan.cpu(), cpu.plan, atol=1e-10, rtol=0)


# ------------------------------------------------------------------------------------------------
# Bad input
# ------------------------------------------------------------------------------------------------
C34 = torch.rand(2, 3, 4, dtype=torch.float64)


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda: sinkhorn(None, None, torch.rand(3), 0.1), "C must be"),
        (lambda: sinkhorn(None, None, torch.rand(2, 0, 4), 0.1), "empty"),
        (lambda: sinkhorn(torch.ones(5) / 5, None, C34, 0.1), "a has shape"),
        (lambda: sinkhorn(None, torch.ones(2, 3) / 3, C34, 0.1), "b has shape"),
        (lambda: sinkhorn(None, None, C34, 0.1, mask_a=torch.ones(2, 4, dtype=torch.bool)), "mask_a has shape"),
        (lambda: sinkhorn(None, None, C34, 0.1, mask_b=torch.ones(2, 4)), "boolean"),
        (lambda: sinkhorn(None, None, C34, 0.1, mask_a=torch.tensor([[True] * 3, [False] * 3])), "no real entry"),
        (lambda: sinkhorn(None, None, C34.clone().fill_(float("nan")), 0.1), "NaN or inf"),
        (lambda: sinkhorn(torch.tensor([1.5, -0.5, 0.0]), None, C34, 0.1), "negative"),
        (lambda: sinkhorn(torch.tensor([0.5, 0.6, 0.0]), None, C34, 0.1), "same total mass"),
        (lambda: sinkhorn(torch.tensor([0.5, 0.5, 0.0]), None, C34, 0.1,
                          mask_a=torch.tensor([True, False, True])), "mass on padded"),
        (lambda: sinkhorn(None, None, C34, 0.0), "eps must be"),
        (lambda: sinkhorn(None, None, C34, float("inf")), "eps must be"),
        (lambda: sinkhorn(None, None, C34, 0.1, method="exact"), "unknown method"),
        (lambda: sinkhorn(None, None, C34, 0.1, grad="implicit"), "unknown grad"),
        (lambda: sinkhorn(None, None, C34, 0.1, n_iter=0), "n_iter must be"),
        (lambda: sinkhorn(None, None, C34, 0.1, tol=-1.0), "tol must be"),
        (lambda: sinkhorn(None, None, C34, 0.1, max_iter=0), "max_iter must be"),
        (lambda: ot_loss(torch.rand(2, 3, 4), torch.rand(2, 3, 5), eps=0.05), "same B and d"),
        (lambda: ot_loss(torch.rand(2, 3, 4), torch.rand(2, 3, 4), eps=0.05, cost="manhattan"), "unknown cost"),
    ],
)
def test_bad_input_raises_a_value_error_that_says_what_is_wrong(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# ------------------------------------------------------------------------------------------------
# Impossible scales and bad inputs: never NaN, never silent (numpy reference, torch solver, losses)
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype,eps,scale", [(torch.float32, 1e-40, 1.0), (torch.float64, 1e-310, 1.0),
                                             (torch.float32, 1.0, 1e38)])
def test_torch_sinkhorn_with_fixed_iterations_raises_instead_of_returning_nan(dtype, eps, scale):
    from optical_ref.ot import SinkhornBreakdownError
    from optical_ref.ot_torch import sinkhorn
    C = torch.rand(2, 3, 4, dtype=dtype) * scale
    with pytest.raises(SinkhornBreakdownError, match="too small for|non-finite"):
        sinkhorn(None, None, C, eps, n_iter=20)


def test_check_every_must_be_a_positive_integer():
    from optical_ref.ot_torch import sinkhorn
    with pytest.raises(ValueError, match="check_every must be an integer >= 1"):
        sinkhorn(None, None, torch.rand(3, 3), 0.1, check_every=0)


def test_mixed_dtypes_in_ot_loss_are_named():
    from optical_ref.ot_torch import ot_loss
    with pytest.raises(ValueError, match="same dtype, got torch.float32 and torch.float64"):
        ot_loss(torch.rand(1, 2, 3), torch.rand(1, 2, 3, dtype=torch.float64), eps=0.1)


def test_nan_in_padded_student_tokens_never_reaches_the_gradient():
    from optical_ref.ot_torch import ot_loss
    X = torch.randn(1, 4, 3)
    X[0, 3] = float("nan")
    X.requires_grad_(True)
    mask = torch.tensor([[True, True, True, False]])
    ot_loss(X, torch.randn(1, 2, 3), mask, None, eps=0.1, n_iter=20).sum().backward()
    assert torch.isfinite(X.grad).all() and (X.grad[0, 3] == 0).all()


def test_the_envelope_gradient_gives_no_gradient_for_the_marginals_by_design():
    from optical_ref.ot_torch import sinkhorn
    a = torch.full((3,), 1 / 3, dtype=torch.float64, requires_grad=True)
    C = torch.rand(3, 3, dtype=torch.float64, requires_grad=True)
    res = sinkhorn(a, None, C, 0.1, grad="envelope")
    res.cost.backward()
    assert a.grad is None and C.grad is not None       # documented: envelope differentiates w.r.t. C only
    unrolled = sinkhorn(a, None, C, 0.1, grad="unrolled")
    unrolled.cost.backward()
    assert a.grad is not None and torch.isfinite(a.grad).all()


def test_the_numpy_reference_raises_on_an_impossible_scale_even_with_n_iter():
    from optical_ref.ot import SinkhornBreakdownError, sinkhorn
    with pytest.raises(SinkhornBreakdownError):
        sinkhorn(None, None, np.random.default_rng(0).random((3, 3)), 1e-310, n_iter=10)


def test_logsumexp_of_empty_and_infinite_slices_is_minus_or_plus_inf_never_nan():
    from optical_ref.ot import logsumexp
    out = logsumexp(np.array([[-np.inf, -np.inf], [np.inf, 1.0], [1.0, 2.0]]), axis=1)
    assert out[0] == -np.inf and out[1] == np.inf and out[2] == pytest.approx(np.logaddexp(1.0, 2.0))


def test_the_small_losses_refuse_nan_empty_batches_and_non_finite_temperatures():
    from optical_ref.losses import kd_kl, kd_mse
    from optical_ref.ot import frobenius
    with pytest.raises(ValueError, match="finite"):
        frobenius(np.ones((2, 2)), np.array([[0.0, np.nan], [1.0, 1.0]]))
    x = torch.randn(3, 4)
    with pytest.raises(ValueError, match="NaN or inf"):
        kd_mse(x, torch.full_like(x, float("nan")))
    with pytest.raises(ValueError, match="empty batch"):
        kd_mse(torch.zeros(0, 4), torch.zeros(0, 4))
    with pytest.raises(ValueError, match="empty batch"):
        kd_kl(torch.zeros(0, 4), torch.zeros(0, 4), 2.0)
    for T in (float("nan"), float("inf"), -1.0, 0.0):
        with pytest.raises(ValueError, match="finite number > 0"):
            kd_kl(x, x, T)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_ot_loss_in_16_bit_floats_with_padding_has_finite_loss_and_gradients(dtype):
    from optical_ref.ot_torch import ot_loss
    torch.manual_seed(0)
    X = torch.randn(2, 5, 8).to(dtype).requires_grad_(True)
    Y = torch.randn(2, 6, 8).to(dtype)
    mx = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    my = torch.tensor([[1, 1, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1]], dtype=torch.bool)
    loss = ot_loss(X, Y, mx, my, eps=0.05, n_iter=50)
    loss.sum().backward()
    assert torch.isfinite(loss).all() and torch.isfinite(X.grad.float()).all()
    reference = ot_loss(X.detach().float(), Y.float(), mx, my, eps=0.05, n_iter=50)
    torch.testing.assert_close(loss, reference, atol=1e-6, rtol=0)
