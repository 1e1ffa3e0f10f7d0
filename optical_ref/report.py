"""The comparison's report, rebuilt from ``results.json`` alone: ``summary.md`` and the PNG plots.

``summary.md``, retrieval first (the research question is about cross-lingual retrieval models):

1. one table per metric (MRR@10, Recall@1, intent accuracy, kNN accuracy, macro-F1, English accuracy), a
   column per language @ bitext budget, each cell mean ± std over training seeds (sample std, ddof = 1; 0 for
   one seed) and, with several split seeds, over every (split, seed) run;
2. paired differences with 95% bootstrap intervals (:mod:`optical_ref.stats`) of every method against the
   best label-free KD method of its column and against ``zero-shot``; significant = the interval excludes 0;
   and the count of columns that ``ot`` and ``ot+kd`` win, tie and lose under that rule;
3. with several split seeds, the training-seed spread next to the split spread.

In the mean tables the best mean among the methods that use no target-language labels is in bold (all of
them when tied); ``target-supervised`` (an upper bound that reads target labels) is listed below a rule.
"""
from __future__ import annotations

import json
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np

from .methods import METHODS as METHOD_ORDER
from .methods import UPPER_BOUND
from .stats import CONFIDENCE, N_BOOTSTRAP, mean_interval, paired_difference, pooled_scores

METRICS = [("mrr10", "MRR@10, retrieval target -> English (student query, frozen teacher on English)"),
           ("recall1", "Recall@1, retrieval target -> English"),
           ("intent_acc", "zero-shot intent accuracy (teacher's head)"),
           ("knn_acc", "kNN intent accuracy (target query -> 5 nearest English training utterances)"),
           ("macro_f1", "macro-F1 of the intent head"),
           ("en_acc", "English intent accuracy of the student (forgetting)")]
DIFF_METRICS = ["mrr10", "recall1", "intent_acc", "knn_acc", "en_acc"]   # macro-F1 is not a mean over items
KD_METHODS = ("kd-mse", "kd-kl")
OT_METHODS = ("ot", "ot+kd")


def mean_std(values):
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def budget_sort_key(budget):
    return (1, 0) if str(budget) == "all" else (0, int(budget))


def lang_order(lang):
    return (lang in ("hi", "th"), lang)


def columns_of(records) -> list:
    langs = sorted({r["lang"] for r in records}, key=lang_order)
    budgets = sorted({str(r["budget"]) for r in records}, key=budget_sort_key)
    return [(lang, b) for lang in langs for b in budgets]


def methods_of(records) -> list:
    return [m for m in METHOD_ORDER if any(r["method"] == m for r in records)]


def runs_of(records, method, column) -> list:
    return [r for r in records if r["method"] == method and (r["lang"], str(r["budget"])) == column]


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
def best_kd(records, metric, column):
    means = {m: mean_std([r.get(metric) for r in runs_of(records, m, column)])[0] for m in KD_METHODS}
    means = {m: v for m, v in means.items() if v is not None}
    return max(means, key=lambda m: (means[m], m == "kd-mse")) if means else None


def differences(records, gold, metric) -> dict:
    """{(method, column, reference): interval dict} for every method against the best KD and zero-shot."""
    out = {}
    methods = methods_of(records)
    for col in columns_of(records):
        pooled = {m: pooled_scores(runs_of(records, m, col), metric, gold) for m in methods}
        kd = best_kd(records, metric, col)
        for reference in ([kd] if kd else []) + (["zero-shot"] if "zero-shot" in methods else []):
            for m in methods:
                if m == reference or not pooled[m] or not pooled[reference]:
                    continue
                result = paired_difference(pooled[m], pooled[reference])
                if result is not None:
                    out[(m, col, "best-kd" if reference == kd else "zero-shot")] = {**result, "reference": reference}
    return out


def format_interval(d) -> str:
    text = f"{100 * d['diff']:+.1f} [{100 * d['low']:+.1f}, {100 * d['high']:+.1f}]"
    return f"**{text}**" if d["significant"] else text


def difference_table(records, diffs, reference) -> str:
    columns = columns_of(records)
    lines = ["| method | " + " | ".join(f"{lang} @ {b}" for lang, b in columns) + " |", "|---" * (len(columns) + 1) + "|"]
    if reference == "best-kd":
        refs = [next((d["reference"] for (m, c, r), d in diffs.items() if c == col and r == reference), "–")
                for col in columns]
        lines.append("| *reference (best KD)* | " + " | ".join(refs) + " |")
    for m in methods_of(records):
        cells = [diffs.get((m, col, reference)) for col in columns]
        if all(c is None for c in cells):
            continue
        lines.append(f"| {m} | " + " | ".join("–" if c is None else format_interval(c) for c in cells) + " |")
    return "\n".join(lines)


def win_tie_loss(records, diffs, method) -> tuple:
    cells = [diffs.get((method, col, "best-kd")) for col in columns_of(records)]
    cells = [c for c in cells if c is not None]
    wins = sum(c["significant"] and c["diff"] > 0 for c in cells)
    losses = sum(c["significant"] and c["diff"] < 0 for c in cells)
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
def write_report(results: dict, out: Path) -> None:
    out = Path(out)
    records, cfg, gold = results["runs"], results["config"], results.get("gold", {})
    seeds = sorted({r["seed"] for r in records})
    splits = sorted({r["split_seed"] for r in records})
    teachers = results.get("teachers") or {"0": results["teacher"]}
    teacher_text = ", ".join(f"split {s}: {100 * t['best_dev_acc']:.1f}%" for s, t in teachers.items())
    settings = cfg.get("settings") or {}
    metrics = [(k, name) for k, name in METRICS if has_metric(records, k)]
    diff_metrics = [k for k in DIFF_METRICS if has_metric(records, k)]
    all_diffs = {k: differences(records, gold, k) for k in diff_metrics}
    parts = [
        f"# OT vs KD: {cfg['dataset']} ({results['setting'].get('source', '')})",
        "",
        f"Preset `{cfg['preset']}`; encoder: {cfg.get('encoder') or 'small BERT from config'}; split seeds {splits}; "
        f"training seeds {seeds}; teacher English dev accuracy {teacher_text}. "
        f"Settings changed with --set: {json.dumps(settings) if settings else 'none'} "
        f"(every training value used is in results.json, config.train).",
        "",
        "**How to read it.** Mean tables: mean ± std over runs (training seeds, and split seeds where several), in %; "
        "bold = best mean among the methods that use no target-language labels. Difference tables: the paired "
        f"difference to a reference method, in points, with its {int(100 * CONFIDENCE)}% percentile-bootstrap interval "
        f"({N_BOOTSTRAP} replicates over test items, resampled jointly for all methods, item scores pooled over "
        "training seeds, each split resampled on its own); **bold** = significant (the interval excludes 0).",
        "",
    ]
    if "ot" in methods_of(records) and diff_metrics:
        parts += ["## Does OT beat the best KD method? (columns won / tied / lost, significant differences only)", "",
                  "| metric | " + " | ".join(m for m in OT_METHODS if m in methods_of(records)) + " |",
                  "|---" * (1 + sum(m in methods_of(records) for m in OT_METHODS)) + "|"]
        for k in diff_metrics:
            cells = [("{} / {} / {}".format(*win_tie_loss(records, all_diffs[k], m))) for m in OT_METHODS
                     if m in methods_of(records)]
            parts.append(f"| {k} | " + " | ".join(cells) + " |")
        parts.append("")
    for k, name in metrics:
        parts += [f"## {name}", "", markdown_table(records, k), ""]
        if k in all_diffs and all_diffs[k]:
            parts += [f"Paired difference to the best KD method of the column ({k}, points):", "",
                      difference_table(records, all_diffs[k], "best-kd"), ""]
            if k in ("mrr10", "intent_acc"):
                parts += [f"Paired difference to zero-shot ({k}, points):", "",
                          difference_table(records, all_diffs[k], "zero-shot"), ""]
    if len(splits) > 1:
        for k in ("mrr10", "intent_acc"):
            if has_metric(records, k):
                parts += [f"## Spread of {k}: training seeds vs re-splits (points, averaged over columns)", "",
                          spread_table(records, k), ""]
    vocab = {s: t.get("vocab_size") for s, t in teachers.items()}
    parts += ["## Tokenizer", "",
              f"Vocabulary size per split: {vocab}. "
              + ("The checkpoint's own tokenizer." if cfg.get("encoder") else
                 "Trained on the English training utterances and the target side of the training bitext of every "
                 "language in the run (all of it, whatever the budget); never on dev or test sentences."), ""]
    (out / "summary.md").write_text("\n".join(parts), encoding="utf-8")
    plot_budgets(records, gold, out / "budget.png")
    if "ot" in methods_of(records) or "ot+kd" in methods_of(records):
        plot_differences(records, all_diffs, out / "differences.png")
    if (out / "plan.json").is_file():
        plot_plan(json.loads((out / "plan.json").read_text(encoding="utf-8")), out / "plan.png")


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_budgets(records, gold, path: Path) -> None:
    """Mean vs bitext budget per language, with 95% bootstrap bands over test items; one row per metric."""
    plt = _pyplot()
    langs = sorted({r["lang"] for r in records}, key=lang_order)
    metrics = [k for k in ("mrr10", "intent_acc") if has_metric(records, k)]
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
                bands = [mean_interval(pooled_scores(by_pairs[x], metric, gold), n_boot=500) for x in xs]
                if all(b is not None for b in bands):
                    if len(xs) > 1:
                        ax.fill_between(xs_plot, [100 * b["low"] for b in bands], [100 * b["high"] for b in bands],
                                        color=line.get_color(), alpha=0.15, linewidth=0)
                    else:   # one budget: an interval bar instead of a band
                        ax.errorbar(xs_plot, means, yerr=[[means[0] - 100 * bands[0]["low"]], [100 * bands[0]["high"] - means[0]]],
                                    color=line.get_color(), capsize=3, linewidth=1)
            ax.set_xscale("log")
            ax.set_title(f"{lang}{' (low-resource)' if lang in ('hi', 'th') else ''}")
            ax.set_xlabel("bitext pairs (log scale)")
            ax.grid(alpha=0.3)
        row[0].set_ylabel({"mrr10": "MRR@10 target -> English (%)", "intent_acc": "intent accuracy (%)"}[metric])
    axes[0][-1].legend(fontsize=8, loc="best")
    fig.suptitle("mean over seeds; bands (bars for one budget): 95% bootstrap interval over test items; "
                 "methods dodged sideways", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_differences(records, all_diffs, path: Path) -> None:
    """OT (and OT+KD) minus the best KD method, per language @ budget, with 95% paired intervals."""
    plt = _pyplot()
    metrics = [k for k in ("mrr10", "intent_acc")
               if any(r == "best-kd" and m in OT_METHODS for (m, _, r) in all_diffs.get(k, {}))]
    if not metrics:
        return   # no KD method to compare OT with
    columns = columns_of(records)
    fig, axes = plt.subplots(1, len(metrics), figsize=(max(5, 1.1 * len(columns) + 2) * len(metrics), 3.6), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for shift, m in zip((-0.12, 0.12), OT_METHODS):
            cells = [(i, all_diffs[metric].get((m, col, "best-kd"))) for i, col in enumerate(columns)]
            cells = [(i, d) for i, d in cells if d is not None]
            if not cells:
                continue
            xs = [i + shift for i, _ in cells]
            ys = [100 * d["diff"] for _, d in cells]
            err = [[100 * (d["diff"] - d["low"]) for _, d in cells], [100 * (d["high"] - d["diff"]) for _, d in cells]]
            ax.errorbar(xs, ys, yerr=err, fmt="o", capsize=3, label=f"{m} - best KD")
        ax.axhline(0, color="grey", linewidth=1)
        ax.set_xticks(range(len(columns)), [f"{lang} @ {b}" for lang, b in columns], rotation=30, ha="right")
        ax.set_xlabel("language @ bitext pairs")
        ax.set_ylabel(f"difference in {metric} (points)")
        ax.set_title(f"{metric}: OT minus the best KD method (95% paired CI)", fontsize=9)
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
    iters = f", {plan['n_iter']} iterations (as in training)" if plan.get("n_iter") else ""
    ax.set_title(f"transport plan, eps={plan['eps']:.3g}{iters}", fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.046, label="P_ij x n (row sums = 1)")
    with warnings.catch_warnings():  # scripts without an installed font show as boxes, not as errors
        warnings.filterwarnings("ignore", message="Glyph .* missing")
        fig.tight_layout()
        fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
