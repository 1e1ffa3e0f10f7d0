"""The plain records every loader returns, and the languages each dataset knows."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

MTOP_LANGS = ("en", "de", "es", "fr", "hi", "th")
MTOD_LANGS = ("en", "es", "th")
LOW_RESOURCE_LANGS = ("hi", "th")


class DataFormatError(ValueError):
    """A data file does not have the expected format; the message names the file and the line."""


def read_text(path) -> str:
    """A data file as text; bytes that are not UTF-8 are an error naming the file, the line and the byte."""
    from pathlib import Path
    raw = Path(path).read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        raise DataFormatError(f"{path}: line {line}: byte 0x{raw[err.start]:02x} is not UTF-8 ({err.reason}); "
                              "the data files must be UTF-8 text (re-download or re-encode the file)") from None


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be a sentence, or None: empty, only invisible characters (spaces, zero-width and
    other format characters, controls), or a lone surrogate (not a character: no tokenizer can read it)."""
    import unicodedata
    for ch in text:
        if 0xD800 <= ord(ch) <= 0xDFFF:
            return f"a lone surrogate (U+{ord(ch):04X}), which is not a character; fix the file's encoding"
    if not any(not ch.isspace() and unicodedata.category(ch) not in ("Cf", "Cc", "Zs", "Zl", "Zp") for ch in text):
        return "an empty sentence (nothing but spaces or invisible characters such as U+200B)"
    return None


@dataclass(frozen=True)
class Utterance:
    """One labelled utterance in one language. ``id`` is shared by the translations of one utterance."""

    id: str
    lang: str
    text: str
    intent: Optional[str]
    tokens: Optional[tuple] = None


@dataclass(frozen=True)
class BitextPair:
    """An English sentence and its translation. ``intent`` is the English label, kept only for analysis
    (the retrieval and budget views); distillation never reads a target-language label."""

    id: str
    lang: str
    en: str
    target: str
    intent: Optional[str] = None


def check_langs(langs, known, dataset: str) -> tuple:
    """Return langs as a tuple, or raise ValueError naming the known languages."""
    if langs is None:
        return tuple(known)
    if isinstance(langs, str):
        langs = [langs]
    langs = tuple(langs)
    unknown = [lang for lang in langs if lang not in known]
    if unknown:
        raise ValueError(f"unknown language(s) {unknown} for {dataset}; known: {', '.join(known)}")
    if not langs:
        raise ValueError(f"no language given for {dataset}; choose from {', '.join(known)}")
    return langs
