"""A user's own bitext: ``english<TAB>translation`` lines (TSV) or ``{"en": ..., "target": ...}`` lines (JSONL).

The format ``distil`` reads. TSV: UTF-8, one pair a line; an optional header line ``en<TAB>xx`` (xx: any
language code) and blank lines are skipped. JSONL: one object a line with the string fields ``en`` and
``target``. Every bad line is reported with its file and line number — a line without a tab, an empty side,
bytes that are not UTF-8, a pair given twice — all of them at once, so one pass over the file finds every
problem; nothing is silently dropped.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from .records import BitextPair, DataFormatError, text_problem

HEADER = re.compile(r"^en\t[A-Za-z]{2,3}([_-][A-Za-z0-9]+)?$")
MAX_REPORTED = 20


def read_bitext_file(path) -> list:
    """The (English, translation) pairs of ``path`` (``.tsv``/``.txt`` or ``.jsonl``) as :class:`BitextPair`
    (``id`` = the line number, ``lang`` = the header's code or "target"); a :class:`DataFormatError` lists every
    bad line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--bitext {path}: no such file; give a UTF-8 file of english<TAB>translation lines "
                                "(or .jsonl with {\"en\": ..., \"target\": ...})")
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    problems, pairs, seen, lang = [], [], {}, "target"
    jsonl = path.suffix.lower() == ".jsonl"
    for number, line_bytes in enumerate(lines, start=1):
        try:
            line = line_bytes.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError as err:
            problems.append(f"{path}:{number}: byte {err.start + 1} of the line is not UTF-8 "
                            f"(0x{line_bytes[err.start]:02x}); save the file as UTF-8")
            continue
        if not line.strip():
            continue
        if jsonl:
            en, target, problem = _json_pair(line)
        else:
            if number == 1 and HEADER.match(line.strip()):
                lang = line.strip().split("\t")[1]
                continue
            en, target, problem = _tsv_pair(line)
        if problem:
            problems.append(f"{path}:{number}: {problem}")
            continue
        key = (en, target)
        if key in seen:
            problems.append(f"{path}:{number}: the same pair as line {seen[key]}; give each pair once")
            continue
        seen[key] = number
        pairs.append(BitextPair(id=str(number), lang=lang, en=en, target=target))
    if problems:
        shown = problems[:MAX_REPORTED]
        more = f"\n  ... and {len(problems) - MAX_REPORTED} more" if len(problems) > MAX_REPORTED else ""
        raise DataFormatError(f"{path}: {len(problems)} bad line(s):\n  " + "\n  ".join(shown) + more)
    return pairs


def _tsv_pair(line: str):
    if "\t" not in line:
        return None, None, "no tab: expected english<TAB>translation"
    parts = line.split("\t")
    if len(parts) != 2:
        return None, None, f"{len(parts) - 1} tabs: expected exactly one, english<TAB>translation"
    en, target = (p.strip() for p in parts)
    return _checked(en, target)


def _checked(en: str, target: str):
    for side, text in (("English", en), ("translation", target)):
        if not text:
            return None, None, f"the {side} side is empty"
        if text_problem(text):
            return None, None, f"the {side} side is {text_problem(text)}"
    return en, target, None


def _json_pair(line: str):
    try:
        item = json.loads(line)
    except json.JSONDecodeError as err:
        return None, None, f"not a JSON object ({err.msg})"
    if not isinstance(item, dict):
        return None, None, f"a JSON {type(item).__name__}, expected an object with \"en\" and \"target\""
    en, target = item.get("en"), item.get("target")
    if not isinstance(en, str) or not isinstance(target, str):
        return None, None, "expected string fields \"en\" and \"target\""
    return _checked(en.strip(), target.strip())
