"""The comparison's stages, shared by ``compare``, ``select`` and ``distil``: each is a short function of what it
needs, with the frozen teacher's English side computed once.

=========================  ==========================================  =====================================
stage                      what it does                                uses
=========================  ==========================================  =====================================
encoder                    None (small BERT) or a checkpoint folder    ``pretrained.py`` (e5-small, once)
setting                    which sentences train, distil, test         ``data/settings.py``
tokenizer                  trained on English train + bitext (no test)  ``text.py`` (or the checkpoint's)
teacher                    English intents, then frozen; cached        ``train.py``, ``encoder.py``, ``runstore.py``
English side               the frozen teacher's outputs, once each     ``train.teacher_outputs``
student                    one per method x language x budget x seed   ``train.py``, ``losses.py``
=========================  ==========================================  =====================================
"""
from __future__ import annotations

import dataclasses
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path


def say(message: str) -> None:
    print(message, flush=True)


def use_all_cores() -> None:
    """torch's intra-op threads: at most the machine's cores (the default can exceed them in containers)."""
    import torch
    torch.set_num_threads(min(torch.get_num_threads(), os.cpu_count() or 1))


# ---- stage: the encoder --------------------------------------------------------------------------------
def resolve_encoder(cfg):
    """None for the small encoder built from config; else the checkpoint folder (e5-small is prepared once)."""
    if cfg.encoder is None:
        return None
    from ..pretrained import KNOWN_ENCODERS, prepare
    if cfg.encoder in KNOWN_ENCODERS:
        return prepare(cfg.encoder, progress=say)
    return Path(cfg.encoder)


# ---- stage: the setting ----------------------------------------------------------------------------
def stage_setting(cfg, split_seed: int):
    from ..data import find_data_dir
    from ..data.settings import load_setting, resolve_budget

    say(f"[setting] {cfg.dataset}, target languages {', '.join(cfg.langs)}, split seed {split_seed}")
    setting = load_setting(cfg.dataset, find_data_dir(cfg.data_dir, cfg.dataset), cfg.langs, split_seed)
    for lang in cfg.langs:  # every budget is checked before any training starts
        for budget in cfg.budgets:
            resolve_budget(budget, len(setting.bitext[lang]), lang)
    say(f"          {setting.description}")
    return setting


# ---- stage: the tokenizer ----------------------------------------------------------------------------
def stage_tokenizer(cfg, setting, encoder_dir, out: Path):
    """The checkpoint's own tokenizer, or ours trained on the English training sentences and the target side
    of the training bitext of every language in the run (never a test or dev sentence)."""
    from ..text import load_tokenizer, train_tokenizer

    if encoder_dir is not None:
        return load_tokenizer(encoder_dir)
    folder = teacher_dir(out, setting.split_seed)
    if (folder / "tokenizer.json").is_file():
        try:
            return load_tokenizer(folder)
        except Exception as err:   # an empty or truncated file: name it and say how to recover
            from .runstore import RunFolderError
            raise RunFolderError(f"{folder / 'tokenizer.json'}: cannot load the tokenizer ({type(err).__name__}: "
                                 f"{str(err).splitlines()[0][:150] if str(err) else ''}); delete {folder} to train the "
                                 "teacher and its tokenizer again") from None
    texts = [u.text for u in setting.en_train] + [p.target for lang in cfg.langs for p in setting.bitext[lang]]
    return train_tokenizer(texts)


# ---- stage: the teacher ------------------------------------------------------------------------------
@dataclass
class Teacher:
    encoder: object      # English role (passage prefix for e5), frozen: the documents (kNN pool, retrieval pools)
    student_init: object  # the same weights in the student role (query prefix for e5): where every student starts
    head: object
    summary: dict
    english: object = None   # what the students learn from on the English side: the query role of a retrieval
                             # teacher (only the query encoder is distilled), else ``encoder``

    def __post_init__(self):
        if self.english is None:
            self.english = self.encoder


def teacher_dir(out: Path, split_seed: int) -> Path:
    return Path(out) / "teacher" / f"split-{split_seed}"


def teacher_fingerprint(cfg, tcfg, split_seed: int, data_sha256: str | None = None) -> dict:
    """What the teacher depends on; a cached teacher with another fingerprint is never reused."""
    keys = ("batch_size", "lr", "teacher_lr", "head_lr", "weight_decay", "teacher_epochs", "teacher_train", "freeze",
            "max_length")
    if tcfg.teacher_train == "retrieval":   # (added only here: the fingerprints of other teachers stay as they were)
        keys += ("teacher_scorer", "proj_dim", "retrieval_epochs", "retrieval_temperature", "ot_layer")
    return {"dataset": cfg.dataset, "split_seed": split_seed, "encoder": cfg.encoder, "data_sha256": data_sha256,
            "tokenizer_langs": None if cfg.encoder else sorted(cfg.langs),
            **{k: getattr(tcfg, k) for k in keys}}


def stage_teacher(cfg, tcfg, setting, tokenizer, encoder_dir, out, progress_bars) -> Teacher:
    import torch

    from ..encoder import IntentHead, build_encoder, load_pretrained_encoder
    from .runstore import RunFolderError, read_json, save_torch, write_json

    folder = teacher_dir(out, setting.split_seed)
    if encoder_dir is None:
        encoder = build_encoder(len(tokenizer), seed=0, max_length=tcfg.max_length, layer=tcfg.ot_layer)
    else:
        encoder = load_pretrained_encoder(encoder_dir, max_length=tcfg.max_length, layer=tcfg.ot_layer)
        torch.manual_seed(0)      # the head's initialisation must not depend on what loading consumed
    if tcfg.teacher_train == "retrieval":
        encoder.add_projection(tcfg.proj_dim, seed=0)
    encoder = encoder.to(cfg.device)
    head = IntentHead(encoder.dim, len(setting.intents)).to(cfg.device)
    fingerprint = teacher_fingerprint(cfg, tcfg, setting.split_seed, setting.description.get("data_sha256"))
    recover = f"delete {folder} to train the teacher again"
    if (folder / "teacher.json").is_file():
        summary = read_json(folder / "teacher.json", "teacher summary", recover)
        if not isinstance(summary, dict) or not isinstance(summary.get("best_dev_acc"), (int, float)):
            raise RunFolderError(f"{folder / 'teacher.json'} is not a teacher summary (no best_dev_acc); {recover}")
        if summary.get("fingerprint") != fingerprint:
            raise RunFolderError(f"{folder} holds a teacher trained with other settings; {recover}, or choose another --out")
        try:
            state = torch.load(folder / "weights.pt", map_location=cfg.device, weights_only=True)
            load_teacher_state(encoder, head, state, tcfg)
        except Exception as err:  # a truncated, foreign or partial file: say which and how to recover
            raise RunFolderError(f"{folder / 'weights.pt'}: cannot load the teacher ({type(err).__name__}: "
                                 f"{str(err).splitlines()[0][:200]}); {recover}") from None
        say(f"[teacher] reusing {folder} (English dev accuracy {summary['best_dev_acc']:.3f})")
    else:
        summary = train_teacher_stage(tcfg, setting, tokenizer, encoder, head, progress_bars)
        summary["fingerprint"] = fingerprint
        summary["vocab_size"] = len(tokenizer)
        folder.mkdir(parents=True, exist_ok=True)
        if encoder_dir is None:
            tokenizer.save_pretrained(str(folder))
        save_torch(folder / "weights.pt", {"encoder": trained_state(encoder, tcfg), "head": head.state_dict()})
        write_json(folder / "teacher.json", summary)     # last: its presence means the teacher is complete
    encoder.eval()
    for p in encoder.parameters():
        p.requires_grad_(False)
    english = encoder.in_role("query") if tcfg.teacher_train == "retrieval" else None
    return Teacher(encoder.in_role("passage"), encoder.in_role("query"), head, summary, english)


def load_teacher_state(encoder, head, state, tcfg) -> None:
    """Strict loading: every trained key must be there (only the frozen word embeddings may be left out, as
    :func:`trained_state` leaves them out), and no key may be foreign."""
    missing, unexpected = encoder.load_state_dict(state["encoder"], strict=False)
    allowed = {k for k in missing if "word_embeddings" in k} if tcfg.freeze == "embeddings" else set()
    if set(missing) - allowed or unexpected:
        raise KeyError(f"encoder weights do not match: missing {sorted(set(missing) - allowed)[:3]}, "
                       f"unexpected {sorted(unexpected)[:3]}")
    head.load_state_dict(state["head"])


def trained_state(encoder, tcfg) -> dict:
    """The teacher's weights, without the frozen word embeddings (they are the checkpoint's)."""
    state = encoder.state_dict()
    if tcfg.freeze == "embeddings":
        state = {k: v for k, v in state.items() if "word_embeddings" not in k}
    return state


def train_teacher_stage(tcfg, setting, tokenizer, encoder, head, progress_bars) -> dict:
    from tqdm import tqdm

    from ..train import train_teacher

    t0 = time.time()
    retrieval = tcfg.teacher_train == "retrieval"    # its bar counts the retrieval epochs (the probe takes seconds)
    bar = tqdm(total=tcfg.retrieval_epochs if retrieval else tcfg.teacher_epochs, desc="teacher", unit="epoch",
               disable=None if progress_bars else True, file=sys.stdout)
    shown = "dev_ir_acc" if retrieval else "dev_acc"
    english = encoder.in_role("passage")
    summary = train_teacher(english, head, tokenizer, [u.text for u in setting.en_train], setting.labels(setting.en_train),
                            [u.text for u in setting.en_dev], setting.labels(setting.en_dev), tcfg, seed=0,
                            progress=lambda e, n, h: (bar.update(1), bar.set_postfix({shown: f"{h[shown]:.3f}"})))
    bar.close()
    summary["train_seconds"] = round(time.time() - t0, 1)
    say(f"[teacher] English dev accuracy {summary['best_dev_acc']:.3f} in {summary['train_seconds']:.0f} s "
        f"(vocabulary {len(tokenizer)})")
    if retrieval:
        found = summary["retrieval"]
        say(f"[teacher] a retrieval model: English dev intent-by-retrieval accuracy {found['start_dev_ir_acc']:.3f} "
            f"before, {found['best_dev_ir_acc']:.3f} after ({tcfg.teacher_scorer} scorer, {tcfg.proj_dim} dimensions)")
    return summary


class EnglishSideCache:
    """The frozen teacher's outputs on English sentences, computed once per sentence and reused by every run."""

    def __init__(self, teacher: Teacher, tokenizer, device):
        self.teacher, self.tokenizer, self.device = teacher, tokenizer, device
        self.rows = {"english": {}, "docs": {}}

    def outputs_for(self, pairs, docs: bool = False):
        """The teacher's outputs on the English side of ``pairs`` (with ``docs``: also as documents, kd-score's)."""
        outputs = self._rows(pairs, "english", self.teacher.english)
        if docs:
            outputs.docs = self._rows(pairs, "docs", self.teacher.encoder)
        return outputs

    def _rows(self, pairs, which, encoder):
        import torch

        from ..train import TeacherOutputs, teacher_outputs

        rows = self.rows[which]
        missing = sorted({p.en for p in pairs} - set(rows))
        if missing:
            outputs = teacher_outputs(encoder, self.teacher.head, self.tokenizer, missing, self.device)
            for k, text in enumerate(missing):
                rows[text] = (outputs.tokens[k], outputs.sentence[k], outputs.logits[k])
        chosen = [rows[p.en] for p in pairs]
        return TeacherOutputs([r[0] for r in chosen], torch.stack([r[1] for r in chosen]),
                              torch.stack([r[2] for r in chosen]))


# ---- stage: one run (a student, evaluated at each of its steps) ----------------------------------------------
def stage_student(job, setting, teacher: Teacher, tokenizer, cache, tcfg, progress_bars, counter, *,
                  frozen_prefix=None, evaluate_at=None):
    """Train the student of one run. ``evaluate_at(step, student, stats)`` is called at each of ``job["steps"]``
    (a learning curve from one run); returns the last (student, training statistics)."""
    from tqdm import tqdm

    from ..train import train_student

    method, lang = job["method"], job["lang"]
    chosen, pairs = setting.budget_pairs(lang, job["budget"], job["seed"])
    stats = {"n_pairs": len(pairs), "train_seconds": 0.0, "ms_per_step": None, "steps": 0}
    if method == "zero-shot":
        if evaluate_at:
            evaluate_at(0, teacher.student_init, stats)
        return teacher.student_init, stats
    steps = sorted(job.get("steps") or [tcfg.student_steps])
    run_cfg = dataclasses.replace(tcfg, student_steps=max(steps))
    desc = f"{counter} {method:<17} {lang} budget={job['budget']} seed={job['seed']}"
    bar = tqdm(total=run_cfg.student_steps, desc=desc, unit="step", leave=False,
               disable=None if progress_bars else True, file=sys.stdout)
    clock = {"start": time.time(), "paused": 0.0}

    def statistics(n_steps):
        seconds = time.time() - clock["start"] - clock["paused"]
        return {**stats, "train_seconds": round(seconds, 3), "steps": n_steps,
                "ms_per_step": round(1000 * seconds / n_steps, 3) if n_steps else None}

    def on_eval(step, student, losses):
        t0 = time.time()
        if evaluate_at:
            evaluate_at(step, student, statistics(step))
        clock["paused"] += time.time() - t0          # evaluation time is not training time

    common = dict(progress=lambda *_: bar.update(1), frozen_prefix=frozen_prefix, eval_steps=steps, on_eval=on_eval)
    if method == "target-supervised":
        labelled = setting.supervised_subset(lang, chosen, job["seed"])
        student, losses = train_student(method, teacher.student_init, teacher.head, tokenizer, [u.text for u in labelled],
                                        run_cfg, job["seed"], target_labels=setting.labels(labelled), **common)
    else:
        student, losses = train_student(method, teacher.student_init, teacher.head, tokenizer, [p.target for p in pairs],
                                        run_cfg, job["seed"], teacher=cache.outputs_for(pairs, method == "kd-score"),
                                        **common)
    bar.close()
    return student, statistics(len(losses))


@dataclass
class SplitContext:
    """Everything the runs of one split share: built once per process (the main one, or each worker)."""
    cfg: object
    tcfg: object
    setting: object
    tokenizer: object
    teacher: Teacher
    evaluator: object
    cache: EnglishSideCache
    frozen_prefix: object
    out: Path
    zero_shot: dict
    save_students: bool = False   # keep each run's final student as a checkpoint folder under out/students/


def prepare_split(cfg, tcfg, split_seed, encoder_dir, out, progress_bars=False, setting=None,
                  save_students=False) -> SplitContext:
    """The setting (loaded unless given), tokenizer, (cached) teacher, evaluator and caches of one split."""
    from ..config import frozen_layers
    from ..encoder import FrozenPrefix
    from ..evaluate import Evaluator

    setting = setting or stage_setting(cfg, split_seed)
    tokenizer = stage_tokenizer(cfg, setting, encoder_dir, out)
    teacher = stage_teacher(cfg, tcfg, setting, tokenizer, encoder_dir, out, progress_bars)
    evaluator = Evaluator(teacher.encoder, teacher.head, tokenizer, setting, cfg.device, tcfg)
    k = frozen_layers(tcfg.freeze)
    prefix = FrozenPrefix(teacher.student_init, tokenizer, k, cfg.device) if k >= 1 else None
    return SplitContext(cfg, tcfg, setting, tokenizer, teacher, evaluator,
                        EnglishSideCache(teacher, tokenizer, cfg.device), prefix, Path(out), {}, save_students)


def run_one(ctx: SplitContext, job, progress_bars=False, counter="") -> list:
    """Train and evaluate one run; returns its records, one per evaluated step (``job["steps"]``), or failed records
    (a diverged loss, non-finite embeddings: never scored) with the reason."""
    from ..evaluate import NonFiniteEmbeddings
    from .report import example_plan_lang, example_plan_method, save_example_plan
    from ..train import TrainingDiverged

    cfg, records = ctx.cfg, []
    base = {k: job[k] for k in ("method", "lang", "budget", "seed", "split_seed")}

    def evaluate_at(step, student, stats):
        if job["method"] == "zero-shot":   # the same model for every budget and seed: evaluated once
            key = ("zero-shot", job["lang"])
            ctx.zero_shot[key] = ctx.zero_shot.get(key) or ctx.evaluator.evaluate(student, job["lang"])
            evaluation = ctx.zero_shot[key]
        else:
            evaluation = ctx.evaluator.evaluate(student, job["lang"])
        records.append({**base, "dataset": cfg.dataset, **stats, **evaluation})

    from ..config import TrainConfig
    tcfg = TrainConfig(**cfg.train_for(job["method"], job["budget"]))   # the method's own lr, steps and knob, if any
    try:
        student, _ = stage_student(job, ctx.setting, ctx.teacher, ctx.tokenizer, ctx.cache, tcfg, progress_bars,
                                   counter, frozen_prefix=ctx.frozen_prefix, evaluate_at=evaluate_at)
    except (TrainingDiverged, NonFiniteEmbeddings) as err:
        done = {r["steps"] for r in records}
        return records + [{**base, "dataset": cfg.dataset, "steps": s, "failed": str(err)}
                          for s in job["steps"] if s not in done]
    if ctx.save_students and job["method"] != "zero-shot" and records:
        save_run_student(ctx, job, student, records[-1], tcfg)
    plan_run = (example_plan_method(cfg.methods), example_plan_lang(cfg.langs), cfg.split_seeds[0], cfg.budgets[0],
                cfg.seeds[0])
    plan = ctx.out / "plan.json"
    if (job["method"], job["lang"], job["split_seed"], job["budget"], job["seed"]) == plan_run and not plan.is_file():
        save_example_plan(student, ctx.teacher.english, ctx.tokenizer, ctx.setting, job["lang"], tcfg, plan)
    return records


def save_run_student(ctx: SplitContext, job, student, record, tcfg) -> Path:
    """The final student of a run as a standard checkpoint folder (:mod:`optical_ref.experiment.checkpoint`)."""
    from .checkpoint import save_student
    from ..metrics import NAMES

    name = f"{job['method']}-{job['lang']}-{job['budget']}-seed{job['seed']}-split{job['split_seed']}-steps{record['steps']}"
    student.frozen_prefix = None
    info = {"base_model": ctx.cfg.encoder or "small BERT from config (trained by compare)", "method": job["method"],
            "method_description": f"compare run {name}", "bitext": f"{ctx.cfg.dataset} training bitext",
            "lang": job["lang"], "n_train": record.get("n_pairs"), "settings": tcfg.as_dict(),
            "test_metrics": {k: record.get(k) for k in NAMES}}
    return save_student(student, ctx.tokenizer, ctx.out / "students" / name, info, force=True)


def describe(record) -> str:
    """One line per finished record, for the progress log."""
    head = (f"{record['method']:<17} {record['lang']} budget={record['budget']} seed={record['seed']} "
            f"steps={record['steps']}")
    if record.get("failed"):
        return f"{head}: FAILED, not scored: {record['failed']}"
    return (f"{head}: intent_acc {record['intent_acc']:.3f}  knn_acc {record['knn_acc']:.3f}"
            + (f"  mrr10 {record['mrr10']:.3f}  late_mrr10 {record['late_mrr10']:.3f}" if record["mrr10"] is not None
               else "") + (f"  ir_acc {record['ir_acc']:.3f}" if record.get("ir_acc") is not None else "")
            + f"  ({record['train_seconds']:.1f} s)")
