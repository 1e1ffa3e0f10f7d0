"""Rebuild a comparison's report from its files, without training: ``python -m optical_ref report DIR [--out DIR2]``.

Reads the run folder ``DIR``: ``runs.jsonl`` (or ``runs.jsonl.gz``: the runs, the source of every number),
``config.json`` (what was run) and ``results.json`` (the teachers, the gold labels of the test items, the data's
description; its stored analysis is not reused: the statistics are recomputed by today's rule). Writes
``summary.md``, ``results.csv``, the figures and a fresh ``results.json``: into ``DIR`` itself, or into ``--out``.

``--out`` makes a folder to commit (e.g. ``tutorials/results/NAME``): beside the report it copies what is needed
to rebuild it again there: ``config.json``, ``plan.json``, the runs (gzipped to ``runs.jsonl.gz`` when
over 1 MB, byte-for-byte reproducible) and ``results.json`` without its copy of the runs. ``report`` run on that
folder gives the same ``summary.md``. ``--out`` refuses a folder that holds anything but files this toolkit writes
there (a report's outputs, ``select``'s selection files): nothing a user owns is overwritten. A rebuild takes
seconds (the quick preset's folder: about 5 s on 2 CPU cores, most of it the figures).

``report --ablation ablation.md DIR1 DIR2 ...`` reads one method's runs in several folders that differ by a setting
(e.g. ``compare --preset retrieval --langs th --budgets 20 100 --methods ot --set ot_marginals=norm``): per folder
and column they all hold, the primary metric beside the student's token-cloud cosine and the teacher's own (the
yardstick); each row names the settings in which the folders differ.

``report --verdict verdict.md DIR1 DIR2 ...`` gathers the declared comparisons of several designs and corrects
them by Holm **together**: the family of a verdict drawn from all of them, not each design's alone.
"""
from __future__ import annotations

import fnmatch
import gzip
import json
import time
from pathlib import Path

REPORT_FILES = ("summary.md", "results.csv", "budget.png", "differences.png", "curve.png", "plan.png")
COMMIT_FILES = ("results.json", "runs.jsonl", "runs.jsonl.gz", "config.json", "plan.json")
SELECT_FILES = ("selection*.json", "selection*.md")      # written by `select` into the same committed folders
GZIP_OVER = 1_000_000                                     # bytes: a larger runs.jsonl is committed gzipped


def add_arguments(parser) -> None:
    parser.add_argument("folders", nargs="+", metavar="DIR",
                        help="a compare run folder (runs.jsonl, config.json, results.json); several with --verdict")
    parser.add_argument("--out", default=None, metavar="DIR2",
                        help="write the report there, with the files that rebuild it (a folder to commit)")
    parser.add_argument("--ablation", default=None, metavar="FILE",
                        help="write FILE (a new file): one method's runs in the folders given (each with its own --set), "
                             "the primary metric against the token-cloud cosine and the teacher's own")
    parser.add_argument("--method", default="ot", help="--ablation: the method whose runs are read (default ot)")
    parser.add_argument("--verdict", default=None, metavar="FILE",
                        help="write FILE (a new file): every declared comparison of the folders given, with Holm's "
                             "correction over all of them together (the verdict's whole family)")


def load_results(folder: Path, say=print) -> dict:
    """The content of a results.json for ``folder``, its runs read from runs.jsonl(.gz) and its analysis dropped
    (recomputed); refuses a folder that lacks one of the three files, naming it."""
    from .compare import list_runs, record_keys, saved_as_config
    from .presets import CompareConfig
    from .runstore import read_json, read_records, run_key, runs_path

    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"report {folder}: no such folder; give the output folder of a compare run")
    for name, present in (("config.json", (folder / "config.json").is_file()), ("runs.jsonl", runs_path(folder)),
                          ("results.json", (folder / "results.json").is_file())):
        if not present:
            raise ValueError(f"report {folder}: no {name} there; give a folder written by compare (or by report "
                             "--out), or finish the comparison first (compare --resume DIR)")
    recover = f"restore it, or rerun the comparison into {folder} (compare --resume {folder})"
    saved = read_json(folder / "config.json", "saved configuration", recover)
    try:
        cfg = CompareConfig(**saved_as_config(saved))
    except (TypeError, ValueError) as err:
        raise ValueError(f"report {folder}: config.json is not a compare configuration ({err}); {recover}") from None
    wanted = {key for run in list_runs(cfg) for key in record_keys(run)}
    stored = [r for r in read_records(folder, say) if run_key(r) in wanted]
    results = read_json(folder / "results.json", "results", recover)
    results.pop("analysis", None)
    return {**results, "config": cfg.as_saved(), "runs": [r for r in stored if not r.get("failed")],
            "failed_runs": [r for r in stored if r.get("failed")]}


def check_out(folder: Path, out: Path) -> None:
    """Refuse an ``--out`` that is a file, or a folder holding anything this toolkit does not write there."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out}: this is a file, not a folder; choose a folder name")
    if not out.is_dir() or out.resolve() == folder.resolve():
        return
    foreign = sorted(p.name for p in out.iterdir()
                     if p.is_dir() or not (p.name in REPORT_FILES + COMMIT_FILES
                                           or any(fnmatch.fnmatch(p.name, g) for g in SELECT_FILES)))
    if foreign:
        raise ValueError(f"--out {out}: the folder holds files report does not write ({', '.join(foreign[:5])}"
                         f"{', ...' if len(foreign) > 5 else ''}); nothing is written: choose an empty or new folder")


def copy_for_commit(folder: Path, out: Path) -> None:
    """config.json, plan.json and the runs into ``out``: runs.jsonl as it is, or runs.jsonl.gz when over 1 MB
    (mtime 0: the same runs give the same bytes); the other form is removed so only one is there."""
    from .runstore import runs_path, write_atomic

    for name in ("config.json", "plan.json"):
        if (folder / name).is_file():
            write_atomic(out / name, (folder / name).read_bytes())
    source = runs_path(folder)
    data = gzip.decompress(source.read_bytes()) if source.suffix == ".gz" else source.read_bytes()
    keep, drop = ("runs.jsonl.gz", "runs.jsonl") if len(data) > GZIP_OVER else ("runs.jsonl", "runs.jsonl.gz")
    write_atomic(out / keep, gzip.compress(data, mtime=0) if keep.endswith(".gz") else data)
    (out / drop).unlink(missing_ok=True)


def rebuild(folder, out=None, say=print) -> dict:
    """Rebuild the report of the run folder ``folder`` into ``out`` (default: the folder itself); the results."""
    from .report import analyse, write_csv, write_report
    from .runstore import read_json, write_json

    folder = Path(folder)
    out = Path(out) if out is not None else folder
    check_out(folder, out)
    results = load_results(folder, say)
    results["analysis"] = analyse(results["runs"], results.get("gold", {}), results["config"].get("declared"))
    out.mkdir(parents=True, exist_ok=True)
    in_place = out.resolve() == folder.resolve()
    # a compare folder's results.json carries the runs (merge and resume read it); a committed one leaves them to
    # runs.jsonl(.gz) beside it, and an in-place rebuild keeps it that way
    with_runs = in_place and bool(read_json(folder / "results.json", "results", "restore it").get("runs"))
    if not in_place:
        copy_for_commit(folder, out)
    write_json(out / "results.json", results if with_runs else {k: v for k, v in results.items() if k != "runs"})
    write_csv(results["runs"], out / "results.csv")
    write_report(results, out)
    return results


def verdict_rows(folders, say=print) -> list:
    """Every declared comparison (the headline family) of each folder, with its p-value, its Holm-adjusted p within
    its own design, and Holm over all of them together: the verdict's whole family, in folder order."""
    from .report import analyse
    from .stats import holm

    rows = []
    for folder in map(Path, folders):
        results = load_results(folder, say)
        analysis = analyse(results["runs"], results.get("gold", {}), results["config"].get("declared"))
        for member in analysis["family"]["members"]:
            comparison, metric, column = (x.strip() for x in member.split("|"))
            method = comparison.split(" - ")[0]
            lang, budget = column.split(" @ ")
            d = analysis["to_reference"][metric][f"{method}|{lang}|{budget}"]
            rows.append({"design": folder.name, "comparison": comparison, "metric": metric, "column": column, **d})
    for row, p_all in zip(rows, holm([r["p"] for r in rows]) if rows else []):
        row["p_holm_verdict"] = p_all
    return rows


def verdict_markdown(rows: list) -> str:
    from .report import ALPHA, _p
    designs = list(dict.fromkeys(r["design"] for r in rows))
    lines = ["# The verdict's family", "",
             f"Holm's correction over all {len(rows)} declared comparisons of {', '.join(designs)} together (each "
             "design's headline family: every method against its reference, every column, the headline metrics); "
             f"**bold** = p_Holm over the whole family < {ALPHA}. p_Holm (design): within its own design only, as in "
             "its summary.md. Intervals: 95%, uncorrected.", "",
             "| design | comparison | metric | column | difference (points) | p | p_Holm (design) | p_Holm (verdict) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        diff = f"{100 * r['diff']:+.1f} [{100 * r['low']:+.1f}, {100 * r['high']:+.1f}]"
        cells = [r["design"], r["comparison"], r["metric"], r["column"], diff, f"p{_p(r['p'])}",
                 f"p{_p(r['p_holm'])}", f"p{_p(r['p_holm_verdict'])}"]
        if r["p_holm_verdict"] < ALPHA:
            cells = [f"**{c}**" for c in cells]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_verdict(folders, path, say=print) -> list:
    """``verdict.md`` at ``path`` (refused when a file is already there: it may be a user's)."""
    from .runstore import write_atomic
    path = Path(path)
    if path.exists():
        raise ValueError(f"--verdict {path}: a file is already there; nothing is written: give a new file name")
    rows = verdict_rows(folders, say)
    write_atomic(path, verdict_markdown(rows))
    return rows


def ablation_rows(folders, method: str, say=print) -> list:
    """Per folder and column: ``method``'s primary metric (the design's declared one, else intent_acc), the
    student's token-cloud cosine and the teacher's, as mean ± std over the seeds. Only the columns every folder
    holds are read (a folder of the full design may stand for one setting), and each row names the training
    settings in which the folders differ (a setting left at its default is named too)."""
    import numpy as np

    from .report import budget_sort_key, final_records, lang_order
    loaded = []
    for folder in map(Path, folders):
        results = load_results(folder, say)
        runs = [r for r in final_records(results["runs"]) if r["method"] == method]
        if not runs:
            raise ValueError(f"--ablation: {folder} holds no {method} run; give --method, or the folders of its runs")
        loaded.append((folder, results, runs))
    common = set.intersection(*({(r["lang"], r["budget"]) for r in runs} for _, _, runs in loaded))
    if not common:
        raise ValueError(f"--ablation: the folders share no column (language and budget) of {method} runs; give "
                         "folders run on the same languages and budgets")
    trains = [results["config"]["train"] for _, results, _ in loaded]
    differ = sorted(k for k in set().union(*trains) if len({json.dumps(t.get(k)) for t in trains}) > 1)
    rows = []
    for (folder, results, runs), train in zip(loaded, trains):
        metric = (results["config"].get("declared") or {}).get("primary", "intent_acc")
        settings = {k: train.get(k) for k in differ} if len(loaded) > 1 else results["config"].get("settings") or {}
        for lang, budget in sorted(common, key=lambda c: (lang_order(c[0]), budget_sort_key(c[1]))):
            cell = [r for r in runs if (r["lang"], r["budget"]) == (lang, budget)]
            values = {k: [r.get(k, r.get("diagnostics", {}).get(k)) for r in cell]
                      for k in (metric, "token_cosine", "teacher_token_cosine")}
            rows.append({"folder": folder.name, "settings": settings, "metric": metric,
                         "column": f"{lang} @ {budget}", "seeds": len(cell),
                         **{k: (float(np.mean(v)), float(np.std(v))) if None not in v else None
                            for k, v in values.items()}})
    return rows


def ablation_markdown(rows: list, method: str) -> str:
    lines = [f"# Ablation: `{method}` across settings", "",
             "Mean ± std over the seeds of each folder. Token cosine: the mean cosine between two tokens of a sentence "
             "(1 = collapsed); the teacher's, on the English translations, is the yardstick.", "",
             "| folder | settings | column | seeds | primary metric (%) | student token cosine | teacher token cosine |",
             "|---|---|---|---|---|---|---|"]

    def cell(value, scale=1.0, digits=3):
        return "–" if value is None else f"{scale * value[0]:.{digits}f} ± {scale * value[1]:.{digits}f}"
    for r in rows:
        lines.append(f"| {r['folder']} | {json.dumps(r['settings'])} | {r['column']} | {r['seeds']} | "
                     f"{r['metric']} {cell(r[r['metric']], 100, 1)} | {cell(r['token_cosine'])} | "
                     f"{cell(r['teacher_token_cosine'])} |")
    return "\n".join(lines) + "\n"


def main(args) -> int:
    started = time.time()
    if args.ablation:
        from .runstore import write_atomic
        if Path(args.ablation).exists():
            raise ValueError(f"--ablation {args.ablation}: a file is already there; nothing is written: give a new name")
        rows = ablation_rows(args.folders, args.method)
        write_atomic(Path(args.ablation), ablation_markdown(rows, args.method))
        print(f"[report] {args.ablation}: {len(rows)} rows from {len(args.folders)} folders")
        return 0
    if args.verdict:
        if args.out:
            raise ValueError("--verdict FILE DIR ... writes one file; drop --out (rebuild each folder on its own)")
        rows = write_verdict(args.folders, args.verdict)
        print(f"[report] {args.verdict}: {len(rows)} declared comparisons of {len(args.folders)} folders, Holm over "
              f"all of them, in {time.time() - started:.1f} s")
        return 0
    if len(args.folders) > 1:
        raise ValueError(f"report: one folder at a time ({len(args.folders)} given); several only with --verdict FILE")
    folder = args.folders[0]
    rebuild(folder, args.out)
    out = Path(args.out or folder)
    print(f"[report] {out / 'summary.md'} and its figures rebuilt from {folder} in {time.time() - started:.1f} s")
    return 0
