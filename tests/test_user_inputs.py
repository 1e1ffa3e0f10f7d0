"""A user's own files and folders, specified (issue #33): nothing a user owns is deleted or overwritten, two
writers of one folder never both "succeed", a damaged input is one clear sentence before any expensive work, and
what distil trains with is what it says it used."""
import json
import os

import pytest
import torch

from test_distil_own import QUIET, TINY, checkpoint, write_pairs  # noqa: F401  (checkpoint: a fixture)
from optical_ref.data.bitext_file import read_bitext, read_bitext_file
from optical_ref.experiment.checkpoint import OutLock
from optical_ref.experiment.distil import distil, train_settings


# ------------------------------------------------------------------------------------------------
# distil --out: never another's folder, one writer at a time, nothing stranded
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("where,message", [
    ("file/student", "is a file, so no folder can be made under it"),
    ("file", "this is a file, not a folder"),
    (".", "the folder you are working in"),
])
def test_an_out_that_cannot_be_written_is_refused_before_any_work(tmp_path, monkeypatch, where, message):
    (tmp_path / "file").write_text("mine")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=message):
        distil("no-such-encoder", tmp_path / "no-such.tsv", "ot", TINY, out=where, force=True, **QUIET)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"] and (tmp_path / "file").read_text() == "mine"


def test_a_second_distil_to_an_out_in_use_is_refused_and_the_lock_goes_with_the_first(tmp_path, checkpoint):
    out = tmp_path / "student"
    with OutLock(out):
        with pytest.raises(ValueError, match="another distil is writing this folder"):
            distil(str(checkpoint), write_pairs(tmp_path / "p.tsv"), "ot", TINY, out=out, **QUIET)
    assert not out.exists() and not (tmp_path / ".student.lock").exists()


def test_temporary_folders_a_killed_save_left_are_removed_by_the_next_distil(tmp_path, checkpoint):
    for stale in (".student.tmp-abc", ".student.old-xyz"):
        (tmp_path / stale / "previous").mkdir(parents=True)
    (tmp_path / ".other.tmp-abc").mkdir()                     # another folder's: not ours to remove
    distil(str(checkpoint), write_pairs(tmp_path / "p.tsv"), "ot", TINY, out=tmp_path / "student", **QUIET)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == [".other.tmp-abc"]


def test_the_saved_student_loads_with_automodel_without_missing_or_unexpected_weights(tmp_path, checkpoint):
    from transformers import AutoModel

    from optical_ref.encoder import load_pretrained_encoder
    distil(str(checkpoint), write_pairs(tmp_path / "p.tsv"), "ot", TINY, out=tmp_path / "s", **QUIET)
    _, info = AutoModel.from_pretrained(tmp_path / "s", output_loading_info=True)
    assert not any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys")), info
    assert load_pretrained_encoder(tmp_path / "s").model.pooler is not None   # read as saved, nothing left over


@pytest.mark.parametrize("damage", [lambda b: b[: len(b) // 2], lambda b: b"not weights at all"])
def test_damaged_encoder_weights_are_one_sentence_and_leave_no_folder(tmp_path, checkpoint, damage):
    import shutil
    broken = tmp_path / "broken"
    shutil.copytree(checkpoint, broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(damage(weights.read_bytes()))
    with pytest.raises(ValueError, match="cannot load the model; are its weights damaged"):
        distil(str(broken), write_pairs(tmp_path / "p.tsv"), "ot", TINY, out=tmp_path / "o", **QUIET)
    assert not (tmp_path / "o").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".o.")]


# ------------------------------------------------------------------------------------------------
# The bitext: headers, line endings and encodings read as meant; repeats dropped and counted
# ------------------------------------------------------------------------------------------------
PAIRS = [("play music", "spiele musik"), ("call tom", "ruf tom an")]


@pytest.mark.parametrize("encode,lang", [
    (lambda t: ("\ufeffen\tde\n" + t).encode("utf-8"), "de"),                  # a byte-order mark before the header
    (lambda t: ("English\tSpanish\n" + t).encode("utf-8"), "spanish"),         # names, upper case
    (lambda t: ("EN\tDE\n" + t).replace("\n", "\r").encode("utf-8"), "de"),    # old-Mac line endings
    (lambda t: ("en\tde\n" + t).replace("\n", "\r\n").encode("utf-16"), "de"),  # UTF-16 with its mark
])
def test_headers_line_endings_and_encodings_give_the_same_pairs(tmp_path, encode, lang):
    path = tmp_path / "p.tsv"
    path.write_bytes(encode("".join(f"{e}\t{t}\n" for e, t in PAIRS)))
    pairs = read_bitext_file(path)
    assert [(p.en, p.target) for p in pairs] == PAIRS and {p.lang for p in pairs} == {lang}


def test_utf16_without_a_byte_order_mark_is_one_clear_error(tmp_path):
    path = tmp_path / "p.tsv"
    path.write_bytes("play music\tspiele musik\n".encode("utf-16-le"))
    with pytest.raises(ValueError, match="looks like UTF-16 without a byte-order mark"):
        read_bitext_file(path)


def test_repeated_pairs_are_dropped_and_counted_unless_strict(tmp_path, checkpoint):
    path = write_pairs(tmp_path / "p.tsv", n=40)
    path.write_text(path.read_text() + "".join(line + "\n" for line in path.read_text().splitlines()[1:6]))
    assert read_bitext(path)[1] == 5 and len(read_bitext(path)[0]) == 40
    with pytest.raises(ValueError, match="the same pair as line 2"):
        distil(str(checkpoint), path, "ot", TINY, out=tmp_path / "strict", strict=True, **QUIET)
    said = []
    info = distil(str(checkpoint), path, "ot", TINY, out=tmp_path / "s", progress_bar=False, say=said.append)
    assert info["duplicates_dropped"] == 5 and info["n_pairs"] == 40
    assert any("5 repeated pair(s)" in line for line in said)


# ------------------------------------------------------------------------------------------------
# What distil trains with: the committed selection, --selection FILE, then --set; bad requests refused
# ------------------------------------------------------------------------------------------------
def test_e5_small_trains_with_the_committed_selection_and_set_goes_on_top():
    from optical_ref.experiment.presets import PRETRAINED_SELECTION
    tcfg, changed, source = train_settings("e5-small", "ot", ["ot.student_steps=5"])
    assert tcfg.lr == PRETRAINED_SELECTION["ot"]["lr"] and tcfg.ot_eps == PRETRAINED_SELECTION["ot"]["ot_eps"]
    assert tcfg.student_steps == 5 and changed["student_steps"] == 5 and "committed selection" in source


def selection_file(tmp_path, text):
    path = tmp_path / "selection.json"
    path.write_text(text if isinstance(text, str) else json.dumps(text))
    return path


GOOD = {"format": "optical-ref selection", "encoder": "e5-small", "budget": "all",
        "chosen": {"ot": {"lr": 1e-4, "student_steps": 20, "ot_eps": 0.1, "dev_score": 0.5, "spread": 0.1}}}


@pytest.mark.parametrize("content,message", [
    ("{not json", "cannot read the selection"),
    ([GOOD], "not a selection file"),
    ({**GOOD, "chosen": {"kd-mse": {"lr": 1e-4}}}, "no choice for ot"),
    ({**GOOD, "chosen": {"ot": {"lr": "fast"}}}, "ot.lr = 'fast' is not a number"),
    ({**GOOD, "chosen": {"ot": {"student_steps": 2.5}}}, "ot.student_steps = 2.5 is not an integer"),
    ({**GOOD, "chosen": {"ot": {"teacher_epochs": 2}}}, "ot.teacher_epochs is not a setting a method may choose"),
    ({**GOOD, "encoder": None}, "made for encoder the small BERT, but this run uses e5-small"),
])
def test_a_malformed_or_foreign_selection_is_one_sentence_naming_the_file(tmp_path, content, message):
    path = selection_file(tmp_path, content)
    with pytest.raises(ValueError, match=message) as err:
        train_settings("e5-small", "ot", None, selection=path)
    assert str(path) in str(err.value)
    assert train_settings("e5-small", "ot", None, selection=selection_file(tmp_path, GOOD))[0].lr == 1e-4


@pytest.mark.parametrize("kwargs,message", [
    ({"settings": ["kd-mse.lr=1e-4"]}, "this distil trains ot; give ot.KEY"),
    ({"seed": -1}, "--seed -1: expected an integer from 0"),
    ({"device": "cuda"}, "--device cuda: torch sees no CUDA device"),
])
def test_bad_distil_requests_are_one_sentence_before_any_work(tmp_path, checkpoint, monkeypatch, kwargs, message):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match=message):
        distil(str(checkpoint), write_pairs(tmp_path / "p.tsv"), "ot", **{"settings": TINY, **kwargs},
               out=tmp_path / "o", **QUIET)
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------------------------------------------
# compare --merge: every run once, nothing damaged, nothing missing unless --allow-partial says so
# ------------------------------------------------------------------------------------------------
def _shards(tiny_data, tmp_path, count=2):
    from optical_ref.experiment.compare import run_comparison
    from optical_ref.experiment.presets import make_config
    for i in range(count):
        cfg = make_config("quick", langs=["de"], methods=["zero-shot", "kd-mse"], seeds=[0, 1],
                          data_dir=str(tiny_data), train_overrides={"teacher_epochs": 1, "student_steps": 2},
                          shard=f"{i}/{count}")
        run_comparison(cfg, tmp_path / f"shard{i}", progress_bars=False)
    return [tmp_path / f"shard{i}" for i in range(count)]


def test_a_merge_refuses_missing_repeated_and_damaged_shards_and_writes_nothing(tiny_data, tmp_path):
    from optical_ref.experiment.compare import merge_folders
    a, b = _shards(tiny_data, tmp_path)
    with pytest.raises(ValueError, match="records are in none of the folders.*--allow-partial"):
        merge_folders(tmp_path / "m", [a])
    with pytest.raises(ValueError, match="hold the same run .* twice"):
        merge_folders(tmp_path / "m", [a, b, a])
    with open(b / "runs.jsonl", "a") as fh:
        fh.write('{"method": "kd-mse", "lang"\n')
    with pytest.raises(ValueError, match="has 1 damaged line"):
        merge_folders(tmp_path / "m", [a, b])
    assert not (tmp_path / "m").exists()


def test_allow_partial_merges_what_is_there_and_the_summary_says_what_is_missing_first(tiny_data, tmp_path, capsys):
    from conftest import cli_error
    from optical_ref.__main__ import main
    a, b = _shards(tiny_data, tmp_path)
    assert "records are in none" in cli_error(capsys, ["compare", "--merge", str(tmp_path / "m"), str(a)])
    assert main(["compare", "--merge", str(tmp_path / "m"), str(a), "--allow-partial"]) == 0
    first = (tmp_path / "m" / "summary.md").read_text(encoding="utf-8").splitlines()[0]
    n_missing = sum(1 for _ in open(b / "runs.jsonl"))
    assert first.startswith(f"**Partial merge: {n_missing} of ") and "missing" in first


def test_a_merge_of_shards_written_by_two_versions_is_refused_and_writes_nothing(tiny_data, tmp_path):
    import json

    from optical_ref.experiment.compare import merge_folders
    a, b = _shards(tiny_data, tmp_path)
    lines = (b / "runs.jsonl").read_text(encoding="utf-8").splitlines()
    old = [{k: v for k, v in json.loads(line).items() if not k.startswith("ir_")} for line in lines]
    (b / "runs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in old), encoding="utf-8")  # an earlier version's
    with pytest.raises(ValueError, match=f"{len(old)} of 4 runs lack ir_acc.*two versions"):
        merge_folders(tmp_path / "m", [a, b])
    assert not (tmp_path / "m").exists()
    assert merge_folders(tmp_path / "m", [b], allow_partial=True)["runs"]      # one version alone: merged


def test_a_merge_of_shards_without_runs_is_one_sentence(tiny_data, tmp_path):
    from optical_ref.experiment.compare import merge_folders
    a, b = _shards(tiny_data, tmp_path)
    (a / "runs.jsonl").write_text("")
    with pytest.raises(ValueError, match="hold no finished run"):
        merge_folders(tmp_path / "m", [a], allow_partial=True)



@pytest.mark.parametrize("command", [["bench", "sinkhorn", "--sizes", "2", "--repeats", "1"],
                                     ["check", "--grade", "SUBMISSIONS"]])
@pytest.mark.parametrize("where,message", [("missing/out.json", "does not exist"), ("folder", "that is a folder")])
def test_a_results_file_that_cannot_be_written_is_refused_before_any_work(tmp_path, capsys, monkeypatch, command,
                                                                          where, message):
    from conftest import cli_error
    import optical_ref.experiment.bench as bench
    monkeypatch.setattr(bench, "bench_sinkhorn", lambda **_: pytest.fail("the benchmark ran before the check"))
    (tmp_path / "folder").mkdir()
    (tmp_path / "SUBMISSIONS").mkdir()
    monkeypatch.chdir(tmp_path)
    assert message in cli_error(capsys, [*command, "--json", where])

# ------------------------------------------------------------------------------------------------
# select: nothing tuned silently, one writer of its folder; --workers no more than the runs left
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("argv,message", [
    (["select", "--methods", "zero-shot"], "zero-shot has nothing to tune"),
    (["select", "--set", "student_steps=5"], "--set student_steps: select trains every candidate"),
    (["select", "--set", "ot.student_steps=5"], "--set student_steps: select trains every candidate"),
])
def test_select_refuses_requests_it_would_ignore(capsys, argv, message):
    from conftest import cli_error
    assert message in cli_error(capsys, argv)


def test_select_refuses_a_folder_a_compare_holds(tiny_data, tmp_path):
    from optical_ref.experiment.presets import make_config
    from optical_ref.experiment.runstore import FolderLock, RunFolderError
    from optical_ref.experiment.selection import run_selection
    cfg = make_config("quick", langs=["de"], methods=["zero-shot", "kd-mse"], data_dir=str(tiny_data),
                      train_overrides={"teacher_epochs": 1})
    (tmp_path / "sel").mkdir()
    with FolderLock(tmp_path / "sel"):
        with pytest.raises(RunFolderError, match="is in use"):
            run_selection(cfg, tmp_path / "sel", ["kd-mse"], [1], say=lambda *_: None)


def test_workers_start_no_more_processes_than_runs_left(monkeypatch):
    from optical_ref.experiment import workers
    started = []

    class Pool:
        def __init__(self, n, **_):
            started.append(n)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def imap_unordered(self, fn, jobs):
            return iter([])

    monkeypatch.setattr(workers.multiprocessing, "get_context", lambda _: type("C", (), {"Pool": Pool})())
    cfg = type("Cfg", (), {"as_saved": lambda self: {}})()
    list(workers.run_in_processes(cfg, 0, None, "out", jobs=[{}, {}], workers=8))
    assert started == [2]


@pytest.mark.parametrize("damage", [lambda b: b[: len(b) // 2], lambda b: b"\x00" * 16])
def test_a_prepared_encoder_with_damaged_weights_is_not_ready(tmp_path, checkpoint, damage):
    import shutil

    from optical_ref.pretrained import weights_readable
    folder = tmp_path / "e"
    shutil.copytree(checkpoint, folder)
    assert weights_readable(folder)
    weights = folder / "model.safetensors"
    weights.write_bytes(damage(weights.read_bytes()))
    assert not weights_readable(folder)


def test_compare_selection_with_eval_steps_names_selection_not_set(tmp_path, capsys):
    from conftest import cli_error
    path = selection_file(tmp_path, GOOD)
    err = cli_error(capsys, ["compare", "--selection", str(path), "--eval-steps", "20"])
    assert f"--selection {path}" in err and "--eval-steps" in err and "--set" not in err


@pytest.mark.parametrize("content", ['{"kind": "sinkhorn", "results": {"x": 1}}', "[" * 100000 + "]" * 100000,
                                     '{"kind": "sinkhorn", "results": {"x": {"plan": [[1]]}}}', '{"results": {"a": []}}'])
def test_reference_verify_on_a_damaged_results_file_exits_with_a_report_or_one_sentence(tmp_path, capsys, content):
    from optical_ref.__main__ import main
    path = tmp_path / "r.json"
    path.write_text(content)
    assert main(["reference", "verify", "--results", str(path)]) in (1, 2)      # never a traceback
    err = capsys.readouterr().err
    assert "Traceback" not in err and (not err or err.startswith("error: "))
