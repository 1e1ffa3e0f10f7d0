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


def retrieval_metrics(queries: torch.Tensor, pool: torch.Tensor, k: int = 10) -> dict:
    """Query i's relevant item is pool[i]; returns MRR@k and Recall@1."""
    if queries.shape[0] != pool.shape[0]:
        raise ValueError("retrieval needs one relevant pool item per query (pool[i] for query i)")
    sims = cosine_similarities(queries, pool)
    correct = sims.diagonal().unsqueeze(1)
    rank = (sims > correct).sum(1) + 1        # 1 = retrieved first
    reciprocal = torch.where(rank <= k, 1.0 / rank.double(), torch.zeros((), dtype=torch.float64))
    return {"mrr10": float(reciprocal.mean()), "recall1": float((rank == 1).double().mean())}


def knn_accuracy(queries: torch.Tensor, pool: torch.Tensor, pool_labels, gold, k: int = 5) -> float:
    sims = cosine_similarities(queries, pool)
    nearest = sims.topk(min(k, pool.shape[0]), dim=1).indices.numpy()
    pool_labels = np.asarray(pool_labels)
    pred = []
    for row in nearest:
        votes = pool_labels[row]
        counts = {label: int(np.sum(votes == label)) for label in votes}
        best = max(counts.values())
        pred.append(next(label for label in votes if counts[label] == best))  # nearest among the tied
    return accuracy(pred, gold)
