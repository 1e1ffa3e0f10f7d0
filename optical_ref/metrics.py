"""The one table of metrics: what each is called, what it reads, and its score per test item.

Evaluation (:mod:`optical_ref.evaluate`) stores per-item outputs in each run record (``items``: a rank, a
predicted intent); everything downstream — the run store, the statistics, the report, the CSV — reads the
metrics from :data:`METRICS`, so a new metric is one row here plus the output that feeds it.

Every metric but macro-F1 is a **mean over test items** of a per-item score (1/rank or 0 for MRR@10, 1 or 0
for a hit or a correct intent), so paired differences over items (:mod:`optical_ref.experiment.stats`) apply to it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MRR_CUTOFF = 10


def reciprocal_rank(ranks, k: int = MRR_CUTOFF) -> np.ndarray:
    """Per item: 1 / rank when the relevant item is in the top ``k``, else 0 (the MRR@k item score)."""
    ranks = np.asarray(ranks, dtype=float)
    return np.where(ranks <= k, 1.0 / ranks, 0.0)


def hit_at_1(ranks) -> np.ndarray:
    return (np.asarray(ranks, dtype=float) == 1).astype(float)


def correct(pred, gold) -> np.ndarray:
    return (np.asarray(pred) == np.asarray(gold)).astype(float)


def scores_as_given(values, _gold=None) -> np.ndarray:
    """Per-item scores the evaluation stored as they are (intent by retrieval: 1/0 hits, 1/rank, nDCG)."""
    return np.asarray(values, dtype=float)


@dataclass(frozen=True)
class Metric:
    name: str            # the key in run records, results.json and the CSV
    label: str           # the report's heading
    short: str           # an axis label
    item: str | None     # the per-item output it reads in ``record["items"]`` (None: not a mean over items)
    gold: str | None     # "target" (the target test labels), "en" (English test labels) or None (ranks)
    score: object = None  # (item outputs, gold) -> per-item scores
    headline: bool = False   # shown with its difference to zero-shot, in the plots and the verdict
    higher_is_better: bool = True


METRICS = (
    Metric("mrr10", "MRR@10, retrieval target -> English (pooled sentence vectors: student query, frozen teacher on "
           "English)", "MRR@10 target -> English (%)", "rank", None, lambda r, _: reciprocal_rank(r), headline=True),
    Metric("recall1", "Recall@1, retrieval target -> English (pooled)", "Recall@1 (%)", "rank", None,
           lambda r, _: hit_at_1(r)),
    Metric("late_mrr10", "MRR@10, late-interaction retrieval target -> English (MaxSim over the aligned layer's "
           "tokens)", "late-interaction MRR@10 (%)", "late_rank", None, lambda r, _: reciprocal_rank(r), headline=True),
    Metric("late_recall1", "Recall@1, late-interaction retrieval", "late-interaction Recall@1 (%)", "late_rank", None,
           lambda r, _: hit_at_1(r)),
    Metric("intent_acc", "zero-shot intent accuracy (teacher's head)", "intent accuracy (%)", "pred", "target",
           correct, headline=True),
    Metric("knn_acc", "kNN intent accuracy (target query -> 5 nearest English training utterances)",
           "kNN intent accuracy (%)", "knn_pred", "target", correct),
    Metric("ir_acc", "intent by cross-lingual retrieval: top-1 accuracy (target query -> English training utterances, "
           "the teacher's scorer)", "intent-by-retrieval accuracy (%)", "ir_acc_item", None, scores_as_given),
    Metric("ir_knn_acc", "intent by retrieval: 5-NN vote accuracy (the teacher's scorer)", "5-NN intent accuracy (%)",
           "ir_knn_acc_item", None, scores_as_given),
    Metric("ir_mrr10", "intent by retrieval: MRR@10 (every same-intent English utterance relevant)",
           "intent-by-retrieval MRR@10 (%)", "ir_mrr10_item", None, scores_as_given),
    Metric("ir_ndcg10", "intent by retrieval: nDCG@10 (binary gains)", "intent-by-retrieval nDCG@10 (%)",
           "ir_ndcg10_item", None, scores_as_given),
    Metric("macro_f1", "macro-F1 of the intent head", "macro-F1 (%)", None, None),
    Metric("en_acc", "English intent accuracy of the student (forgetting)", "English accuracy (%)", "en_pred", "en",
           correct),
)
BY_NAME = {m.name: m for m in METRICS}
NAMES = tuple(m.name for m in METRICS)
ITEM_METRICS = tuple(m.name for m in METRICS if m.item)          # means over items: paired differences apply
HEADLINE = tuple(m.name for m in METRICS if m.headline)


def item_scores(name: str, items: dict, gold_target=None, gold_en=None) -> np.ndarray | None:
    """Per-item scores of one run for metric ``name``, or None when the run has no output for it."""
    metric = BY_NAME[name]
    if not metric.item or metric.item not in (items or {}):
        return None
    gold = {"target": gold_target, "en": gold_en, None: None}[metric.gold]
    if metric.gold and gold is None:
        return None
    return np.asarray(metric.score(items[metric.item], gold), dtype=float)
