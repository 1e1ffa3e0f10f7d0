"""Zero-shot evaluation: intent accuracy and macro-F1 through the teacher's head, cross-lingual retrieval
(MRR@10, Recall@1) read two ways, intent by retrieval (kNN accuracy), and diagnostics of the mechanism.

Retrieval follows OPTICAL's CLIR setting, where only the query encoder is distilled: target-language
queries are encoded by the student, the English side by the frozen teacher. (a) Each target test
sentence retrieves its own English translation among all English test sentences, by cosine similarity.
(b) Each target test sentence retrieves its k nearest English *training* utterances and takes their
majority intent (ties: the intent of the nearest among the tied). (c) **Intent detection by cross-lingual
retrieval**, the seed's own task (:func:`intent_retrieval`): each target test sentence ranks the English training
utterances under the teacher's scorer (``teacher_scorer``, late or pooled) on their token states; the records'
``ir_acc``, ``ir_knn_acc``, ``ir_mrr10`` and ``ir_ndcg10``, with every same-intent utterance relevant.

Retrieval is read two ways. **Pooled**: one mean-pooled vector per sentence, cosine similarity (what
``kd-mse`` fits directly). **Late interaction** (ColBERT's MaxSim, Khattab & Zaharia 2020): the score of query
q for item d is the mean over q's real tokens of the largest cosine to one of d's real tokens, on the token
states of the layer OT aligns (``ot_layer``), for every method alike — what token-level OT trains.

Ranks are never better than the model: rank = 1 + the number of *other* items scoring at least as high as the
relevant one (ties count against the query), and a non-finite score of the relevant item ranks it last
(a diverged model whose scores are all NaN or all equal gets the worst rank, not the best).
"""
from __future__ import annotations

import functools

import numpy as np
import torch

from .encoder import encode_sentences, encode_texts
from .metrics import MRR_CUTOFF, hit_at_1, reciprocal_rank


@torch.no_grad()
def predict_intents(encoder, head, tokenizer, texts, device="cpu") -> np.ndarray:
    return intents_of(head, encode_sentences(encoder, tokenizer, texts, device), device)


@torch.no_grad()
def intents_of(head, sentences: torch.Tensor, device="cpu") -> np.ndarray:
    """The head's predicted intent for sentence embeddings that are already computed."""
    head.eval()
    return head(sentences.to(device)).argmax(-1).cpu().numpy()


def accuracy(pred, gold) -> float:
    return float(np.mean(np.asarray(pred) == np.asarray(gold)))


def macro_f1(pred, gold) -> float:
    """F1 averaged over the intents present in the gold labels (an intent never predicted scores 0)."""
    pred, gold = np.asarray(pred), np.asarray(gold)
    scores = []
    for label in np.unique(gold):
        tp = np.sum((pred == label) & (gold == label))
        fp = np.sum((pred == label) & (gold != label))
        fn = np.sum((pred != label) & (gold == label))
        scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores))


def cosine_similarities(queries: torch.Tensor, pool: torch.Tensor) -> torch.Tensor:
    q = torch.nn.functional.normalize(queries, dim=-1)
    p = torch.nn.functional.normalize(pool, dim=-1)
    return q @ p.T


class NonFiniteEmbeddings(ValueError):
    """A model whose embeddings are NaN or infinite (a diverged run) is not scored."""


def ranks_of_scores(scores: torch.Tensor) -> np.ndarray:
    """Rank (1 = first) of item i for query i, from an (n_queries, n_items) score matrix whose relevant item is on
    the diagonal: 1 + the number of other items scoring >= it; a non-finite relevant score ranks last."""
    n_items = scores.shape[1]
    relevant = scores.diagonal()
    comparable = torch.where(torch.isfinite(scores), scores, torch.full_like(scores, -torch.inf))
    ranks = (comparable >= relevant.unsqueeze(1)).sum(1)            # counts the relevant item itself once
    return torch.where(torch.isfinite(relevant), ranks, torch.full_like(ranks, n_items)).numpy()


def retrieval_ranks(queries: torch.Tensor, pool: torch.Tensor) -> np.ndarray:
    """Rank (1 = first) of query i's relevant item pool[i] among all pool items, by cosine similarity."""
    if queries.shape[0] != pool.shape[0]:
        raise ValueError("retrieval needs one relevant pool item per query (pool[i] for query i)")
    return ranks_of_scores(cosine_similarities(queries, pool))


def late_interaction_scores(queries, query_mask, pool, pool_mask, rows: int = 1024) -> torch.Tensor:
    """MaxSim scores (n_queries, n_items): mean over each query's real tokens of the largest cosine to one of the
    item's real tokens. ``queries`` (n, Lq, d), ``pool`` (N, Ld, d); masks True on the real tokens.

    Only real tokens enter (padding may hold anything): the cosines of a block of query tokens against every
    real pool token, then the maximum per item (``scatter_reduce``) and the mean per query (``index_add``)."""
    q_mask, p_mask = query_mask.bool(), pool_mask.bool()
    if not q_mask.any(1).all() or not p_mask.any(1).all():
        raise ValueError("late interaction needs at least one real token in every query and item")
    q_tokens = torch.nn.functional.normalize(queries[q_mask], dim=-1)                # (Tq, d)
    p_tokens = torch.nn.functional.normalize(pool[p_mask], dim=-1)                   # (Tp, d)
    query_of, item_of = q_mask.nonzero()[:, 0], p_mask.nonzero()[:, 0]
    n_queries, n_items = queries.shape[0], pool.shape[0]
    sums = torch.zeros(n_queries, n_items, dtype=q_tokens.dtype, device=q_tokens.device)
    for start in range(0, len(q_tokens), rows):
        cos = q_tokens[start:start + rows] @ p_tokens.T                               # (rows, Tp)
        best = torch.full((len(cos), n_items), -torch.inf, dtype=cos.dtype, device=cos.device)
        best.scatter_reduce_(1, item_of.expand(len(cos), -1), cos, reduce="amax")    # best token of each item
        sums.index_add_(0, query_of[start:start + rows], best)
    return sums / q_mask.sum(1, keepdim=True).to(sums.dtype)


def late_interaction_ranks(queries, query_mask, pool, pool_mask) -> np.ndarray:
    """Rank of query i's relevant item pool[i] by late-interaction (MaxSim) scores; ties and NaN as in
    :func:`ranks_of_scores`."""
    if queries.shape[0] != pool.shape[0]:
        raise ValueError("retrieval needs one relevant pool item per query (pool[i] for query i)")
    return ranks_of_scores(late_interaction_scores(queries, query_mask, pool, pool_mask))


def retrieval_scores(student, teacher, tokenizer, pairs, device="cpu") -> dict:
    """Target -> English retrieval on bitext ``pairs`` (each target sentence retrieves its own translation among
    all the pairs' English sentences): pooled and late-interaction MRR@10 and Recall@1. Label-free."""
    queries = encode_texts(student, tokenizer, [p.target for p in pairs], device)
    pool = encode_texts(teacher, tokenizer, [p.en for p in pairs], device)
    return {**metrics_of_ranks(retrieval_ranks(queries.sentence, pool.sentence)),
            **metrics_of_ranks(late_interaction_ranks(queries.tokens, queries.token_mask, pool.tokens, pool.token_mask),
                               prefix="late_")}


def mrr_at(ranks, k: int = MRR_CUTOFF) -> float:
    return float(np.mean(reciprocal_rank(ranks, k)))


def retrieval_metrics(queries: torch.Tensor, pool: torch.Tensor) -> dict:
    """Query i's relevant item is pool[i]; returns MRR@10 and Recall@1."""
    return metrics_of_ranks(retrieval_ranks(queries, pool))


def metrics_of_ranks(ranks, prefix: str = "") -> dict:
    """``{prefix + "mrr10": ..., prefix + "recall1": ...}``: the means of the item scores of :mod:`metrics`."""
    return {f"{prefix}mrr10": mrr_at(ranks), f"{prefix}recall1": float(np.mean(hit_at_1(ranks)))}


def knn_accuracy(queries: torch.Tensor, pool: torch.Tensor, pool_labels, gold, k: int = 5) -> float:
    return accuracy(knn_predictions(queries, pool, pool_labels, k), gold)


def knn_predictions(queries: torch.Tensor, pool: torch.Tensor, pool_labels, k: int = 5) -> np.ndarray:
    """Majority intent of the k nearest pool items (ties: the intent of the nearest among the tied)."""
    sims = cosine_similarities(queries, pool)
    nearest = sims.topk(min(k, pool.shape[0]), dim=1).indices.numpy()
    pool_labels = np.asarray(pool_labels)
    pred = [knn_vote(pool_labels[row], len(row)) for row in nearest]
    return np.asarray(pred)


# --------------------------------------------------------------------------------------------------
# Intent detection by cross-lingual retrieval (the seed's task): target queries retrieve English labelled documents
# --------------------------------------------------------------------------------------------------
SCORERS = ("late", "pooled")


def masked_mean(tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of each sentence's real token vectors (padding, whatever it holds, is never read)."""
    m = mask.bool()
    kept = torch.where(m[..., None], tokens, torch.zeros((), dtype=tokens.dtype))
    return kept.sum(1) / m.sum(1, keepdim=True).clamp_min(1).to(tokens.dtype)


def score_matrix(queries, query_mask, docs, doc_mask, scorer: str = "late") -> torch.Tensor:
    """(n_queries, n_docs) scores: ``late`` = MaxSim over L2-normalised real tokens; ``pooled`` = the cosine of
    the mean-pooled real tokens. Non-finite scores become -inf, so a diverged model ranks nothing first."""
    if scorer not in SCORERS:
        raise ValueError(f"scorer={scorer!r}: choose one of {', '.join(SCORERS)}")
    if scorer == "late":
        scores = late_interaction_scores(queries, query_mask, docs, doc_mask)
    else:
        scores = cosine_similarities(masked_mean(queries, query_mask), masked_mean(docs, doc_mask))
    return torch.where(torch.isfinite(scores), scores, torch.full_like(scores, -torch.inf))


def pessimistic_order(scores: np.ndarray, relevant: np.ndarray) -> np.ndarray:
    """Each query's documents, best first; among equal scores the non-relevant come first (ties never help)."""
    return np.stack([np.lexsort((rel, -row)) for row, rel in zip(scores, relevant)])


def knn_vote(labels_in_order, k: int):
    """Majority intent of the first k documents; ties: the intent of the nearest among the tied."""
    votes = list(labels_in_order[:k])
    counts = {label: votes.count(label) for label in votes}
    best = max(counts.values())
    return next(label for label in votes if counts[label] == best)


def ndcg_at(relevant_in_order: np.ndarray, n_relevant: int, k: int = MRR_CUTOFF) -> float:
    """nDCG@k with binary gains: DCG of the first k documents over the DCG of a perfect ranking."""
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = discounts[:min(k, n_relevant)].sum()
    return float((relevant_in_order[:k] * discounts[:len(relevant_in_order[:k])]).sum() / ideal) if ideal else 0.0


def intent_retrieval(queries, query_mask, docs, doc_mask, doc_labels, gold, scorer: str = "late",
                     k: int = 5) -> dict:
    """Intent detection by retrieval: each query ranks the labelled documents under ``scorer``.

    Returns the means in [0, 1] of ``top1_acc`` (the first document's intent is the gold one), ``knn_acc`` (the
    majority intent of the first k; ties: the nearest tied intent), ``mrr10`` (1 / rank of the first same-intent
    document, 0 past 10) and ``ndcg10`` (every same-intent document relevant, binary gains), and ``items``: the
    same four scores per query, for paired statistics. Ties between scores rank the non-relevant document first.
    """
    doc_labels, gold = np.asarray(doc_labels), np.asarray(gold)
    if len(doc_labels) != docs.shape[0] or len(gold) != queries.shape[0]:
        raise ValueError("intent_retrieval needs one label per document and one gold intent per query")
    scores = score_matrix(queries, query_mask, docs, doc_mask, scorer).double().numpy()
    relevant = doc_labels[None, :] == gold[:, None]
    order = pessimistic_order(scores, relevant)
    items = {"top1_acc": [], "knn_acc": [], "mrr10": [], "ndcg10": []}
    for q, row in enumerate(order):
        rel = relevant[q, row]
        first = int(np.argmax(rel)) + 1 if rel.any() else None
        items["top1_acc"].append(float(doc_labels[row[0]] == gold[q]))
        items["knn_acc"].append(float(knn_vote(doc_labels[row], k) == gold[q]))
        items["mrr10"].append(1.0 / first if first is not None and first <= MRR_CUTOFF else 0.0)
        items["ndcg10"].append(ndcg_at(rel.astype(float), int(rel.sum())))
    return {**{name: float(np.mean(values)) for name, values in items.items()}, "items": items}


# --------------------------------------------------------------------------------------------------
# Evaluating one student on one target language (the comparison's evaluation stage)
# --------------------------------------------------------------------------------------------------
KNN_K = 5


def plan_concentration(student_tokens, student_mask, teacher_tokens, teacher_mask, tcfg, batch_size=32) -> dict:
    """How the plans of the training loss look on test pairs: the mean (over pairs) of the mean over real rows of
    the largest share of a row (1 = one-to-one) and of the row entropy / log(m) (1 = uniform), with the training
    cost, eps rule and iterations, in batches of the training batch size (eps relative to a batch, as in training)."""
    from .ot_torch import cost_matrix, effective_eps, sinkhorn

    shares, entropies = [], []
    for start in range(0, student_tokens.shape[0], batch_size):
        sl = slice(start, start + batch_size)
        X, Y, mx, my = student_tokens[sl].double(), teacher_tokens[sl].double(), student_mask[sl], teacher_mask[sl]
        C = cost_matrix(X, Y, tcfg.ot_cost)
        eps = effective_eps(C, mx, my, tcfg.ot_eps, tcfg.ot_eps_mode)
        P = sinkhorn(None, None, C, eps, mask_a=mx, mask_b=my, n_iter=tcfg.ot_n_iter).plan
        rows = P / P.sum(-1, keepdim=True).clamp_min(1e-300)
        entropy = -(rows * torch.log(rows.clamp_min(1e-300))).sum(-1) / torch.log(my.sum(-1, keepdim=True).double()
                                                                                   .clamp_min(2))
        n_rows = mx.sum(-1).double()
        shares += ((rows.max(-1).values * mx).sum(-1) / n_rows).tolist()
        entropies += ((entropy * mx).sum(-1) / n_rows).tolist()
    return {"plan_max_row_share": float(np.mean(shares)), "plan_row_entropy": float(np.mean(entropies))}


def token_cloud_cosine(tokens, mask) -> float:
    """Mean over sentences of the mean cosine between two different real tokens of the sentence (1 = collapsed)."""
    x = torch.nn.functional.normalize(tokens.double(), dim=-1) * mask[..., None]
    n = mask.sum(-1).double()
    total = (x.sum(1) ** 2).sum(-1) - n                      # sum over i != j of cos(x_i, x_j)
    keep = n > 1
    return float((total[keep] / (n[keep] * (n[keep] - 1))).mean()) if keep.any() else float("nan")


class Evaluator:
    """Everything on the English side is encoded once by the frozen teacher: the kNN pool (English training
    utterances) and, per language, the retrieval pool (the English translations of the target test set).
    Each student's target test sentences are then encoded once and shared by the head, kNN and retrieval.

    ``evaluate`` returns the metrics and, under ``"items"``, the per-item outputs paired differences need
    (head prediction, kNN prediction, pooled and late-interaction retrieval ranks, English prediction), as small
    integer lists; and under ``"diagnostics"`` the mechanism numbers (given ``tcfg``, the training settings):
    the training plan's concentration on the test pairs, the student's token-cloud cosine, and the student's
    pooled-vector norm relative to the teacher's.
    """

    def __init__(self, teacher_encoder, head, tokenizer, setting, device="cpu", tcfg=None):
        self.head, self.tokenizer, self.setting, self.device, self.tcfg = head, tokenizer, setting, device, tcfg
        self.teacher_encoder = teacher_encoder
        self.knn_labels = setting.labels(setting.en_train)
        self.en_test_texts = [u.text for u in setting.en_test]
        self.en_test_gold = setting.labels(setting.en_test)

    # the English-side pools are encoded on first use: a process that only needs the gold labels (the main
    # process of `compare --workers`, whose workers evaluate) never pays for them
    @property
    def knn_pool(self) -> torch.Tensor:
        return self.document_pool.sentence       # the same English training utterances, encoded once

    @functools.cached_property
    def document_pool(self):
        """The English training utterances as documents (token states), for intent detection by retrieval."""
        return encode_texts(self.teacher_encoder, self.tokenizer, [u.text for u in self.setting.en_train], self.device)

    @property
    def scorer(self) -> str:
        return self.tcfg.teacher_scorer if self.tcfg is not None else "late"

    def intent_by_retrieval(self, encoded, gold) -> tuple:
        """(the four ir_ metrics, their per-query scores): target queries retrieve among the English documents."""
        docs = self.document_pool
        found = intent_retrieval(encoded.tokens, encoded.token_mask, docs.tokens, docs.token_mask, self.knn_labels,
                                 gold, self.scorer, KNN_K)
        names = {"top1_acc": "ir_acc", "knn_acc": "ir_knn_acc", "mrr10": "ir_mrr10", "ndcg10": "ir_ndcg10"}
        items = {f"{names[k]}_item": [round(v, 6) for v in found["items"][k]] for k in names}
        return {names[k]: found[k] for k in names}, items

    @functools.cached_property
    def retrieval_pool(self) -> dict:
        return {lang: (encode_texts(self.teacher_encoder, self.tokenizer, english, self.device)
                       if english is not None else None)
                for lang, english in self.setting.en_of_test.items()}

    def gold(self, lang) -> list:
        return self.setting.labels(self.setting.target_test[lang])

    def evaluate(self, student, lang) -> dict:
        test = self.setting.target_test[lang]
        gold = self.gold(lang)
        encoded = encode_texts(student, self.tokenizer, [u.text for u in test], self.device)
        queries = encoded.sentence
        if not (torch.isfinite(queries).all() and torch.isfinite(encoded.tokens).all()):
            raise NonFiniteEmbeddings(f"the model's embeddings of the {lang} test sentences are not finite (a diverged run); "
                             "it is not scored")
        pred = intents_of(self.head, queries, self.device)
        knn = knn_predictions(queries, self.knn_pool, self.knn_labels, KNN_K)
        en_pred = predict_intents(student, self.head, self.tokenizer, self.en_test_texts, self.device)
        result = {"intent_acc": accuracy(pred, gold), "macro_f1": macro_f1(pred, gold), "knn_acc": accuracy(knn, gold),
                  "en_acc": accuracy(en_pred, self.en_test_gold), "mrr10": None, "recall1": None,
                  "late_mrr10": None, "late_recall1": None}
        items = {"pred": pred.tolist(), "knn_pred": knn.tolist(), "en_pred": en_pred.tolist()}
        by_retrieval, ir_items = self.intent_by_retrieval(encoded, gold)
        result.update(by_retrieval)
        items.update(ir_items)
        diagnostics = {"token_cosine": token_cloud_cosine(encoded.tokens, encoded.token_mask)}
        pool = self.retrieval_pool[lang]
        if pool is not None:
            ranks = retrieval_ranks(queries, pool.sentence)
            late = late_interaction_ranks(encoded.tokens, encoded.token_mask, pool.tokens, pool.token_mask)
            result.update(metrics_of_ranks(ranks), **metrics_of_ranks(late, prefix="late_"))
            items["rank"], items["late_rank"] = ranks.tolist(), late.tolist()
            diagnostics["norm_ratio"] = float(queries.norm(dim=-1).mean() / pool.sentence.norm(dim=-1).mean())
            # the yardstick of token_cosine: how spread the teacher's own English token clouds are (the translations)
            diagnostics["teacher_token_cosine"] = token_cloud_cosine(pool.tokens, pool.token_mask)
            if self.tcfg is not None:
                diagnostics.update(plan_concentration(encoded.tokens, encoded.token_mask, pool.tokens, pool.token_mask,
                                                      self.tcfg))
        # descriptive numbers, rounded: their last digits depend on the order of threaded sums (workers vs one)
        return {**result, "items": items, "diagnostics": {k: round(v, 6) for k, v in diagnostics.items()}}
