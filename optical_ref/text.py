"""The shared subword tokenizer, trained locally (no download) and deterministically.

One WordPiece vocabulary for every language in play (Devlin et al. 2019; the multilingual-BERT recipe,
scaled down). Like the WordPiece trainer of the ``tokenizers`` library, the vocabulary is learned by
byte-pair-encoding merges (Sennrich et al. 2016) over words split into a first character and ``##``
continuation characters; a WordPiece model then tokenizes by greedy longest match.

Why a trainer of our own (in the spirit of karpathy/minbpe): the library's trainers break ties between
equally frequent pairs by hash order, so two trainings on the same text give different vocabularies, and
a comparison could not be rerun to the same numbers. Here ties go to the lexicographically smallest pair.

Normalisation (the ``tokenizers`` BertNormalizer) lower-cases but keeps accents and combining marks
(stripping them would erase Hindi vowel signs and Thai tone marks). The result is a
``transformers.PreTrainedTokenizerFast``, saved with the run outputs.
"""
from __future__ import annotations

import heapq
from collections import Counter, defaultdict

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
CONTINUATION = "##"


def _pipeline():
    from tokenizers import normalizers, pre_tokenizers

    normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=False,
                                            lowercase=True)
    return normalizer, pre_tokenizers.BertPreTokenizer()


def word_counts(texts) -> Counter:
    normalizer, pre_tokenizer = _pipeline()
    counts = Counter()
    for text in texts:
        counts.update(word for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)))
    return counts


def _merge(symbols: tuple, pair: tuple, merged: str) -> tuple:
    out, i = [], 0
    while i < len(symbols):
        if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == pair:
            out.append(merged)
            i += 2
        else:
            out.append(symbols[i])
            i += 1
    return tuple(out)


def learn_vocabulary(counts: Counter, vocab_size: int, min_frequency: int = 2) -> list:
    """BPE merges over word counts until ``vocab_size`` tokens; returns the tokens in the order learned."""
    words = sorted(counts)
    symbols = [tuple([w[0]] + [CONTINUATION + c for c in w[1:]]) for w in words]
    vocab = list(SPECIAL_TOKENS) + sorted({s for word in symbols for s in word})
    pair_counts, words_with = Counter(), defaultdict(set)
    for k, word in enumerate(symbols):
        for pair in zip(word, word[1:]):
            pair_counts[pair] += counts[words[k]]
            words_with[pair].add(k)
    heap = [(-n, pair) for pair, n in pair_counts.items()]
    heapq.heapify(heap)                     # most frequent first; ties: the smallest pair
    while len(vocab) < vocab_size and heap:
        neg_n, pair = heapq.heappop(heap)
        if pair_counts.get(pair, 0) != -neg_n:
            continue                        # a stale entry: this pair's count changed since it was pushed
        if -neg_n < min_frequency:
            break
        merged = pair[0] + pair[1][len(CONTINUATION):]
        vocab.append(merged)
        changed = Counter()
        for k in sorted(words_with.pop(pair)):
            old, new = symbols[k], _merge(symbols[k], pair, merged)
            weight = counts[words[k]]
            for p in zip(old, old[1:]):
                changed[p] -= weight
            for p in zip(new, new[1:]):
                changed[p] += weight
                words_with[p].add(k)
            symbols[k] = new
        del pair_counts[pair]
        for p, delta in changed.items():
            if p == pair or delta == 0:
                continue
            pair_counts[p] += delta
            if pair_counts[p] > 0:
                heapq.heappush(heap, (-pair_counts[p], p))
            else:
                del pair_counts[p]
    return vocab


def train_tokenizer(texts, vocab_size: int = 8000, min_frequency: int = 2):
    """Train the shared WordPiece tokenizer on ``texts``; the same texts always give the same tokenizer."""
    from tokenizers import Tokenizer, decoders, models, processors
    from transformers import PreTrainedTokenizerFast

    texts = [t for t in texts if t and t.strip()]
    if not texts:
        raise ValueError("cannot train a tokenizer on no text; check the training sentences")
    vocab = learn_vocabulary(word_counts(texts), vocab_size, min_frequency)
    tokenizer = Tokenizer(models.WordPiece({tok: i for i, tok in enumerate(vocab)}, unk_token="[UNK]",
                                           continuing_subword_prefix=CONTINUATION))
    tokenizer.normalizer, tokenizer.pre_tokenizer = _pipeline()
    cls_id, sep_id = vocab.index("[CLS]"), vocab.index("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)])
    tokenizer.decoder = decoders.WordPiece(prefix=CONTINUATION)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]",
                                   cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")


def load_tokenizer(path):
    """A tokenizer saved with the run outputs, or the one of a local pretrained checkpoint."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path), local_files_only=True)
