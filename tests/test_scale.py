"""The comparison at scale, specified: a cached frozen prefix changes the cost and nothing else; a learning curve
from one run equals separate runs; workers, shards and merges give the records of one plain run; concurrent
appends to the run store lose nothing."""
import json

import pytest
import torch

from optical_ref.encoder import FrozenPrefix, IntentHead, build_encoder
from optical_ref.text import train_tokenizer
from optical_ref.train import TrainConfig, teacher_outputs, train_student

ENGLISH = ["play some music now", "what is the weather today", "set an alarm for six", "call my mother please",
           "turn the lights off", "remind me to buy milk"] * 3
TARGET = ["spiele etwas musik jetzt", "wie ist das wetter heute", "stelle einen wecker auf sechs",
          "ruf bitte meine mutter an", "mach das licht aus", "erinnere mich milch zu kaufen"] * 3


@pytest.fixture(scope="module")
def models():
    tokenizer = train_tokenizer(ENGLISH + TARGET, vocab_size=300, min_frequency=1)
    encoder = build_encoder(len(tokenizer), seed=0, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                            layer=-1)
    head = IntentHead(encoder.dim, 6)
    encoder.eval()
    for p in encoder.parameters():
        p.requires_grad_(False)
    english_side = teacher_outputs(encoder, head, tokenizer, ENGLISH)
    return tokenizer, encoder, head, english_side


def _train(models, method, freeze, cached, layer=-1, steps=6, eval_steps=(), on_eval=None):
    tokenizer, encoder, head, english_side = models
    encoder.layer = layer
    cfg = TrainConfig(student_steps=steps, batch_size=4, lr=1e-3, freeze=freeze, ot_n_iter=20)
    prefix = FrozenPrefix(encoder, tokenizer, int(freeze.split("+")[1])) if cached else None
    return train_student(method, encoder, head, tokenizer, TARGET, cfg, seed=3, teacher=english_side,
                         frozen_prefix=prefix, eval_steps=eval_steps, on_eval=on_eval)


@pytest.mark.parametrize("method,freeze,layer", [("kd-mse", "embeddings+1", -1), ("ot", "embeddings+1", -1),
                                                ("ot", "embeddings+2", 3), ("kd-mse", "embeddings+2", 1)])
def test_a_cached_frozen_prefix_gives_the_weights_and_outputs_of_the_full_forward(models, method, freeze, layer):
    plain, plain_losses = _train(models, method, freeze, cached=False, layer=layer)
    cached, cached_losses = _train(models, method, freeze, cached=True, layer=layer)
    assert cached_losses == pytest.approx(plain_losses, abs=1e-5)
    for (name, a), (_, b) in zip(plain.state_dict().items(), cached.state_dict().items()):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0, msg=name)
    tokenizer = models[0]
    batch = plain.batch(tokenizer, TARGET[:5])
    out_plain, out_cached = plain(batch), cached(cached.batch(tokenizer, TARGET[:5]))
    torch.testing.assert_close(out_cached.sentence, out_plain.sentence, atol=1e-5, rtol=0)
    torch.testing.assert_close(out_cached.tokens[out_plain.token_mask], out_plain.tokens[out_plain.token_mask],
                               atol=1e-5, rtol=0)


def test_a_frozen_prefix_refuses_a_depth_the_freeze_setting_does_not_have(models):
    with pytest.raises(ValueError, match="frozen prefix covers 1 layers but freeze=embeddings\\+2"):
        train_student("kd-mse", models[1], models[2], models[0], TARGET, TrainConfig(student_steps=2, freeze="embeddings+2"), 0,
            teacher=models[3], frozen_prefix=FrozenPrefix(models[1], models[0], 1))


def test_a_learning_curve_point_is_the_separate_run_of_that_many_steps(models):
    seen = {}
    _train(models, "ot", "embeddings+1", cached=True, steps=7, eval_steps=(2, 5, 7),
           on_eval=lambda step, student, losses: seen.__setitem__(step, {k: v.clone() for k, v in
                                                                           student.state_dict().items()}))
    assert sorted(seen) == [2, 5, 7]
    for steps in (2, 5):
        alone, _ = _train(models, "ot", "embeddings+1", cached=True, steps=steps)
        for name, value in alone.state_dict().items():
            torch.testing.assert_close(seen[steps][name], value, atol=0, rtol=0, msg=f"{steps} steps: {name}")


# ------------------------------------------------------------------------------------------------
# The comparison: curves, workers, shards, merges
# ------------------------------------------------------------------------------------------------
TINY = {"teacher_epochs": 1, "student_steps": 3}


def _records(folder):
    keep = lambda r: {k: v for k, v in r.items() if k not in ("train_seconds", "ms_per_step")}
    return sorted((keep(json.loads(line)) for line in (folder / "runs.jsonl").read_text().splitlines()),
                  key=lambda r: json.dumps(r, sort_keys=True))


def _config(tiny_data, **kwargs):
    from optical_ref.experiment.presets import make_config
    args = dict(langs=["de"], methods=["zero-shot", "kd-mse", "ot"], seeds=[0, 1], data_dir=str(tiny_data),
                train_overrides=TINY)
    return make_config("quick", **{**args, **kwargs})


def test_a_curve_record_at_s_steps_is_the_record_of_a_separate_s_step_run(tiny_data, tmp_path):
    from optical_ref.experiment.compare import run_comparison
    from optical_ref.experiment.presets import make_config
    curve = run_comparison(_config(tiny_data, eval_steps=[1, 3], train_overrides={"teacher_epochs": 1}),
                           tmp_path / "curve", progress_bars=False)
    run_comparison(_config(tiny_data, train_overrides={"teacher_epochs": 1, "student_steps": 1}), tmp_path / "alone",
                   progress_bars=False)
    at_1 = [r for r in _records(tmp_path / "curve") if r["steps"] in (0, 1)]
    assert len(at_1) == 6 and at_1 == _records(tmp_path / "alone")    # zero-shot and 2 methods, 2 seeds each
    assert {r["steps"] for r in curve["runs"]} == {0, 1, 3}
    assert make_config("quick", eval_steps=["40", "20"]).train["student_steps"] == 40


def test_the_report_of_a_curve_reads_each_run_at_its_last_step_and_draws_the_curve(tiny_data, tmp_path):
    from optical_ref.experiment.compare import run_comparison
    curve = run_comparison(_config(tiny_data, eval_steps=[1, 3], train_overrides={"teacher_epochs": 1}),
                           tmp_path / "curve", progress_bars=False)
    alone = run_comparison(_config(tiny_data, train_overrides={"teacher_epochs": 1, "student_steps": 3}),
                           tmp_path / "alone", progress_bars=False)
    assert curve["analysis"]["to_reference"] == alone["analysis"]["to_reference"]
    tables = [(tmp_path / name / "summary.md").read_text(encoding="utf-8").split("## Does OT beat")[1]
              for name in ("curve", "alone")]
    assert tables[0] == tables[1], "the curve's tables are those of the run that trained to its last step"
    assert (tmp_path / "curve" / "curve.png").is_file() and not (tmp_path / "alone" / "curve.png").exists()


def test_two_workers_give_the_records_of_one(tiny_data, tmp_path):
    from optical_ref.experiment.compare import run_comparison
    run_comparison(_config(tiny_data), tmp_path / "one", progress_bars=False)
    run_comparison(_config(tiny_data), tmp_path / "two", progress_bars=False, workers=2)
    assert _records(tmp_path / "two") == _records(tmp_path / "one")


def test_shards_merged_are_one_unsharded_run(tiny_data, tmp_path):
    from optical_ref.experiment.compare import merge_folders, run_comparison
    whole = run_comparison(_config(tiny_data), tmp_path / "whole", progress_bars=False)
    for i in range(3):
        run_comparison(_config(tiny_data, shard=f"{i}/3"), tmp_path / f"shard{i}", progress_bars=False)
    sizes = [len(_records(tmp_path / f"shard{i}")) for i in range(3)]
    assert all(sizes) and sum(sizes) == len(_records(tmp_path / "whole"))
    merged = merge_folders(tmp_path / "merged", [tmp_path / f"shard{i}" for i in range(3)])
    assert _records(tmp_path / "merged") == _records(tmp_path / "whole")
    assert merged["analysis"]["to_reference"] == whole["analysis"]["to_reference"]


def test_a_merge_refuses_other_configurations_and_conflicting_records(tiny_data, tmp_path):
    from optical_ref.experiment.compare import merge_folders, run_comparison
    run_comparison(_config(tiny_data, shard="0/2"), tmp_path / "a", progress_bars=False)
    run_comparison(_config(tiny_data, shard="1/2", seeds=[0, 2]), tmp_path / "b", progress_bars=False)
    with pytest.raises(ValueError, match="hold different comparisons \\(differ in: seeds\\)"):
        merge_folders(tmp_path / "m1", [tmp_path / "a", tmp_path / "b"])
    run_comparison(_config(tiny_data, shard="0/2"), tmp_path / "c", progress_bars=False)
    lines = (tmp_path / "c" / "runs.jsonl").read_text().splitlines()
    forged = json.loads(lines[-1])
    forged["intent_acc"] = 1.0 - forged["intent_acc"]
    (tmp_path / "c" / "runs.jsonl").write_text("\n".join(lines[:-1] + [json.dumps(forged)]) + "\n")
    with pytest.raises(ValueError, match="hold the same run .* with different results"):
        merge_folders(tmp_path / "m2", [tmp_path / "a", tmp_path / "c"])
    assert not (tmp_path / "m2" / "runs.jsonl").exists()


def _append_many(args):
    from optical_ref.experiment.runstore import append_record
    folder, writer, n = args
    for i in range(n):
        append_record(folder, {"method": "ot", "lang": "de", "budget": "all", "seed": i, "split_seed": writer,
                               "steps": 1, "intent_acc": 0.5, "padding": "x" * 5000})


def test_concurrent_appends_lose_nothing_and_never_interleave(tmp_path):
    import multiprocessing

    from optical_ref.experiment.runstore import read_records
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        pool.map(_append_many, [(str(tmp_path), w, 50) for w in range(4)])
    messages = []
    records = read_records(tmp_path, messages.append)
    assert not messages and len(records) == 200
    assert {(r["split_seed"], r["seed"]) for r in records} == {(w, i) for w in range(4) for i in range(50)}


# ------------------------------------------------------------------------------------------------
# Each method its own settings; an equal tuning budget, label-free
# ------------------------------------------------------------------------------------------------
def test_a_method_setting_changes_that_method_only(tiny_data, tmp_path):
    from optical_ref.experiment.compare import run_comparison
    from optical_ref.config import parse_settings
    cfg = _config(tiny_data, train_overrides={**TINY, **parse_settings(["ot.student_steps=2", "ot.lr=0.01"])})
    assert cfg.method_train == {"ot": {"student_steps": 2, "lr": 0.01}}
    assert cfg.train_for("ot")["lr"] == 0.01 and cfg.train_for("kd-mse")["lr"] == cfg.train["lr"]
    results = run_comparison(cfg, tmp_path / "out", progress_bars=False)
    assert {(r["method"], r["steps"]) for r in results["runs"]} == {("zero-shot", 0), ("kd-mse", 3), ("ot", 2)}


@pytest.mark.parametrize("item,message", [("magic.lr=1", "unknown method 'magic'"),
                                          ("ot.teacher_epochs=3", "cannot differ between methods"),
                                          ("ot.lr=-1", "lr")])
def test_method_settings_are_checked_like_shared_ones(item, message):
    from optical_ref.config import parse_settings
    from optical_ref.experiment.presets import make_config
    with pytest.raises(ValueError, match=message):
        make_config("quick", train_overrides=parse_settings([item]))


def test_every_method_gets_the_same_number_of_configurations():
    from optical_ref.experiment.selection import KNOBS, configurations
    sizes = {m: len(configurations(m, 1e-4)) for m in KNOBS}
    assert set(sizes.values()) == {6}, sizes


def test_selection_chooses_per_method_from_one_curve_and_compare_reads_it(tiny_data, tmp_path):
    from optical_ref.__main__ import build_parser
    from optical_ref.experiment.compare import config_from_args
    from optical_ref.experiment.selection import run_selection
    from optical_ref.experiment.presets import make_config
    cfg = make_config("quick", langs=["de"], methods=["zero-shot", "kd-mse", "ot"], data_dir=str(tiny_data),
                      train_overrides={"teacher_epochs": 1})
    result = run_selection(cfg, tmp_path / "sel", methods=["kd-mse", "ot"], eval_steps=[1, 2], say=lambda *_: None)
    assert set(result["chosen"]) == {"kd-mse", "ot"}
    assert len([c for c in result["candidates"] if c["method"] == "ot"]) == 6 * 2       # 6 configurations x 2 steps
    assert all(c["per_lang"]["de"]["score"] >= 0 for c in result["candidates"])
    assert result["chosen"]["ot"]["student_steps"] in (1, 2) and "ot_eps" in result["chosen"]["ot"]
    table = (tmp_path / "sel" / "selection.md").read_text(encoding="utf-8")
    assert f"| ot | lr {result['chosen']['ot']['lr']:g}" in table and f"{result['chosen']['ot']['dev_score']:.4f}" in table
    args = build_parser().parse_args(["compare", "--langs", "de", "--methods", "kd-mse", "ot", "--data-dir",
                                                str(tiny_data), "--selection", str(tmp_path / "sel" / "selection.json")])
    compare_cfg = config_from_args(args)
    assert compare_cfg.method_train["ot"]["ot_eps"] == result["chosen"]["ot"]["ot_eps"]
    assert compare_cfg.method_train["kd-mse"]["lr"] == result["chosen"]["kd-mse"]["lr"]


def test_a_configuration_that_diverged_in_one_language_is_failed_at_every_step():
    """Its points from before the breakdown do not count either: it is never chosen."""
    from optical_ref.experiment.selection import candidate_rows
    good = {"score": 0.9}
    curve = {20: {"hi": good, "th": good}, 40: {"hi": good}}              # th diverged between steps 20 and 40
    rows = candidate_rows("ot", {"lr": 1e-4}, curve, ["hi", "th"], [20, 40])
    assert [r["score"] for r in rows] == [None, None] and all(r["failed"] for r in rows)
    whole = candidate_rows("ot", {"lr": 1e-4}, {20: {"hi": good, "th": {"score": 0.7}}}, ["hi", "th"], [20])
    assert whole[0]["score"] == pytest.approx(0.8) and not whole[0]["failed"]


def test_a_selection_rerun_into_its_folder_reuses_finished_configurations(tiny_data, tmp_path):
    from optical_ref.experiment.presets import make_config
    from optical_ref.experiment.selection import CANDIDATES_FILE, run_selection
    cfg = make_config("quick", langs=["de"], methods=["zero-shot", "kd-mse"], data_dir=str(tiny_data),
                      train_overrides={"teacher_epochs": 1})
    first = run_selection(cfg, tmp_path / "sel", methods=["kd-mse"], eval_steps=[1, 2], say=lambda *_: None)
    lines = (tmp_path / "sel" / CANDIDATES_FILE).read_text(encoding="utf-8").splitlines()
    assert len(lines) == 6
    said = []
    again = run_selection(cfg, tmp_path / "sel", methods=["kd-mse"], eval_steps=[1, 2], say=said.append)
    assert (tmp_path / "sel" / CANDIDATES_FILE).read_text(encoding="utf-8").splitlines() == lines, "nothing retrained"
    assert sum("done before" in line for line in said) == 6
    assert again["candidates"] == first["candidates"] and again["chosen"] == first["chosen"]


def test_a_selection_at_a_budget_trains_every_candidate_on_the_pairs_compare_gives_seed_0(tiny_data, tmp_path,
                                                                                       monkeypatch):
    """Settings that suit all pairs overfit a few: a low-budget comparison is tuned at its own budget, on exactly
    the subset its seed-0 run trains on, and the candidates of one budget are never reused for another."""
    import optical_ref.train
    from optical_ref.experiment.presets import make_config
    from optical_ref.experiment.selection import CANDIDATES_FILE, run_selection
    from optical_ref.experiment.stages import stage_setting
    seen, real = [], optical_ref.train.train_student
    monkeypatch.setattr(optical_ref.train, "train_student",
                        lambda method, init, head, tok, sentences, *a, **k: (seen.append(list(sentences)),
                                                                             real(method, init, head, tok, sentences,
                                                                                  *a, **k))[1])
    cfg = make_config("quick", langs=["de"], methods=["zero-shot", "kd-mse"], data_dir=str(tiny_data),
                      train_overrides={"teacher_epochs": 1})
    result = run_selection(cfg, tmp_path / "sel", methods=["kd-mse"], eval_steps=[1], say=lambda *_: None, budget=3)
    _, subset = stage_setting(cfg, cfg.split_seeds[0]).budget_pairs("de", 3, 0)
    assert result["budget"] == 3 and len(seen) == 6
    assert all(sentences == [p.target for p in subset] for sentences in seen)
    assert "training budget: 3 pairs" in (tmp_path / "sel" / "selection.md").read_text(encoding="utf-8")
    seen.clear()
    run_selection(cfg, tmp_path / "sel", methods=["kd-mse"], eval_steps=[1], say=lambda *_: None)
    assert len(seen) == 6 and all(len(s) > 3 for s in seen), "all pairs: the budget-3 candidates are not reused"
    assert len((tmp_path / "sel" / CANDIDATES_FILE).read_text(encoding="utf-8").splitlines()) == 12
    with pytest.raises(ValueError, match="--budget: a budget must be a positive integer"):
        run_selection(cfg, tmp_path / "bad", methods=["kd-mse"], eval_steps=[1], say=lambda *_: None, budget="20x")
    with pytest.raises(ValueError, match="larger than the"):
        run_selection(cfg, tmp_path / "big", methods=["kd-mse"], eval_steps=[1], say=lambda *_: None, budget=10**6)


def _shared(train: dict) -> dict:
    """The training settings every method and step of a run shares (what a selection must have run with)."""
    return {k: v for k, v in train.items() if k not in ("student_steps", "device")}


def _shared_at_selection(selection: dict) -> dict:
    # a setting added after the selection ran is compared at its default (the value the selection used:
    # ot_marginals=uniform is today's loss bit for bit)
    return _shared({**TrainConfig().as_dict(), **selection["train"]})


@pytest.mark.parametrize("presets, folder", [(("pretrained", "pretrained-full"), "pretrained"),
                                             (("pretrained-low",), "pretrained-low")])
def test_pretrained_presets_train_each_method_with_the_committed_label_free_selection(presets, folder):
    """The presets read the selection that `select` wrote (committed beside the results): every distillation
    method's lr, steps and knob, at the freeze setting and the budget the selection ran with."""
    from pathlib import Path

    from optical_ref.experiment.presets import make_config
    from optical_ref.experiment.selection import KNOBS, method_settings_from
    path = Path(__file__).resolve().parents[1] / "tutorials" / "results" / folder / "selection.json"
    chosen = method_settings_from(path)
    selection = json.loads(path.read_text(encoding="utf-8"))
    for preset in presets:
        cfg = make_config(preset)
        assert set(KNOBS) & set(cfg.methods) <= set(chosen), f"{preset}: the selection covers every method it trains"
        assert selection.get("budget", "all") in cfg.budgets, f"{preset}: tuned at a budget it does not compare"
        assert _shared(cfg.train) == _shared_at_selection(selection), \
            f"{preset}: select ran with other shared settings; rerun it or align the preset"
        for method in (m for m in KNOBS if m in cfg.methods):
            assert cfg.train_for(method) == {**cfg.train, **chosen[method]}, (preset, method)


def test_a_selection_made_at_a_budget_trains_that_budget_only(tiny_data, tmp_path, monkeypatch):
    """A preset's ``budget_train`` (the selection made at one budget) sets that budget's runs; the other budgets keep
    the settings shared by every budget."""
    from optical_ref.experiment import presets
    from optical_ref.experiment.compare import list_runs, run_comparison
    monkeypatch.setitem(presets.PRESETS, "per-budget", {
        **presets.PRESETS["quick"], "langs": ["de"], "budgets": [4, "all"], "methods": ["zero-shot", "ot"],
        "train": {"teacher_epochs": 1, "student_steps": 3},
        "budget_train": {"4": {"ot": {"student_steps": 2, "lr": 1e-4}}, "100": {"ot": {"student_steps": 9}}}})
    cfg = presets.make_config("per-budget", data_dir=str(tiny_data))
    assert cfg.budget_train == {"4": {"ot": {"student_steps": 2, "lr": 1e-4}}}       # budgets it does not run: dropped
    assert cfg.train_for("ot", 4)["lr"] == 1e-4 and cfg.train_for("ot", "all")["lr"] == cfg.train["lr"]
    steps = {(r["method"], r["budget"]): r["steps"] for r in list_runs(cfg)}
    assert steps[("ot", 4)] == [2] and steps[("ot", "all")] == [3]
    import optical_ref.train as train_module
    real, used = train_module.train_student, {}

    def spy(method, *args, **kwargs):
        used[len(args[3])] = args[4].lr                # pairs trained on -> the learning rate it trained with
        return real(method, *args, **kwargs)
    monkeypatch.setattr(train_module, "train_student", spy)
    results = run_comparison(cfg, tmp_path / "run", progress_bars=False)
    trained = {(r["budget"]): r["steps"] for r in results["runs"] if r["method"] == "ot"}
    assert trained == {4: 2, "all": 3}
    assert used[4] == 1e-4 and [lr for n, lr in used.items() if n != 4] == [cfg.train["lr"]]


# ---- the selection's tie rule and its edge extension ----------------------------------------------------------
def _rows(method, scores, knob=None):
    """Candidate rows {lr: score} at one step (the shape select writes)."""
    return [{"method": method, "lr": lr, "student_steps": 40, "score": score, **({knob: 0.05} if knob else {})}
            for lr, score in scores.items()]


def test_dev_differences_smaller_than_one_dev_sentence_are_ties_and_the_cheaper_setting_wins():
    from optical_ref.experiment.selection import choose
    rows = _rows("kd-mse", {1e-5: 0.900, 2e-5: 0.905, 3e-5: 0.899})
    assert choose(rows, tolerance=0.01)["lr"] == 1e-5          # 0.005 apart: one sentence of 100 is 0.01
    assert choose(rows, tolerance=0.001)["lr"] == 2e-5


def test_a_choice_at_the_edge_of_its_grid_is_extended_once_in_that_direction_unless_the_inside_ties():
    from optical_ref.experiment.selection import extended_factors
    rising = _rows("ot", {1e-5: 0.80, 3e-5: 0.85, 1e-4: 0.90}, "ot_eps")
    assert extended_factors("ot", rising, 1e-5, tolerance=0.01) == [30]
    falling = _rows("ot", {1e-5: 0.90, 3e-5: 0.85, 1e-4: 0.80}, "ot_eps")
    assert extended_factors("ot", falling, 1e-5, tolerance=0.01) == [1 / 3]
    flat_top = _rows("ot", {1e-5: 0.80, 3e-5: 0.895, 1e-4: 0.90}, "ot_eps")
    assert extended_factors("ot", flat_top, 1e-5, tolerance=0.01) == []       # the inside ties: not the edge's doing
    peaked = _rows("ot", {1e-5: 0.80, 3e-5: 0.95, 1e-4: 0.90}, "ot_eps")
    assert extended_factors("ot", peaked, 1e-5, tolerance=0.01) == []


def test_select_extends_a_rate_at_the_edge_and_says_what_still_sits_at_one(tiny_data, tmp_path, monkeypatch):
    from optical_ref.experiment import selection
    from optical_ref.experiment.presets import make_config

    def rising(ctx, method, settings, lang, eval_steps, frozen_prefix=None, curve=None, budget="all"):
        for step in eval_steps:            # the dev score grows with the learning rate: the grid's top is not enough
            score = settings.lr / cfg.train["lr"] * 0.1 + step * 0.3 + (settings.ot_eps == 0.1) * 0.3   # steps of a
            curve[step] = {"mrr10": 0.5, "late_mrr10": 0.5, "score": score}   # sentence: 1/4 here (4 dev pairs)
        return curve, 0.0
    monkeypatch.setattr(selection, "dev_curve", rising)
    cfg = make_config("quick", langs=["de"], methods=["zero-shot", "ot"], data_dir=str(tiny_data),
                      train_overrides={"teacher_epochs": 1})
    result = selection.run_selection(cfg, tmp_path / "sel", ["ot"], [1, 2], say=lambda *_: None)
    lrs = sorted({c["lr"] for c in result["candidates"]})
    assert [round(lr / cfg.train["lr"], 6) for lr in lrs] == [1, 3, 10, 30]          # one extension, both eps
    assert len(result["candidates"]) == 8 * 2 and result["chosen"]["ot"]["lr"] == lrs[-1]
    assert result["edges"]["ot"] == {"lr": "high", "student_steps": "high", "ot_eps": "high"}
    assert "- ot: lr at the high edge, student_steps at the high edge, ot_eps at the high edge" in \
        (tmp_path / "sel" / "selection.md").read_text()


@pytest.mark.parametrize("budget", ["20", "100", "all"])
def test_the_retrieval_presets_train_each_budget_with_the_selection_made_at_that_budget(budget):
    """#29: each budget of the declared design trains with the label-free choice `select --budget B` made there
    (committed as tutorials/results/retrieval/selection-B.json), and the selection ran with the preset's shared
    settings; a budget never borrows another budget's choice."""
    from pathlib import Path

    from optical_ref.experiment.presets import make_config
    from optical_ref.experiment.selection import KNOBS, method_settings_from
    path = Path(__file__).resolve().parents[1] / "tutorials" / "results" / "retrieval" / f"selection-{budget}.json"
    selection = json.loads(path.read_text(encoding="utf-8"))
    assert str(selection["budget"]) == budget
    for preset in ("retrieval", "retrieval-full"):
        cfg = make_config(preset)
        chosen = method_settings_from(path, encoder=cfg.encoder, methods=[m for m in cfg.methods if m in KNOBS],
                                      budgets=cfg.budgets)
        assert _shared(cfg.train) == _shared_at_selection(selection), preset
        run_budget = next(b for b in cfg.budgets if str(b) == budget)
        for method in (m for m in KNOBS if m in cfg.methods):
            assert cfg.train_for(method, run_budget) == {**cfg.train, **chosen[method]}, (preset, method)
