"""A user's own bitext: ``english<TAB>translation`` lines (TSV) or ``{"en": ..., "target": ...}`` lines (JSONL).

The format ``distil`` reads. TSV: UTF-8 (a byte-order mark, UTF-16 with its mark and any line ending are read too),
one pair a line; an optional header line ``en<TAB>xx`` (xx: any language code or name, e.g. ``English<TAB>Spanish``,
any case) and blank lines are skipped. JSONL: one object a line with the string fields ``en`` and
``target``. Every bad line is reported with its file and line number — a line without a tab, an empty side,
bytes that are not UTF-8, a pair given twice (unless duplicates are dropped, and counted: :func:`read_bitext`) —
all of them at once, so one pass over the file finds every problem; nothing is silently dropped.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from .records import BitextPair, DataFormatError, text_problem

HEADER = re.compile(r"^(en|eng|english)\t([A-Za-z]{2,3}([_-][A-Za-z0-9]+)?|[A-Za-z]{4,20})$", re.IGNORECASE)
LINE_END = re.compile(rb"\r\n|\r|\n")     # Windows, Unix and old-Mac (CR only) line endings alike
MAX_REPORTED = 20


def read_bitext_file(path) -> list:
    """The (English, translation) pairs of ``path`` (``.tsv``/``.txt`` or ``.jsonl``) as :class:`BitextPair`
    (``id`` = the line number, ``lang`` = the header's code or "target"); a :class:`DataFormatError` lists every
    bad line, a pair given twice included."""
    return read_bitext(path, strict=True)[0]


def read_bitext(path, strict: bool = False) -> tuple:
    """``(pairs, dropped)``: as :func:`read_bitext_file`, but a pair given again (the same English and translation)
    is dropped and counted unless ``strict``; a real corpus repeats a few pairs, and one copy teaches the same."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--bitext {path}: no such file; give a UTF-8 file of english<TAB>translation lines "
                                "(or .jsonl with {\"en\": ..., \"target\": ...})")
    problems, pairs, seen, lang, dropped = [], [], {}, "target", 0
    jsonl = path.suffix.lower() == ".jsonl"
    for number, line, problem in _lines(path):
        if problem:
            problems.append(f"{path}:{number}: {problem}")
        if problem or not line.strip():
            continue
        if not jsonl and number == 1 and HEADER.match(line.strip()):
            lang = line.strip().split("\t")[1].lower()
            continue
        en, target, problem = _json_pair(line) if jsonl else _tsv_pair(line)
        if not problem and (en, target) in seen:
            if not strict:
                dropped += 1
                continue
            problem = f"the same pair as line {seen[(en, target)]}; give each pair once"
        if problem:
            problems.append(f"{path}:{number}: {problem}")
            continue
        seen[(en, target)] = number
        pairs.append(BitextPair(id=str(number), lang=lang, en=en, target=target))
    if problems:
        shown = problems[:MAX_REPORTED]
        more = f"\n  ... and {len(problems) - MAX_REPORTED} more" if len(problems) > MAX_REPORTED else ""
        raise DataFormatError(f"{path}: {len(problems)} bad line(s):\n  " + "\n  ".join(shown) + more)
    return pairs, dropped


def _lines(path: Path):
    """``(line number, text, problem)`` of each line; the problem of a line that is not UTF-8 says which byte.
    A byte-order mark is dropped; UTF-16 with its mark is read as such, UTF-16 without one is refused."""
    raw = path.read_bytes()
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        try:
            raw = raw.decode("utf-16").encode("utf-8")
        except UnicodeDecodeError:
            raise DataFormatError(f"{path}: starts like UTF-16 but is not valid UTF-16; save the file as UTF-8") from None
    elif raw.count(b"\x00") > len(raw) // 4:
        raise DataFormatError(f"{path}: looks like UTF-16 without a byte-order mark (every other byte is 0); "
                              "save the file as UTF-8")
    raw = raw[3:] if raw.startswith(b"\xef\xbb\xbf") else raw
    for number, line_bytes in enumerate(LINE_END.split(raw), start=1):
        try:
            yield number, line_bytes.decode("utf-8"), None
        except UnicodeDecodeError as err:
            yield number, "", (f"byte {err.start + 1} of the line is not UTF-8 "
                               f"(0x{line_bytes[err.start]:02x}); save the file as UTF-8")


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
