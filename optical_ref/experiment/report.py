"""The comparison's report: ``summary.md`` and the PNG plots, from a results.json's content (``report DIR``
rebuilds them from a run folder's files without training: :mod:`.rebuild`).

``summary.md``, retrieval first (the research question is about cross-lingual retrieval models):

1. one table per metric of :mod:`optical_ref.metrics` (pooled and late-interaction retrieval, intent accuracy,
   kNN accuracy, macro-F1, English accuracy), a column per language @ bitext budget, each cell mean ± std over
   training seeds (sample std, ddof = 1; 0 for one seed) and, with several split seeds, over every run;
2. the declared analysis (:func:`analyse`, stored in ``results.json`` as ``"analysis"``): every method against
   a reference declared before any run (``kd-mse``), never chosen on test data, by one studentised paired rule
   for interval and p-value (training seeds the unit, test items; :mod:`optical_ref.experiment.stats`),
   Holm-corrected over the family of headline comparisons; differences to ``zero-shot`` beside them; the count
   of columns that ``ot`` and ``ot+kd`` win, tie and lose;
3. diagnostics of the mechanism (plan concentration, token-cloud cosine, norm ratio) per method;
4. with several split seeds, the training-seed spread next to the split spread.

A run evaluated along a learning curve (``--eval-steps``) is read at its last step everywhere above
(:func:`final_records`); ``curve.png`` plots the headline metrics at every step.

In the mean tables the best mean among the methods that use no target-language labels is in bold (all of
them when tied); ``target-supervised`` (an upper bound that reads target labels) is listed below a rule.
"""
from __future__ import annotations

import json
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np

from ..data import LOW_RESOURCE_LANGS
from ..methods import METHODS as METHOD_ORDER
from ..methods import UPPER_BOUND
from ..metrics import BY_NAME, HEADLINE, ITEM_METRICS, METRICS
from .runstore import run_key
from .stats import CONFIDENCE, RULE, holm, mean_interval, paired_arrays, seed_scores, studentised_difference

KD_METHODS = ("kd-mse", "kd-kl")
OT_METHODS = ("ot", "ot+kd")
DECLARED_REFERENCE = "kd-mse"   # the standard sentence-level baseline (Reimers & Gurevych 2020), declared before any run
ALPHA = 0.05


def mean_std(values):
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def budget_sort_key(budget):
    return (1, 0) if str(budget) == "all" else (0, int(budget))


def lang_order(lang):
    return (lang in LOW_RESOURCE_LANGS, lang)


def columns_of(records) -> list:
    langs = sorted({r["lang"] for r in records}, key=lang_order)
    budgets = sorted({str(r["budget"]) for r in records}, key=budget_sort_key)
    return [(lang, b) for lang in langs for b in budgets]


def methods_of(records) -> list:
    return [m for m in METHOD_ORDER if any(r["method"] == m for r in records)]


def runs_of(records, method, column) -> list:
    return [r for r in records if r["method"] == method and (r["lang"], str(r["budget"])) == column]


def final_records(records) -> list:
    """The record at the last evaluated step of each run, in the given order. A run evaluated along a learning curve
    (``--eval-steps``) has one record per step; the tables and the analysis compare methods at the step each run
    was trained to (mixing steps would average unlike models, and pair a seed's early record with another's late
    one), and ``curve.png`` shows the earlier steps."""
    last = {}                                  # run (the record key without its step) -> (step, record)
    for r in records:
        *run, step = run_key(r)
        if tuple(run) not in last or step > last[tuple(run)][0]:
            last[tuple(run)] = (step, r)
    return [r for r in records if last[run_key(r)[:-1]][1] is r]


def is_curve(records) -> bool:
    """True when some run was evaluated at more than one step."""
    steps = defaultdict(set)
    for r in records:
        *run, step = run_key(r)
        steps[tuple(run)].add(step)
    return any(len(s) > 1 for s in steps.values())


def has_metric(records, metric) -> bool:
    return any(r.get(metric) is not None for r in records)


# --------------------------------------------------------------------------------------------------
# Tables of means
# --------------------------------------------------------------------------------------------------
def markdown_table(records, metric) -> str:
    methods, columns = methods_of(records), columns_of(records)
    stats = {(m, col): mean_std([r.get(metric) for r in runs_of(records, m, col)]) for m in methods for col in columns}
    lines = ["| method | " + " | ".join(f"{lang} @ {b}" for lang, b in columns) + " |", "|---" * (len(columns) + 1) + "|"]
    best = {}
    for col in columns:
        means = {m: stats[(m, col)][0] for m in methods if m != UPPER_BOUND and stats[(m, col)][0] is not None}
        if means:
            top = max(means.values())
            best[col] = {m for m, v in means.items() if abs(v - top) < 1e-12}
    for m in methods:
        if m == UPPER_BOUND:
            lines.append("| *labels used:* |" + " |" * len(columns))
        row = []
        for col in columns:
            mean, std = stats[(m, col)]
            if mean is None:
                row.append("–")
                continue
            text = f"{100 * mean:.1f} ± {100 * std:.1f}"
            row.append(f"**{text}**" if m in best.get(col, ()) else text)
        lines.append(f"| {m} | " + " | ".join(row) + " |")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# Paired differences
# --------------------------------------------------------------------------------------------------
def reference_method(records) -> str | None:
    """The reference of "method minus reference": declared before any run (kd-mse), never chosen on test data."""
    methods = methods_of(records)
    return DECLARED_REFERENCE if DECLARED_REFERENCE in methods else next((m for m in KD_METHODS if m in methods), None)


def differences(records, gold, metric, reference) -> dict:
    """{(method, column): interval dict} of every other method against ``reference``, by the studentised paired
    rule of :mod:`.stats` (training seeds and test items; splits one by one, then combined)."""
    out = {}
    methods = methods_of(records)
    for col in columns_of(records):
        scores = {m: seed_scores(runs_of(records, m, col), metric, gold) for m in methods}
        if not scores.get(reference):
            continue
        for m in methods:
            if m == reference or not scores[m]:
                continue
            a, b = paired_arrays(scores[m], scores[reference])
            result = studentised_difference(a, b)
            if result is not None:
                out[(m, col)] = {**result, "reference": reference}
    return out


def analyse(records, gold, declared=None) -> dict:
    """The declared analysis: every label-free method against the declared reference, on the headline metrics
    (a design's own declaration, when it has one: its family's metrics and its reference), with Holm's correction
    over that whole family; differences to zero-shot are shown beside it, uncorrected (they answer another
    question: does distillation help at all?). Each run is read at its last step (:func:`final_records`)."""
    records = final_records(records)
    declared = dict(declared or {})
    headline = tuple(declared.get("family") or HEADLINE)
    reference = declared.get("reference") if declared.get("reference") in methods_of(records) else reference_method(records)
    metrics = [k for k in ITEM_METRICS if has_metric(records, k)]
    to_reference = {k: differences(records, gold, k, reference) for k in metrics} if reference else {}
    to_zero_shot = ({k: differences(records, gold, k, "zero-shot") for k in metrics}
                    if "zero-shot" in methods_of(records) else {})
    family = [(k, m, col) for k in headline if k in to_reference for (m, col) in to_reference[k]
              if m not in ("zero-shot", UPPER_BOUND)]
    adjusted = holm([to_reference[k][(m, col)]["p"] for k, m, col in family]) if family else []
    for (k, m, col), p_holm in zip(family, adjusted):
        to_reference[k][(m, col)].update(p_holm=p_holm, in_family=True, significant_holm=p_holm < ALPHA)
    return {"reference": reference, "reference_chosen_on": "declared", "correction": "holm", "alpha": ALPHA,
            "rule": RULE, "confidence": CONFIDENCE,
            "steps": "each run at its last evaluated step",
            "declared": declared, "headline": list(headline),
            "family": {"size": len(family), "metrics": [k for k in headline if k in to_reference],
                       "members": [f"{m} - {reference} | {k} | {col[0]} @ {col[1]}" for k, m, col in family]},
            "to_reference": _serialisable(to_reference), "to_zero_shot": _serialisable(to_zero_shot)}


def _serialisable(diffs: dict) -> dict:
    return {k: {f"{m}|{col[0]}|{col[1]}": d for (m, col), d in by_metric.items()} for k, by_metric in diffs.items()}


def _diffs_of(analysis: dict, which: str, metric: str) -> dict:
    out = {}
    for key, d in analysis.get(which, {}).get(metric, {}).items():
        m, lang, budget = key.split("|")
        out[(m, (lang, budget))] = d
    return out


def _significant(d) -> bool:
    return d["significant_holm"] if d.get("in_family") else d["significant"]


def _p(p: float) -> str:
    """Three decimals, and one significant figure below 0.001 (not "<0.001"): Holm over a larger family (the
    verdict's, across designs) can then be recomputed from the summaries."""
    if p == 0.0:
        return "=0"
    return f"={p:.0e}".replace("e-0", "e-") if p < 0.001 else f"={p:.3f}"


def format_interval(d) -> str:
    text = f"{100 * d['diff']:+.1f} [{100 * d['low']:+.1f}, {100 * d['high']:+.1f}] p{_p(d['p'])}"
    if d.get("in_family"):
        text += f", p_Holm{_p(d['p_holm'])}"
    return f"**{text}**" if _significant(d) else text


def difference_table(records, diffs) -> str:
    columns = columns_of(records)
    lines = ["| method | " + " | ".join(f"{lang} @ {b}" for lang, b in columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for m in methods_of(records):
        cells = [diffs.get((m, (lang, str(b)))) for lang, b in columns]
        if all(c is None for c in cells):
            continue
        lines.append(f"| {m} | " + " | ".join("–" if c is None else format_interval(c) for c in cells) + " |")
    return "\n".join(lines)


def per_split_table(records, diffs) -> str:
    """Each split's own difference and interval (the cells' ``per_split``), a row per method and split."""
    columns = columns_of(records)
    lines = ["| method | split | " + " | ".join(f"{lang} @ {b}" for lang, b in columns) + " |",
             "|---" * (len(columns) + 2) + "|"]
    for m in methods_of(records):
        cells = [diffs.get((m, (lang, str(b)))) for lang, b in columns]
        splits = sorted({s["split"] for c in cells if c for s in c.get("per_split", [])})
        for k in splits:
            row = [next((s for s in (c or {}).get("per_split", []) if s["split"] == k), None) for c in cells]
            lines.append(f"| {m} | {k} | " + " | ".join("–" if s is None else format_interval(s) for s in row) + " |")
    return "\n".join(lines)


def win_tie_loss(records, diffs, method) -> tuple:
    cells = [diffs.get((method, (lang, str(b)))) for lang, b in columns_of(records)]
    cells = [c for c in cells if c is not None]
    wins = sum(_significant(c) and c["diff"] > 0 for c in cells)
    losses = sum(_significant(c) and c["diff"] < 0 for c in cells)
    return wins, len(cells) - wins - losses, losses


# --------------------------------------------------------------------------------------------------
# Spread: training seeds vs splits
# --------------------------------------------------------------------------------------------------
def spread_table(records, metric) -> str:
    lines = ["| method | training-seed std (within a split) | split std (of split means) |", "|---|---|---|"]
    for m in methods_of(records):
        seed_stds, split_stds = [], []
        for col in columns_of(records):
            by_split = defaultdict(list)
            for r in runs_of(records, m, col):
                if r.get(metric) is not None:
                    by_split[r["split_seed"]].append(r[metric])
            seed_stds += [np.std(v, ddof=1) for v in by_split.values() if len(v) > 1]
            if len(by_split) > 1:
                split_stds.append(np.std([np.mean(v) for v in by_split.values()], ddof=1))
        fmt = (lambda xs: f"{100 * np.mean(xs):.2f}" if xs else "–")
        lines.append(f"| {m} | {fmt(seed_stds)} | {fmt(split_stds)} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------------------
DIAGNOSTICS = [("plan_row_entropy", "plan row entropy / log(m) (1 = uniform)"),
               ("plan_max_row_share", "plan's largest row share (1 = one-to-one)"),
               ("token_cosine", "mean cosine between two tokens of a student sentence (1 = collapsed)"),
               ("teacher_token_cosine", "the same for the teacher's English sentences (the yardstick)"),
               ("norm_ratio", "student pooled-vector norm / teacher's")]


def diagnostics_table(records) -> str:
    """Mean over runs (all columns) of each diagnostic, per method."""
    present = [(k, label) for k, label in DIAGNOSTICS if any(k in (r.get("diagnostics") or {}) for r in records)]
    if not present:
        return ""
    lines = ["| method | " + " | ".join(label for _, label in present) + " |", "|---" * (len(present) + 1) + "|"]
    for m in methods_of(records):
        cells = []
        for k, _ in present:
            values = [r["diagnostics"][k] for r in records if r["method"] == m and k in (r.get("diagnostics") or {})]
            cells.append(f"{np.mean(values):.3f}" if values else "–")
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_report(results: dict, out: Path) -> None:
    """``summary.md`` and the plots of ``results`` (a results.json's content) into the folder ``out``."""
    out = Path(out)
    view = report_view(results)
    (out / "summary.md").write_text(summary_markdown(view), encoding="utf-8")
    write_figures(view, out)


def report_view(results: dict) -> dict:
    """What the summary and the plots read: the final records, the analysis (recomputed when absent), the
    differences per metric, and the run's description."""
    curve, gold = results["runs"], results.get("gold", {})
    records = final_records(curve)
    analysis = results.get("analysis") or analyse(records, gold, results["config"].get("declared"))
    diff_metrics = [k for k in ITEM_METRICS if has_metric(records, k)]
    return {"results": results, "curve": curve, "records": records, "gold": gold, "analysis": analysis,
            "reference": analysis["reference"], "diff_metrics": diff_metrics, "curves": is_curve(curve),
            "present_ot": [m for m in OT_METHODS if m in methods_of(records)],
            "headline": tuple(analysis.get("headline") or HEADLINE),
            "splits": sorted({r["split_seed"] for r in records}),
            "to_reference": {k: _diffs_of(analysis, "to_reference", k) for k in diff_metrics},
            "to_zero_shot": {k: _diffs_of(analysis, "to_zero_shot", k) for k in diff_metrics}}


def summary_markdown(view: dict) -> str:
    parts = (_header_part(view) + _how_to_read_part(view) + _curve_and_failures_part(view)
             + _lacking_metrics_part(view) + _verdict_count_part(view) + _metric_parts(view) + _diagnostics_part(view)
             + _spread_part(view) + _tokenizer_part(view))
    return "\n".join(parts)


def _teachers(results: dict) -> dict:
    return results.get("teachers") or {"0": results["teacher"]}


def _header_part(view) -> list:
    results, records = view["results"], view["records"]
    cfg, settings = results["config"], results["config"].get("settings") or {}
    seeds = sorted({r["seed"] for r in records})
    teacher_text = ", ".join(f"split {s}: {100 * t['best_dev_acc']:.1f}%" for s, t in _teachers(results).items())
    return [f"# OT vs KD: {cfg['dataset']} ({results['setting'].get('source', '')})", "",
            f"Preset `{cfg['preset']}`; encoder: {cfg.get('encoder') or 'small BERT from config'}; split seeds "
            f"{view['splits']}; training seeds {seeds}; teacher English dev accuracy {teacher_text}. "
            f"Settings changed with --set: {json.dumps(settings) if settings else 'none'} "
            f"(every training value used is in results.json, config.train).", ""] + _declaration_part(view)


def _declaration_part(view) -> list:
    declared = view["analysis"].get("declared") or {}
    if not declared:
        return []
    return [f"**Declared before any run** (`optical_ref/experiment/presets.py`): primary metric `{declared['primary']}` "
            f"({BY_NAME[declared['primary']].label}; scorer: {declared.get('scorer', '–')}); reference "
            f"`{declared['reference']}`; hypothesis: {declared['hypothesis']}; tests: {declared['tests']}.", ""]


def _how_to_read_part(view) -> list:
    analysis, reference = view["analysis"], view["reference"]
    family = analysis["family"]
    return ["**How to read it.** Mean tables: mean ± std over runs (training seeds, and split seeds where several), "
            "in %; bold = best mean among the methods that use no target-language labels. Difference tables: the "
            f"paired difference to a reference method, in points, with its {int(100 * CONFIDENCE)}% interval and its "
            "two-sided p-value, both from one studentised rule (training seeds the unit: t on n_seeds - 1 df, the "
            "item variance every seed shares added; each split on its own, splits combined by their mean and "
            "conditional on them): the interval excludes 0 exactly when p < 0.05. "
            f"The reference is declared before any run (`{reference}`), never chosen on test data. Holm's "
            f"correction holds the family-wise error at {ALPHA} over the declared family: every method against "
            f"`{reference}` on the headline metrics {', '.join(family['metrics']) or '–'}, every column, splits "
            f"combined ({family['size']} tests; listed in results.json, analysis.family); there **bold** = "
            f"p_Holm < {ALPHA}. Outside it (other metrics, differences to zero-shot, per-split rows) bold = p < "
            f"{ALPHA}, uncorrected.", ""]


def _curve_and_failures_part(view) -> list:
    parts, failed = [], view["results"].get("failed_runs", [])
    if view["curves"]:
        steps = sorted({r.get("steps") or 0 for r in view["curve"] if r["method"] != "zero-shot"})
        parts += [f"Learning curves: students evaluated at steps {steps}; every table reads each run at its last "
                  "step, `curve.png` shows the headline metrics at every step.", ""]
    if failed:
        parts += [f"**{len(failed)} run(s) failed and are not scored** (see results.json, failed_runs):", ""]
        parts += [f"- {r['method']} {r['lang']} budget={r['budget']} seed={r['seed']}: {r['failed']}" for r in failed]
        parts.append("")
    return parts


def _lacking_metrics_part(view) -> list:
    """Runs an earlier version wrote without some metric: named, since those metrics' cells average fewer runs."""
    from .runstore import lacking_metrics, runs_lacking

    lacking = {k: rs for k, rs in lacking_metrics(view["records"]).items() if has_metric(view["records"], k)}
    if not lacking:
        return []
    runs = runs_lacking(lacking)
    named = ", ".join(f"{r['method']} {r['lang']} budget={r['budget']} seed={r['seed']} split={r['split_seed']}"
                      for r in runs)
    return [f"**Incomplete: {len(runs)} of {len(view['records'])} runs lack {', '.join(f'`{k}`' for k in lacking)}** "
            f"(written by an earlier version of optical-ref): {named}. Those metrics' tables average only the runs "
            "that hold them.", ""]


def _verdict_count_part(view) -> list:
    present_ot, reference, records = view["present_ot"], view["reference"], view["records"]
    if not (present_ot and reference and view["diff_metrics"]):
        return []
    parts = [f"## Does OT beat `{reference}`? (columns won / tied / lost; significant after Holm on the headline "
             "metrics, p < 0.05 elsewhere)", "",
             "| metric | " + " | ".join(present_ot) + " |", "|---" * (1 + len(present_ot)) + "|"]
    for k in view["diff_metrics"]:
        cells = ["{} / {} / {}".format(*win_tie_loss(records, view["to_reference"][k], m)) for m in present_ot]
        parts.append(f"| {k}{' (headline)' if k in view['headline'] else ''} | " + " | ".join(cells) + " |")
    return parts + [""]


def _metric_parts(view) -> list:
    records, reference, parts = view["records"], view["reference"], []
    shown = [(m.name, m.label) for m in METRICS if has_metric(records, m.name)]
    if view["analysis"].get("declared"):      # a declared design opens with its family, the primary first
        shown.sort(key=lambda km: km[0] not in view["headline"])
    for k, name in shown:
        parts += [f"## {name}", "", markdown_table(records, k), ""]
        if view["to_reference"].get(k):
            parts += [f"Paired difference to `{reference}` ({k}, points):", "",
                      difference_table(records, view["to_reference"][k]), ""]
            if k in view["headline"] and len(view["splits"]) > 1:
                parts += [f"The same, split by split ({k}, points; uncorrected):", "",
                          per_split_table(records, view["to_reference"][k]), ""]
        if k in view["headline"] and view["to_zero_shot"].get(k):
            parts += [f"Paired difference to zero-shot ({k}, points):", "",
                      difference_table(records, view["to_zero_shot"][k]), ""]
    return parts


def _diagnostics_part(view) -> list:
    diagnostics = diagnostics_table(view["records"])
    if not diagnostics:
        return []
    return ["## Why: diagnostics of the mechanism (test pairs, mean over runs)", "",
            "The training plan (cost, eps rule and iterations of the loss) between each student's tokens at the "
            "aligned layer and the teacher's English tokens; the spread of the student's token cloud, beside the "
            "teacher's own on the English translations (the yardstick: a student that matches the teacher token by "
            "token need not be more spread than that); the size of its pooled vector next to the teacher's.", "", diagnostics, ""]


def _spread_part(view) -> list:
    parts = []
    if len(view["splits"]) > 1:
        for k in view["headline"]:
            if has_metric(view["records"], k):
                parts += [f"## Spread of {k}: training seeds vs re-splits (points, averaged over columns)", "",
                          spread_table(view["records"], k), ""]
    return parts


def _tokenizer_part(view) -> list:
    cfg = view["results"]["config"]
    vocab = {s: t.get("vocab_size") for s, t in _teachers(view["results"]).items()}
    return ["## Tokenizer", "",
            f"Vocabulary size per split: {vocab}. "
            + ("The checkpoint's own tokenizer." if cfg.get("encoder") else
               "Trained on the English training utterances and the target side of the training bitext of every "
               "language in the run (all of it, whatever the budget); never on dev or test sentences."), ""]


def write_figures(view: dict, out: Path) -> None:
    """budget.png, differences.png (with OT methods), curve.png (learning curves), plan.png (with plan.json)."""
    plot_budgets(view["records"], view["gold"], out / "budget.png", view["headline"])
    if view["present_ot"] and view["reference"]:
        plot_differences(view["records"], view["to_reference"], view["reference"], out / "differences.png",
                         view["headline"])
    if view["curves"]:
        plot_curve(view["curve"], out / "curve.png", view["headline"])
    if (out / "plan.json").is_file():
        plot_plan(json.loads((out / "plan.json").read_text(encoding="utf-8")), out / "plan.png")


# --------------------------------------------------------------------------------------------------
# The CSV: one row per run, the metrics of the table in metrics.py
# --------------------------------------------------------------------------------------------------
CSV_FIELDS = ["dataset", "method", "lang", "budget", "n_pairs", "seed", "split_seed",
              *(m.name for m in METRICS), "train_seconds", "ms_per_step", "steps"]


def write_csv(records, path: Path) -> None:
    import csv
    import io

    from .runstore import write_atomic
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in records:
        writer.writerow(r)
    write_atomic(path, buffer.getvalue())


# --------------------------------------------------------------------------------------------------
# The example plan: one real test sentence pair, with the loss's cost, eps rule and iteration count but solved on
# this pair alone in float64 (its own eps from the rule), so an illustration of the loss's plans, not one it used
# --------------------------------------------------------------------------------------------------
def example_plan_lang(langs) -> str:
    """The example plan's language: a Latin-script one when there is one (readable without extra fonts)."""
    return next((lang for lang in langs if lang in ("de", "es", "fr")), langs[0])


def example_plan_method(methods) -> str:
    return "ot" if "ot" in methods else ("ot+kd" if "ot+kd" in methods else "zero-shot")


def save_example_plan(student, teacher, tokenizer, setting, lang, tcfg, path: Path) -> None:
    """The transport plan between one real test sentence (student) and its English translation (teacher), solved
    by the training loss's own code (:func:`optical_ref.losses.ot_distill`: cost, eps rule, marginals, fixed
    iterations) on this one pair in float64; the token vectors are saved too, so the plan can be recomputed."""
    import torch

    from ..losses import ot_distill
    from .runstore import write_json

    if setting.en_of_test[lang] is None:
        return
    test = setting.target_test[lang]
    k = min(range(len(test)), key=lambda i: (abs(len(test[i].text.split()) - 7), i))  # a mid-length sentence
    target, english = test[k].text, setting.en_of_test[lang][k]
    with torch.no_grad():
        s_batch, t_batch = student.batch(tokenizer, [target], tcfg.device), teacher.batch(tokenizer, [english], tcfg.device)
        s, t = student(s_batch), teacher(t_batch)
        xs, ys = s.tokens[0][s.token_mask[0]].double().cpu(), t.tokens[0][t.token_mask[0]].double().cpu()
        details = ot_distill(xs[None], ys[None], None, None, eps=tcfg.ot_eps, eps_mode=tcfg.ot_eps_mode,
                             n_iter=tcfg.ot_n_iter, grad=tcfg.ot_grad, cost=tcfg.ot_cost, marginals=tcfg.ot_marginals,
                             tau=tcfg.ot_tau, details=True)
    write_json(path, {
        "lang": lang, "target": target, "english": english,
        "target_tokens": tokenizer.convert_ids_to_tokens(s_batch["input_ids"][0][s.token_mask[0]].tolist()),
        "english_tokens": tokenizer.convert_ids_to_tokens(t_batch["input_ids"][0][t.token_mask[0]].tolist()),
        "plan": details.plan[0].tolist(), "cost": details.cost_matrix[0].tolist(), "eps": details.eps,
        "n_iter": tcfg.ot_n_iter, "eps_rule": f"{tcfg.ot_eps} ({tcfg.ot_eps_mode})", "marginals": tcfg.ot_marginals,
        "loss": float(details.loss[0]), "student_vectors": xs.tolist(), "teacher_vectors": ys.tolist()})


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_budgets(records, gold, path: Path, headline=HEADLINE) -> None:
    """Mean vs bitext budget per language, with 95% bands by the rule of the difference tables (seeds and items);
    one row per metric."""
    plt = _pyplot()
    langs = sorted({r["lang"] for r in records}, key=lang_order)
    metrics = [k for k in headline if has_metric(records, k)]
    methods = methods_of(records)
    fig, axes = plt.subplots(len(metrics), len(langs), figsize=(4.2 * len(langs), 3.4 * len(metrics)),
                             sharey="row", squeeze=False)
    for row, metric in zip(axes, metrics):
        for ax, lang in zip(row, langs):
            for m in methods:
                by_pairs = defaultdict(list)
                for r in records:
                    if r["method"] == m and r["lang"] == lang and r.get(metric) is not None:
                        by_pairs[r["n_pairs"]].append(r)
                xs = sorted(by_pairs)
                if not xs:
                    continue
                means = [100 * np.mean([r[metric] for r in by_pairs[x]]) for x in xs]
                style = "--" if m in ("zero-shot", UPPER_BOUND) else "-"
                dodge = 1 + 0.04 * (methods.index(m) - (len(methods) - 1) / 2)   # on the log axis: no point hides another
                xs_plot = [x * dodge for x in xs]
                line, = ax.plot(xs_plot, means, linestyle=style, marker="o", label=m)
                bands = [mean_interval(paired_arrays(scores, scores)[0])
                         for scores in (seed_scores(by_pairs[x], metric, gold) for x in xs)]
                if all(b is not None for b in bands):
                    if len(xs) > 1:
                        ax.fill_between(xs_plot, [100 * b["low"] for b in bands], [100 * b["high"] for b in bands],
                                        color=line.get_color(), alpha=0.15, linewidth=0)
                    else:   # one budget: an interval bar instead of a band
                        ax.errorbar(xs_plot, means, yerr=[[means[0] - 100 * bands[0]["low"]], [100 * bands[0]["high"] - means[0]]],
                                    color=line.get_color(), capsize=3, linewidth=1)
            ax.set_xscale("log")
            ax.set_title(f"{lang}{' (low-resource)' if lang in LOW_RESOURCE_LANGS else ''}")
            ax.set_xlabel("bitext pairs (log scale)")
            ax.grid(alpha=0.3)
        row[0].set_ylabel(BY_NAME[metric].short)
    axes[0][-1].legend(fontsize=8, loc="best")
    fig.suptitle("mean over seeds; bands (bars for one budget): 95% interval over seeds and test items "
                 "(t, seeds the unit); methods dodged sideways", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_curve(records, path: Path, headline=HEADLINE) -> None:
    """Headline metrics vs training steps, one panel per metric and language @ budget, a line per method (mean over
    seeds and splits); zero-shot, which does not train, is a dashed level."""
    plt = _pyplot()
    metrics = [k for k in headline if has_metric(records, k)]
    columns, methods = columns_of(records), methods_of(records)
    fig, axes = plt.subplots(len(metrics), len(columns), figsize=(3.6 * len(columns), 3.0 * len(metrics)),
                             sharey="row", squeeze=False)
    for row, metric in zip(axes, metrics):
        for ax, col in zip(row, columns):
            for m in methods:
                by_step = defaultdict(list)
                for r in runs_of(records, m, col):
                    if r.get(metric) is not None:
                        by_step[r.get("steps") or 0].append(r[metric])
                if not by_step:
                    continue
                steps = sorted(by_step)
                means = [100 * np.mean(by_step[s]) for s in steps]
                if m == "zero-shot":
                    ax.axhline(means[0], linestyle="--", color="grey", linewidth=1, label=m)
                else:
                    ax.plot(steps, means, marker="o", label=m)
            ax.set_title(f"{col[0]} @ {col[1]}", fontsize=9)
            ax.set_xlabel("training steps")
            ax.grid(alpha=0.3)
        row[0].set_ylabel(BY_NAME[metric].short)
    axes[0][-1].legend(fontsize=8, loc="best")
    fig.suptitle("learning curves from one run per student (mean over seeds)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_differences(records, to_reference, reference, path: Path, headline=HEADLINE) -> None:
    """OT (and OT+KD) minus the declared reference, per language @ budget, with 95% hierarchical intervals."""
    plt = _pyplot()
    metrics = [k for k in headline if any(m in OT_METHODS for (m, _) in to_reference.get(k, {}))]
    if not metrics:
        return
    columns = columns_of(records)
    fig, axes = plt.subplots(1, len(metrics), figsize=(max(5, 1.1 * len(columns) + 2) * len(metrics), 3.6), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for shift, m in zip((-0.12, 0.12), OT_METHODS):
            cells = [(i, to_reference[metric].get((m, col))) for i, col in enumerate(columns)]
            cells = [(i, d) for i, d in cells if d is not None]
            if not cells:
                continue
            xs = [i + shift for i, _ in cells]
            ys = [100 * d["diff"] for _, d in cells]
            err = [[100 * (d["diff"] - d["low"]) for _, d in cells], [100 * (d["high"] - d["diff"]) for _, d in cells]]
            ax.errorbar(xs, ys, yerr=err, fmt="o", capsize=3, label=f"{m} - {reference}")
        ax.axhline(0, color="grey", linewidth=1)
        ax.set_xticks(range(len(columns)), [f"{lang} @ {b}" for lang, b in columns], rotation=30, ha="right")
        ax.set_xlabel("language @ bitext pairs")
        ax.set_ylabel(f"difference in {metric} (points)")
        ax.set_title(f"{metric}: OT minus {reference} (95% CI, seeds and items)", fontsize=9)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_plan(plan: dict, path: Path) -> None:
    plt = _pyplot()
    from matplotlib import font_manager

    P = np.asarray(plan["plan"])
    rows, cols = plan["target_tokens"], plan["english_tokens"]
    if P.shape != (len(rows), len(cols)):      # truncated inputs: fall back to indices
        rows, cols = [str(i) for i in range(P.shape[0])], [str(j) for j in range(P.shape[1])]
    rows, cols = ([t.replace("\u2581", "_") for t in ts] for ts in (rows, cols))   # SentencePiece's word marker
    fig, ax = plt.subplots(figsize=(2.5 + 0.55 * P.shape[1], 1.5 + 0.45 * P.shape[0]))
    image = ax.imshow(P * P.shape[0], cmap="viridis", vmin=0, vmax=1)   # scaled: each row sums to 1
    ax.set_xticks(range(len(cols)), cols, rotation=60, ha="right")
    families = {f.name for f in font_manager.fontManager.ttflist}
    script_font = {"hi": "Noto Sans Devanagari", "th": "Noto Sans Thai"}.get(plan["lang"], "Noto Sans")
    font = script_font if script_font in families else None   # without it (Debian: fonts-noto-core), boxes
    ax.set_yticks(range(len(rows)), rows, **({"fontname": font} if font else {}))
    ax.set_xlabel("teacher tokens (English)")
    ax.set_ylabel(f"student tokens ({plan['lang']})")
    iters = f", {plan['n_iter']} iterations (the loss's count; this pair alone, float64)" if plan.get("n_iter") else ""
    ax.set_title(f"transport plan, eps={plan['eps']:.3g}{iters}", fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.046, label="P_ij x n (row sums = 1)")
    with warnings.catch_warnings():  # scripts without an installed font show as boxes, not as errors
        warnings.filterwarnings("ignore", message="Glyph .* missing")
        fig.tight_layout()
        fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
