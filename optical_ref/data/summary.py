"""Data summary: where the data was found, what it holds, and whether it is intact.

``python -m optical_ref data-summary [--data-dir D] [--json]`` prints item counts per file and language,
intents per split, the reduced-MTOP split sizes for the default settings, bitext sizes, and sha256
checksums checked against the values in each dataset's SOURCE.md (a mismatch is reported and makes the
command exit with status 1).
"""
from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path

from .mtod import load_conllu, read_lines
from .mtop import load_mtop_json
from .paths import add_data_dir_argument, find_data_dir
from .records import MTOD_LANGS, MTOP_LANGS
from .splits import DEFAULT_MIN_PER_INTENT, reduced_mtop

CHECKSUM_LINE = re.compile(r"^([0-9a-f]{64})\s+(\S+)\s*$")


def add_arguments(parser) -> None:
    add_data_dir_argument(parser)
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--offline", action="store_true", default=None, help="never download data (also: OPTICAL_REF_OFFLINE=1)")


def sha256(path: Path) -> str:
    from .fetch import sha256_of   # one implementation: the fetcher checks downloads with it
    return sha256_of(path)


def expected_checksums(source_md: Path) -> dict:
    """{relative path: sha256} from the checksum lines of a SOURCE.md."""
    if not source_md.is_file():
        return {}
    out = {}
    for line in source_md.read_text(encoding="utf-8").splitlines():
        match = CHECKSUM_LINE.match(line.strip())
        if match:
            out[match.group(2)] = match.group(1)
    return out


def verify_checksums(root: Path) -> list:
    rows = []
    for dataset in ("mtop", "mtod"):
        for rel, expected in expected_checksums(root / dataset / "SOURCE.md").items():
            path = root / dataset / rel
            actual = sha256(path) if path.is_file() else None
            rows.append({"file": f"{dataset}/{rel}", "expected": expected, "actual": actual,
                         "ok": actual == expected})
    return rows


def summarize(data_dir=None) -> dict:
    root = find_data_dir(data_dir)
    summary = {"data_dir": str(root), "mtop": {}, "mtod": {}, "checksums": verify_checksums(root)}
    if (root / "mtop" / "dev.json").is_file():
        for name in ("dev", "test"):
            utts = load_mtop_json(root / "mtop" / f"{name}.json")
            by_lang = Counter(u.lang for u in utts)
            intents = {u.intent for u in utts if u.lang == "en"}
            summary["mtop"][f"{name}.json"] = {"items_per_lang": dict(by_lang), "intents": len(intents)}
        reduced = reduced_mtop(root)
        summary["mtop"]["reduced"] = {
            "settings": {"seed": 0, "min_per_intent": DEFAULT_MIN_PER_INTENT, "fractions": [0.6, 0.1, 0.3]},
            **reduced.sizes(),
            "intents_per_split": {s: len({reduced.items[i]["en"].intent for i in reduced.ids(s)})
                                  for s in ("train", "dev", "test")},
            "bitext_pairs_per_lang": {lang: len(reduced.train_ids) for lang in MTOP_LANGS if lang != "en"},
        }
    if (root / "mtod").is_dir():
        for lang in MTOD_LANGS:
            counts = {}
            for split in ("train", "dev", "test"):
                path = root / "mtod" / lang / f"{split}-{lang}.conllu"
                if path.is_file():
                    utts = load_conllu(path, lang)
                    counts[split] = {"sentences": len(utts), "intents": len({u.intent for u in utts})}
            tsv = root / "mtod" / lang / "train.tsv"
            if tsv.is_file():
                counts["train.tsv lines"] = len(read_lines(tsv))
            summary["mtod"][lang] = counts
    return summary


def print_summary(s: dict) -> None:
    print(f"data directory: {s['data_dir']}")
    if s["mtop"]:
        print("\nMTOP (parallel JSON)")
        print(f"  {'file':<10} {'intents':>7}  " + "  ".join(f"{lang:>5}" for lang in MTOP_LANGS))
        for name in ("dev.json", "test.json"):
            row = s["mtop"][name]
            print(f"  {name:<10} {row['intents']:>7}  " + "  ".join(f"{row['items_per_lang'].get(lang, 0):>5}"
                                                                for lang in MTOP_LANGS))
        r = s["mtop"]["reduced"]
        print(f"\nreduced MTOP (seed 0, min_per_intent {r['settings']['min_per_intent']}, 60/10/30 by id): "
              f"train {r['train']}, dev {r['dev']}, test {r['test']} utterances per language; "
              f"{r['intents']} intents kept ({r['dropped_intents']} rarer intents, {r['dropped_items']} items dropped)")
        print("  intents per split: " + ", ".join(f"{k} {v}" for k, v in r["intents_per_split"].items()))
        print("  bitext (en, L) pairs for distillation: "
              + ", ".join(f"{k} {v}" for k, v in r["bitext_pairs_per_lang"].items()))
    if s["mtod"]:
        print("\nMTOD (CoNLL-U sentences; train.tsv = machine-translated bitext of the English train set)")
        for lang, counts in s["mtod"].items():
            parts = [f"{split} {c['sentences']} ({c['intents']} intents)" for split, c in counts.items()
                     if isinstance(c, dict)]
            print(f"  {lang}: " + ", ".join(parts) + f", train.tsv {counts.get('train.tsv lines', 0)} lines")
    bad = [c for c in s["checksums"] if not c["ok"]]
    print(f"\nchecksums (sha256 vs SOURCE.md): {len(s['checksums']) - len(bad)} of {len(s['checksums'])} match")
    for c in bad:
        print(f"  MISMATCH {c['file']}: expected {c['expected']}, got {c['actual'] or 'missing file'}")


def main(args) -> int:
    from .fetch import ensure_available
    if args.data_dir is None:   # with no copy anywhere, fetch the datasets once (unless offline)
        for dataset in ("mtop", "mtod"):
            ensure_available(dataset, None, offline=args.offline, progress=lambda m: print(m, file=sys.stderr))
    s = summarize(args.data_dir)
    if args.json:
        print(json.dumps(s, indent=2))
    else:
        print_summary(s)
    return 0 if all(c["ok"] for c in s["checksums"]) else 1
