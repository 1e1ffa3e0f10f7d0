"""Paired bootstrap confidence intervals for differences between methods, over test items.

Why paired, and why over items: every method of a column (language x bitext budget) is tested on the *same*
test sentences, and the test-set sampling error (575 items: about 1.7 points of accuracy at 80%) is as large
as the differences between methods. Resampling the test items jointly for all methods (Koehn 2004;
Efron & Tibshirani 1993) keeps that pairing: an item that is hard for one method is usually hard for the other.

Per item i each run gives a score s_i (1/0 for a correct intent, 1/rank or 0 for MRR@10, ...), so every metric
here is a mean over items. For a column, method m, and split seed k, the runs of the training seeds are
pooled by averaging their item scores: s̄_{m,k,i}. The difference of methods A and B is

    D = mean_k mean_i (s̄_{A,k,i} - s̄_{B,k,i})

and one bootstrap replicate redraws, in every split k independently, n_k item indices with replacement and
recomputes D. The 95% interval is the 2.5 and 97.5 percentiles of the replicates (percentile bootstrap).
A difference is called significant only where its interval excludes 0. Training-seed variance enters through
the pooled average (it is not resampled), so the intervals are about the test sample, given these runs.
"""
from __future__ import annotations

import numpy as np

N_BOOTSTRAP = 2000
CONFIDENCE = 0.95


def item_scores(record: dict, metric: str, gold: dict) -> np.ndarray | None:
    """Per-item scores of one run for a mean-type metric, or None where the run has none."""
    items = record.get("items") or {}
    split = gold.get(str(record["split_seed"]), {})
    if metric == "intent_acc" and "pred" in items:
        return (np.asarray(items["pred"]) == np.asarray(split[record["lang"]])).astype(float)
    if metric == "knn_acc" and "knn_pred" in items:
        return (np.asarray(items["knn_pred"]) == np.asarray(split[record["lang"]])).astype(float)
    if metric == "en_acc" and "en_pred" in items:
        return (np.asarray(items["en_pred"]) == np.asarray(split["en"])).astype(float)
    if metric in ("mrr10", "recall1") and "rank" in items:
        ranks = np.asarray(items["rank"], dtype=float)
        return np.where(ranks <= 10, 1.0 / ranks, 0.0) if metric == "mrr10" else (ranks == 1).astype(float)
    return None


def pooled_scores(records, metric: str, gold: dict) -> dict:
    """{split_seed: item scores averaged over the training seeds} for the records of one method and column."""
    by_split = {}
    for r in records:
        s = item_scores(r, metric, gold)
        if s is not None:
            by_split.setdefault(int(r["split_seed"]), []).append(s)
    return {k: np.mean(v, axis=0) for k, v in by_split.items()}


def paired_difference(a: dict, b: dict, n_boot: int = N_BOOTSTRAP, seed: int = 0,
                      confidence: float = CONFIDENCE) -> dict | None:
    """Mean difference a - b and its percentile-bootstrap interval; ``a`` and ``b`` map split seed -> item scores
    (the same items in the same order). None when the two have no split in common."""
    splits = sorted(set(a) & set(b))
    if not splits:
        return None
    rng = np.random.default_rng(seed)
    diffs = []
    for k in splits:
        d = np.asarray(a[k], dtype=float) - np.asarray(b[k], dtype=float)
        if d.ndim != 1 or d.size == 0:
            raise ValueError(f"paired scores must be 1-d and non-empty, got shape {d.shape}")
        diffs.append(d)
    estimate = float(np.mean([d.mean() for d in diffs]))
    replicates = np.zeros(n_boot)
    for d in diffs:
        idx = rng.integers(0, d.size, size=(n_boot, d.size))
        replicates += d[idx].mean(axis=1)
    replicates /= len(diffs)
    alpha = (1 - confidence) / 2
    low, high = (float(x) for x in np.quantile(replicates, [alpha, 1 - alpha]))
    return {"diff": estimate, "low": low, "high": high, "significant": bool(low > 0 or high < 0),
            "n_items": int(sum(d.size for d in diffs)), "n_splits": len(diffs)}


def mean_interval(scores: dict, n_boot: int = N_BOOTSTRAP, seed: int = 0, confidence: float = CONFIDENCE) -> dict | None:
    """The mean of one method's pooled item scores and its bootstrap interval (for confidence bands)."""
    zero = {k: np.zeros_like(v) for k, v in scores.items()}
    return paired_difference(scores, zero, n_boot, seed, confidence)
