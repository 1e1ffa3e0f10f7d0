"""Distillation, specified: each loss on hand-made tensors, one training step of every method, the
comparison end to end (quick preset), the local-checkpoint path, and the errors raised before training."""
import csv
import json

import pytest
import torch

from conftest import SHARED, cli_error
from optical_ref.experiment.compare import make_config, run_comparison
from optical_ref.data.paths import holds_data
from optical_ref.encoder import IntentHead, build_encoder, load_pretrained_encoder
from optical_ref.losses import kd_kl, kd_mse, ot_distill
from optical_ref.text import load_tokenizer, train_tokenizer
from optical_ref.train import DISTILLATION_METHODS, METHODS, TrainConfig, teacher_outputs, train_student

OT = {"eps": 0.05, "n_iter": 50, "grad": "envelope", "cost": "cosine"}   # the training values (TrainConfig)
needs_shared = pytest.mark.skipif(not holds_data(SHARED), reason=f"the shared data is not at {SHARED}")


# ------------------------------------------------------------------------------------------------
# The losses on hand-made tensors
# ------------------------------------------------------------------------------------------------
def test_kd_mse_is_zero_for_identical_embeddings_and_positive_otherwise():
    x = torch.randn(4, 8)
    assert kd_mse(x, x.clone()) == 0
    assert kd_mse(x, x + 0.1) > 0


def test_kd_kl_is_zero_for_identical_logits_and_scaled_by_t_squared():
    z = torch.randn(4, 5)
    assert kd_kl(z, z.clone(), temperature=3.0).abs() < 1e-7
    other = torch.randn(4, 5)
    # T^2 KL(p_t || p_s) with T = 1 is the plain KL
    plain = torch.nn.functional.kl_div(other.log_softmax(-1), z.log_softmax(-1), log_target=True, reduction="batchmean")
    assert kd_kl(other, z, temperature=1.0) == pytest.approx(float(plain), rel=1e-6)
    assert kd_kl(other, z, temperature=4.0) > 0


def test_ot_loss_is_zero_when_token_sets_coincide_and_larger_when_shuffled_into_others():
    torch.manual_seed(0)
    tokens = torch.randn(2, 5, 16)
    mask = torch.ones(2, 5, dtype=torch.bool)
    same = ot_distill(tokens, tokens[:, torch.randperm(5)], mask, mask, **dict(OT, eps=0.01, n_iter=200))
    perturbed = ot_distill(tokens, tokens + 0.8 * torch.randn_like(tokens), mask, mask, **dict(OT, eps=0.01, n_iter=200))
    assert same < 0.02          # a permutation of the same tokens costs (almost) nothing: OT re-pairs them
    assert perturbed > 5 * same


def test_padding_never_changes_the_ot_loss():
    torch.manual_seed(1)
    s_tokens, t_tokens = torch.randn(1, 4, 8), torch.randn(1, 6, 8)
    s_mask, t_mask = torch.ones(1, 4, dtype=torch.bool), torch.ones(1, 6, dtype=torch.bool)
    pad_s = torch.cat([s_tokens, torch.randn(1, 3, 8)], 1)           # garbage in the padding
    pad_t = torch.cat([t_tokens, torch.zeros(1, 2, 8)], 1)           # zero vectors in the padding
    pad_s_mask = torch.cat([s_mask, torch.zeros(1, 3, dtype=torch.bool)], 1)
    pad_t_mask = torch.cat([t_mask, torch.zeros(1, 2, dtype=torch.bool)], 1)
    torch.testing.assert_close(ot_distill(s_tokens, t_tokens, s_mask, t_mask, **OT),
                               ot_distill(pad_s, pad_t, pad_s_mask, pad_t_mask, **OT), atol=1e-6, rtol=0)


@pytest.mark.parametrize("grad", ["envelope", "unrolled"])
def test_ot_loss_gradients_are_finite(grad):
    torch.manual_seed(2)
    x = torch.randn(3, 5, 8, requires_grad=True)
    y = torch.randn(3, 4, 8)
    mask_x = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]], dtype=torch.bool)
    mask_y = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1], [1, 1, 1, 0]], dtype=torch.bool)
    ot_distill(x, y, mask_x, mask_y, **dict(OT, grad=grad)).backward()
    assert torch.isfinite(x.grad).all()
    assert torch.all(x.grad[~mask_x] == 0)      # padded tokens get no gradient


# ------------------------------------------------------------------------------------------------
# A training step of every method lowers its loss on a tiny batch
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_models():
    english = ["play music", "weather today", "set alarm", "call mom"] * 2
    target = ["spiele musik", "wetter heute", "stelle wecker", "rufe mama"] * 2
    tokenizer = train_tokenizer(english + target, vocab_size=200, min_frequency=1)
    encoder = build_encoder(len(tokenizer), seed=0, hidden_size=32, intermediate_size=64,
                            hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    head = IntentHead(encoder.dim, 4)
    encoder.eval()
    return tokenizer, encoder, head, english, target


def test_padding_never_changes_a_sentence_embedding_so_never_the_kd_losses(tiny_models):
    tokenizer, encoder, head, english, target = tiny_models
    alone = encoder(encoder.batch(tokenizer, ["play music"]))
    padded = encoder(encoder.batch(tokenizer, ["play music", "set alarm call mom weather today play"]))
    assert padded.tokens.shape[1] > alone.tokens.shape[1]              # the first sentence really is padded
    torch.testing.assert_close(padded.sentence[:1], alone.sentence, atol=1e-5, rtol=0)
    teacher = torch.randn(1, encoder.dim)
    torch.testing.assert_close(kd_mse(padded.sentence[:1], teacher), kd_mse(alone.sentence, teacher), atol=1e-5, rtol=0)
    logits_alone, logits_padded = head(alone.sentence), head(padded.sentence[:1])
    z = torch.randn_like(logits_alone)
    torch.testing.assert_close(kd_kl(logits_padded, z, 2.0), kd_kl(logits_alone, z, 2.0), atol=1e-5, rtol=0)


@pytest.mark.parametrize("method", [m for m in METHODS if m != "zero-shot"])
def test_training_lowers_the_loss_on_a_tiny_batch_for_every_method(tiny_models, method):
    tokenizer, encoder, head, english, target = tiny_models
    cfg = TrainConfig(batch_size=8, lr=1e-2, student_steps=15)
    teacher = teacher_outputs(encoder, head, tokenizer, english)
    teacher.docs = teacher_outputs(encoder, head, tokenizer, english)   # kd-score's documents: the same sentences
    labels = [0, 1, 2, 3] * 2
    _, losses = train_student(method, encoder, head, tokenizer, target, cfg, seed=0, teacher=teacher,
                              target_labels=labels)
    assert len(losses) == 15 and all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < losses[0]


def test_a_student_never_changes_the_teacher(tiny_models):
    tokenizer, encoder, head, english, target = tiny_models
    before = [p.clone() for p in list(encoder.parameters()) + list(head.parameters())]
    teacher = teacher_outputs(encoder, head, tokenizer, english)
    train_student("ot+kd", encoder, head, tokenizer, target, TrainConfig(batch_size=8, student_steps=3), 0,
                  teacher=teacher)
    after = list(encoder.parameters()) + list(head.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, after))


# ------------------------------------------------------------------------------------------------
# The comparison end to end
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    if not holds_data(SHARED):
        pytest.skip(f"the shared data is not at {SHARED}")
    out = tmp_path_factory.mktemp("quick")
    cfg = make_config("quick", data_dir=str(SHARED))
    return cfg, out, run_comparison(cfg, out, progress_bars=False)


@pytest.mark.slow
def test_quick_preset_writes_every_output_and_they_parse(quick_run):
    cfg, out, results = quick_run
    for name in ("results.json", "results.csv", "summary.md", "runs.jsonl", "budget.png", "plan.png", "config.json"):
        assert (out / name).is_file(), name
    saved = json.loads((out / "results.json").read_text(encoding="utf-8"))
    rows = list(csv.DictReader(open(out / "results.csv", encoding="utf-8")))
    assert len(saved["runs"]) == len(rows) == len(cfg.langs) * len(cfg.methods) * len(cfg.budgets) * len(cfg.seeds)
    assert {r["method"] for r in rows} == set(cfg.methods) and {r["lang"] for r in rows} == set(cfg.langs)
    for field in ("intent_acc", "macro_f1", "knn_acc", "mrr10", "recall1", "en_acc", "train_seconds", "split_seed"):
        assert field in rows[0]
    summary = (out / "summary.md").read_text(encoding="utf-8")
    assert all(m in summary for m in cfg.methods) and "±" in summary
    plan = json.loads((out / "plan.json").read_text(encoding="utf-8"))
    assert abs(sum(map(sum, plan["plan"])) - 1) < 1e-6


@pytest.mark.slow
def test_distilled_students_beat_zero_shot_on_every_target_language(quick_run):
    _, _, results = quick_run
    acc = {(r["method"], r["lang"]): r["intent_acc"] for r in results["runs"]}
    for lang in {r["lang"] for r in results["runs"]}:
        for method in [m for m in DISTILLATION_METHODS if (m, lang) in acc]:   # the preset's methods
            assert acc[(method, lang)] > acc[("zero-shot", lang)] + 0.2, (method, lang)


@pytest.mark.slow
def test_a_rerun_with_the_same_seeds_gives_identical_numbers(quick_run, tmp_path):
    cfg, _, results = quick_run
    import dataclasses
    cfg = dataclasses.replace(cfg, methods=["zero-shot", "kd-kl", "ot"])  # same languages: the vocabulary depends on them
    rerun = run_comparison(cfg, tmp_path / "again", progress_bars=False)
    metrics = ("intent_acc", "macro_f1", "knn_acc", "mrr10", "recall1", "en_acc")
    first = {(r["method"], r["lang"]): [r[m] for m in metrics] for r in results["runs"]}
    for r in rerun["runs"]:
        assert [r[m] for m in metrics] == first[(r["method"], r["lang"])]


@pytest.mark.slow
def test_resume_skips_finished_runs_and_rebuilds_the_report(quick_run, tmp_path):
    cfg, out, results = quick_run
    import shutil
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    lines = (copy / "runs.jsonl").read_text(encoding="utf-8").splitlines()
    (copy / "runs.jsonl").write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")   # the last run "was lost"
    (copy / "summary.md").unlink()
    resumed = run_comparison(cfg, copy, progress_bars=False)
    assert len(resumed["runs"]) == len(lines)
    assert (copy / "summary.md").is_file()
    assert resumed["runs"][-1]["intent_acc"] == json.loads(lines[-1])["intent_acc"]


# ------------------------------------------------------------------------------------------------
# A local pretrained checkpoint instead of the small encoder built from config
# ------------------------------------------------------------------------------------------------
def test_a_local_checkpoint_saved_by_the_test_is_loaded_and_used_end_to_end(tiny_data, tmp_path):
    from transformers import BertConfig, BertModel

    tokenizer = train_tokenizer(["play music weather today set alarm call mom spiele musik pon música"] * 3,
                                vocab_size=150, min_frequency=1)
    checkpoint = tmp_path / "checkpoint"
    model = BertModel(BertConfig(vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=1,
                                 num_attention_heads=2, intermediate_size=32), add_pooling_layer=False)
    model.save_pretrained(checkpoint)
    tokenizer.save_pretrained(checkpoint)
    encoder = load_pretrained_encoder(checkpoint)
    assert encoder.dim == 16 and torch.equal(encoder.model.embeddings.word_embeddings.weight,
                                             model.embeddings.word_embeddings.weight)
    assert load_tokenizer(checkpoint).get_vocab() == tokenizer.get_vocab()
    cfg = make_config("quick", langs=["de"], methods=["zero-shot", "kd-mse"], data_dir=str(tiny_data),
                      encoder=str(checkpoint), train_overrides={"teacher_epochs": 1, "student_steps": 2})
    results = run_comparison(cfg, tmp_path / "out", progress_bars=False)
    assert len(results["runs"]) == 2 and results["teacher"]["vocab_size"] == len(tokenizer)


# ------------------------------------------------------------------------------------------------
# Bad input: a clear error before any training starts
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs,error,message", [
    ({"methods": ["ot", "magic"]}, ValueError, "unknown method"),
    ({"methods": []}, ValueError, "method list is empty"),
    ({"langs": ["xx"]}, ValueError, "unknown language"),
    ({"langs": ["en"]}, ValueError, "unknown language"),
    ({"preset": "huge"}, ValueError, "unknown preset"),
    ({"budgets": ["many"]}, ValueError, "positive integer or 'all'"),
    ({"seeds": []}, ValueError, "seed list is empty"),
    ({"encoder": "/no/such/checkpoint"}, FileNotFoundError, "no such directory"),
])
def test_bad_settings_are_refused_before_training(kwargs, error, message):
    with pytest.raises(error, match=message):
        make_config(**kwargs)


def test_a_budget_larger_than_the_bitext_is_refused_before_training(tiny_data, tmp_path):
    cfg = make_config("quick", langs=["de"], budgets=[10_000], data_dir=str(tiny_data))
    with pytest.raises(ValueError, match="larger than the .* bitext pairs available for de"):
        run_comparison(cfg, tmp_path / "out", progress_bars=False)
    assert not (tmp_path / "out" / "teacher").exists()


def test_a_missing_data_dir_is_refused_before_training(tmp_path):
    cfg = make_config("quick", data_dir=str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="Looked in"):
        run_comparison(cfg, tmp_path / "out", progress_bars=False)
    assert not (tmp_path / "out" / "teacher").exists()


def test_the_command_line_reports_bad_settings_in_one_line(capsys):
    message = cli_error(capsys, ["compare", "--methods", "magic"])
    assert "unknown method" in message


@needs_shared
def test_the_mtod_setting_distils_from_the_machine_translated_bitext_and_tests_on_human_data():
    from optical_ref.data.settings import load_setting
    setting = load_setting("mtod", SHARED, ["es", "th"], split_seed=0)
    assert set(setting.bitext) == {"es", "th"} and len(setting.bitext["th"]) == 30521
    assert len(setting.en_train) == 6000 and len(setting.intents) == 12
    assert len(setting.target_test["th"]) <= 1692 and setting.en_of_test["th"] is None   # not parallel
    assert all(u.intent in setting.intents for u in setting.target_test["es"])


def test_an_output_folder_of_another_configuration_is_refused_not_mixed(tiny_data, tmp_path):
    out = tmp_path / "out"
    first = make_config("quick", langs=["de"], methods=["zero-shot"], data_dir=str(tiny_data),
                        train_overrides={"teacher_epochs": 1})
    run_comparison(first, out, progress_bars=False)
    other = make_config("quick", langs=["de"], methods=["zero-shot"], seeds=[5], data_dir=str(tiny_data),
                        train_overrides={"teacher_epochs": 1})
    with pytest.raises(ValueError, match="different configuration.*--resume"):
        run_comparison(other, out, progress_bars=False)
    assert len(run_comparison(first, out, progress_bars=False)["runs"]) == 1   # the same one resumes


# ------------------------------------------------------------------------------------------------
# One home for every setting: --set KEY=VALUE
# ------------------------------------------------------------------------------------------------
def test_set_converts_each_value_to_its_settings_type():
    from optical_ref.config import parse_settings
    assert parse_settings(["ot_eps=0.1", "student_steps=5", "ot_grad=unrolled"]) == \
        {"ot_eps": 0.1, "student_steps": 5, "ot_grad": "unrolled"}


@pytest.mark.parametrize("item,message", [
    ("ot_epsilon=0.1", "unknown setting 'ot_epsilon'; valid settings: batch_size"),
    ("student_steps=many", "student_steps expects an integer"),
    ("ot_eps", "expected KEY=VALUE"),
])
def test_set_refuses_unknown_keys_and_bad_values_naming_the_key(item, message):
    from optical_ref.config import parse_settings
    with pytest.raises(ValueError, match=message):
        parse_settings([item])


@pytest.mark.parametrize("overrides,message", [
    ({"ot_eps": -1.0}, "ot_eps=-1.0 is invalid"), ({"ot_grad": "magic"}, "ot_grad='magic' is invalid"),
    ({"freeze": "all"}, "freeze='all' is invalid"),
])
def test_out_of_range_settings_are_refused_before_training(overrides, message):
    with pytest.raises(ValueError, match=message):
        make_config("quick", train_overrides=overrides)


def test_set_values_reach_the_recorded_configuration():
    cfg = make_config("quick", train_overrides={"ot_eps": 0.1})
    assert cfg.train["ot_eps"] == 0.1 and cfg.settings == {"ot_eps": 0.1}


def test_an_unknown_method_never_trains_silently_as_another():
    with pytest.raises(ValueError, match="cannot train a student with method 'ot-new'"):
        train_student("ot-new", None, None, None, ["x"], TrainConfig(), 0)


def test_compare_set_on_the_command_line_is_used_and_recorded(tiny_data, tmp_path):
    from optical_ref.__main__ import main
    out = tmp_path / "out"
    assert main(["compare", "--data-dir", str(tiny_data), "--langs", "de", "--methods", "zero-shot", "ot",
                 "--preset", "quick", "--set", "ot_eps=0.1", "--set", "student_steps=2", "--set", "teacher_epochs=1",
                 "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert results["config"]["train"]["ot_eps"] == 0.1 and results["config"]["settings"]["ot_eps"] == 0.1
    assert '"ot_eps": 0.1' in (out / "summary.md").read_text(encoding="utf-8")
    plan = json.loads((out / "plan.json").read_text(encoding="utf-8"))
    assert plan["n_iter"] == 50 and plan["eps"] == 0.1          # the plan the loss used: fixed iterations


def test_the_example_plan_is_the_plan_the_training_loss_computes(tiny_data, tmp_path):
    """plan.json is recomputed from its own token vectors by the training loss (cost, eps rule, marginals,
    iterations as the run's config says): a plan drawn any other way than training draws it differs."""
    import torch

    from optical_ref.config import TrainConfig
    from optical_ref.train import _ot_term
    cfg = make_config("quick", langs=["de"], methods=["ot"], data_dir=str(tiny_data),
                      train_overrides={"teacher_epochs": 1, "student_steps": 2, "ot_eps_mode": "median"})
    run_comparison(cfg, tmp_path / "out", progress_bars=False)
    plan = json.loads((tmp_path / "out" / "plan.json").read_text(encoding="utf-8"))
    tcfg = TrainConfig(**json.loads((tmp_path / "out" / "config.json").read_text(encoding="utf-8"))["train"])
    xs, ys = (torch.tensor(plan[k], dtype=torch.float64)[None] for k in ("student_vectors", "teacher_vectors"))
    student = type("Side", (), {"tokens": xs, "token_mask": torch.ones(xs.shape[:2], dtype=torch.bool)})
    loss = _ot_term(student, ys, torch.ones(ys.shape[:2], dtype=torch.bool), tcfg)   # training's own OT term
    assert float(loss) == pytest.approx(plan["loss"], rel=1e-12)
    P, C = torch.tensor(plan["plan"], dtype=torch.float64), torch.tensor(plan["cost"], dtype=torch.float64)
    assert float((P * C).sum()) == pytest.approx(plan["loss"], rel=1e-9)
    assert plan["marginals"] == tcfg.ot_marginals and plan["n_iter"] == tcfg.ot_n_iter


def test_several_split_seeds_each_get_their_own_teacher_and_records(tiny_data, tmp_path):
    cfg = make_config("quick", langs=["de"], methods=["zero-shot"], split_seeds=[0, 1], data_dir=str(tiny_data),
                      train_overrides={"teacher_epochs": 1})
    results = run_comparison(cfg, tmp_path / "out", progress_bars=False)
    assert sorted(r["split_seed"] for r in results["runs"]) == [0, 1]
    assert (tmp_path / "out" / "teacher" / "split-0" / "teacher.json").is_file()
    assert (tmp_path / "out" / "teacher" / "split-1" / "teacher.json").is_file()
    assert set(results["gold"]) == {"0", "1"}
