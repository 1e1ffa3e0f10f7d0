"""MTOD (Schuster et al., NAACL 2019, arXiv 1810.13327): CoNLL-U files and the machine-translated bitext.

CoNLL-U block (blank-line separated)::

    # text: tell me the weather report for half moon bay
    # intent: weather/find
    # slots: 12:26:weather/noun,31:44:location
    1<TAB>tell<TAB>weather/find<TAB>NoLabel
    ...

``<lang>/train.tsv``: one utterance per line; line i of es/th is a machine translation of line i of
en/train.tsv, which is the tokens of sentence i of en/train-en.conllu joined by spaces.
"""
from __future__ import annotations

from pathlib import Path

import unicodedata

from .records import MTOD_LANGS, BitextPair, DataFormatError, Utterance, check_langs, read_text, text_problem


def load_conllu(path, lang=None) -> list:
    """Load an MTOD CoNLL-U file; ids are '<file stem>:<sentence index>'.

    A malformed token line or a block without '# text' / '# intent' raises DataFormatError (a ValueError)
    naming the file and the line number.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"CoNLL-U file {path} does not exist")
    lang = lang or path.stem.split("-")[-1]
    out, block, block_start = [], [], 1

    def flush():
        if not block:
            return
        text = intent = None
        tokens = []
        for line_no, line in block:
            if line.startswith("# text:"):
                text = line[len("# text:"):].strip()
            elif line.startswith("# intent:"):
                intent = line[len("# intent:"):].strip() or None
            elif line.startswith("#"):
                continue
            else:
                cols = line.split("\t")
                if len(cols) != 4 or not cols[0].isdigit():
                    raise DataFormatError(f"{path}: line {line_no}: expected a token line 'index<TAB>token<TAB>"
                                          f"intent<TAB>slot tag' (4 columns), found {len(cols)} column(s)")
                tokens.append(cols[1])
        if text is None or intent is None:
            missing = "# text" if text is None else "# intent"
            raise DataFormatError(f"{path}: line {block_start}: sentence block without a '{missing}:' line")
        if text_problem(text):
            raise DataFormatError(f"{path}: line {block_start}: the '# text:' is {text_problem(text)}")
        if not tokens_follow_text(tokens, text):
            raise DataFormatError(f"{path}: line {block_start}: the token lines {tokens[:6]}... do not spell the "
                                  f"'# text: {text[:60]}' of their block; the block is inconsistent")
        out.append(Utterance(f"{path.stem}:{len(out)}", lang, text, intent, tuple(tokens)))

    for line_no, line in enumerate(read_text(path).split("\n"), start=1):
        line = line.rstrip("\r")
        if line.strip():
            if not block:
                block_start = line_no
            block.append((line_no, line))
        else:
            flush()
            block = []
    flush()
    return out


def tokens_follow_text(tokens, text: str) -> bool:
    """Each token occurs in the text after the previous one (compared after NFKC and case folding, spaces
    ignored: MTOD's tokens are lower-cased and its Thai text is not NFKC-normalised)."""
    def norm(s):
        return unicodedata.normalize("NFKC", s).casefold().replace(" ", "")
    haystack, position = norm(text), 0
    for token in tokens:
        found = haystack.find(norm(token), position)
        if found < 0:
            return False
        position = found + len(norm(token))
    return True


def read_lines(path) -> list:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"bitext file {path} does not exist")
    lines = read_text(path).replace("\r\n", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.strip() for line in lines]


def load_mtod_bitext(data_dir, lang: str) -> list:
    """(English, translation) pairs of MTOD's train.tsv, with the English intent from train-en.conllu.

    Mismatched line counts are an error, not a truncation; so is an English line that is not the tokens
    of the CoNLL-U sentence with the same index.
    """
    (lang,) = check_langs([lang], [x for x in MTOD_LANGS if x != "en"], "MTOD bitext")
    root = Path(data_dir) / "mtod"
    english = read_lines(root / "en" / "train.tsv")
    target = read_lines(root / lang / "train.tsv")
    labelled = load_conllu(root / "en" / "train-en.conllu", "en")
    if not (len(english) == len(target) == len(labelled)):
        raise DataFormatError(
            f"MTOD bitext lengths differ: en/train.tsv has {len(english)} lines, {lang}/train.tsv {len(target)}, "
            f"en/train-en.conllu {len(labelled)} sentences; they must be parallel line by line")
    pairs = []
    for i, (en, tgt, utt) in enumerate(zip(english, target, labelled)):
        if en != " ".join(utt.tokens):
            raise DataFormatError(f"{root / 'en' / 'train.tsv'}: line {i + 1}: does not match sentence {i} of "
                                  "en/train-en.conllu; the files are not parallel")
        if text_problem(en) or text_problem(tgt):
            raise DataFormatError(f"{root / lang / 'train.tsv'}: line {i + 1}: the bitext holds "
                                  f"{text_problem(en) or text_problem(tgt)}")
        pairs.append(BitextPair(f"mtod-train:{i}", lang, en, tgt, utt.intent))
    return pairs


def load_mtod(data_dir, lang: str, split: str) -> list:
    """The human-labelled MTOD split ('train', 'dev' or 'test') of one language."""
    (lang,) = check_langs([lang], MTOD_LANGS, "MTOD")
    if split not in ("train", "dev", "test"):
        raise ValueError(f"unknown MTOD split {split!r}; choose train, dev or test")
    return load_conllu(Path(data_dir) / "mtod" / lang / f"{split}-{lang}.conllu", lang)
