"""Intent detection by cross-lingual retrieval (optical_ref.evaluate.intent_retrieval), checked by hand."""
import math

import numpy as np
import pytest
import torch

from optical_ref.evaluate import intent_retrieval

# six English documents (2-d vectors, exact ties by construction) and three queries; see the worked ranks below
DOCS = [(1, 0), (2, 1), (1, 1), (0, 1), (-1, 1), (-1, 0)]
DOC_LABELS = ["A", "B", "A", "B", "C", "C"]
QUERIES = [(1, 0), (0, 1), (-1, 0)]
GOLD = ["A", "C", "B"]
IDCG = 1 + 1 / math.log2(3)                       # two relevant documents in every case
# q0 ranks A B A B C C: top-1 right, 3-NN A, first relevant 1, relevant at 1 and 3
# q1 ranks B A C B A C (0.707 tie: A before C; 0 tie: A before C): top-1 wrong, 3-NN tie B/A/C -> B, relevant 3, 6
# q2 ranks C C B A B A: top-1 wrong, 3-NN C, first relevant 3, relevant at 3 and 5
EXPECTED = {"top1_acc": [1, 0, 0], "knn_acc": [1, 0, 0], "mrr10": [1, 1 / 3, 1 / 3],
            "ndcg10": [(1 + 1 / math.log2(4)) / IDCG, (1 / math.log2(4) + 1 / math.log2(7)) / IDCG,
                       (1 / math.log2(4) + 1 / math.log2(6)) / IDCG]}


def as_tokens(vectors, pad: int, garbage: float):
    """One real token per sentence, followed by ``pad`` padding tokens holding ``garbage``."""
    x = torch.full((len(vectors), 1 + pad, 2), garbage, dtype=torch.float64)
    x[:, 0] = torch.tensor(vectors, dtype=torch.float64)
    mask = torch.zeros(len(vectors), 1 + pad, dtype=torch.bool)
    mask[:, 0] = True
    return x, mask


@pytest.mark.parametrize("scorer", ["late", "pooled"])
def test_hand_worked_case_gives_the_expected_top1_knn_mrr_and_ndcg(scorer):
    q, qm = as_tokens(QUERIES, 0, 0.0)
    d, dm = as_tokens(DOCS, 0, 0.0)
    out = intent_retrieval(q, qm, d, dm, DOC_LABELS, GOLD, scorer=scorer, k=3)
    for name, per_query in EXPECTED.items():
        assert out["items"][name] == pytest.approx(per_query, abs=1e-12), name
        assert out[name] == pytest.approx(np.mean(per_query), abs=1e-12), name


@pytest.mark.parametrize("scorer", ["late", "pooled"])
@pytest.mark.parametrize("garbage", [1e6, -3.0, float("nan")])
def test_padding_garbage_never_changes_a_score(scorer, garbage):
    clean = intent_retrieval(*as_tokens(QUERIES, 0, 0.0), *as_tokens(DOCS, 0, 0.0), DOC_LABELS, GOLD, scorer=scorer,
                             k=3)
    padded = intent_retrieval(*as_tokens(QUERIES, 3, garbage), *as_tokens(DOCS, 2, garbage), DOC_LABELS, GOLD,
                              scorer=scorer, k=3)
    assert padded == clean


def test_a_diverged_model_scores_nothing_right_by_ties():
    q, qm = as_tokens(QUERIES, 0, 0.0)
    d, dm = as_tokens(DOCS, 0, 0.0)
    out = intent_retrieval(q * float("nan"), qm, d, dm, DOC_LABELS, GOLD, scorer="pooled", k=3)
    assert out["top1_acc"] == 0 and out["mrr10"] < 1 / 3


def test_an_unknown_scorer_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="late, pooled"):
        intent_retrieval(*as_tokens(QUERIES, 0, 0.0), *as_tokens(DOCS, 0, 0.0), DOC_LABELS, GOLD, scorer="dot")
