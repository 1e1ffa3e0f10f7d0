"""Retrieval metrics, specified by their properties: pooled and late-interaction ranks, ties and NaN, and the
diagnostics of the mechanism."""
import numpy as np
import pytest
import torch

from optical_ref.evaluate import (late_interaction_ranks, late_interaction_scores, plan_concentration,
                                  ranks_of_scores, retrieval_ranks, token_cloud_cosine)
from optical_ref.metrics import BY_NAME, ITEM_METRICS, item_scores


def test_ties_count_against_the_query():
    scores = torch.tensor([[1.0, 1.0, 0.0], [0.5, 0.5, 0.5], [0.0, 0.2, 0.9]])
    assert ranks_of_scores(scores).tolist() == [2, 3, 1]


def test_a_nan_relevant_score_ranks_last_and_nan_elsewhere_never_beats_a_real_score():
    scores = torch.tensor([[float("nan"), 0.1, 0.2], [float("nan"), 0.5, float("nan")], [0.0, 0.2, 0.9]])
    assert ranks_of_scores(scores).tolist() == [3, 1, 1]


def test_identical_embeddings_for_every_sentence_score_the_worst_rank_not_the_best():
    collapsed = torch.ones(5, 8)                         # a diverged model: every sentence the same vector
    assert retrieval_ranks(torch.randn(5, 8), collapsed).tolist() == [5] * 5
    assert retrieval_ranks(torch.full((5, 8), float("nan")), torch.randn(5, 8)).tolist() == [5] * 5


def _tokens(seed, n=6, length=5, d=8):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, length, d, generator=g, dtype=torch.float64)
    mask = torch.ones(n, length, dtype=torch.bool)
    mask[::2, -2:] = False                                 # every other sentence is shorter
    return x, mask


def test_a_query_identical_to_its_item_ranks_first_by_late_interaction():
    x, mask = _tokens(0)
    assert late_interaction_ranks(x, mask, x.clone(), mask.clone()).tolist() == [1] * len(x)
    scores = late_interaction_scores(x, mask, x, mask)
    np.testing.assert_allclose(scores.diagonal().numpy(), 1.0, atol=1e-12)   # every token finds itself: cos 1


def test_late_interaction_is_the_mean_over_query_tokens_of_the_best_cosine():
    x, mask = _tokens(1)
    y, ymask = _tokens(2)
    scores = late_interaction_scores(x, mask, y, ymask)
    for i in range(3):
        for j in range(3):
            q = torch.nn.functional.normalize(x[i][mask[i]], dim=-1)
            p = torch.nn.functional.normalize(y[j][ymask[j]], dim=-1)
            assert scores[i, j].item() == pytest.approx((q @ p.T).max(1).values.mean().item(), abs=1e-12)


def test_masked_tokens_never_change_late_interaction_scores():
    x, mask = _tokens(3)
    y, ymask = _tokens(4)
    before = late_interaction_scores(x, mask, y, ymask)
    x2, y2 = x.clone(), y.clone()
    x2[~mask] = 1e6                                       # padding, special and prefix tokens may hold anything
    y2[~ymask] = float("nan")
    torch.testing.assert_close(late_interaction_scores(x2, mask, y2, ymask), before)


def test_late_interaction_refuses_a_query_without_real_tokens():
    x, mask = _tokens(5)
    mask[0] = False
    with pytest.raises(ValueError, match="at least one real token"):
        late_interaction_scores(x, mask, x, torch.ones_like(mask))


def test_every_per_item_metric_of_the_table_is_scored_from_the_outputs_it_names():
    items = {"rank": [1, 2, 20], "late_rank": [3, 1, 1], "pred": [0, 1, 1], "knn_pred": [1, 1, 1], "en_pred": [0, 0, 0],
             "ir_acc_item": [1, 0, 1], "ir_knn_acc_item": [0, 0, 1], "ir_mrr10_item": [1, 0.5, 0.1],
             "ir_ndcg10_item": [0.9, 0.25, 0.0]}
    gold_target, gold_en = [0, 1, 0], [0, 1, 0]
    expected = {"mrr10": [1, 0.5, 0], "recall1": [1, 0, 0], "late_mrr10": [1 / 3, 1, 1], "late_recall1": [0, 1, 1],
                "intent_acc": [1, 1, 0], "knn_acc": [0, 1, 0], "en_acc": [1, 0, 1],
                # intent by retrieval: the evaluation stores each query's own score (1/rank, nDCG), read as given
                "ir_acc": [1, 0, 1], "ir_knn_acc": [0, 0, 1], "ir_mrr10": [1, 0.5, 0.1], "ir_ndcg10": [0.9, 0.25, 0.0]}
    assert set(expected) == set(ITEM_METRICS)
    for name, scores in expected.items():
        np.testing.assert_allclose(item_scores(name, items, gold_target, gold_en), scores, err_msg=name)
    assert BY_NAME["macro_f1"].item is None               # not a mean over items: no paired bootstrap for it


def test_a_collapsed_token_cloud_has_cosine_one_and_a_spread_one_less():
    same = torch.ones(3, 4, 5)
    mask = torch.ones(3, 4, dtype=torch.bool)
    assert token_cloud_cosine(same, mask) == pytest.approx(1.0)
    spread = torch.eye(4)[None].repeat(3, 1, 1)          # orthogonal tokens
    assert token_cloud_cosine(spread, mask) == pytest.approx(0.0, abs=1e-12)


def test_plan_concentration_is_one_to_one_for_a_clear_matching_and_uniform_for_equal_costs():
    from optical_ref.config import TrainConfig
    cfg = TrainConfig(ot_eps=0.01, ot_n_iter=200)
    x = torch.eye(4, dtype=torch.float64)[None].repeat(2, 1, 1)
    mask = torch.ones(2, 4, dtype=torch.bool)
    sharp = plan_concentration(x, mask, x, mask, cfg)
    assert sharp["plan_max_row_share"] > 0.99 and sharp["plan_row_entropy"] < 0.05
    flat = plan_concentration(torch.ones(2, 4, 3), mask, torch.ones(2, 4, 3), mask, cfg)
    assert flat["plan_max_row_share"] == pytest.approx(0.25) and flat["plan_row_entropy"] == pytest.approx(1.0)


def test_the_token_cloud_yardstick_is_the_teachers_own_english_cloud(tiny_data, tmp_path):
    """Every run's diagnostics carry the teacher's English token-cloud cosine (the same for every method of a
    language), computed as the student's is: the reference the student's token_cosine is read against."""
    from optical_ref.evaluate import token_cloud_cosine
    from optical_ref.experiment.compare import run_comparison
    from optical_ref.experiment.presets import make_config
    from optical_ref.experiment.stages import prepare_split
    cfg = make_config("quick", langs=["de"], methods=["zero-shot", "kd-mse"], data_dir=str(tiny_data),
                      train_overrides={"teacher_epochs": 1, "student_steps": 2})
    results = run_comparison(cfg, tmp_path / "run", progress_bars=False)
    values = {r["diagnostics"]["teacher_token_cosine"] for r in results["runs"]}
    assert len(values) == 1
    from optical_ref.config import TrainConfig
    ctx = prepare_split(cfg, TrainConfig(**cfg.train), 0, None, tmp_path / "run")
    pool = ctx.evaluator.retrieval_pool["de"]
    assert values.pop() == pytest.approx(round(token_cloud_cosine(pool.tokens, pool.token_mask), 6))
    assert "the same for the teacher's English sentences (the yardstick)" in (tmp_path / "run" / "summary.md").read_text()
