"""Nothing lost, nothing silently wrong: bad inputs to the run store, the data, the run folder and the command line.

Damaged run folders, duplicated or contradictory data, out-of-range values and numerically impossible OT
problems (tested beside the solvers, in test_ot_torch.py) each get one clear error (naming the file, line, item or option) or a documented recovery; none
loses a record, returns NaN, or exits 0 with a wrong result."""
import json

import numpy as np
import pytest
from conftest import cli_error
import torch

from optical_ref.experiment.compare import make_config, run_comparison
from optical_ref.data import reduced_mtop
from optical_ref.data.records import DataFormatError
from optical_ref.experiment.runstore import RunFolderError, append_record, read_records

TINY = {"teacher_epochs": 1, "student_steps": 2}


def record(method="kd-mse", seed=0, acc=0.5, lang="de"):
    return {"method": method, "lang": lang, "budget": "all", "seed": seed, "split_seed": 0, "intent_acc": acc,
            "macro_f1": acc, "knn_acc": acc, "mrr10": acc, "recall1": acc, "en_acc": acc}


# ------------------------------------------------------------------------------------------------
# The run store: a truncated line is never glued to, duplicates are never averaged
# ------------------------------------------------------------------------------------------------
def test_an_append_after_a_truncated_last_line_starts_on_a_new_line(tmp_path):
    (tmp_path / "runs.jsonl").write_text(json.dumps(record(seed=0)) + "\n" + json.dumps(record(seed=1))[:40])
    append_record(tmp_path, record(seed=1))
    messages = []
    records = read_records(tmp_path, messages.append)
    assert sorted(r["seed"] for r in records) == [0, 1]
    assert any(":2: not a complete JSON line" in m for m in messages)


def test_a_line_that_is_json_but_not_a_record_is_reported_and_ignored(tmp_path):
    (tmp_path / "runs.jsonl").write_text('[1, 2]\n{"method": "ot"}\n' + json.dumps(record()) + "\n")
    messages = []
    assert len(read_records(tmp_path, messages.append)) == 1
    assert any(":1: not a run record" in m for m in messages) and any(":2: not a run record" in m for m in messages)


def test_a_conflicting_duplicate_record_is_an_error_naming_both_lines(tmp_path):
    (tmp_path / "runs.jsonl").write_text(json.dumps(record(acc=0.5)) + "\n" + json.dumps(record(acc=0.76)) + "\n")
    with pytest.raises(RunFolderError, match="lines 1 and 2 are the same run"):
        read_records(tmp_path, lambda *_: None)


def test_an_identical_duplicate_record_counts_once(tmp_path):
    (tmp_path / "runs.jsonl").write_text((json.dumps(record()) + "\n") * 2)
    assert len(read_records(tmp_path, lambda *_: None)) == 1


@pytest.mark.parametrize("kwargs,message", [
    ({"langs": ["es", "es"]}, "--langs: es given more than once"),
    ({"seeds": [0, 0]}, "--seeds: 0 given more than once"),
    ({"seeds": [-1]}, r"--seeds: a seed must be an integer in \[0, 4294967295\]"),
    ({"seeds": [2**64]}, "--seeds: a seed must be an integer"),
    ({"split_seeds": [-1]}, "--split-seed: a seed must be"),
    ({"methods": ["ot", "ot"]}, "--methods: ot given more than once"),
])
def test_bad_lists_on_the_command_line_are_refused_before_any_work_naming_the_option(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_config("quick", **kwargs)


# ------------------------------------------------------------------------------------------------
# The data: duplicated ids, contradictory intents, bytes that are not UTF-8, wrong JSON types
# ------------------------------------------------------------------------------------------------
def _items(tiny_data, name="dev.json"):
    path = tiny_data / "mtop" / name
    return path, json.loads(path.read_text(encoding="utf-8"))


def _save(path, items):
    path.write_text(json.dumps(items, ensure_ascii=False), encoding="utf-8")


def test_an_id_twice_in_one_file_is_an_error_naming_both_items(tiny_data):
    path, items = _items(tiny_data)
    items.append(items[0])
    _save(path, items)
    with pytest.raises(DataFormatError, match=f"items 0 and {len(items) - 1} have the same id"):
        reduced_mtop(tiny_data)


def test_an_id_in_both_dev_and_test_is_an_error_naming_both_files(tiny_data):
    dev, dev_items = _items(tiny_data)
    test, test_items = _items(tiny_data, "test.json")
    test_items.append(dev_items[0])
    _save(test, test_items)
    with pytest.raises(DataFormatError, match=r"appears twice: in .*dev\.json and in .*test\.json"):
        reduced_mtop(tiny_data)


def test_a_translation_with_another_intent_is_reported_at_load_time(tiny_data):
    path, items = _items(tiny_data)
    items[3]["mr"]["slot_intent"]["th"] = "[IN:SOMETHING_ELSE ]"
    _save(path, items)
    with pytest.raises(DataFormatError, match=f"id {items[3]['id']}: the th intent SOMETHING_ELSE differs from the English"):
        reduced_mtop(tiny_data)


def test_bytes_that_are_not_utf8_name_the_file_and_line(tiny_data):
    path = tiny_data / "mtop" / "dev.json"
    raw = path.read_bytes()
    path.write_bytes(raw[:50] + b"\n\n\xff" + raw[50:])
    with pytest.raises(DataFormatError, match=r"dev\.json: line 3: byte 0xff is not UTF-8"):
        reduced_mtop(tiny_data)


@pytest.mark.parametrize("value,kind", [(None, "null"), (42, "int")])
def test_a_question_that_is_not_a_string_names_the_item_and_field(tiny_data, value, kind):
    path, items = _items(tiny_data)
    items[2]["question"]["de"] = value
    _save(path, items)
    with pytest.raises(DataFormatError, match=f"item 2 .*field question.de is {kind}, expected a string"):
        reduced_mtop(tiny_data)


def test_conllu_token_lines_that_contradict_the_text_are_refused(tmp_path):
    from optical_ref.data import load_conllu
    path = tmp_path / "train-en.conllu"
    path.write_text("# text: set an alarm\n# intent: alarm/set_alarm\n1\tturn\talarm/set_alarm\tNoLabel\n"
                    "2\toff\talarm/set_alarm\tNoLabel\n\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match="line 1: the token lines .* do not spell"):
        load_conllu(path)


def test_a_data_dir_that_is_a_file_says_so(tmp_path):
    from optical_ref.data import find_data_dir
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileNotFoundError, match="is a file, not a directory"):
        find_data_dir(tmp_path / "file", "mtop")


# ------------------------------------------------------------------------------------------------
# The run folder: validated before anything is written; damaged files named with a recovery
# ------------------------------------------------------------------------------------------------
def test_a_failed_validation_writes_nothing_so_the_corrected_command_runs(tiny_data, tmp_path):
    out = tmp_path / "out"
    bad = make_config("quick", langs=["de"], budgets=[10_000], methods=["zero-shot"], data_dir=str(tiny_data),
                      train_overrides=TINY)
    with pytest.raises(ValueError, match="larger than"):
        run_comparison(bad, out, progress_bars=False)
    assert not (out / "config.json").exists()
    good = make_config("quick", langs=["de"], methods=["zero-shot"], data_dir=str(tiny_data), train_overrides=TINY)
    assert len(run_comparison(good, out, progress_bars=False)["runs"]) == 1


def test_a_foreign_teacher_in_the_output_folder_is_never_reused(tiny_data, tmp_path):
    out = tmp_path / "out"
    first = make_config("quick", langs=["de"], methods=["zero-shot"], data_dir=str(tiny_data), train_overrides=TINY)
    run_comparison(first, out, progress_bars=False)
    other = make_config("quick", langs=["de"], methods=["zero-shot"], data_dir=str(tiny_data),
                        train_overrides={**TINY, "lr": 1e-3})
    (out / "config.json").write_text(json.dumps(other.as_saved()))   # the folder claims other settings
    with pytest.raises(RunFolderError, match="teacher trained with other settings; delete .* to train the teacher again"):
        run_comparison(other, out, progress_bars=False)
    (out / "config.json").unlink()                     # only teacher/ and runs are left: not a comparison folder
    with pytest.raises(ValueError, match="holds other files and no comparison"):
        run_comparison(other, out, progress_bars=False)


@pytest.mark.parametrize("damage", ["teacher.json", "weights.pt", "config.json"])
def test_damaged_run_files_are_named_with_how_to_recover(tiny_data, tmp_path, damage, capsys):
    out = tmp_path / "out"
    cfg = make_config("quick", langs=["de"], methods=["zero-shot"], data_dir=str(tiny_data), train_overrides=TINY)
    run_comparison(cfg, out, progress_bars=False)
    path = out / "config.json" if damage == "config.json" else out / "teacher" / "split-0" / damage
    path.write_bytes(path.read_bytes()[:20])
    message = cli_error(capsys, ["compare", "--resume", str(out)])
    assert str(path) in message and ("delete" in message or "afresh" in message)


def test_a_resume_over_runs_an_earlier_version_wrote_without_a_metric_is_refused_and_changes_nothing(
        tiny_data, tmp_path, capsys):
    out = tmp_path / "out"
    run_comparison(make_config("quick", langs=["de"], methods=["zero-shot"], seeds=[0, 1], data_dir=str(tiny_data),
                               train_overrides=TINY), out, progress_bars=False)
    runs = out / "runs.jsonl"
    first, *rest = runs.read_text(encoding="utf-8").splitlines()
    old = {k: v for k, v in json.loads(first).items() if k != "ir_ndcg10"}      # as a version before ir_ndcg10
    runs.write_text("\n".join([json.dumps(old), *rest]) + "\n", encoding="utf-8")
    before = sorted(p.name for p in out.rglob("*")), runs.read_bytes()
    message = cli_error(capsys, ["compare", "--resume", str(out)])
    assert "1 of 2 runs were written by an earlier version" in message and "lack ir_ndcg10" in message
    assert "move those lines" in message and "report" in message
    assert (sorted(p.name for p in out.rglob("*")), runs.read_bytes()) == before


def test_resume_refuses_flags_that_contradict_the_saved_configuration(tiny_data, tmp_path, capsys):
    out = tmp_path / "out"
    run_comparison(make_config("quick", langs=["de"], methods=["zero-shot"], data_dir=str(tiny_data),
                               train_overrides=TINY), out, progress_bars=False)
    message = cli_error(capsys, ["compare", "--resume", str(out), "--seeds", "7"])
    assert "--seeds differ(s) from the saved configuration" in message
    message = cli_error(capsys, ["compare", "--resume", str(out), "--set", "lr=0.1"])
    assert "--set" in message


def test_an_out_that_is_a_file_is_one_clear_line(tmp_path, capsys):
    (tmp_path / "taken").write_text("x")
    message = cli_error(capsys, ["compare", "--out", str(tmp_path / "taken"), "--methods", "zero-shot", "--langs", "de"])
    assert "is a file, not a folder" in message


@pytest.mark.parametrize("make", ["empty", "not-a-model"])
def test_an_encoder_folder_that_is_not_a_checkpoint_is_named(tmp_path, make):
    folder = tmp_path / "ckpt"
    folder.mkdir()
    if make == "not-a-model":
        (folder / "config.json").write_text('{"model_type": "no-such-model"}')
        from optical_ref.encoder import load_pretrained_encoder
        with pytest.raises(ValueError, match=f"--encoder {folder}: cannot load the model"):
            load_pretrained_encoder(folder)
    else:
        with pytest.raises(FileNotFoundError, match="config.json is missing"):
            make_config("quick", encoder=str(folder))


# ------------------------------------------------------------------------------------------------
# Runs, folders and command lines: never a silent wrong number, never a user's file lost
# ------------------------------------------------------------------------------------------------
def test_encoder_prepare_never_deletes_a_folder_that_holds_other_files(tmp_path, capsys):
    mine = tmp_path / "mine"
    (mine / "other-model").mkdir(parents=True)
    (mine / "other-model" / "weights.bin").write_bytes(b"precious")
    (mine / "README.txt").write_text("mine")
    message = cli_error(capsys, ["encoder", "prepare", "e5-small", "--out", str(mine)])
    assert "holds other files" in message and "nothing was changed" in message
    assert (mine / "other-model" / "weights.bin").read_bytes() == b"precious" and (mine / "README.txt").is_file()


def test_a_diverged_student_is_recorded_as_failed_and_never_scored(tiny_data, tmp_path, monkeypatch):
    from optical_ref import train
    real = train.STUDENT_LOSSES["kd-mse"]

    def explodes(s, idx, **kw):
        return real(s, idx, **kw) * float("nan")
    monkeypatch.setitem(train.STUDENT_LOSSES, "kd-mse", explodes)
    cfg = make_config("quick", langs=["de"], methods=["zero-shot", "kd-mse"], data_dir=str(tiny_data),
                      train_overrides=TINY)
    results = run_comparison(cfg, tmp_path / "out", progress_bars=False)
    assert [r["method"] for r in results["runs"]] == ["zero-shot"]
    assert len(results["failed_runs"]) == 1 and "kd-mse diverged at step 1" in results["failed_runs"][0]["failed"]
    assert "lower lr" in results["failed_runs"][0]["failed"]
    assert "failed and are not scored" in (tmp_path / "out" / "summary.md").read_text()
    again = run_comparison(cfg, tmp_path / "out", progress_bars=False)      # a resume does not retry it forever
    assert len(again["failed_runs"]) == 1


def test_non_finite_embeddings_are_not_scored(tiny_data):
    from optical_ref.evaluate import NonFiniteEmbeddings, retrieval_ranks
    assert retrieval_ranks(torch.full((4, 3), float("nan")), torch.randn(4, 3)).tolist() == [4] * 4
    with pytest.raises(NonFiniteEmbeddings):
        raise NonFiniteEmbeddings("x")


@pytest.mark.parametrize("overrides,message", [
    ({"ot_layer": 99}, "ot_layer=99 is out of range: this encoder has 2 layers"),
    ({"ot_layer": -99}, "out of range"),
    ({"max_length": 2}, "max_length"),
    ({"kd_temperature": 1e-30}, "0.01 <= T <= 1000"),
    ({"kd_temperature": 1e30}, "0.01 <= T <= 1000"),
    ({"ot_eps": 1e-300}, "1e-4 <= eps"),
    ({"lr": 1e10}, "learning rate <= 1"),
    ({"freeze": "embeddings+99"}, "has only 2 layers"),
    ({"freeze": "embeddings+2"}, "the aligned layer is frozen"),
])
def test_every_setting_either_acts_or_is_refused_before_any_write(overrides, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        make_config("quick", train_overrides=overrides)


def test_a_teacher_whose_weights_lack_trained_keys_is_refused_naming_them(tiny_data, tmp_path, capsys):
    out = tmp_path / "out"
    run_comparison(make_config("quick", langs=["de"], methods=["zero-shot"], data_dir=str(tiny_data),
                               train_overrides=TINY), out, progress_bars=False)
    weights = out / "teacher" / "split-0" / "weights.pt"
    state = torch.load(weights, weights_only=True)
    state["encoder"] = {}
    torch.save(state, weights)
    message = cli_error(capsys, ["compare", "--resume", str(out)])
    assert "weights.pt" in message and "missing" in message and "delete" in message


def test_a_second_compare_on_a_folder_in_use_is_refused(tmp_path):
    from optical_ref.experiment.runstore import FolderLock
    with FolderLock(tmp_path):
        with pytest.raises(RunFolderError, match="in use by another compare"):
            with FolderLock(tmp_path):
                pass
    with FolderLock(tmp_path):    # released: usable again
        pass


def test_resume_with_another_out_is_refused_not_ignored(tmp_path, capsys):
    message = cli_error(capsys, ["compare", "--resume", str(tmp_path / "a"), "--out", str(tmp_path / "b")])
    assert "drop --out" in message


def test_a_run_folder_belongs_to_one_dataset_and_follows_it_when_it_moves(tiny_data, tmp_path, capsys):
    import shutil
    out = tmp_path / "out"
    cfg = make_config("quick", langs=["de"], methods=["zero-shot"], data_dir=str(tiny_data), train_overrides=TINY)
    run_comparison(cfg, out, progress_bars=False)
    moved = tmp_path / "moved"
    shutil.copytree(tiny_data, moved)
    assert "error" not in capsys.readouterr().err
    from optical_ref.__main__ import main
    assert main(["compare", "--resume", str(out), "--data-dir", str(moved)]) == 0      # the same data, elsewhere
    other = tmp_path / "other"
    shutil.copytree(tiny_data, other)
    path = next((other / "mtop").glob("*.json"))
    path.write_text(path.read_text().replace("alarm", "alarms", 1))
    message = cli_error(capsys, ["compare", "--resume", str(out), "--data-dir", str(other)])
    assert "runs made on other data" in message and str(tiny_data) in message and str(other) in message


def test_a_failed_start_leaves_no_folder_behind(tmp_path, capsys):
    out = tmp_path / "never"
    cli_error(capsys, ["compare", "--out", str(out), "--langs", "de", "--data-dir", str(tmp_path / "nowhere"),
                       "--offline"])
    assert not out.exists()


def test_training_ids_inside_the_official_test_split_are_refused_as_a_leak(tmp_path):
    import zipfile

    from conftest import official_zip
    from optical_ref.data.splits import official_mtop
    with zipfile.ZipFile(official_zip(tmp_path / "mtop.zip", langs=("en", "th"))) as zf:
        zf.extractall(tmp_path / "data")
    test = tmp_path / "data" / "mtop" / "en" / "test.txt"
    train_line = (tmp_path / "data" / "mtop" / "en" / "train.txt").read_text().splitlines()[3]
    test.write_text(test.read_text() + train_line + "\n")
    with pytest.raises(DataFormatError, match="id train3 is also in .*train.txt.*leaks"):
        official_mtop(tmp_path / "data", langs=["en", "th"], min_per_intent=3)


@pytest.mark.parametrize("text,problem", [("\u200b\u200b", "nothing but spaces or invisible"),
                                          ("spiele \ud800 musik", "lone surrogate")])
def test_sentences_no_tokenizer_can_read_are_refused_naming_file_and_item(tmp_path, text, problem):
    from conftest import write_tiny_mtop
    root = write_tiny_mtop(tmp_path / "data")
    path = root / "mtop" / "test.json"
    data = path.read_text()
    target = json.dumps(json.loads(data)[0]["question"]["en"])
    assert target in data
    path.write_text(data.replace(target, json.dumps(text), 1))
    with pytest.raises(DataFormatError, match=f"{path}: item .*{problem}"):
        reduced_mtop(root, langs=["de"])


@pytest.mark.parametrize("argv,message", [
    (["check", "frobenius", "--impl", "nosuchmod:f"], "no module 'nosuchmod' can be imported"),
    (["check", "frobenius", "--impl", "tests:f"], "is a folder"),
    (["reference", "verify", "--impl", "nosuchmod:f"], "no module 'nosuchmod'"),
    (["bench", "sinkhorn", "--sizes", "0"], "every size must be at least 2"),
    (["bench", "sinkhorn", "--repeats", "0"], "give at least 1"),
    (["bench", "distil", "--steps", "0"], "at least 1 step"),
    (["bench", "distill", "--encoder", "/missing"], "no such directory"),
    (["bench", "freeze", "--ks", "-1"], "--ks must be >= 0"),
    (["bench", "freeze", "--eval-steps", "0"], "--eval-steps >= 1"),
    (["check", "--grade", "tests", "--seed", "-1"], "integer in"),
])
def test_bad_command_lines_are_one_clear_line(argv, message, capsys):
    assert message in cli_error(capsys, argv)


def test_frobenius_without_impl_suggests_its_own_function_name(capsys):
    assert "ex03_frobenius.py:frobenius" in cli_error(capsys, ["check", "frobenius"])


def test_a_non_utf8_line_in_runs_jsonl_costs_that_line_only(tmp_path):
    (tmp_path / "runs.jsonl").write_bytes(json.dumps(record(seed=0)).encode() + b"\n\xff\xfe broken\n"
                                          + json.dumps(record(seed=1)).encode() + b"\n")
    messages = []
    assert len(read_records(tmp_path, messages.append)) == 2
    assert any("runs.jsonl:2: byte 1 is not UTF-8" in m for m in messages)


def test_a_hand_edited_config_is_named_not_a_traceback(tiny_data, tmp_path, capsys):
    out = tmp_path / "out"
    run_comparison(make_config("quick", langs=["de"], methods=["zero-shot"], data_dir=str(tiny_data),
                               train_overrides=TINY), out, progress_bars=False)
    saved = json.loads((out / "config.json").read_text())
    for damage in ({**saved, "seeds": ["x"]}, {**saved, "train": {**saved["train"], "magic": 1}}):
        (out / "config.json").write_text(json.dumps(damage))
        message = cli_error(capsys, ["compare", "--resume", str(out)])
        assert "config.json is not a valid compare configuration" in message


def test_compare_never_writes_into_a_folder_of_other_files(tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    message = cli_error(capsys, ["compare", "--out", str(mine), "--langs", "de", "--methods", "zero-shot"])
    assert "holds other files and no comparison" in message and sorted(p.name for p in mine.iterdir()) == ["notes.txt"]


def test_an_encoder_folder_without_weights_is_refused_before_any_write(tmp_path, capsys):
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    message = cli_error(capsys, ["compare", "--encoder", str(folder), "--out", str(tmp_path / "o")])
    assert "no weights" in message and not (tmp_path / "o").exists()


@pytest.mark.parametrize("damage", ["no best_dev_acc", "empty tokenizer"])
def test_damaged_teacher_summaries_and_tokenizers_are_named(tiny_data, tmp_path, capsys, damage):
    out = tmp_path / "out"
    run_comparison(make_config("quick", langs=["de"], methods=["zero-shot"], data_dir=str(tiny_data),
                               train_overrides=TINY), out, progress_bars=False)
    folder = out / "teacher" / "split-0"
    if damage == "no best_dev_acc":
        summary = json.loads((folder / "teacher.json").read_text())
        del summary["best_dev_acc"]
        (folder / "teacher.json").write_text(json.dumps(summary))
        name = "teacher.json"
    else:
        (folder / "tokenizer.json").write_text("")
        name = "tokenizer.json"
    message = cli_error(capsys, ["compare", "--resume", str(out)])
    assert str(folder / name) in message and "delete" in message


def test_a_student_whose_outputs_turn_nan_stops_as_failed_whatever_its_loss(tiny_data, tmp_path, monkeypatch):
    from optical_ref import encoder as encoder_module
    real = encoder_module.Encoder.forward
    calls = {"n": 0}

    def poisoned(self, batch):
        out = real(self, batch)
        if self.training:
            calls["n"] += 1
            out.tokens = out.tokens * float("nan")     # the OT loss would raise "C contains NaN" deep inside
        return out
    monkeypatch.setattr(encoder_module.Encoder, "forward", poisoned)
    cfg = make_config("quick", langs=["de"], methods=["zero-shot", "ot"], data_dir=str(tiny_data), train_overrides=TINY)
    results = run_comparison(cfg, tmp_path / "out", progress_bars=False)
    assert calls["n"] >= 1 and "ot diverged at step 1" in results["failed_runs"][0]["failed"]


def test_checking_an_endless_loop_fails_case_by_case_at_the_time_limit(tmp_path, capsys):
    from optical_ref.__main__ import main
    endless = tmp_path / "endless.py"
    endless.write_text("def frobenius(P, C):\n    while True:\n        try:\n            pass\n"
                       "        except Exception:\n            pass\n", encoding="utf-8")
    assert main(["check", "frobenius", "--impl", f"{endless}:frobenius", "--time-limit", "0.5"]) == 1
    out = capsys.readouterr().out
    assert out.count("ran past the time limit of 0.5 s on this case") == 2 and "not run: 2 cases" in out
    assert "--time-limit 0" in cli_error(capsys, ["check", "frobenius", "--impl", f"{endless}:frobenius",
                                                   "--time-limit", "0"])
