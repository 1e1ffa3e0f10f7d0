"""The experimental setting: which sentences train the teacher, which bitext the students distil from, which
labelled sentences are tested on, for one dataset, target languages and split seed.

``load_setting("mtop", ...)``: reduced MTOP (see :mod:`optical_ref.data.splits`; the official release
is used instead when ``mtop/<lang>/train.txt`` is present). ``load_setting("mtod", ...)``: MTOD, with the
teacher trained on a seeded sample of ``MTOD_TEACHER_SIZE`` English training utterances (a time budget),
students on the machine-translated ``train.tsv`` bitext, and evaluation on the human es/th test sets
(not parallel: retrieval is not defined there).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .splits import bitext_budget

MTOD_TEACHER_SIZE = 6000     # English MTOD training utterances for the teacher (of 30,521), a time budget
MTOD_EVAL_SIZE = 2000        # English dev/test utterances used for model selection and en_acc


@dataclass
class Setting:
    dataset: str
    split_seed: int
    intents: list
    en_train: list
    en_dev: list
    en_test: list
    bitext: dict          # lang -> [BitextPair], the students' training bitext
    dev_bitext: dict      # lang -> [BitextPair] of the dev ids (label-free model selection), [] where none
    target_train: dict    # lang -> [Utterance] labelled (target-supervised only)
    target_test: dict     # lang -> [Utterance]
    en_of_test: dict      # lang -> English texts parallel to target_test (None: not parallel)
    description: dict

    def labels(self, utterances) -> list:
        index = {intent: k for k, intent in enumerate(self.intents)}
        return [index[u.intent] for u in utterances]

    def budget_pairs(self, lang: str, budget, seed: int):
        """The bitext subset of one student: (its indices into ``bitext[lang]``, the pairs)."""
        pairs = self.bitext[lang]
        k = resolve_budget(budget, len(pairs), lang)
        chosen = sorted(bitext_budget(list(range(len(pairs))), k, seed))
        return chosen, [pairs[i] for i in chosen]

    def supervised_subset(self, lang: str, chosen: list, seed: int) -> list:
        """The labelled target sentences of ``target-supervised``: on MTOP the same ids as the bitext subset;
        on MTOD (whose labelled training set is not the bitext) a seeded sample of the same size."""
        labelled = self.target_train[lang]
        if self.dataset == "mtop":
            return [labelled[i] for i in chosen]
        k = min(len(chosen), len(labelled))
        return [labelled[i] for i in sorted(bitext_budget(list(range(len(labelled))), k, seed))]


def resolve_budget(budget, n_available: int, lang: str) -> int:
    if budget == "all":
        return n_available
    if budget > n_available:
        raise ValueError(f"budget {budget} is larger than the {n_available} bitext pairs available for {lang}; "
                         f"use at most {n_available} or 'all'")
    return budget


def load_setting(dataset: str, root, langs, split_seed: int) -> Setting:
    if dataset == "mtop":
        setting = mtop_setting(root, langs, split_seed)
    elif dataset == "mtod":
        setting = mtod_setting(root, langs, split_seed)
    else:
        raise ValueError(f"unknown dataset {dataset!r}; choose mtop or mtod")
    setting.description["data_sha256"] = data_identity(root, dataset)
    return setting


def data_identity(root, dataset: str) -> str:
    """The identity of the data a run reads: sha256 over the relative path and sha256 of every file of
    ``root/dataset`` (the same data in another folder has the same identity; any changed byte changes it)."""
    import hashlib
    from pathlib import Path

    from .fetch import sha256_of   # one file-hashing implementation: the fetcher's

    folder = Path(root) / dataset
    lines = [f"{path.relative_to(folder).as_posix()}\0{sha256_of(path)}"
             for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != "SOURCE.md")]
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


def mtop_setting(root, langs, split_seed: int) -> Setting:
    from .splits import official_mtop, reduced_mtop

    if (root / "mtop" / "en" / "train.txt").is_file():
        data, source = official_mtop(root, langs=langs), "official MTOP release (train/eval/test)"
    else:
        data, source = reduced_mtop(root, seed=split_seed, langs=langs), "reduced MTOP (eval+test re-split by id)"
    en_test = data.labelled("test", "en")
    return Setting(
        dataset="mtop", split_seed=split_seed, intents=data.intents, en_train=data.labelled("train", "en"),
        en_dev=data.labelled("dev", "en"), en_test=en_test, bitext={lang: data.bitext(lang) for lang in langs},
        dev_bitext={lang: data.bitext(lang, "dev") for lang in langs},
        target_train={lang: data.labelled("train", lang) for lang in langs},
        target_test={lang: data.labelled("test", lang) for lang in langs},
        en_of_test={lang: [u.text for u in en_test] for lang in langs},
        description={"source": source, "data_dir": str(root), "split_seed": split_seed, **data.sizes()})


def mtod_setting(root, langs, split_seed: int) -> Setting:
    from .mtod import load_mtod, load_mtod_bitext

    rng = np.random.default_rng(split_seed)

    def sample(items, k):
        return [items[i] for i in sorted(rng.permutation(len(items))[:k])] if len(items) > k else items

    en_train = sample(load_mtod(root, "en", "train"), MTOD_TEACHER_SIZE)
    intents = sorted({u.intent for u in en_train})
    keep = set(intents)
    tests = {lang: load_mtod(root, lang, "test") for lang in langs}
    dropped = {lang: sum(u.intent not in keep for u in utts) for lang, utts in tests.items()}
    return Setting(
        dataset="mtod", split_seed=split_seed, intents=intents, en_train=en_train,
        en_dev=sample([u for u in load_mtod(root, "en", "dev") if u.intent in keep], MTOD_EVAL_SIZE),
        en_test=sample([u for u in load_mtod(root, "en", "test") if u.intent in keep], MTOD_EVAL_SIZE),
        bitext={lang: load_mtod_bitext(root, lang) for lang in langs}, dev_bitext={lang: [] for lang in langs},
        target_train={lang: load_mtod(root, lang, "train") for lang in langs},
        target_test={lang: [u for u in tests[lang] if u.intent in keep] for lang in langs},
        en_of_test={lang: None for lang in langs},
        description={"source": "MTOD (Schuster et al. 2019)", "data_dir": str(root), "split_seed": split_seed,
                     "teacher_train": len(en_train), "intents": len(intents),
                     "target_test_items_with_intents_unknown_to_the_teacher_dropped": dropped})
