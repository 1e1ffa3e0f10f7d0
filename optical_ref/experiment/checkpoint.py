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
import shutil
import tempfile
from pathlib import Path

from .. import __version__
from ..files import replace_folder


def refuse_existing(out, force: bool) -> None:
    """An existing non-empty ``out`` is refused unless ``force`` (then it is replaced only after success)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out}: this is a file, not a folder; choose a folder name")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise ValueError(f"--out {out}: the folder exists and is not empty; choose another --out, or pass --force to "
                         "replace it once the new model is complete")


def save_student(student, tokenizer, out, info: dict, force: bool = False) -> Path:
    """Write ``student`` (an :class:`optical_ref.encoder.Encoder` in its query role) as a checkpoint folder."""
    out = Path(out)
    refuse_existing(out, force)
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
    state = {k: v.contiguous() for k, v in student.model.state_dict().items()}
    student.model.save_pretrained(str(folder), state_dict=state, safe_serialization=True)
    tokenizer.save_pretrained(str(folder))
    prefixes = dict(student.prefixes)
    (folder / "optical_ref.json").write_text(json.dumps({"prefixes": prefixes, **info, "optical_ref": __version__},
                                                        indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
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
        "prompts": prefixes, "default_prompt_name": "query" if "query" in prefixes else None,
        "similarity_fn_name": "cosine", "__version__": {"optical_ref": __version__}}, indent=2))
    (folder / "README.md").write_text(model_card(info), encoding="utf-8")


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

Encode queries with the prefix `{info.get('prefixes', {}).get('query', '')}` (sentence-transformers applies it as the
default prompt) and English documents with the base model and its passage prefix; mean pooling, cosine similarity.

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
