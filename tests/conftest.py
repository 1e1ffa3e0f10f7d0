"""Shared fixtures: small data written by the tests, so nothing depends on ../shared unless it says so."""
import json
import os
from pathlib import Path

import pytest

# No test ever touches the network: downloads are forbidden unless a test sets a file:// mirror itself.
os.environ["OPTICAL_REF_OFFLINE"] = "1"
os.environ.pop("OPTICAL_REF_MIRROR", None)

LANGS6 = ["en", "de", "es", "fr", "hi", "th"]
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"

WORDS = {  # a tiny parallel vocabulary, so that distillation has something to learn
    "en": ["play", "music", "weather", "today", "set", "alarm", "call", "mom"],
    "de": ["spiele", "musik", "wetter", "heute", "stelle", "wecker", "rufe", "mama"],
    "es": ["pon", "música", "tiempo", "hoy", "pon", "alarma", "llama", "mamá"],
    "fr": ["joue", "musique", "météo", "aujourd'hui", "règle", "alarme", "appelle", "maman"],
    "hi": ["बजाओ", "संगीत", "मौसम", "आज", "लगाओ", "अलार्म", "कॉल", "माँ"],
    "th": ["เล่น", "เพลง", "อากาศ", "วันนี้", "ตั้ง", "ปลุก", "โทร", "แม่"],
}


def mtop_item(item_id, intent, texts):
    return {"id": item_id,
            "mr": {"slot_intent": {lang: f"[IN:{intent} [SL:X y ] ]" for lang in texts}},
            "question": texts}


def write_tiny_mtop(root: Path, n_intents=4, per_intent=12):
    """A parallel MTOP in the shared layout (dev.json + test.json), with one rare intent to be dropped."""
    (root / "mtop").mkdir(parents=True)
    items = []
    for k in range(n_intents):
        for j in range(per_intent):
            texts = {lang: f"{WORDS[lang][2 * k]} {WORDS[lang][2 * k + 1]} {j}" for lang in LANGS6}
            items.append(mtop_item(f"{k:02d}{j:03d}", f"INTENT_{k}", texts))
    items.append(mtop_item("99999", "RARE", {lang: f"{WORDS[lang][0]} rare" for lang in LANGS6}))
    (root / "mtop" / "dev.json").write_text(json.dumps(items[::2], ensure_ascii=False), encoding="utf-8")
    (root / "mtop" / "test.json").write_text(json.dumps(items[1::2], ensure_ascii=False), encoding="utf-8")
    return root


@pytest.fixture
def tiny_data(tmp_path):
    return write_tiny_mtop(tmp_path / "data")


def official_zip(path: Path, extra_member=None, langs=tuple(LANGS6), rows=120, garbage=False):
    """An archive in the official MTOP release's layout (mtop/<lang>/{train,eval,test}.txt, 8 TSV columns);
    ``extra_member`` adds one more file under that name, ``garbage`` writes unparseable files."""
    import zipfile
    with zipfile.ZipFile(path, "w") as zf:
        for lang in langs:
            for split in ("train", "eval", "test"):
                lines = []
                for k in range(rows):
                    intent = "GET_WEATHER" if k % 2 else "SET_ALARM"
                    lines.append("\t".join([f"{split}{k}", f"IN:{intent}", "", f"{lang} {split} {k}", "d",
                                            f"{lang}_XX", f"[IN:{intent} ]", json.dumps({"tokens": [lang, split]})]))
                zf.writestr(f"mtop/{lang}/{split}.txt", "garbage\n" if garbage else "\n".join(lines) + "\n")
        if extra_member:
            zf.writestr(extra_member, "evil")
    return path


def cli_error(capsys, argv) -> str:
    """Run the command line on ``argv``, expecting the one-line error of bad input (exit 2); returns that line."""
    from optical_ref.__main__ import main
    capsys.readouterr()
    code = main(list(argv))
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: "), (code, err)
    return err
