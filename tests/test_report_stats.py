"""The report's statistics, specified on constructed cases with known answers: the paired bootstrap over test
items, the best-KD reference, win/tie/loss counting."""
import numpy as np
import pytest

from optical_ref.experiment.report import analyse, differences, win_tie_loss
from optical_ref.experiment.stats import item_scores, paired_difference, pooled_scores, seed_scores


def test_identical_methods_give_an_interval_that_contains_zero():
    scores = {0: np.random.default_rng(0).integers(0, 2, 500).astype(float)}
    d = paired_difference(scores, {0: scores[0].copy()})
    assert d["diff"] == 0 and d["low"] <= 0 <= d["high"] and not d["significant"]


def test_a_constant_shift_gives_exactly_that_shift_as_the_interval():
    base = np.random.default_rng(1).random(300)
    d = paired_difference({0: base + 0.25}, {0: base})
    assert d["diff"] == pytest.approx(0.25) and d["low"] == pytest.approx(0.25) and d["high"] == pytest.approx(0.25)
    assert d["significant"]


def test_pairing_makes_a_small_consistent_gain_significant_where_unpaired_noise_would_hide_it():
    rng = np.random.default_rng(2)
    hard = rng.random(600)                        # per-item difficulty shared by both methods
    a, b = hard + 0.02, hard                      # a is better on every item by 0.02
    d = paired_difference({0: a}, {0: b})
    assert d["significant"] and d["low"] > 0
    # the unpaired interval: each method's items resampled on their own, as if from different test sets
    boot = np.random.default_rng(0)
    replicates = [a[boot.integers(0, a.size, a.size)].mean() - b[boot.integers(0, b.size, b.size)].mean()
                  for _ in range(2000)]
    low, high = np.quantile(replicates, [0.025, 0.975])
    assert low < 0 < high, "unpaired, the item noise hides the gain"
    assert d["high"] - d["low"] < (high - low) / 10


def test_the_interval_narrows_with_more_test_items():
    rng = np.random.default_rng(3)
    small = paired_difference({0: rng.integers(0, 2, 100).astype(float)}, {0: rng.integers(0, 2, 100).astype(float)})
    large = paired_difference({0: rng.integers(0, 2, 10_000).astype(float)}, {0: rng.integers(0, 2, 10_000).astype(float)})
    assert large["high"] - large["low"] < (small["high"] - small["low"]) / 5


def test_splits_are_resampled_separately_and_averaged():
    d = paired_difference({0: np.ones(50), 1: np.zeros(80)}, {0: np.zeros(50), 1: np.zeros(80)})
    assert d["diff"] == pytest.approx(0.5) and d["n_splits"] == 2 and d["n_items"] == 130


def _record(method, pred, seed=0, lang="de"):
    return {"method": method, "lang": lang, "budget": "all", "seed": seed, "split_seed": 0, "intent_acc": 0.0,
            "items": {"pred": pred, "rank": [1] * len(pred)}, "mrr10": 1.0}


def test_item_scores_follow_the_metric_definitions():
    gold = {"0": {"de": [0, 1, 2, 3], "en": [0, 1, 2, 3]}}
    r = {"method": "ot", "lang": "de", "split_seed": 0, "items": {"pred": [0, 1, 0, 0], "rank": [1, 2, 11, 4]}}
    assert item_scores(r, "intent_acc", gold).tolist() == [1, 1, 0, 0]
    assert item_scores(r, "mrr10", gold).tolist() == [1, 0.5, 0, 0.25]
    assert item_scores(r, "recall1", gold).tolist() == [1, 0, 0, 0]


def test_training_seeds_are_pooled_per_item_before_resampling():
    gold = {"0": {"de": [1, 1]}}
    pooled = pooled_scores([_record("ot", [1, 0], seed=0), _record("ot", [1, 1], seed=1)], "intent_acc", gold)
    assert pooled[0].tolist() == [1.0, 0.5]


def test_training_seeds_stay_apart_for_the_hierarchical_bootstrap():
    gold = {"0": {"de": [1, 1]}}
    scores = seed_scores([_record("ot", [1, 0], seed=0), _record("ot", [1, 1], seed=1)], "intent_acc", gold)
    assert {s: v.tolist() for s, v in scores[0].items()} == {0: [1.0, 0.0], 1: [1.0, 1.0]}


def _column(n=400):
    gold = {"0": {"de": [1] * n}}
    good, worse = [1] * n, [1] * (n - 100) + [0] * 100
    records = [_record("zero-shot", worse), _record("kd-mse", worse), _record("kd-kl", [1] * n), _record("ot", good)]
    for r in records:
        r["intent_acc"] = float(np.mean(np.asarray(r["items"]["pred"]) == 1))
    return records, gold


def test_a_run_evaluated_along_a_curve_is_compared_at_its_last_step_only():
    from optical_ref.experiment.report import final_records
    records, gold = _column()
    early = [{**r, "steps": 10, "items": {"pred": [0] * 400, "rank": [1] * 400}, "intent_acc": 0.0}
             for r in records if r["method"] != "zero-shot"]
    late = [{**r, "steps": 20} if r["method"] != "zero-shot" else r for r in records]
    assert final_records(early + late) == late
    assert analyse(early + late, gold)["to_reference"] == analyse(late, gold)["to_reference"]


def test_the_reference_is_declared_kd_mse_even_when_another_kd_method_is_better_on_test():
    records, gold = _column()
    analysis = analyse(records, gold)
    assert analysis["reference"] == "kd-mse" and analysis["reference_chosen_on"] == "declared"
    assert analysis["correction"] == "holm" and analysis["rule"].startswith("studentised")
    diffs = differences(records, gold, "intent_acc", "kd-mse")
    assert diffs[("ot", ("de", "all"))]["reference"] == "kd-mse" and win_tie_loss(records, diffs, "ot") == (1, 0, 0)


def test_every_declared_comparison_carries_p_and_p_holm_and_the_family_is_listed():
    records, gold = _column()
    analysis = analyse(records, gold)
    family = analysis["family"]
    # kd-kl and ot against kd-mse (zero-shot is not a member), on the headline metrics the records have
    assert family["metrics"] == ["mrr10", "intent_acc"] and family["size"] == len(family["members"]) == 4
    for key, d in analysis["to_reference"]["intent_acc"].items():
        if not key.startswith("zero-shot"):
            assert 0 <= d["p"] <= d["p_holm"] <= 1 and d["in_family"]


# ------------------------------------------------------------------------------------------------
# Seeds inside the interval, and Holm's correction
# ------------------------------------------------------------------------------------------------
def test_with_one_seed_the_hierarchical_bootstrap_is_the_item_bootstrap():
    from optical_ref.experiment.stats import hierarchical_difference
    rng = np.random.default_rng(4)
    a, b = rng.random((1, 300)), rng.random((1, 300))
    assert hierarchical_difference({0: a}, {0: b}) == {**paired_difference({0: a[0]}, {0: b[0]}), "n_seeds": 1}


def test_opposite_per_seed_effects_widen_the_interval():
    from optical_ref.experiment.stats import hierarchical_difference
    rng = np.random.default_rng(5)
    base = rng.random((4, 500))
    consistent = base + 0.05
    opposite = base + np.array([[0.15], [-0.05], [0.15], [-0.05]])    # the same mean gain, seeds disagree
    calm = hierarchical_difference({0: consistent}, {0: base})
    wild = hierarchical_difference({0: opposite}, {0: base})
    assert calm["diff"] == pytest.approx(wild["diff"]) and calm["significant"]
    assert (wild["high"] - wild["low"]) > 3 * (calm["high"] - calm["low"])
    pooled = paired_difference({0: opposite.mean(0)}, {0: base.mean(0)})   # seeds averaged away: too narrow
    assert (pooled["high"] - pooled["low"]) < (wild["high"] - wild["low"]) / 3


def test_the_hierarchical_bootstrap_keeps_seeds_and_items_paired():
    from optical_ref.experiment.stats import hierarchical_difference
    rng = np.random.default_rng(6)
    noise = rng.normal(size=(3, 400))                    # shared by both methods, per seed and item
    d = hierarchical_difference({0: noise + 0.01}, {0: noise})
    assert d["low"] == pytest.approx(0.01) and d["high"] == pytest.approx(0.01) and d["p"] < 0.01


def test_holm_matches_a_hand_worked_example():
    from optical_ref.experiment.stats import holm
    # sorted p: 0.01, 0.02, 0.03, 0.04 -> x4, x3, x2, x1 = 0.04, 0.06, 0.06, 0.04 -> running max 0.04, 0.06, 0.06, 0.06
    assert holm([0.03, 0.01, 0.04, 0.02]) == pytest.approx([0.06, 0.04, 0.06, 0.06])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])                # capped at 1
    assert holm([]) == []
    with pytest.raises(ValueError):
        holm([0.1, float("nan")])


def test_bootstrap_p_is_small_only_when_zero_is_far_outside_and_is_not_floored_at_one_over_n_boot():
    from optical_ref.experiment.stats import bootstrap_p
    normal = np.random.default_rng(0).normal(size=4000)
    assert bootstrap_p(normal, 0.0) == pytest.approx(1.0)
    assert bootstrap_p(normal + 1.96, 1.96) == pytest.approx(0.05, abs=0.005)     # 1.96 standard errors away
    assert bootstrap_p(normal + 6, 6.0) < 1e-6                                      # below 1/4000: Holm can use it
