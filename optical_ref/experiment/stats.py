"""Paired differences between methods, with ONE rule for their interval and their p-value; Holm's correction
for a family of comparisons.

Why paired: every method of a column (language x bitext budget) is tested on the *same* test sentences, and the
test-set sampling error (575 items: about 1.7 points of accuracy at 80%) is as large as the differences between
methods; an item that is hard for one method is usually hard for the other, so per-item differences are used.

Per item i each run gives a score s_i (1/0 for a correct intent, 1/rank or 0 for MRR@10, ...), so every metric
here is a mean over items. For a column and split k, d_{k,s,i} = s_{A,k,s,i} - s_{B,k,s,i} pairs method A and
method B on training seed s and test item i, and

    D_k = mean_s mean_i d_{k,s,i},      D = mean_k D_k      (k: split seed, s: training seed, i: test item)

**The rule** (:func:`studentised_difference`, what the report uses): the training seeds are the unit. The
variance of D_k is the sample variance of its n_s seed means / n_s (training, and each seed's own item noise)
plus the item variance every seed shares (an item easier for A than for B on every seed: the seed means cannot
show it, since every seed is tested on the same items; estimated by the two-way decomposition). se = its square
root; the interval is D +- t_{n_s - 1, 0.975} se and the two-sided p-value is 2 P(T_{n_s - 1} > |D| / se).
Interval and p come from the same t, so **the interval excludes 0 exactly when p < 0.05**. With three seeds
t_{2, 0.975} = 4.30, not 1.96: that is what an honest interval costs with three seeds (exact when training
dominates the variance, conservative when the test items do). With one seed it is the paired t-test over items.

**Splits** are analysed one by one (``per_split``: each its own D_k, interval and p) and combined as the mean
of the K splits' D_k, with variance sum_k Var(D_k) / K^2 and Welch-Satterthwaite df: the combined interval is
conditional on these splits (two or three re-splits are too few to estimate a split-to-split variance of a
difference); the per-split rows show whether the splits agree.

**Why not the bootstrap** (:func:`hierarchical_difference`, kept to show why): resampling three seeds with
replacement sees only 10 distinct seed sets and shrinks their variance by (n-1)/n, and reading its standard
error against a normal reference (p = erfc(|D| / (se sqrt 2))) treats 2 df as infinitely many. Under the null,
with three seeds and seed-dominated variance, that rule rejects at 0.05 in about a quarter of comparisons;
the studentised rule in at most 5-6% (tests/test_results_travel.py simulates both). Its percentile interval and
its SE p-value could also disagree on a cell.

A family of comparisons (methods x columns x headline metrics) is corrected by Holm's step-down method
(Holm 1979, :func:`holm`), which holds the family-wise error rate at 5% without assuming independence;
"significant" then means ``p_holm < 0.05``.
"""
from __future__ import annotations

import numpy as np

from .. import metrics

N_BOOTSTRAP = 2000
CONFIDENCE = 0.95
RULE = "studentised: t on n_seeds - 1 df (seeds the unit, shared item variance added), per split, splits combined"


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


# ----------------------------------------------------------------------------------------------------------
# The rule the report uses: one studentised difference, its interval and its p-value from the same t
# ----------------------------------------------------------------------------------------------------------
def _split_components(d: np.ndarray) -> tuple:
    """One split's difference, the variance of that difference, and its degrees of freedom.

    ``d``: (n_seeds, n_items) paired differences. Training: the seed means, whose sample variance / n_seeds covers
    the seed-to-seed variance and each seed's own item noise. Test sample: the part of the item-to-item variance
    that every seed shares (an item easier for A than for B on every seed), which the seed means cannot show
    since all seeds are tested on the same items; by the two-way decomposition it is (var of the seed-averaged
    item differences - residual mean square / n_seeds) / n_items, clipped at 0. The seeds are the unit:
    df = n_seeds - 1, exact when training dominates and conservative otherwise (a df estimated from the data,
    Welch-Satterthwaite, buys degrees of freedom exactly when the seed variance is underestimated by chance:
    7% false positives at 0.05 in the null simulation). With one seed, the paired t-test over items."""
    n_seeds, n_items = d.shape
    seed_means, item_means = d.mean(axis=1), d.mean(axis=0)
    if n_seeds == 1:
        return float(d.mean()), (float(np.var(d[0], ddof=1)) / n_items if n_items > 1 else 0.0), max(n_items - 1, 1)
    residual = d - seed_means[:, None] - item_means[None, :] + d.mean()
    ms_residual = float((residual ** 2).sum()) / ((n_seeds - 1) * max(n_items - 1, 1))
    shared_items = max(0.0, float(np.var(item_means, ddof=1)) - ms_residual / n_seeds) / n_items if n_items > 1 else 0.0
    return float(d.mean()), float(np.var(seed_means, ddof=1)) / n_seeds + shared_items, n_seeds - 1


def _t_summary(estimate: float, var: float, df: float, confidence: float) -> dict:
    """Interval and two-sided p-value of ``estimate`` from ONE t (se = sqrt(var), ``df``): the interval excludes 0
    exactly when p < 1 - confidence."""
    from scipy import stats as sps
    se = float(np.sqrt(var))
    if se == 0.0:                                  # no variation at all: the difference is what it is
        return {"diff": estimate, "low": estimate, "high": estimate, "se": 0.0, "df": float(df),
                "p": 1.0 if estimate == 0.0 else 0.0, "significant": estimate != 0.0}
    half = float(sps.t.ppf(1 - (1 - confidence) / 2, df)) * se
    p = float(2 * sps.t.sf(abs(estimate) / se, df))
    return {"diff": estimate, "low": estimate - half, "high": estimate + half, "se": se, "df": float(df),
            "p": p, "significant": p < 1 - confidence}


def _combined_df(variances: list, dfs: list) -> float:
    """Welch-Satterthwaite df of a mean of independent splits' estimates (each with its variance and df)."""
    total = sum(variances)
    denominator = sum(v ** 2 / k for v, k in zip(variances, dfs) if v > 0)
    return total ** 2 / denominator if denominator > 0 else float(sum(dfs))


def studentised_difference(a: dict, b: dict, confidence: float = CONFIDENCE) -> dict | None:
    """Mean difference a - b, its interval and p-value by one studentised rule (see the module text).

    ``a``, ``b``: {split_seed: array (n_seeds, n_items)}, rows paired by training seed and columns by test item.
    Each split is analysed on its own (``per_split``, filled with two splits or more); the combined estimate is
    the mean over splits, its variance sum_k Var(D_k) / n_splits^2 (the splits taken as given: two re-splits are
    too few to estimate a split-to-split variance of the difference). None when the two have no split in common."""
    diffs = _paired_diffs(a, b, ndim=2)
    if not diffs:
        return None
    keys = sorted(set(a) & set(b))
    parts = [_split_components(d) for d in diffs]
    per_split = [{"split": int(k), **_t_summary(est, var, df, confidence)} for k, (est, var, df) in zip(keys, parts)]
    variances = [var / len(parts) ** 2 for _, var, _ in parts]
    combined = _t_summary(float(np.mean([est for est, _, _ in parts])), sum(variances),
                          _combined_df(variances, [df for _, _, df in parts]), confidence)
    return {**combined, "n_items": int(sum(d.shape[1] for d in diffs)), "n_splits": len(diffs),
            "n_seeds": int(min(d.shape[0] for d in diffs)), "rule": RULE,
            "per_split": per_split if len(diffs) > 1 else []}


def mean_interval(scores: dict, confidence: float = CONFIDENCE) -> dict | None:
    """The mean of one method's item scores ({split: (n_seeds, n_items)}) and its interval by the same rule (for
    the bands of the budget plot)."""
    zero = {k: np.zeros_like(np.asarray(v, dtype=float)) for k, v in scores.items()}
    return studentised_difference(scores, zero, confidence)
