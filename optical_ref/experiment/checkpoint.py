"""A distilled student saved as a standard checkpoint that the usual libraries load.

The folder holds what ``transformers`` needs (``config.json``, ``model.safetensors``, the tokenizer files), what
``sentence-transformers`` needs (``modules.json``, ``sentence_bert_config.json``, ``1_Pooling/config.json`` with
mean pooling over the attention mask — the project's pooling — and ``config_sentence_transformers.json`` with
the role prefixes as prompts, "query" the default, since a student is a query encoder), ``optical_ref.json``
(the prefixes, read back by ``--encoder DIR``, and what was done, as data) and a ``README.md`` model card.

It is written into a temporary folder beside the target and renamed into place: a failed or interrupted save
leaves no half-written folder, and an existing folder is replaced only when the caller allows it.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path

from .. import __version__
from ..files import replace_folder


MARKER = "optical_ref.json"   # written last, with the list of every file the save wrote: what marks a folder as ours


def check_out(out, force: bool) -> Path:
    """``out`` resolved, checked before any work: a folder can be made there, and an existing non-empty one is
    replaced only with ``force`` and only if this project wrote it and it holds nothing else (:func:`owned_by_us`)."""
    out = Path(out).resolve()
    if out == Path.cwd() or out in Path.cwd().parents or out.parent == out:
        raise ValueError(f"--out {out}: this is the folder you are working in (or above it); choose a new folder name")
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out}: this is a file, not a folder; choose a folder name")
    existing = next(p for p in out.parents if p.exists())      # the filesystem root always exists
    if not existing.is_dir():
        raise ValueError(f"--out {out}: {existing} is a file, so no folder can be made under it; choose another --out")
    if not os.access(existing, os.W_OK):
        raise ValueError(f"--out {out}: {existing} cannot be written to; choose another --out")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise ValueError(f"--out {out}: the folder exists and is not empty; choose another --out, or pass --force "
                             "to replace a student saved there by distil once the new model is complete")
        foreign = owned_by_us(out)
        if foreign:
            raise ValueError(f"--out {out}: --force replaces only a folder distil wrote, and this one {foreign}; "
                             "nothing was changed: choose another --out")
    return out


def owned_by_us(folder: Path) -> str | None:
    """None if ``folder`` is a checkpoint this module saved, holding only the files it wrote; else why not."""
    try:
        info = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return f"has no readable {MARKER} of a saved student"
    files = info.get("files") if isinstance(info, dict) else None
    if not isinstance(files, list):
        return f"has a {MARKER} without the list of files a save wrote"
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if not p.is_dir()}
    other = sorted(present - set(files))
    return f"also holds files distil did not write ({', '.join(other[:3])})" if other else None


class OutLock:
    """An exclusive lock on the name ``out`` (``.NAME.lock`` beside it, removed at the end) for the length of a
    distil: a second distil to the same folder is refused at once. Holding it, the temporary folders a killed save
    left beside ``out`` (``.NAME.tmp-*``, ``.NAME.old-*``) are no live run's, and are removed."""

    def __init__(self, out):
        self.out = Path(out)
        self.path = self.out.parent / f".{self.out.name}.lock"
        self.handle = None

    def __enter__(self):
        import fcntl
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.handle = open(self.path, "a")
        try:
            fcntl.flock(self.handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            # the holder before us removes the file as it ends: a lock on that removed file locks nothing
            if not self.path.exists() or os.stat(self.path).st_ino != os.fstat(self.handle.fileno()).st_ino:
                raise BlockingIOError
        except BlockingIOError:
            self.handle.close()
            raise ValueError(f"--out {self.out}: another distil is writing this folder now (it holds {self.path}); "
                             "wait for it, or choose another --out") from None
        for kind in ("tmp", "old"):
            for stale in self.out.parent.glob(f".{glob_escape(self.out.name)}.{kind}-*"):
                shutil.rmtree(stale, ignore_errors=True)
        return self

    def __exit__(self, *exc):
        self.path.unlink(missing_ok=True)       # still held: no one else can be using it
        self.handle.close()                     # closing releases the lock
        return False


def glob_escape(name: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", name)


def save_student(student, tokenizer, out, info: dict, force: bool = False) -> Path:
    """Write ``student`` (an :class:`optical_ref.encoder.Encoder` in its query role) as a checkpoint folder."""
    out = check_out(out, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    try:
        write_checkpoint(student, tokenizer, tmp, info)
        replace_folder(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def write_checkpoint(student, tokenizer, folder: Path, info: dict) -> None:
    folder = Path(folder)
    student.model.save_pretrained(str(folder), state_dict=state_with_pooler(student.model), safe_serialization=True)
    tokenizer.save_pretrained(str(folder))
    prefixes = dict(student.prefixes)
    write_sentence_transformers_files(student, folder, prefixes)
    (folder / "README.md").write_text(model_card(info), encoding="utf-8")
    # last, so that a folder with this file is complete; "files" is what --force may later replace
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if not p.is_dir())
    (folder / MARKER).write_text(json.dumps({"prefixes": prefixes, **info, "optical_ref": __version__,
                                             "files": sorted(files + [MARKER])},
                                            indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def state_with_pooler(model) -> dict:
    """The weights to save. ``AutoModel`` builds a BERT with its pooler (the [CLS] dense layer, unused here), so a
    checkpoint without one loads with "newly initialized: pooler.dense" warnings; an identity pooler is saved
    instead, and every library loads the folder silently."""
    import torch

    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    if getattr(model, "pooler", "absent") is None and "pooler.dense.weight" not in state:
        dim = model.config.hidden_size
        state["pooler.dense.weight"] = torch.eye(dim)
        state["pooler.dense.bias"] = torch.zeros(dim)
    return state


def write_sentence_transformers_files(student, folder: Path, prefixes: dict) -> None:
    """modules.json, the pooling and the prompts: what sentence-transformers reads."""
    (folder / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}], indent=2))
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": student.max_length,
                                                                  "do_lower_case": False}, indent=2))
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({
        "word_embedding_dimension": student.dim, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True,
        "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False,
        "pooling_mode_weightedmean_tokens": False, "pooling_mode_lasttoken": False, "include_prompt": True},
        indent=2))
    (folder / "config_sentence_transformers.json").write_text(json.dumps({
        "prompts": prefixes, "default_prompt_name": None,   # as e5's own: a default prompt warns on every load
        "similarity_fn_name": "cosine", "__version__": {"optical_ref": __version__}}, indent=2))


def model_card(info: dict) -> str:
    scores = info.get("held_out", {})
    rows = "\n".join(f"| {name} | {100 * before:.1f} | {100 * scores.get('after', {}).get(name, float('nan')):.1f} |"
                     for name, before in scores.get("before", {}).items())
    settings = info.get("settings", {})
    return f"""---
library_name: sentence-transformers
base_model: {info.get('base_model', '')}
tags: [sentence-transformers, cross-lingual, distillation, optical-ref]
---
# {info.get('method', '')} student of {info.get('base_model', '')}

A query encoder for **{info.get('lang', 'target')}** -> English retrieval, distilled by optical-ref {__version__}
(`python -m optical_ref distil`) from the base model (the frozen English-side teacher, in its "passage" role)
on {info.get('n_train', '?')} sentence pairs of `{info.get('bitext', '')}`, method `{info.get('method', '')}`
({info.get('method_description', '')}).

Encode queries with the prefix `{info.get('prefixes', {}).get('query', '')}` (in sentence-transformers:
`model.encode(texts, prompt_name="query")`) and English documents with the base model and its passage prefix; mean pooling, cosine similarity.

## Held-out pairs ({info.get('n_dev', '?')}, never trained on): target -> English retrieval, %

| metric | before (base model) | after (this model) |
|---|---|---|
{rows}

Pooled: cosine of mean-pooled vectors. Late: MaxSim over the token states of the aligned layer.

## Settings

```json
{json.dumps(settings, indent=2)}
```

All of this is also in `optical_ref.json`.
"""
