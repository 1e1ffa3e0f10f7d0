"""Results anyone can recompute, and statistics that hold with three seeds (issue #30): one studentised rule for
the interval and the p-value of a difference, checked by simulation under the null; the ``report`` command that
rebuilds a run folder's report from its files without training; the results page's numbers against the files."""
import numpy as np
import pytest

from optical_ref.experiment.stats import hierarchical_difference, studentised_difference


def _null_comparison(rng, n_seeds=3, n_items=200, seed_sd=0.02, item_sd=0.02, noise_sd=0.05):
    """Two methods equal in expectation, seed-dominated variance: each training seed moves a method's mean by
    seed_sd (0.02: 2 points), each item carries a per-method effect shared by all seeds (item_sd) and noise."""
    base = rng.random(n_items)                                    # item difficulty, shared by both methods
    a = (base + rng.normal(0, item_sd, n_items) + rng.normal(0, seed_sd, (n_seeds, 1))
         + rng.normal(0, noise_sd, (n_seeds, n_items)))
    b = base + rng.normal(0, seed_sd, (n_seeds, 1)) + rng.normal(0, noise_sd, (n_seeds, n_items))
    return {0: a}, {0: b}


def test_with_three_seeds_under_the_null_the_rule_rejects_at_most_6_percent_of_2000_comparisons():
    rng = np.random.default_rng(30)
    rejected = [studentised_difference(*_null_comparison(rng))["p"] < 0.05 for _ in range(2000)]
    assert np.mean(rejected) <= 0.06


def test_the_previous_rule_bootstrap_se_against_a_normal_fails_the_same_null():
    rng = np.random.default_rng(30)
    rejected = [hierarchical_difference(*_null_comparison(rng), n_boot=500)["p"] < 0.05 for _ in range(300)]
    assert np.mean(rejected) > 0.15       # 0.21 over the 2,000 comparisons with 2,000 replicates


@pytest.mark.parametrize("shift", [0.0, 0.004, 0.01, -0.03])
def test_the_interval_excludes_zero_exactly_when_p_is_below_005(shift):
    rng = np.random.default_rng(7)
    for _ in range(50):
        a, b = _null_comparison(rng)
        d = studentised_difference({0: a[0] + shift}, b)
        assert (d["low"] > 0 or d["high"] < 0) == (d["p"] < 0.05) == d["significant"]


def test_with_three_seeds_the_interval_uses_t_on_two_degrees_of_freedom():
    seeds = np.array([[0.01], [0.03], [0.05]]) + np.zeros((3, 100))    # no item variation: seeds only
    d = studentised_difference({0: seeds}, {0: np.zeros((3, 100))})
    se = np.std([0.01, 0.03, 0.05], ddof=1) / np.sqrt(3)
    assert d["df"] == 2 and d["diff"] == pytest.approx(0.03)
    assert d["high"] - d["diff"] == pytest.approx(4.302653 * se, rel=1e-6)


def test_with_one_seed_the_rule_is_the_paired_t_test_over_items():
    from scipy import stats as sps
    rng = np.random.default_rng(8)
    a, b = rng.random((1, 300)), rng.random((1, 300))
    d = studentised_difference({0: a}, {0: b})
    assert d["p"] == pytest.approx(sps.ttest_rel(a[0], b[0]).pvalue) and d["df"] == 299


def test_an_item_effect_shared_by_every_seed_is_inside_the_interval():
    rng = np.random.default_rng(9)
    shared = rng.normal(0, 0.3, 400)                       # A beats B on some items, on every seed
    a = shared + rng.normal(0, 0.001, (3, 400))
    with_items = studentised_difference({0: a}, {0: np.zeros((3, 400))})
    seeds_only = np.var(a.mean(axis=1), ddof=1) / 3
    assert with_items["se"] ** 2 > 100 * seeds_only


def test_splits_are_reported_one_by_one_and_combined_by_their_mean():
    rng = np.random.default_rng(10)
    a = {0: rng.normal(0.02, 0.01, (3, 50)), 1: rng.normal(-0.02, 0.01, (3, 80))}
    zero = {k: np.zeros_like(v) for k, v in a.items()}
    d = studentised_difference(a, zero)
    assert [s["split"] for s in d["per_split"]] == [0, 1] and d["n_splits"] == 2
    assert d["diff"] == pytest.approx(np.mean([s["diff"] for s in d["per_split"]]))
    assert d["se"] ** 2 == pytest.approx(sum(s["se"] ** 2 for s in d["per_split"]) / 4)
    assert studentised_difference({0: a[0]}, {0: zero[0]})["per_split"] == []
