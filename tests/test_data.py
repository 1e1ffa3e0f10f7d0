"""The data layer, specified: counts equal the SOURCE.md tables, parsers name file and line on bad input,
splits are disjoint by id and stratified, budgets are nested, and no target label reaches distillation."""
import json

import pytest

from optical_ref.data import (DataFormatError, bitext_budget, find_data_dir, load_conllu, load_mtod,
                              load_mtod_bitext, load_mtop_json, load_mtop_tsv, reduced_mtop)
from optical_ref.data.fetch import fetch
from optical_ref.data.paths import holds_data
from optical_ref.data.splits import official_mtop
from optical_ref.data.summary import summarize

from conftest import SHARED, official_zip

needs_shared = pytest.mark.skipif(not holds_data(SHARED), reason=f"the shared data is not at {SHARED}")


# ------------------------------------------------------------------------------------------------
# Small fixtures written by the tests
# ------------------------------------------------------------------------------------------------
TSV_LINE = "\t".join(["123", "IN:GET_WEATHER", "", "weather today", "weather", "en_XX",
                      "[IN:GET_WEATHER ]", json.dumps({"tokens": ["weather", "today"]})])


# ------------------------------------------------------------------------------------------------
# Data directory resolution
# ------------------------------------------------------------------------------------------------
def test_missing_data_lists_every_place_looked_and_how_to_fix_it(tmp_path, monkeypatch):
    monkeypatch.setenv("OPTICAL_REF_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError) as err:
        find_data_dir(tmp_path / "missing")
    assert str(tmp_path / "missing") in str(err.value) and "--data-dir" in str(err.value)


def test_environment_variable_is_used_before_shared_data(tiny_data, monkeypatch):
    monkeypatch.setenv("OPTICAL_REF_DATA", str(tiny_data))
    assert find_data_dir() == tiny_data.resolve()


# ------------------------------------------------------------------------------------------------
# Counts equal the SOURCE.md tables (shared data)
# ------------------------------------------------------------------------------------------------
@needs_shared
def test_mtop_counts_equal_source_md():
    for name, items, intents in (("dev.json", 859, 70), ("test.json", 1237, 80)):
        utts = load_mtop_json(SHARED / "mtop" / name)
        assert len(utts) == 6 * items
        assert len({u.id for u in utts}) == items
        assert len({u.intent for u in utts}) == intents


@needs_shared
def test_mtop_intent_is_the_same_in_all_six_languages():
    by_id = {}
    for u in load_mtop_json(SHARED / "mtop" / "dev.json"):
        by_id.setdefault(u.id, set()).add(u.intent)
    assert all(len(intents) == 1 for intents in by_id.values())


@needs_shared
@pytest.mark.parametrize("lang,train,dev,test", [("en", 30521, 4181, 8621), ("es", 3617, 1983, 3043),
                                                 ("th", 2156, 1235, 1692)])
def test_mtod_counts_equal_source_md(lang, train, dev, test):
    assert [len(load_mtod(SHARED, lang, s)) for s in ("train", "dev", "test")] == [train, dev, test]


@needs_shared
def test_mtod_english_train_intents_equal_source_md():
    from collections import Counter
    counts = Counter(u.intent for u in load_mtod(SHARED, "en", "train"))
    assert counts["weather/find"] == 14047 and counts["alarm/set_alarm"] == 4816 and len(counts) == 12


@needs_shared
@pytest.mark.parametrize("lang", ["es", "th"])
def test_mtod_bitext_pairs_every_english_line_with_its_translation(lang):
    pairs = load_mtod_bitext(SHARED, lang)
    assert len(pairs) == 30521
    assert all(p.en and p.target for p in pairs)


@needs_shared
def test_data_summary_checksums_all_match_source_md():
    summary = summarize(SHARED)
    assert len(summary["checksums"]) == 14 and all(c["ok"] for c in summary["checksums"])


# ------------------------------------------------------------------------------------------------
# Parsers on fixtures, including malformed input
# ------------------------------------------------------------------------------------------------
def test_official_tsv_parser_reads_the_eight_columns(tmp_path):
    path = tmp_path / "test.txt"
    path.write_text(TSV_LINE + "\n", encoding="utf-8")
    (utt,) = load_mtop_tsv(path)
    assert (utt.id, utt.lang, utt.text, utt.intent, utt.tokens) == ("123", "en", "weather today", "GET_WEATHER",
                                                                    ("weather", "today"))


@pytest.mark.parametrize("bad_line,expected", [
    ("123\tIN:GET_WEATHER\tonly four", "expected 8 tab-separated columns"),
    (TSV_LINE.replace(json.dumps({"tokens": ["weather", "today"]}), "not json"), "tokens JSON"),
    (TSV_LINE.replace("en_XX", "xx_XX"), "unknown locale"),
])
def test_malformed_tsv_line_names_file_and_line(tmp_path, bad_line, expected):
    path = tmp_path / "eval.txt"
    path.write_text(TSV_LINE + "\n" + bad_line + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=rf"eval\.txt: line 2: .*{expected}"):
        load_mtop_tsv(path)


CONLLU = """# text: set an alarm
# intent: alarm/set_alarm
# slots:
1\tset\talarm/set_alarm\tNoLabel
2\tan\talarm/set_alarm\tNoLabel
3\talarm\talarm/set_alarm\tNoLabel

# text: weather today
# intent: weather/find
# slots:
1\tweather\tweather/find\tNoLabel
2\ttoday\tweather/find\tB-datetime
"""


def test_conllu_parser_reads_text_intent_and_tokens(tmp_path):
    path = tmp_path / "test-en.conllu"
    path.write_text(CONLLU, encoding="utf-8")
    utts = load_conllu(path)
    assert [(u.text, u.intent, u.tokens) for u in utts] == [
        ("set an alarm", "alarm/set_alarm", ("set", "an", "alarm")),
        ("weather today", "weather/find", ("weather", "today"))]
    assert utts[0].lang == "en"


def test_malformed_conllu_token_line_names_file_and_line(tmp_path):
    path = tmp_path / "dev-es.conllu"
    path.write_text(CONLLU.replace("2\ttoday\tweather/find\tB-datetime", "2 today"), encoding="utf-8")
    with pytest.raises(ValueError, match=r"dev-es\.conllu: line 12: expected a token line"):
        load_conllu(path)


def test_conllu_block_without_intent_names_file_and_line(tmp_path):
    path = tmp_path / "dev-es.conllu"
    path.write_text(CONLLU.replace("# intent: weather/find\n", ""), encoding="utf-8")
    with pytest.raises(ValueError, match=r"dev-es\.conllu: line 8: .*# intent"):
        load_conllu(path)


def test_mismatched_bitext_lengths_are_an_error_not_a_truncation(tmp_path):
    root = tmp_path / "mtod"
    for lang in ("en", "es"):
        (root / lang).mkdir(parents=True)
    (root / "en" / "train-en.conllu").write_text(CONLLU, encoding="utf-8")
    (root / "en" / "train.tsv").write_text("set an alarm\nweather today\n", encoding="utf-8")
    (root / "es" / "train.tsv").write_text("pon una alarma\n", encoding="utf-8")
    with pytest.raises(ValueError, match="lengths differ"):
        load_mtod_bitext(tmp_path, "es")
    (root / "es" / "train.tsv").write_text("pon una alarma\r\nel tiempo hoy\r\n", encoding="utf-8")
    pairs = load_mtod_bitext(tmp_path, "es")
    assert [(p.en, p.target, p.intent) for p in pairs] == [("set an alarm", "pon una alarma", "alarm/set_alarm"),
                                                           ("weather today", "el tiempo hoy", "weather/find")]


def test_malformed_json_and_unknown_languages_are_clear_errors(tmp_path, tiny_data):
    bad = tmp_path / "dev.json"
    bad.write_text("[{", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"dev\.json: line 1"):
        load_mtop_json(bad)
    with pytest.raises(ValueError, match="unknown language.*known: en, de, es, fr, hi, th"):
        reduced_mtop(tiny_data, langs=["en", "xx"])
    with pytest.raises(ValueError, match="unknown language"):
        load_mtod_bitext(tiny_data, "de")


# ------------------------------------------------------------------------------------------------
# Splits and budgets
# ------------------------------------------------------------------------------------------------
def test_splits_are_disjoint_by_id_and_stratified(tiny_data):
    data = reduced_mtop(tiny_data)
    train, dev, test = map(set, (data.train_ids, data.dev_ids, data.test_ids))
    assert not (train & dev or train & test or dev & test)
    assert data.intents == ["INTENT_0", "INTENT_1", "INTENT_2", "INTENT_3"]
    assert data.dropped_intents == {"RARE": 1}          # reported, not silently lost
    for split in ("train", "dev", "test"):
        assert {u.intent for u in data.labelled(split, "th")} == set(data.intents)


def test_no_translation_of_an_utterance_crosses_splits(tiny_data):
    data = reduced_mtop(tiny_data)
    for split in ("train", "dev", "test"):
        ids = set(data.ids(split))
        for lang in data.langs:
            assert {u.id for u in data.labelled(split, lang)} == ids


def test_splits_are_deterministic_per_seed_and_differ_across_seeds(tiny_data):
    a, b, c = reduced_mtop(tiny_data, seed=0), reduced_mtop(tiny_data, seed=0), reduced_mtop(tiny_data, seed=1)
    assert a.train_ids == b.train_ids and a.test_ids == b.test_ids
    assert a.train_ids != c.train_ids


def test_bitext_english_side_is_the_english_text_of_the_same_id_and_carries_no_target_label(tiny_data):
    data = reduced_mtop(tiny_data)
    for pair in data.bitext("hi"):
        assert pair.en == data.items[pair.id]["en"].text
        assert pair.target == data.items[pair.id]["hi"].text
        assert pair.intent == data.items[pair.id]["en"].intent   # the English label only
    assert set(vars(data.bitext("hi")[0])) == {"id", "lang", "en", "target", "intent"}


def test_budgets_are_nested_and_deterministic():
    pairs = list(range(1000))
    small, medium, large = (bitext_budget(pairs, k, seed=3) for k in (50, 200, 1000))
    assert set(small) <= set(medium) <= set(large) == set(pairs)
    assert bitext_budget(pairs, 200, seed=3) == medium
    assert bitext_budget(pairs, 200, seed=4) != medium


def test_a_budget_larger_than_the_bitext_is_a_clear_error():
    with pytest.raises(ValueError, match="larger than the 10 pairs available"):
        bitext_budget(list(range(10)), 11, seed=0)
    with pytest.raises(ValueError, match="integer >= 1"):
        bitext_budget(list(range(10)), 0, seed=0)


@needs_shared
def test_reduced_mtop_default_sizes_on_the_shared_data():
    data = reduced_mtop(SHARED)
    assert data.sizes()["intents"] == 36
    assert len(data.train_ids) + len(data.dev_ids) + len(data.test_ids) == 1913
    assert sum(data.dropped_intents.values()) == 2096 - 1913


# ------------------------------------------------------------------------------------------------
# The official release and its fetcher, end to end with a file:// URL
# ------------------------------------------------------------------------------------------------
def fetch_official(data_dir, url, sha256=None):
    fetch("mtop-official", data_dir, url=url, sha256=sha256, force=True, progress=lambda *_: None)


def test_fetch_unpacks_the_official_release_and_the_full_experiment_reads_it(tmp_path):
    archive = official_zip(tmp_path / "mtop.zip")
    import hashlib
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    fetch_official(tmp_path / "data", archive.as_uri(), sha256=digest)
    assert (tmp_path / "data" / "mtop" / "th" / "eval.txt").is_file()
    data = official_mtop(tmp_path / "data", langs=["en", "th"], min_per_intent=3)
    assert len(data.train_ids) == 120 and data.intents == ["GET_WEATHER", "SET_ALARM"]


def test_fetch_refuses_a_wrong_checksum_and_leaves_good_files(tmp_path):
    archive = official_zip(tmp_path / "mtop.zip")
    fetch_official(tmp_path / "data", archive.as_uri())
    before = (tmp_path / "data" / "mtop" / "en" / "test.txt").read_bytes()
    with pytest.raises(ValueError, match="checksum mismatch"):
        fetch_official(tmp_path / "data", archive.as_uri(), sha256="0" * 64)
    with pytest.raises(ValueError, match="could not download"):
        fetch_official(tmp_path / "data", (tmp_path / "absent.zip").as_uri())
    assert (tmp_path / "data" / "mtop" / "en" / "test.txt").read_bytes() == before


@pytest.mark.parametrize("member", ["../escape.txt", "/abs/escape.txt", "mtop/../../escape.txt"])
def test_fetch_refuses_archive_members_that_would_land_outside(tmp_path, member):
    archive = official_zip(tmp_path / "mtop.zip", extra_member=member)
    with pytest.raises(ValueError, match="outside the target directory"):
        fetch_official(tmp_path / "data", archive.as_uri())
    assert not (tmp_path / "escape.txt").exists()
    assert not (tmp_path / "data" / "mtop" / "en").exists()


def test_data_commands_report_a_missing_data_dir_in_one_line(tmp_path, capsys):
    from optical_ref.__main__ import main
    assert main(["data-summary", "--data-dir", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: could not find") and "Traceback" not in err
