"""Label-free selection of each method's own knob on the dev split's bitext: ``python -m optical_ref select``.

OT gets a fair chance only if its settings are chosen as carefully as KD's, and without test data. For each
method, every candidate value of its knob trains one student (the preset's steps, the whole training
bitext of ``--lang``, seed 0) and is scored by retrieval on the **dev** bitext: MRR@10 of each dev target
sentence (student, query role) retrieving its own English translation among all dev English sentences
(frozen teacher, passage role). No label and no test sentence is read. The same grid size (3) is searched
for every method that has a knob:

==========  ===============================  =================================================
method      knob                             candidates
==========  ===============================  =================================================
``ot``      ``ot_eps`` (x median of C)       0.05, 0.1, 0.2   (``ot+kd`` uses the value chosen here)
``kd-kl``   ``kd_temperature``               1, 2, 4
``kd-mse``  none                             (one run, for reference)
==========  ===============================  =================================================

Writes ``selection.json`` (every score, the chosen values) into ``--out`` and prints the ``--set`` flags.
"""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

GRIDS = {"ot": ("ot_eps", [0.05, 0.1, 0.2]), "kd-kl": ("kd_temperature", [1.0, 2.0, 4.0]), "kd-mse": (None, [None])}


def add_arguments(parser) -> None:
    from .config import PRESETS
    parser.add_argument("--preset", default="pretrained", choices=sorted(PRESETS))
    parser.add_argument("--lang", default="th", help="the target language whose dev bitext scores the candidates")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", default="runs/select", help="output folder (default runs/select)")
    parser.add_argument("--set", dest="settings", action="append", metavar="KEY=VALUE", help="as for compare")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])


def dev_retrieval_mrr(student, teacher_encoder, tokenizer, pairs, device="cpu") -> float:
    from .evaluate import encode_sentences, mrr_at, retrieval_ranks
    queries = encode_sentences(student, tokenizer, [p.target for p in pairs], device)
    pool = encode_sentences(teacher_encoder, tokenizer, [p.en for p in pairs], device)
    return mrr_at(retrieval_ranks(queries, pool))


def run_selection(cfg, lang: str, out: Path, say=print) -> dict:
    from .config import TrainConfig
    from .runstore import open_run_folder
    from .stages import EnglishSideCache, resolve_encoder, stage_setting, stage_teacher, stage_tokenizer, use_all_cores
    from .train import train_student

    tcfg = TrainConfig(**cfg.train)
    out = open_run_folder(out, cfg.as_saved())
    use_all_cores()
    encoder_dir = resolve_encoder(cfg)
    setting = stage_setting(cfg, cfg.split_seeds[0])
    dev_pairs = setting.dev_bitext[lang]
    if not dev_pairs:
        raise ValueError(f"{cfg.dataset} has no parallel dev bitext for {lang}; selection needs one (use --dataset mtop)")
    tokenizer = stage_tokenizer(cfg, setting, encoder_dir, out)
    teacher = stage_teacher(cfg, tcfg, setting, tokenizer, encoder_dir, out, progress_bars=False)
    cache = EnglishSideCache(teacher, tokenizer, cfg.device)
    pairs = setting.bitext[lang]
    scores = {"zero-shot": dev_retrieval_mrr(teacher.student_init, teacher.encoder, tokenizer, dev_pairs, cfg.device)}
    say(f"[select] {lang}: {len(pairs)} training pairs, {len(dev_pairs)} dev pairs; zero-shot dev MRR@10 "
        f"{scores['zero-shot']:.3f}")
    chosen, table = {}, []
    for method, (knob, values) in GRIDS.items():
        best = None
        for value in values:
            settings = dataclasses.replace(tcfg, **({knob: value} if knob else {}))
            t0 = time.time()
            student, _ = train_student(method, teacher.student_init, teacher.head, tokenizer, [p.target for p in pairs],
                                       settings, 0, teacher=cache.outputs_for(pairs))
            mrr = dev_retrieval_mrr(student, teacher.encoder, tokenizer, dev_pairs, cfg.device)
            table.append({"method": method, "knob": knob, "value": value, "dev_mrr10": mrr,
                          "seconds": round(time.time() - t0, 1)})
            say(f"  {method:<7} {knob or '(none)'}={value}: dev MRR@10 {mrr:.4f} ({time.time() - t0:.0f} s)")
            if knob and (best is None or mrr > best[1]):
                best = (value, mrr)
        if knob:
            chosen[knob] = best[0]
    result = {"lang": lang, "split_seed": cfg.split_seeds[0], "encoder": cfg.encoder, "train": cfg.train,
              "zero_shot_dev_mrr10": scores["zero-shot"], "candidates": table, "chosen": chosen,
              "rule": "per method, the candidate with the highest dev-bitext MRR@10 (ties: the first listed)"}
    (out / "selection.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    flags = " ".join(f"--set {k}={v}" for k, v in chosen.items())
    say(f"[select] chosen: {chosen}; use: compare {flags}; written {out / 'selection.json'}")
    return result


def main(args) -> int:
    from .config import make_config, parse_settings

    cfg = make_config(args.preset, langs=[args.lang], data_dir=args.data_dir, device=args.device,
                      train_overrides=parse_settings(args.settings))
    run_selection(cfg, args.lang, Path(args.out))
    return 0
