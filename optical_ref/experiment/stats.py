"""Paired bootstrap confidence intervals for differences between methods: over training seeds, then test items;
two-sided bootstrap p-values; Holm's correction for a family of comparisons.

Why paired, and why over items: every method of a column (language x bitext budget) is tested on the *same*
test sentences, and the test-set sampling error (575 items: about 1.7 points of accuracy at 80%) is as large
as the differences between methods. Resampling the test items jointly for all methods (Koehn 2004;
Efron & Tibshirani 1993) keeps that pairing: an item that is hard for one method is usually hard for the other.

Per item i each run gives a score s_i (1/0 for a correct intent, 1/rank or 0 for MRR@10, ...), so every metric
here is a mean over items. For a column, method m, and split seed k, the runs of the training seeds are
pooled by averaging their item scores: s̄_{m,k,i}. The difference of methods A and B is

    D = mean_k mean_s mean_i (s_{A,k,s,i} - s_{B,k,s,i})      (k: split seed, s: training seed, i: test item)

**Hierarchical bootstrap** (:func:`hierarchical_difference`, what the report uses): one replicate redraws, in
every split k independently, first the training seeds with replacement, then the n_k test items with
replacement — the *same* seeds and items for A and B (paired) — and recomputes D. The interval therefore covers
both the test sample and the run-to-run variance of training (initialisation, batch order, budget subsets):
it says how D would vary with other test items *and* other training seeds, given the split. Split-to-split
variance (several split seeds) enters as the average over splits, not resampled (two or three splits are too
few to resample). With one training seed it is the item-only bootstrap (:func:`paired_difference`), exactly.

The 95% interval is the 2.5 and 97.5 percentiles of the replicates (percentile bootstrap). The two-sided
p-value comes from the bootstrap standard error, p = erfc(|D| / (se sqrt 2)) (a normal approximation; Efron &
Tibshirani 1993, ch. 16): the share of replicates beyond 0 cannot go below 1/n_boot, too coarse for Holm. A family of comparisons (methods x columns x metrics of the headline tables) is
corrected by Holm's step-down method (Holm 1979, :func:`holm`), which holds the family-wise error rate at 5%
without assuming independence; "significant" then means ``p_holm < 0.05``.
"""
from __future__ import annotations

import numpy as np

from .. import metrics

N_BOOTSTRAP = 2000
CONFIDENCE = 0.95


def item_scores(record: dict, metric: str, gold: dict) -> np.ndarray | None:
    """Per-item scores of one run for a mean-type metric (the table in :mod:`optical_ref.metrics`), or None."""
    split = gold.get(str(record["split_seed"]), {})
    return metrics.item_scores(metric, record.get("items") or {}, split.get(record["lang"]), split.get("en"))


def pooled_scores(records, metric: str, gold: dict) -> dict:
    """{split_seed: item scores averaged over the training seeds} for the records of one method and column."""
    by_split = {}
    for r in records:
        s = item_scores(r, metric, gold)
        if s is not None:
            by_split.setdefault(int(r["split_seed"]), []).append(s)
    return {k: np.mean(v, axis=0) for k, v in by_split.items()}


def seed_scores(records, metric: str, gold: dict) -> dict:
    """{split_seed: {training seed: item scores}} for the records of one method and column."""
    by_split = {}
    for r in records:
        s = item_scores(r, metric, gold)
        if s is not None:
            by_split.setdefault(int(r["split_seed"]), {})[int(r["seed"])] = s
    return by_split


def paired_arrays(a: dict, b: dict) -> tuple:
    """Two ``seed_scores`` results aligned on their common splits and training seeds: ({k: (S, n)}, {k: (S, n)})."""
    out_a, out_b = {}, {}
    for k in sorted(set(a) & set(b)):
        seeds = sorted(set(a[k]) & set(b[k]))
        if seeds:
            out_a[k] = np.stack([a[k][s] for s in seeds])
            out_b[k] = np.stack([b[k][s] for s in seeds])
    return out_a, out_b


def bootstrap_p(replicates: np.ndarray, estimate: float | None = None) -> float:
    """Two-sided p-value of "the difference is 0" from the bootstrap standard error (normal approximation):
    p = erfc(|D| / (se sqrt 2)), se = the replicates' standard deviation. Unlike the share of replicates beyond
    0, it is not floored at 1/n_boot — Holm's correction over a family of ~50 comparisons needs p-values below
    0.001 to be resolved."""
    import math
    replicates = np.asarray(replicates, dtype=float)
    centre = float(np.mean(replicates)) if estimate is None else float(estimate)
    se = float(np.std(replicates, ddof=1)) if len(replicates) > 1 else 0.0
    if se == 0.0:
        return 1.0 if centre == 0.0 else 0.0
    return float(math.erfc(abs(centre) / (se * math.sqrt(2))))


def _summary(estimate, replicates, confidence, n_items, n_splits, **extra) -> dict:
    alpha = (1 - confidence) / 2
    low, high = (float(x) for x in np.quantile(replicates, [alpha, 1 - alpha]))
    return {"diff": float(estimate), "low": low, "high": high, "significant": bool(low > 0 or high < 0),
            "p": bootstrap_p(replicates, estimate), "n_items": int(n_items), "n_splits": int(n_splits), **extra}


def _paired_diffs(a: dict, b: dict, ndim: int) -> list:
    """a[k] - b[k] for the splits both have, in split order; each (n_items,) or (n_seeds, n_items), non-empty."""
    diffs = []
    for k in sorted(set(a) & set(b)):
        d = np.asarray(a[k], dtype=float) - np.asarray(b[k], dtype=float)
        if d.ndim != ndim or d.size == 0:
            shape = "(n_items,)" if ndim == 1 else "(n_seeds, n_items)"
            raise ValueError(f"paired scores must be non-empty {shape} arrays of the same shape for both methods, "
                             f"got {np.shape(a[k])} and {np.shape(b[k])}")
        diffs.append(d)
    return diffs


def hierarchical_difference(a: dict, b: dict, n_boot: int = N_BOOTSTRAP, seed: int = 0,
                            confidence: float = CONFIDENCE) -> dict | None:
    """Mean difference a - b with a paired bootstrap over training seeds, then test items (see the module text).

    ``a``, ``b``: {split_seed: array (n_seeds, n_items)}; row s of ``a`` and of ``b`` belong to the same training
    seed, column i to the same test item. Returns what :func:`paired_difference` returns, plus ``n_seeds``; None
    when the two have no split in common."""
    diffs = _paired_diffs(a, b, ndim=2)
    if not diffs:
        return None
    rng = np.random.default_rng(seed)
    estimate = np.mean([d.mean() for d in diffs])
    replicates = np.zeros(n_boot)
    for d in diffs:
        n_seeds, n_items = d.shape
        seeds = rng.integers(0, n_seeds, size=(n_boot, n_seeds)) if n_seeds > 1 else np.zeros((n_boot, 1), int)
        items = rng.integers(0, n_items, size=(n_boot, n_items))
        per_seed = np.stack([d[s][items].mean(axis=1) for s in range(n_seeds)])   # (n_seeds, n_boot)
        replicates += np.take_along_axis(per_seed, seeds.T, axis=0).mean(axis=0)
    replicates /= len(diffs)
    return _summary(estimate, replicates, confidence, sum(d.shape[1] for d in diffs), len(diffs),
                    n_seeds=int(min(d.shape[0] for d in diffs)))


def holm(p_values) -> list:
    """Holm's step-down adjusted p-values (Holm 1979), in the input order: sort ascending, multiply the j-th
    smallest (j = 0, 1, ...) by (m - j), take the running maximum (monotone), cap at 1."""
    p = np.asarray(p_values, dtype=float)
    if p.ndim != 1 or np.any(~np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise ValueError("holm needs a list of p-values in [0, 1]")
    order = np.argsort(p, kind="stable")
    m = len(p)
    adjusted = np.maximum.accumulate(np.minimum(1.0, (m - np.arange(m)) * p[order])) if m else p
    out = np.empty(m)
    out[order] = adjusted
    return out.tolist()


def paired_difference(a: dict, b: dict, n_boot: int = N_BOOTSTRAP, seed: int = 0,
                      confidence: float = CONFIDENCE) -> dict | None:
    """Mean difference a - b and its percentile-bootstrap interval; ``a`` and ``b`` map split seed -> item scores
    (the same items in the same order). None when the two have no split in common."""
    diffs = _paired_diffs(a, b, ndim=1)
    if not diffs:
        return None
    rng = np.random.default_rng(seed)
    estimate = float(np.mean([d.mean() for d in diffs]))
    replicates = np.zeros(n_boot)
    for d in diffs:
        idx = rng.integers(0, d.size, size=(n_boot, d.size))
        replicates += d[idx].mean(axis=1)
    replicates /= len(diffs)
    return _summary(estimate, replicates, confidence, sum(d.size for d in diffs), len(diffs))


def mean_interval(scores: dict, n_boot: int = N_BOOTSTRAP, seed: int = 0, confidence: float = CONFIDENCE) -> dict | None:
    """The mean of one method's item scores ({split: (n_seeds, n_items)}) and its hierarchical bootstrap interval
    (for confidence bands)."""
    zero = {k: np.zeros_like(np.asarray(v, dtype=float)) for k, v in scores.items()}
    return hierarchical_difference(scores, zero, n_boot, seed, confidence)
