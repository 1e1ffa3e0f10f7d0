"""The OT-vs-KD comparison: ``python -m optical_ref compare [--preset quick|default|full] ...``.

One command trains the English teacher once, then one student per (language, bitext budget, method,
seed), evaluates each zero-shot on the target language, and writes to ``--out``:

- ``runs.jsonl``   one record per finished run, appended as soon as it finishes (``--resume DIR`` skips
                   what is there, so an interrupted comparison loses nothing finished);
- ``results.json`` config, environment, teacher summary, and every record; ``results.csv`` the records;
- ``summary.md``   mean ± std over seeds per method x language x budget; ``budget.png`` accuracy vs
                   bitext budget; ``plan.png`` a transport plan for a real sentence pair;
- ``teacher/``     the teacher's weights and the tokenizer (reused by ``--resume``).

The settings (sentences per split, methods, metrics) are described in README.md and in the modules
``data.splits``, ``train`` and ``evaluate``.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

PRESETS = {
    # quick: tests and a first look, < 60 s on 2 CPU cores
    "quick": {"langs": ["es", "th"], "budgets": ["all"], "seeds": [0],
              "train": {"teacher_epochs": 8, "student_steps": 80}},
    # default: the README's main command, < 10 min on 2 CPU cores
    "default": {"langs": ["de", "hi", "th"], "budgets": [100, "all"], "seeds": [0, 1],
                "train": {"teacher_epochs": 20, "student_steps": 200}},
    # full: every language, three budgets, three seeds
    "full": {"langs": ["de", "es", "fr", "hi", "th"], "budgets": [50, 200, "all"], "seeds": [0, 1, 2],
             "train": {"teacher_epochs": 30, "student_steps": 300}},
}
MTOD_PRESET_OVERRIDES = {"quick": {"budgets": [2000]}, "default": {"budgets": [1000, 10000]},
                         "full": {"budgets": [1000, 10000, "all"]}}
MTOD_TEACHER_SIZE = 6000     # English MTOD training utterances for the teacher (of 30,521), a time budget
MTOD_EVAL_SIZE = 2000        # English dev/test utterances used for model selection and en_acc
KNN_K = 5


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from .methods import METHODS

    parser.add_argument("--preset", default="default", choices=sorted(PRESETS), help="size of the run (default: default)")
    parser.add_argument("--dataset", default="mtop", choices=["mtop", "mtod"],
                        help="mtop: reduced MTOP (default); mtod: MTOD with its 30k machine-translated bitext")
    parser.add_argument("--langs", nargs="+", help="target languages (default: the preset's)")
    parser.add_argument("--methods", nargs="+", help=f"any of {' '.join(METHODS)} (default: all)")
    parser.add_argument("--budgets", nargs="+", help="bitext pairs per student: integers or 'all' (default: the preset's)")
    parser.add_argument("--seeds", nargs="+", type=int, help="training seeds: initialisation, batch order, budget subsets")
    parser.add_argument("--split-seed", type=int, default=0, help="the reduced-MTOP train/dev/test split (default 0)")
    parser.add_argument("--data-dir", default=None, help="data directory (default: $OPTICAL_REF_DATA, ../shared/data)")
    parser.add_argument("--out", default=None, help="output folder (default: runs/<timestamp>/)")
    parser.add_argument("--encoder", default=None, help="a local pretrained checkpoint folder (with its tokenizer)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--resume", default=None, metavar="DIR", help="continue the comparison in DIR, skipping finished runs")


@dataclass
class CompareConfig:
    dataset: str = "mtop"
    preset: str = "default"
    langs: list = field(default_factory=list)
    methods: list = field(default_factory=list)
    budgets: list = field(default_factory=list)
    seeds: list = field(default_factory=list)
    split_seed: int = 0
    data_dir: str | None = None
    encoder: str | None = None
    device: str = "cpu"
    train: dict = field(default_factory=dict)


def make_config(preset="default", dataset="mtop", langs=None, methods=None, budgets=None, seeds=None,
                split_seed=0, data_dir=None, encoder=None, device="cpu", train_overrides=None) -> CompareConfig:
    """Resolve a preset plus overrides into a checked config; every error is raised before training."""
    from .data import MTOD_LANGS, MTOP_LANGS, check_langs
    from .methods import METHODS
    from .train import TrainConfig

    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(sorted(PRESETS))}")
    if dataset not in ("mtop", "mtod"):
        raise ValueError(f"unknown dataset {dataset!r}; choose mtop or mtod")
    base = dict(PRESETS[preset])
    if dataset == "mtod":
        base.update(MTOD_PRESET_OVERRIDES[preset])
        base["langs"] = ["es", "th"]
    known = [x for x in (MTOP_LANGS if dataset == "mtop" else MTOD_LANGS) if x != "en"]
    langs = list(check_langs(langs if langs is not None else base["langs"], known, f"{dataset} target languages"))
    methods = list(methods) if methods is not None else list(METHODS)
    if not methods:
        raise ValueError(f"the method list is empty; choose any of {', '.join(METHODS)}")
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; choose from {', '.join(METHODS)}")
    budgets = [parse_budget(b) for b in (budgets if budgets is not None else base["budgets"])]
    if not budgets:
        raise ValueError("the budget list is empty; give integers or 'all'")
    seeds = list(seeds) if seeds is not None else list(base["seeds"])
    if not seeds:
        raise ValueError("the seed list is empty")
    if device == "cuda":
        import torch
        if not torch.cuda.is_available():
            raise ValueError("--device cuda but no CUDA GPU is available; use --device cpu")
    if encoder is not None and not Path(encoder).is_dir():
        raise FileNotFoundError(f"--encoder {encoder}: no such directory (a local checkpoint folder is expected)")
    train = {**TrainConfig().as_dict(), **base["train"], **(train_overrides or {}), "device": device}
    TrainConfig(**train)  # unknown keys fail here
    return CompareConfig(dataset, preset, langs, methods, budgets, seeds, split_seed, data_dir, encoder, device, train)


def parse_budget(b):
    if b == "all":
        return "all"
    try:
        value = int(b)
    except (TypeError, ValueError):
        raise ValueError(f"a budget must be a positive integer or 'all', got {b!r}") from None
    if value < 1:
        raise ValueError(f"a budget must be a positive integer or 'all', got {b!r}")
    return value


# --------------------------------------------------------------------------------------------------
# The setting: which sentences train, distil and evaluate
# --------------------------------------------------------------------------------------------------
@dataclass
class Setting:
    intents: list
    en_train: list
    en_dev: list
    en_test: list
    bitext: dict          # lang -> [BitextPair]
    target_train: dict    # lang -> [Utterance] labelled (target-supervised only)
    target_test: dict     # lang -> [Utterance]
    en_of_test: dict      # lang -> English texts parallel to target_test (None: not parallel)
    description: dict


def load_setting(cfg: CompareConfig) -> Setting:
    from .data import find_data_dir
    if cfg.dataset == "mtop":
        return _mtop_setting(cfg, find_data_dir(cfg.data_dir, "mtop"))
    return _mtod_setting(cfg, find_data_dir(cfg.data_dir, "mtod"))


def _mtop_setting(cfg, root) -> Setting:
    from .data import reduced_mtop
    from .data.splits import official_mtop

    if (root / "mtop" / "en" / "train.txt").is_file():
        data, source = official_mtop(root, langs=cfg.langs), "official MTOP release (train/eval/test)"
    else:
        data, source = reduced_mtop(root, seed=cfg.split_seed, langs=cfg.langs), "reduced MTOP (eval+test re-split by id)"
    en_test = data.labelled("test", "en")
    return Setting(
        intents=data.intents, en_train=data.labelled("train", "en"), en_dev=data.labelled("dev", "en"),
        en_test=en_test, bitext={lang: data.bitext(lang) for lang in cfg.langs},
        target_train={lang: data.labelled("train", lang) for lang in cfg.langs},
        target_test={lang: data.labelled("test", lang) for lang in cfg.langs},
        en_of_test={lang: [u.text for u in en_test] for lang in cfg.langs},
        description={"source": source, "data_dir": str(root), "split_seed": cfg.split_seed, **data.sizes()})


def _mtod_setting(cfg, root) -> Setting:
    import numpy as np

    from .data import load_mtod, load_mtod_bitext

    rng = np.random.default_rng(cfg.split_seed)

    def sample(items, k):
        return [items[i] for i in sorted(rng.permutation(len(items))[:k])] if len(items) > k else items

    en_train = sample(load_mtod(root, "en", "train"), MTOD_TEACHER_SIZE)
    intents = sorted({u.intent for u in en_train})
    keep = set(intents)
    tests = {lang: load_mtod(root, lang, "test") for lang in cfg.langs}
    dropped = {lang: sum(u.intent not in keep for u in utts) for lang, utts in tests.items()}
    return Setting(
        intents=intents, en_train=en_train,
        en_dev=sample([u for u in load_mtod(root, "en", "dev") if u.intent in keep], MTOD_EVAL_SIZE),
        en_test=sample([u for u in load_mtod(root, "en", "test") if u.intent in keep], MTOD_EVAL_SIZE),
        bitext={lang: load_mtod_bitext(root, lang) for lang in cfg.langs},
        target_train={lang: load_mtod(root, lang, "train") for lang in cfg.langs},
        target_test={lang: [u for u in tests[lang] if u.intent in keep] for lang in cfg.langs},
        en_of_test={lang: None for lang in cfg.langs},
        description={"source": "MTOD (Schuster et al. 2019)", "data_dir": str(root),
                     "teacher_train": len(en_train), "intents": len(intents),
                     "target_test_items_with_intents_unknown_to_the_teacher_dropped": dropped})


def resolve_budget(budget, n_available: int, lang: str) -> int:
    if budget == "all":
        return n_available
    if budget > n_available:
        raise ValueError(f"budget {budget} is larger than the {n_available} bitext pairs available for {lang}; "
                         f"use at most {n_available} or 'all'")
    return budget


# --------------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------------
def say(message: str) -> None:
    print(message, flush=True)


def run_key(record) -> tuple:
    return (record["method"], record["lang"], str(record["budget"]), int(record["seed"]))


def read_records(out: Path) -> list:
    path = out / "runs.jsonl"
    if not path.is_file():
        return []
    records = []
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                say(f"[compare] ignoring an unfinished line {line_no} of {path} (an interrupted write)")
    return records


def run_comparison(cfg: CompareConfig, out, progress_bars: bool = True) -> dict:
    """Run (or continue) the comparison described by ``cfg`` into the folder ``out``."""
    import torch
    from tqdm import tqdm

    from .data import bitext_budget
    from .encoder import IntentHead, build_encoder, load_pretrained_encoder
    from .evaluate import (accuracy, encode_sentences, intents_of, knn_accuracy, macro_f1, predict_intents,
                           retrieval_metrics)
    from .text import load_tokenizer, train_tokenizer
    from .train import TeacherOutputs, TrainConfig, teacher_outputs, train_student, train_teacher

    started = time.time()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(min(torch.get_num_threads(), os.cpu_count() or 1))
    tcfg = TrainConfig(**cfg.train)
    config_path = out / "config.json"
    if config_path.is_file() and json.loads(config_path.read_text(encoding="utf-8")) != json.loads(json.dumps(vars(cfg))):
        raise ValueError(f"{out} holds a comparison with a different configuration; continue it with "
                         f"--resume {out}, or choose another --out")
    config_path.write_text(json.dumps(vars(cfg), indent=2), encoding="utf-8")

    say(f"[1/5] data: {cfg.dataset}, target languages {', '.join(cfg.langs)}")
    setting = load_setting(cfg)
    for lang in cfg.langs:  # every budget is checked before any training starts
        for budget in cfg.budgets:
            resolve_budget(budget, len(setting.bitext[lang]), lang)
    intent_index = {intent: k for k, intent in enumerate(setting.intents)}

    def label(utterances):
        return [intent_index[u.intent] for u in utterances]

    say(f"      {setting.description}")

    say("[2/5] tokenizer and teacher")
    teacher_dir = out / "teacher"
    if cfg.encoder:
        tokenizer = load_tokenizer(cfg.encoder)
    elif (teacher_dir / "tokenizer.json").is_file():
        tokenizer = load_tokenizer(teacher_dir)
    else:
        texts = [u.text for u in setting.en_train] + [p.target for lang in cfg.langs for p in setting.bitext[lang]]
        tokenizer = train_tokenizer(texts)
    encoder = load_pretrained_encoder(cfg.encoder) if cfg.encoder else build_encoder(len(tokenizer), seed=0)
    encoder = encoder.to(cfg.device)
    head = IntentHead(encoder.dim, len(setting.intents)).to(cfg.device)
    teacher_summary_path = teacher_dir / "teacher.json"
    if (teacher_dir / "weights.pt").is_file() and teacher_summary_path.is_file():
        state = torch.load(teacher_dir / "weights.pt", map_location=cfg.device)
        encoder.load_state_dict(state["encoder"])
        head.load_state_dict(state["head"])
        teacher_summary = json.loads(teacher_summary_path.read_text(encoding="utf-8"))
        say(f"      reusing the teacher in {teacher_dir} (English dev accuracy {teacher_summary['best_dev_acc']:.3f})")
    else:
        t0 = time.time()
        bar = tqdm(total=tcfg.teacher_epochs, desc="teacher", unit="epoch", disable=None if progress_bars else True, file=sys.stdout)
        teacher_summary = train_teacher(
            encoder, head, tokenizer, [u.text for u in setting.en_train], label(setting.en_train),
            [u.text for u in setting.en_dev], label(setting.en_dev), tcfg, seed=0,
            progress=lambda e, n, h: (bar.update(1), bar.set_postfix(dev_acc=f"{h['dev_acc']:.3f}")))
        bar.close()
        teacher_summary["train_seconds"] = time.time() - t0
        teacher_summary["vocab_size"] = len(tokenizer)
        teacher_dir.mkdir(exist_ok=True)
        tokenizer.save_pretrained(str(teacher_dir))
        torch.save({"encoder": encoder.state_dict(), "head": head.state_dict()}, teacher_dir / "weights.pt")
        teacher_summary_path.write_text(json.dumps(teacher_summary, indent=2), encoding="utf-8")
        say(f"      teacher: English dev accuracy {teacher_summary['best_dev_acc']:.3f} "
            f"in {teacher_summary['train_seconds']:.0f} s (vocabulary {len(tokenizer)})")
    encoder.eval()
    for p in encoder.parameters():
        p.requires_grad_(False)

    say("[3/5] frozen teacher outputs on the English side (computed once)")
    en_test_texts = [u.text for u in setting.en_test]
    en_test_labels = label(setting.en_test)
    knn_pool = encode_sentences(encoder, tokenizer, [u.text for u in setting.en_train], cfg.device)
    knn_labels = label(setting.en_train)
    retrieval_pool = {lang: (encode_sentences(encoder, tokenizer, setting.en_of_test[lang], cfg.device)
                             if setting.en_of_test[lang] is not None else None) for lang in cfg.langs}
    english_cache = {}

    def teacher_for(pairs):
        missing = sorted({p.en for p in pairs} - set(english_cache))
        if missing:
            outputs = teacher_outputs(encoder, head, tokenizer, missing, cfg.device)
            for k, text in enumerate(missing):
                english_cache[text] = (outputs.tokens[k], outputs.sentence[k], outputs.logits[k])
        rows = [english_cache[p.en] for p in pairs]
        return TeacherOutputs([r[0] for r in rows], torch.stack([r[1] for r in rows]), torch.stack([r[2] for r in rows]))

    def evaluate(student, lang) -> dict:
        test = setting.target_test[lang]
        texts = [u.text for u in test]
        gold = label(test)
        queries = encode_sentences(student, tokenizer, texts, cfg.device)   # encoded once: head, kNN, retrieval
        pred = intents_of(head, queries, cfg.device)
        result = {"intent_acc": accuracy(pred, gold), "macro_f1": macro_f1(pred, gold),
                  "knn_acc": knn_accuracy(queries, knn_pool, knn_labels, gold, KNN_K),
                  "en_acc": accuracy(predict_intents(student, head, tokenizer, en_test_texts, cfg.device), en_test_labels)}
        if retrieval_pool[lang] is not None:
            result.update(retrieval_metrics(queries, retrieval_pool[lang]))
        else:
            result.update({"mrr10": None, "recall1": None})
        return result

    done = {run_key(r) for r in read_records(out)}
    jobs = [(lang, budget, method, seed) for lang in cfg.langs for budget in cfg.budgets
            for method in cfg.methods for seed in cfg.seeds]
    todo = [j for j in jobs if (j[2], j[0], str(j[1]), j[3]) not in done]
    say(f"[4/5] students: {len(jobs)} runs ({len(jobs) - len(todo)} already done)")
    plan_path = out / "plan.json"
    for n, (lang, budget, method, seed) in enumerate(todo, start=1):
        pairs_all = setting.bitext[lang]
        k = resolve_budget(budget, len(pairs_all), lang)
        chosen = sorted(bitext_budget(list(range(len(pairs_all))), k, seed))
        pairs = [pairs_all[i] for i in chosen]
        desc = f"({n}/{len(todo)}) {method:<17} {lang} budget={budget} seed={seed}"
        teacher = teacher_for(pairs) if method not in ("zero-shot", "target-supervised") else None
        t0 = time.time()
        steps = 0
        if method == "zero-shot":
            student = encoder
        else:
            bar = tqdm(total=tcfg.student_steps, desc=desc, unit="step", leave=False, disable=None if progress_bars else True,
                       file=sys.stdout)
            if method == "target-supervised":
                labelled = setting.target_train[lang]
                if cfg.dataset == "mtop":
                    labelled = [labelled[i] for i in chosen]      # the same ids as the bitext subset
                else:
                    labelled = [labelled[i] for i in sorted(bitext_budget(list(range(len(labelled))),
                                                                          min(k, len(labelled)), seed))]
                student, losses = train_student(method, encoder, head, tokenizer, [u.text for u in labelled], tcfg,
                                                seed, target_labels=label(labelled), progress=lambda *_: bar.update(1))
            else:
                student, losses = train_student(method, encoder, head, tokenizer, [p.target for p in pairs], tcfg,
                                                seed, teacher=teacher, progress=lambda *_: bar.update(1))
            bar.close()
            steps = len(losses)
        train_seconds = time.time() - t0
        record = {"dataset": cfg.dataset, "method": method, "lang": lang, "budget": budget, "n_pairs": k,
                  "seed": seed, "split_seed": cfg.split_seed, **evaluate(student, lang),
                  "train_seconds": round(train_seconds, 3),
                  "ms_per_step": round(1000 * train_seconds / steps, 3) if steps else None, "steps": steps}
        with open(out / "runs.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")
        say(f"  {desc}: intent_acc {record['intent_acc']:.3f}  knn_acc {record['knn_acc']:.3f}  "
            f"en_acc {record['en_acc']:.3f}  ({train_seconds:.1f} s)")
        if method == _plan_method(cfg) and lang == _plan_lang(cfg) and not plan_path.is_file():
            save_example_plan(student, encoder, tokenizer, setting, lang, tcfg, plan_path)
        if student is not encoder:
            del student

    say("[5/5] report")
    from .report import write_report
    records = read_records(out)
    from .bench import environment
    results = {"config": vars(cfg), "environment": environment(), "setting": setting.description,
               "teacher": {k: v for k, v in teacher_summary.items() if k != "history"},
               "teacher_history": teacher_summary.get("history", []), "runs": records,
               "wall_seconds_this_call": round(time.time() - started, 1)}
    (out / "results.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    write_csv(records, out / "results.csv")
    write_report(results, out)
    files = [name for name in ("summary.md", "results.json", "results.csv", "runs.jsonl", "budget.png", "plan.png")
             if (out / name).is_file()]
    say(f"done in {time.time() - started:.0f} s; outputs in {out.resolve()} ({', '.join(files)})")
    return results


def _plan_lang(cfg) -> str:
    """The example plan's language: a Latin-script one when there is one (readable without extra fonts)."""
    return next((lang for lang in cfg.langs if lang in ("de", "es", "fr")), cfg.langs[0])


def _plan_method(cfg) -> str:
    return "ot" if "ot" in cfg.methods else ("ot+kd" if "ot+kd" in cfg.methods else "zero-shot")


def save_example_plan(student, teacher, tokenizer, setting, lang, tcfg, path: Path) -> None:
    """The transport plan between one real test sentence (student) and its English translation (teacher)."""
    import torch

    from .ot_torch import cost_matrix, sinkhorn

    if setting.en_of_test[lang] is None:
        return
    test = setting.target_test[lang]
    k = min(range(len(test)), key=lambda i: (abs(len(test[i].text.split()) - 7), i))  # a mid-length sentence
    target, english = test[k].text, setting.en_of_test[lang][k]
    with torch.no_grad():
        s = student(student.batch(tokenizer, [target], tcfg.device))
        t = teacher(teacher.batch(tokenizer, [english], tcfg.device))
        xs, ys = s.tokens[0][s.token_mask[0]], t.tokens[0][t.token_mask[0]]
        C = cost_matrix(xs[None], ys[None], tcfg.ot_cost)[0]
        plan = sinkhorn(None, None, C.double(), tcfg.ot_eps, tol=1e-7, max_iter=100_000).plan
    ids_s = tokenizer(target, truncation=True, max_length=student.max_length)["input_ids"]
    ids_t = tokenizer(english, truncation=True, max_length=teacher.max_length)["input_ids"]
    special = set(tokenizer.all_special_ids)
    path.write_text(json.dumps({
        "lang": lang, "target": target, "english": english,
        "target_tokens": [x for x in tokenizer.convert_ids_to_tokens([i for i in ids_s if i not in special])],
        "english_tokens": [x for x in tokenizer.convert_ids_to_tokens([i for i in ids_t if i not in special])],
        "plan": plan.tolist(), "cost": C.double().tolist(), "eps": tcfg.ot_eps}, ensure_ascii=False), encoding="utf-8")


CSV_FIELDS = ["dataset", "method", "lang", "budget", "n_pairs", "seed", "split_seed", "intent_acc", "macro_f1",
              "knn_acc", "mrr10", "recall1", "en_acc", "train_seconds", "ms_per_step", "steps"]


def write_csv(records, path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for r in records:
            writer.writerow(r)


def main(args) -> int:
    if args.resume:
        out = Path(args.resume)
        if not (out / "config.json").is_file():
            raise SystemExit(f"--resume {out}: no config.json there; give the output folder of an earlier compare run")
        cfg = CompareConfig(**json.loads((out / "config.json").read_text(encoding="utf-8")))
        say(f"[compare] resuming {out} with its saved configuration")
    else:
        try:
            cfg = make_config(args.preset, args.dataset, args.langs, args.methods, args.budgets, args.seeds,
                              args.split_seed, args.data_dir, args.encoder, args.device)
            from .data import find_data_dir
            find_data_dir(cfg.data_dir, cfg.dataset)
        except (ValueError, FileNotFoundError) as err:
            raise SystemExit(f"error: {err}") from None
        out = Path(args.out) if args.out else Path("runs") / datetime.now().strftime("%Y%m%d-%H%M%S")
    try:
        run_comparison(cfg, out)
    except (ValueError, FileNotFoundError) as err:
        raise SystemExit(f"error: {err}") from None
    return 0
