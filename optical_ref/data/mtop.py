"""MTOP (Li et al., EACL 2021, arXiv 2008.09335) in its two forms.

1. The parallel JSON of ``../shared/data/mtop/{dev,test}.json``: a list of items
   ``{"id", "mr": {"slot_intent": {lang: parse}}, "question": {lang: text}}``, the six languages of one
   utterance in one item. The intent is the first ``IN:`` label of the decoupled parse.
2. The official release: ``<lang>/{train,eval,test}.txt``, tab-separated, 8 columns:
   id, intent, slot string, utterance, domain, locale, decoupled parse, tokens JSON.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from .records import MTOP_LANGS, DataFormatError, Utterance, check_langs, read_text, text_problem

INTENT_RE = re.compile(r"\[IN:([^\s\]]+)")


def intent_of_parse(parse: str):
    """The first IN: label of a decoupled parse, e.g. '[IN:GET_WEATHER [SL:...] ]' -> 'GET_WEATHER'."""
    match = INTENT_RE.search(parse or "")
    return match.group(1) if match else None


def load_mtop_json(path, langs=None) -> list:
    """Load one parallel MTOP JSON file; returns Utterances, item by item, ``langs`` within each item.

    Items whose parse has no intent are errors (MTOP has none such); a missing language is an error
    naming the item.
    """
    path = Path(path)
    langs = check_langs(langs, MTOP_LANGS, "MTOP")
    if not path.is_file():
        raise FileNotFoundError(f"MTOP file {path} does not exist; see `python -m optical_ref data-summary`")
    try:
        items = json.loads(read_text(path))
    except json.JSONDecodeError as err:
        raise DataFormatError(f"{path}: line {err.lineno}: not valid JSON ({err.msg})") from None
    if not isinstance(items, list):
        raise DataFormatError(f"{path}: expected a JSON list of items, got {type(items).__name__}")
    out, first_seen = [], {}
    for k, item in enumerate(items):
        try:
            item_id = str(item["id"])
            questions, parses = item["question"], item["mr"]["slot_intent"]
        except (KeyError, TypeError):
            raise DataFormatError(f"{path}: item {k}: expected keys 'id', 'question' and 'mr.slot_intent'") from None
        if not isinstance(questions, dict) or not isinstance(parses, dict):
            raise DataFormatError(f"{path}: item {k} (id {item_id}): 'question' and 'mr.slot_intent' must be objects "
                                  "{language: text}")
        if item_id in first_seen:
            raise DataFormatError(f"{path}: items {first_seen[item_id]} and {k} have the same id {item_id}; "
                                  "MTOP ids are unique (a duplicated item would be silently overwritten)")
        first_seen[item_id] = k
        for lang in langs:
            if lang not in questions or lang not in parses:
                raise DataFormatError(f"{path}: item {k} (id {item_id}) has no '{lang}' text or parse")
            for field, value in (("question", questions[lang]), ("mr.slot_intent", parses[lang])):
                if not isinstance(value, str):
                    raise DataFormatError(f"{path}: item {k} (id {item_id}): field {field}.{lang} is "
                                          f"{type(value).__name__ if value is not None else 'null'}, expected a string")
            intent = intent_of_parse(parses[lang])
            if intent is None:
                raise DataFormatError(f"{path}: item {k} (id {item_id}): no IN: label in the {lang} parse")
            text = questions[lang].strip()
            problem = text_problem(text)
            if problem:
                raise DataFormatError(f"{path}: item {k} (id {item_id}): the {lang} text is {problem}")
            out.append(Utterance(item_id, lang, text, intent))
    return out


def load_mtop_tsv(path, lang=None) -> list:
    """Load one file of the official MTOP release (8 tab-separated columns).

    ``lang`` defaults to the locale column's language (``en_XX`` -> ``en``). A malformed line raises
    DataFormatError (a ValueError) naming the file, the line number and what was expected.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"MTOP TSV file {path} does not exist")
    out = []
    for line_no, line in enumerate(read_text(path).split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        cols = line.split("\t")
        if len(cols) != 8:
            raise DataFormatError(
                f"{path}: line {line_no}: expected 8 tab-separated columns (id, intent, slots, utterance, "
                f"domain, locale, decoupled parse, tokens JSON), found {len(cols)}")
        item_id, intent_col, _, utterance, _, locale, parse, tokens_json = cols
        intent = intent_col.split(":", 1)[1] if intent_col.startswith("IN:") else intent_of_parse(parse)
        if not intent:
            raise DataFormatError(f"{path}: line {line_no}: no intent in column 2 ('IN:NAME') or in the parse")
        try:
            tokens = json.loads(tokens_json)
            tokens = tuple(tokens["tokens"] if isinstance(tokens, dict) else tokens)
        except (json.JSONDecodeError, KeyError, TypeError):
            raise DataFormatError(f"{path}: line {line_no}: column 8 is not a tokens JSON "
                                  "(a list, or an object with a 'tokens' list)") from None
        item_lang = lang or locale.split("_")[0]
        if item_lang not in MTOP_LANGS:
            raise DataFormatError(f"{path}: line {line_no}: unknown locale {locale!r}; known languages: "
                                  f"{', '.join(MTOP_LANGS)}")
        problem = text_problem(utterance)
        if problem:
            raise DataFormatError(f"{path}: line {line_no}: the utterance is {problem}")
        out.append(Utterance(item_id, item_lang, utterance.strip(), intent, tokens))
    return out


def load_mtop(data_dir, langs=None, splits=("dev", "test")) -> list:
    """All MTOP utterances found under ``data_dir/mtop``: the parallel JSON when present, otherwise the
    official release's ``<lang>/<split>.txt`` files (split names: train, eval, test; 'dev' = 'eval')."""
    root = Path(data_dir) / "mtop"
    langs = check_langs(langs, MTOP_LANGS, "MTOP")
    if (root / "dev.json").is_file():
        return [u for split in splits if split in ("dev", "test")
                for u in load_mtop_json(root / f"{split}.json", langs)]
    out = []
    for lang in langs:
        for split in splits:
            name = {"dev": "eval"}.get(split, split)
            out.extend(load_mtop_tsv(root / lang / f"{name}.txt", lang))
    return out
