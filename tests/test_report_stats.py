"""The report's statistics, specified on constructed cases with known answers: the paired bootstrap over test
items, the best-KD reference, win/tie/loss counting."""
import numpy as np
import pytest

from optical_ref.report import differences, win_tie_loss
from optical_ref.stats import item_scores, paired_difference, pooled_scores


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


def test_ot_is_compared_with_the_best_kd_method_of_its_column_and_wins_only_when_significant():
    n = 400
    gold = {"0": {"de": [1] * n}}
    good, worse = [1] * n, [1] * (n - 100) + [0] * 100
    records = [_record("kd-mse", worse), _record("kd-kl", worse[:-20] + [1] * 20), _record("ot", good)]
    for r in records:
        r["intent_acc"] = float(np.mean(np.asarray(r["items"]["pred"]) == 1))
    diffs = differences(records, gold, "intent_acc")
    assert diffs[("ot", ("de", "all"), "best-kd")]["reference"] == "kd-kl"
    assert win_tie_loss(records, diffs, "ot") == (1, 0, 0)
