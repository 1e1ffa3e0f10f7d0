"""Zero-shot evaluation: intent accuracy and macro-F1 through the teacher's head, cross-lingual retrieval
(MRR@10, Recall@1), and intent by retrieval (kNN accuracy).

Retrieval follows OPTICAL's CLIR setting, where only the query encoder is distilled: target-language
queries are encoded by the student, the English side by the frozen teacher. (a) Each target test
sentence retrieves its own English translation among all English test sentences, by cosine similarity.
(b) Each target test sentence retrieves its k nearest English *training* utterances and takes their
majority intent (ties: the intent of the nearest among the tied).
"""
from __future__ import annotations

import numpy as np
import torch


@torch.no_grad()
def encode_sentences(encoder, tokenizer, texts, device="cpu", batch_size=128) -> torch.Tensor:
    encoder.eval()
    out = [encoder(encoder.batch(tokenizer, texts[i:i + batch_size], device)).sentence.cpu()
           for i in range(0, len(texts), batch_size)]
    return torch.cat(out)


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


def retrieval_ranks(queries: torch.Tensor, pool: torch.Tensor) -> np.ndarray:
    """Rank (1 = first) of query i's relevant item pool[i] among all pool items, by cosine similarity."""
    if queries.shape[0] != pool.shape[0]:
        raise ValueError("retrieval needs one relevant pool item per query (pool[i] for query i)")
    sims = cosine_similarities(queries, pool)
    correct = sims.diagonal().unsqueeze(1)
    return ((sims > correct).sum(1) + 1).numpy()


def mrr_at(ranks, k: int = 10) -> float:
    ranks = np.asarray(ranks, dtype=float)
    return float(np.mean(np.where(ranks <= k, 1.0 / ranks, 0.0)))


def retrieval_metrics(queries: torch.Tensor, pool: torch.Tensor, k: int = 10) -> dict:
    """Query i's relevant item is pool[i]; returns MRR@k and Recall@1."""
    return metrics_of_ranks(retrieval_ranks(queries, pool), k)


def metrics_of_ranks(ranks, k: int = 10) -> dict:
    return {"mrr10": mrr_at(ranks, k), "recall1": float(np.mean(np.asarray(ranks) == 1))}


def knn_accuracy(queries: torch.Tensor, pool: torch.Tensor, pool_labels, gold, k: int = 5) -> float:
    return accuracy(knn_predictions(queries, pool, pool_labels, k), gold)


def knn_predictions(queries: torch.Tensor, pool: torch.Tensor, pool_labels, k: int = 5) -> np.ndarray:
    """Majority intent of the k nearest pool items (ties: the intent of the nearest among the tied)."""
    sims = cosine_similarities(queries, pool)
    nearest = sims.topk(min(k, pool.shape[0]), dim=1).indices.numpy()
    pool_labels = np.asarray(pool_labels)
    pred = []
    for row in nearest:
        votes = pool_labels[row]
        counts = {label: int(np.sum(votes == label)) for label in votes}
        best = max(counts.values())
        pred.append(next(label for label in votes if counts[label] == best))  # nearest among the tied
    return np.asarray(pred)


# --------------------------------------------------------------------------------------------------
# Evaluating one student on one target language (the comparison's evaluation stage)
# --------------------------------------------------------------------------------------------------
KNN_K = 5


class Evaluator:
    """Everything on the English side is encoded once by the frozen teacher: the kNN pool (English training
    utterances) and, per language, the retrieval pool (the English translations of the target test set).
    Each student's target test sentences are then encoded once and shared by the head, kNN and retrieval.

    ``evaluate`` returns the metrics and, under ``"items"``, the per-item outputs a paired bootstrap needs
    (head prediction, kNN prediction, retrieval rank, English prediction), as small integer lists.
    """

    def __init__(self, teacher_encoder, head, tokenizer, setting, device="cpu"):
        self.head, self.tokenizer, self.setting, self.device = head, tokenizer, setting, device
        self.knn_pool = encode_sentences(teacher_encoder, tokenizer, [u.text for u in setting.en_train], device)
        self.knn_labels = setting.labels(setting.en_train)
        self.en_test_texts = [u.text for u in setting.en_test]
        self.en_test_gold = setting.labels(setting.en_test)
        self.retrieval_pool = {lang: (encode_sentences(teacher_encoder, tokenizer, english, device)
                                      if english is not None else None)
                               for lang, english in setting.en_of_test.items()}

    def gold(self, lang) -> list:
        return self.setting.labels(self.setting.target_test[lang])

    def evaluate(self, student, lang) -> dict:
        test = self.setting.target_test[lang]
        gold = self.gold(lang)
        queries = encode_sentences(student, self.tokenizer, [u.text for u in test], self.device)
        pred = intents_of(self.head, queries, self.device)
        knn = knn_predictions(queries, self.knn_pool, self.knn_labels, KNN_K)
        en_pred = predict_intents(student, self.head, self.tokenizer, self.en_test_texts, self.device)
        result = {"intent_acc": accuracy(pred, gold), "macro_f1": macro_f1(pred, gold), "knn_acc": accuracy(knn, gold),
                  "en_acc": accuracy(en_pred, self.en_test_gold), "mrr10": None, "recall1": None}
        items = {"pred": pred.tolist(), "knn_pred": knn.tolist(), "en_pred": en_pred.tolist()}
        if self.retrieval_pool[lang] is not None:
            ranks = retrieval_ranks(queries, self.retrieval_pool[lang])
            result.update(metrics_of_ranks(ranks))
            items["rank"] = ranks.tolist()
        return {**result, "items": items}
