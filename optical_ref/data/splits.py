"""Reduced MTOP: MTOP's eval + test utterances re-split by id into train / dev / test, and nested
low-resource bitext budgets.

Why: only MTOP's eval and test splits are shared here (2,096 utterances in six parallel languages).
Pooling them and re-splitting **by id** keeps every translation of an utterance in the same split, so no
sentence the student distils on (nor any of its translations) is ever tested on.

Which sentences go where (for target language L, split seed s):

========================  ==============  ==============================================================
set                       ids             used by
========================  ==============  ==============================================================
English labelled train    train_ids       the teacher (encoder + intent head)
English labelled dev      dev_ids         the teacher's early stopping / model selection
(en, L) bitext            train_ids       every distilled student; L labels are never read
L labelled train          train_ids       only the ``target-supervised`` upper bound
L labelled test           test_ids        zero-shot evaluation (intent accuracy, macro-F1, kNN)
English test              test_ids        the retrieval pool (L query -> its English translation) and
                                          each student's English accuracy (forgetting)
========================  ==============  ==============================================================

``min_per_intent = 10`` (our choice): with a 60/10/30 stratified split every kept intent has at least
6 training, 1 dev and 3 test utterances; rarer intents could be neither learned nor measured. On the
shared data this keeps 36 of 88 intents and 1,913 of 2,096 utterances (91%); the dropped intents and
their counts are reported, never silently lost.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .mtop import load_mtop
from .paths import find_data_dir
from .records import MTOP_LANGS, BitextPair, DataFormatError, check_langs

DEFAULT_MIN_PER_INTENT = 10
DEFAULT_FRACTIONS = (0.6, 0.1, 0.3)


@dataclass
class ReducedMTOP:
    """The reduced-MTOP splits. ``items[id][lang]`` is the Utterance of that id in that language."""

    train_ids: list
    dev_ids: list
    test_ids: list
    intents: list
    items: dict
    langs: tuple
    seed: int
    min_per_intent: int
    dropped_intents: dict = field(default_factory=dict)
    data_dir: str = ""

    def ids(self, split: str) -> list:
        if split not in ("train", "dev", "test"):
            raise ValueError(f"unknown split {split!r}; choose train, dev or test")
        return {"train": self.train_ids, "dev": self.dev_ids, "test": self.test_ids}[split]

    def labelled(self, split: str, lang: str) -> list:
        """The labelled utterances of ``split`` in ``lang``."""
        (lang,) = check_langs([lang], self.langs, "this reduced-MTOP object")
        return [self.items[i][lang] for i in self.ids(split)]

    def bitext(self, lang: str, split: str = "train") -> list:
        """(English, lang) pairs of the ids of ``split``; ``intent`` is the English label (analysis only)."""
        (lang,) = check_langs([lang], [x for x in self.langs if x != "en"], "bitext")
        return [BitextPair(i, lang, self.items[i]["en"].text, self.items[i][lang].text, self.items[i]["en"].intent)
                for i in self.ids(split)]

    def sizes(self) -> dict:
        return {"train": len(self.train_ids), "dev": len(self.dev_ids), "test": len(self.test_ids),
                "intents": len(self.intents), "dropped_intents": len(self.dropped_intents),
                "dropped_items": sum(self.dropped_intents.values())}


def stratified_split(ids_by_intent: dict, fractions, seed: int):
    """Split each intent's ids by ``fractions`` (train, dev, test); every part gets at least one id.

    Deterministic: intents in sorted order, ids sorted before one shuffle with numpy's default_rng(seed).
    """
    rng = np.random.default_rng(seed)
    parts = ([], [], [])
    for intent in sorted(ids_by_intent):
        ids = sorted(ids_by_intent[intent])
        order = [ids[k] for k in rng.permutation(len(ids))]
        n_dev = max(1, round(fractions[1] * len(ids)))
        n_test = max(1, round(fractions[2] * len(ids)))
        n_train = len(ids) - n_dev - n_test
        if n_train < 1:
            raise ValueError(f"intent {intent} has only {len(ids)} items: too few for a train/dev/test split")
        parts[0].extend(order[:n_train])
        parts[1].extend(order[n_train:n_train + n_dev])
        parts[2].extend(order[n_train + n_dev:])
    return tuple(sorted(p) for p in parts)


def reduced_mtop(data_dir=None, *, seed: int = 0, min_per_intent: int = DEFAULT_MIN_PER_INTENT,
                 langs=None, fractions=DEFAULT_FRACTIONS) -> ReducedMTOP:
    """Build reduced MTOP from ``data_dir`` (see :func:`find_data_dir`). ``langs`` defaults to all six;
    English is always included (the teacher's language)."""
    if isinstance(min_per_intent, bool) or not isinstance(min_per_intent, int) or min_per_intent < 3:
        raise ValueError(f"min_per_intent must be an integer >= 3 (one item each for train, dev and test), "
                         f"got {min_per_intent!r}")
    if len(fractions) != 3 or abs(sum(fractions) - 1) > 1e-9 or min(fractions) <= 0:
        raise ValueError(f"fractions must be three positive numbers (train, dev, test) summing to 1, got {fractions}")
    langs = check_langs(langs, MTOP_LANGS, "MTOP")
    langs = ("en",) + tuple(lang for lang in langs if lang != "en")
    root = find_data_dir(data_dir, "mtop")
    items = load_parallel_items(root, langs)
    counts = Counter(by_lang["en"].intent for by_lang in items.values())
    kept = sorted(intent for intent, n in counts.items() if n >= min_per_intent)
    dropped = {intent: n for intent, n in sorted(counts.items()) if n < min_per_intent}
    ids_by_intent = defaultdict(list)
    for item_id, by_lang in items.items():
        if by_lang["en"].intent in kept:
            ids_by_intent[by_lang["en"].intent].append(item_id)
    train, dev, test = stratified_split(ids_by_intent, fractions, seed)
    kept_items = {i: dict(items[i]) for part in (train, dev, test) for i in part}
    return ReducedMTOP(train, dev, test, kept, kept_items, langs, seed, min_per_intent, dropped, str(root))


def load_parallel_items(root: Path, langs) -> dict:
    """{id: {lang: Utterance}} over MTOP's eval and test files. An id twice (in one file or in both) and a
    translation whose intent differs from the English one are errors naming where, never overwritten."""
    items, origin = defaultdict(dict), {}
    for split in ("dev", "test"):
        json_file = root / "mtop" / f"{split}.json"
        for utt in load_mtop(root, langs, splits=(split,)):
            where = str(json_file) if json_file.is_file() else str(root / "mtop" / utt.lang / f"{'eval' if split == 'dev' else split}.txt")
            if utt.lang in items[utt.id]:
                raise DataFormatError(f"MTOP id {utt.id} ({utt.lang}) appears twice: in {origin[(utt.id, utt.lang)]} and "
                                      f"in {where}; an utterance must be in one split once")
            items[utt.id][utt.lang] = utt
            origin[(utt.id, utt.lang)] = where
    for item_id, by_lang in items.items():
        if "en" not in by_lang:
            raise DataFormatError(f"MTOP id {item_id} has no English utterance ({origin[(item_id, next(iter(by_lang)))]})")
        english = by_lang["en"].intent
        for lang, utt in by_lang.items():
            if utt.intent != english:
                raise DataFormatError(f"{origin[(item_id, lang)]}: id {item_id}: the {lang} intent {utt.intent} differs "
                                      f"from the English intent {english}; the translations of one utterance share "
                                      "its intent (fix or drop the item)")
    return items


def bitext_budget(pairs, k: int, seed: int) -> list:
    """The first ``k`` pairs of one seeded permutation of ``pairs``: budgets are nested (the 50 pairs are
    inside the 200, inside the 1,000) and deterministic, so budget curves compare like with like."""
    pairs = list(pairs)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"a bitext budget must be an integer >= 1, got {k!r}")
    if k > len(pairs):
        raise ValueError(f"a budget of {k} pairs is larger than the {len(pairs)} pairs available; "
                         f"choose k <= {len(pairs)} (or 'all')")
    order = np.random.default_rng(seed).permutation(len(pairs))
    return [pairs[i] for i in order[:k]]


def official_mtop(data_dir=None, *, min_per_intent: int = DEFAULT_MIN_PER_INTENT, langs=None) -> ReducedMTOP:
    """The full experiment for users with the official release (``mtop/<lang>/{train,eval,test}.txt``):
    MTOP's own train / eval / test splits, restricted to ids present in every requested language and to
    intents with at least ``min_per_intent`` English training utterances."""
    from .mtop import load_mtop_tsv

    langs = check_langs(langs, MTOP_LANGS, "MTOP")
    langs = ("en",) + tuple(lang for lang in langs if lang != "en")
    root = find_data_dir(data_dir, "mtop")
    parts, items, file_of = {}, defaultdict(dict), {}
    for split, name in (("train", "train"), ("dev", "eval"), ("test", "test")):
        ids_per_lang = []
        for lang in langs:
            path = root / "mtop" / lang / f"{name}.txt"
            utts = load_mtop_tsv(path, lang)
            for utt in utts:
                earlier = file_of.get((utt.id, lang))
                if earlier is not None and earlier != path:   # the same utterance in two splits: a leak
                    raise DataFormatError(f"{path}: id {utt.id} is also in {earlier}; an utterance in two splits "
                                          "leaks training data into evaluation: remove it from one of them")
                file_of[(utt.id, lang)] = path
                items[utt.id][lang] = utt
            ids_per_lang.append({u.id for u in utts})
        parts[split] = sorted(set.intersection(*ids_per_lang))
    counts = Counter(items[i]["en"].intent for i in parts["train"])
    kept = sorted(intent for intent, n in counts.items() if n >= min_per_intent)
    dropped = {intent: n for intent, n in sorted(counts.items()) if n < min_per_intent}
    keep = set(kept)
    train, dev, test = ([i for i in parts[s] if items[i]["en"].intent in keep] for s in ("train", "dev", "test"))
    kept_items = {i: dict(items[i]) for part in (train, dev, test) for i in part}
    return ReducedMTOP(train, dev, test, kept, kept_items, langs, -1, min_per_intent, dropped, str(root))
