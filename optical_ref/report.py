"""The comparison's report, rebuilt from the run records alone: ``summary.md`` and the PNG plots.

Tables show mean ± standard deviation over training seeds (sample std, ddof = 1; 0 for a single seed).
In each column the best mean among the methods that use no target-language labels is in bold (all of
them when tied);
``target-supervised`` (an upper bound that reads target labels) is listed below a rule and never marked.
"""
from __future__ import annotations

import json
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np

from .methods import METHODS as METHOD_ORDER
from .methods import UPPER_BOUND

METRICS = [("intent_acc", "intent accuracy (teacher's head)"), ("macro_f1", "macro-F1"),
           ("knn_acc", "kNN intent accuracy (retrieval, k=5)"), ("mrr10", "MRR@10 (target -> English)"),
           ("recall1", "Recall@1"), ("en_acc", "English accuracy (forgetting)")]



def mean_std(values):
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def budget_sort_key(budget):
    return (1, 0) if budget == "all" else (0, int(budget))


def group(records, metric):
    """{(method, lang, budget): [values over seeds]}"""
    table = defaultdict(list)
    for r in records:
        table[(r["method"], r["lang"], str(r["budget"]))].append(r.get(metric))
    return table


def markdown_table(records, metric) -> str:
    methods = [m for m in METHOD_ORDER if any(r["method"] == m for r in records)]
    langs = sorted({r["lang"] for r in records}, key=lambda l: (l in ("hi", "th"), l))
    budgets = sorted({str(r["budget"]) for r in records}, key=budget_sort_key)
    columns = [(lang, b) for lang in langs for b in budgets]
    cells = group(records, metric)
    stats = {key: mean_std(values) for key, values in cells.items()}
    header = "| method | " + " | ".join(f"{lang} @ {b}" for lang, b in columns) + " |"
    lines = [header, "|---" * (len(columns) + 1) + "|"]
    best = {}  # column -> the methods with the best mean (all of them when tied)
    for col in columns:
        means = {m: stats[(m, *col)][0] for m in methods if m != UPPER_BOUND and (m, *col) in stats}
        means = {m: v for m, v in means.items() if v is not None}
        if means:
            top = max(means.values())
            best[col] = {m for m, v in means.items() if abs(v - top) < 1e-12}
    for m in methods:
        if m == UPPER_BOUND:
            lines.append("| *labels used:* |" + " |" * len(columns))
        row = []
        for col in columns:
            mean, std = stats.get((m, *col), (None, None))
            if mean is None:
                row.append("–")
                continue
            text = f"{100 * mean:.1f} ± {100 * std:.1f}"
            row.append(f"**{text}**" if m in best.get(col, ()) else text)
        lines.append(f"| {m} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def overall_table(records) -> str:
    methods = [m for m in METHOD_ORDER if any(r["method"] == m for r in records)]
    lines = ["| method | " + " | ".join(name for _, name in METRICS) + " | ms/step |", "|---" * (len(METRICS) + 2) + "|"]
    for m in methods:
        rows = [r for r in records if r["method"] == m]
        cells = []
        for key, _ in METRICS:
            mean, std = mean_std([r.get(key) for r in rows])
            cells.append("–" if mean is None else f"{100 * mean:.1f}")
        ms, _ = mean_std([r.get("ms_per_step") for r in rows])
        cells.append("–" if ms is None else f"{ms:.0f}")
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_report(results: dict, out: Path) -> None:
    out = Path(out)
    records = results["runs"]
    cfg = results["config"]
    seeds = sorted({r["seed"] for r in records})
    parts = [
        f"# OT vs KD: {cfg['dataset']} ({results['setting'].get('source', '')})",
        "",
        f"Preset `{cfg['preset']}`, split seed {cfg['split_seed']}, training seeds {seeds}; teacher English dev "
        f"accuracy {100 * results['teacher']['best_dev_acc']:.1f}%. Cells: mean ± std over seeds, in %. "
        "Bold: the best method in the column among those that use no target-language labels (all, when tied).",
        "",
        "## Zero-shot intent accuracy on the target-language test set (column: language @ bitext pairs)",
        "",
        markdown_table(records, "intent_acc"),
        "",
        "## kNN intent accuracy (target query -> 5 nearest English training utterances)",
        "",
        markdown_table(records, "knn_acc"),
        "",
        "## All metrics, averaged over languages, budgets and seeds",
        "",
        overall_table(records),
        "",
    ]
    (out / "summary.md").write_text("\n".join(parts), encoding="utf-8")
    plot_budgets(records, out / "budget.png")
    if (out / "plan.json").is_file():
        plot_plan(json.loads((out / "plan.json").read_text(encoding="utf-8")), out / "plan.png")


def plot_budgets(records, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    langs = sorted({r["lang"] for r in records}, key=lambda l: (l in ("hi", "th"), l))
    methods = [m for m in METHOD_ORDER if any(r["method"] == m for r in records)]
    fig, axes = plt.subplots(1, len(langs), figsize=(4.2 * len(langs), 3.6), sharey=True, squeeze=False)
    for ax, lang in zip(axes[0], langs):
        for m in methods:
            rows = [r for r in records if r["method"] == m and r["lang"] == lang]
            by_pairs = defaultdict(list)
            for r in rows:
                by_pairs[r["n_pairs"]].append(r["intent_acc"])
            xs = sorted(by_pairs)
            if not xs:
                continue
            means = [100 * np.mean(by_pairs[x]) for x in xs]
            stds = [100 * (np.std(by_pairs[x], ddof=1) if len(by_pairs[x]) > 1 else 0.0) for x in xs]
            style = "--" if m in ("zero-shot", UPPER_BOUND) else "-"
            ax.errorbar(xs, means, yerr=stds, label=m, linestyle=style, marker="o", capsize=3)
        ax.set_xscale("log")
        ax.set_title(f"{lang}{' (low-resource)' if lang in ('hi', 'th') else ''}")
        ax.set_xlabel("bitext pairs (log scale)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("zero-shot intent accuracy (%)")
    axes[0][-1].legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_plan(plan: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import font_manager

    P = np.asarray(plan["plan"])
    rows, cols = plan["target_tokens"], plan["english_tokens"]
    if P.shape != (len(rows), len(cols)):      # truncated inputs: fall back to indices
        rows, cols = [str(i) for i in range(P.shape[0])], [str(j) for j in range(P.shape[1])]
    fig, ax = plt.subplots(figsize=(2.5 + 0.55 * P.shape[1], 1.5 + 0.45 * P.shape[0]))
    image = ax.imshow(P * P.shape[0], cmap="viridis", vmin=0, vmax=1)   # scaled: each row sums to 1
    ax.set_xticks(range(len(cols)), cols, rotation=60, ha="right")
    families = [f.name for f in font_manager.fontManager.ttflist]
    font = next((f for f in ("Noto Sans Thai", "Noto Sans Devanagari", "Noto Sans") if f in families), None)
    ax.set_yticks(range(len(rows)), rows, **({"fontname": font} if font else {}))
    ax.set_xlabel("teacher tokens (English)")
    ax.set_ylabel(f"student tokens ({plan['lang']})")
    ax.set_title(f"transport plan, eps={plan['eps']} (rows scaled to sum to 1)", fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.046)
    with warnings.catch_warnings():  # scripts without an installed font show as boxes, not as errors
        warnings.filterwarnings("ignore", message="Glyph .* missing")
        fig.tight_layout()
        fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
