"""The retrieval teacher (teacher_train=retrieval) and its students, specified: it learns from English only, it
retrieves better than the encoder it started from, its loss is InfoNCE over same-intent positives, and every
student learns in its matching space."""
import json
import math

import numpy as np
import pytest
import torch

from conftest import write_tiny_mtop
from test_distil_own import checkpoint  # noqa: F401  (a fixture: a small pretrained-style checkpoint)
from optical_ref.losses import retrieval_infonce
from optical_ref.train import intent_pair_batches

FAST = ["--set", "teacher_train=retrieval", "--set", "retrieval_epochs=3", "--set", "teacher_epochs=2",
        "--set", "proj_dim=16", "--set", "student_steps=2", "--set", "lr=1e-3"]


# ------------------------------------------------------------------------------------------------
# The loss and its batches
# ------------------------------------------------------------------------------------------------
def test_infonce_equals_the_hand_computation_with_every_same_intent_document_positive():
    scores = torch.tensor([[9.0, 0.5, 0.2], [0.5, 9.0, 0.1], [0.3, 0.4, 9.0]])   # the diagonal never counts
    labels = torch.tensor([0, 0, 1])
    T = 0.5
    # query 0: positive 1, candidates {1, 2}; query 1: positive 0, candidates {0, 2}; query 2 has no positive
    q0 = -math.log(math.exp(0.5 / T) / (math.exp(0.5 / T) + math.exp(0.2 / T)))
    q1 = -math.log(math.exp(0.5 / T) / (math.exp(0.5 / T) + math.exp(0.1 / T)))
    assert retrieval_infonce(scores, labels, T).item() == pytest.approx((q0 + q1) / 2, rel=1e-6)


def test_infonce_refuses_a_batch_where_no_query_has_a_positive():
    with pytest.raises(ValueError, match="no query in the batch has a same-intent document"):
        retrieval_infonce(torch.zeros(3, 3), torch.tensor([0, 1, 2]), 0.1)


def test_every_utterance_in_a_batch_has_a_same_intent_partner_and_each_anchor_comes_once():
    labels = np.array([0, 0, 0, 1, 1, 2, 3, 3, 3, 3])     # intent 2 has one utterance: it cannot be an anchor
    batches = intent_pair_batches(labels, 4, np.random.default_rng(0))
    for batch in batches:
        for i in batch:
            assert any(labels[j] == labels[i] for j in batch if j != i), (batch, i)
    anchors = [int(b[0]) for b in batches] + [int(b[1]) for b in batches if len(b) > 2 and labels[b[1]] != labels[b[0]]]
    assert 5 not in np.concatenate(batches) and len(set(anchors)) == len(anchors)


# ------------------------------------------------------------------------------------------------
# The teacher: English only, and a better retriever than where it started
# ------------------------------------------------------------------------------------------------
def compare_teacher(data, out, encoder, capsys):
    from optical_ref.__main__ import main
    code = main(["compare", "--data-dir", str(data), "--langs", "de", "--methods", "zero-shot", "--budgets", "all",
                 "--seeds", "0", "--encoder", str(encoder), "--out", str(out), *FAST])
    assert code == 0, capsys.readouterr().err
    folder = out / "teacher" / "split-0"
    return json.loads((folder / "teacher.json").read_text()), torch.load(folder / "weights.pt", weights_only=True)


def with_other_target_text(root, lang="de"):
    """The same data, every target-language text replaced (English, ids and intents as they were)."""
    for name in ("dev.json", "test.json"):
        path = root / "mtop" / name
        items = json.loads(path.read_text(encoding="utf-8"))
        for item in items:
            for key, value in item.items():
                if isinstance(value, dict) and lang in value and isinstance(value[lang], str):
                    value[lang] = "zz " + value[lang][::-1]
        path.write_text(json.dumps(items, ensure_ascii=False), encoding="utf-8")
    return root


def test_the_retrieval_teacher_reads_no_target_language_text(tmp_path, checkpoint, capsys):  # noqa: F811
    first, weights = compare_teacher(write_tiny_mtop(tmp_path / "a"), tmp_path / "run-a", checkpoint, capsys)
    changed = with_other_target_text(write_tiny_mtop(tmp_path / "b"))
    assert (changed / "mtop" / "dev.json").read_bytes() != (tmp_path / "a" / "mtop" / "dev.json").read_bytes()
    second, weights_b = compare_teacher(changed, tmp_path / "run-b", checkpoint, capsys)
    assert weights.keys() == weights_b.keys() and "projection.weight" in weights["encoder"]
    for part in ("encoder", "head"):
        for key, value in weights[part].items():
            assert torch.equal(value, weights_b[part][key]), (part, key)
    assert first["retrieval"] == second["retrieval"]


def noisy_intents(n_per_intent, rng):
    """English utterances where one word in five names the intent and four are noise shared by every intent: an
    encoder that has not learnt which words matter retrieves them at about chance."""
    noise = [f"n{k}" for k in range(30)]
    texts, labels = [], []
    for intent in range(4):
        for _ in range(n_per_intent):
            words = [*rng.choice(noise, 4, replace=False), f"intent{intent}"]
            rng.shuffle(words)
            texts.append(" ".join(words))
            labels.append(intent)
    return texts, labels


def test_the_retrieval_teacher_retrieves_better_on_english_dev_than_the_encoder_it_started_from():
    from optical_ref.config import TrainConfig
    from optical_ref.encoder import build_encoder
    from optical_ref.text import train_tokenizer
    from optical_ref.train import train_retrieval_teacher
    rng = np.random.default_rng(0)
    train_texts, train_labels = noisy_intents(24, rng)
    dev_texts, dev_labels = noisy_intents(6, rng)
    tokenizer = train_tokenizer(train_texts + dev_texts, vocab_size=120, min_frequency=1)
    encoder = build_encoder(len(tokenizer), seed=0, hidden_size=32, intermediate_size=64)
    encoder.add_projection(16, seed=0)
    cfg = TrainConfig(teacher_train="retrieval", retrieval_epochs=6, proj_dim=16, batch_size=16, lr=1e-3)
    found = train_retrieval_teacher(encoder, encoder, tokenizer, train_texts, train_labels, dev_texts, dev_labels,
                                    cfg, seed=0)
    assert found["start_dev_ir_acc"] < 0.8 and found["best_dev_ir_acc"] >= found["start_dev_ir_acc"] + 0.2, found


# ------------------------------------------------------------------------------------------------
# Its students: in the matching space, every method scored by intent retrieval
# ------------------------------------------------------------------------------------------------
def test_students_of_a_retrieval_teacher_learn_and_are_scored_in_its_matching_space(tmp_path, capsys):
    from optical_ref.__main__ import main
    data = write_tiny_mtop(tmp_path / "data")
    code = main(["compare", "--data-dir", str(data), "--langs", "de", "--methods", "zero-shot", "kd-mse", "kd-score",
                 "ot", "--budgets", "all", "--seeds", "0", "--out", str(tmp_path / "run"), *FAST])
    assert code == 0, capsys.readouterr().err
    records = [json.loads(line) for line in (tmp_path / "run" / "runs.jsonl").read_text().splitlines()]
    assert {r["method"] for r in records} == {"zero-shot", "kd-mse", "kd-score", "ot"}
    for r in records:
        assert all(0 <= r[k] <= 1 for k in ("ir_acc", "ir_knn_acc", "ir_mrr10", "ir_ndcg10")), r["method"]
        assert np.mean(r["items"]["ir_acc_item"]) == pytest.approx(r["ir_acc"])
    plan = json.loads((tmp_path / "run" / "plan.json").read_text())
    assert len(plan["student_vectors"][0]) == len(plan["teacher_vectors"][0]) == 16   # OT in the matching space


def test_a_declared_design_opens_its_report_with_its_primary_metric_and_tests_only_its_family(tmp_path, capsys):
    from optical_ref.__main__ import main
    from optical_ref.experiment.presets import RETRIEVAL_DECLARATION
    data = write_tiny_mtop(tmp_path / "data")
    code = main(["compare", "--preset", "retrieval-small", "--data-dir", str(data), "--langs", "de", "--methods",
                 "zero-shot", "kd-mse", "ot", "--budgets", "all", "--seeds", "0", "1", "--out", str(tmp_path / "run"),
                 *FAST])
    assert code == 0, capsys.readouterr().err
    summary = (tmp_path / "run" / "summary.md").read_text()
    assert summary.index("**Declared before any run**") < summary.index("**How to read it.**")
    assert RETRIEVAL_DECLARATION["hypothesis"] in summary
    first_metric = summary.split("\n## ")[2].splitlines()[0]
    assert first_metric.startswith("intent by cross-lingual retrieval: top-1 accuracy")
    analysis = json.loads((tmp_path / "run" / "results.json").read_text())["analysis"]
    assert analysis["family"]["metrics"] == ["ir_acc"] and analysis["family"]["size"] == 1


def test_the_marginals_ablation_reads_the_primary_metric_beside_both_token_clouds(tmp_path, capsys):
    from optical_ref.__main__ import main
    data = write_tiny_mtop(tmp_path / "data")
    folders = []
    # uniform: a folder of the whole design at its default marginals; unbalanced: one column of it, --set
    for marginals, budgets, chosen in (("uniform", ["4", "all"], []),
                                       ("unbalanced", ["4"], ["--set", "ot_marginals=unbalanced"])):
        out = tmp_path / marginals
        assert main(["compare", "--preset", "retrieval-small", "--data-dir", str(data), "--langs", "de", "--methods",
                     "zero-shot", "ot", "--budgets", *budgets, "--seeds", "0", "1", "--out", str(out), *FAST,
                     *chosen]) == 0, capsys.readouterr().err
        folders.append(str(out))
    table = tmp_path / "ablation.md"
    assert main(["report", "--ablation", str(table), *folders]) == 0
    text = table.read_text()
    rows = [line for line in text.splitlines() if line.startswith("| uniform") or line.startswith("| unbalanced")]
    assert len(rows) == 2 and all("ir_acc" in r and "de @ 4" in r and r.count("±") == 3 for r in rows)  # shared column
    assert '"ot_marginals": "unbalanced"' in text and '"ot_marginals": "uniform"' in text   # the default named too
    records = [json.loads(x) for x in (tmp_path / "uniform" / "runs.jsonl").read_text().splitlines()]
    ot = [r for r in records if r["method"] == "ot" and r["budget"] == 4]
    expected = np.mean([r["diagnostics"]["token_cosine"] for r in ot])
    assert f"{expected:.3f} ±" in [r for r in rows if r.startswith("| uniform") and "de @ 4" in r][0]
    capsys.readouterr()
    assert main(["report", "--ablation", str(table), *folders]) == 2        # never over a file already there
    assert "already there" in capsys.readouterr().err


def test_the_ablation_orders_its_columns_by_budget_size_not_as_text(monkeypatch):
    from pathlib import Path

    from optical_ref.experiment import rebuild

    def results(folder, say):           # one ot run per budget, listed out of order
        runs = [{"method": "ot", "lang": "th", "budget": b, "seed": 0, "split_seed": 0, "steps": 1, "ir_acc": 0.5,
                 "diagnostics": {"token_cosine": 0.9, "teacher_token_cosine": 0.8}} for b in (100, "all", 20)]
        return {"config": {"train": {"ot_marginals": Path(folder).name}, "declared": {"primary": "ir_acc"}},
                "runs": runs}
    monkeypatch.setattr(rebuild, "load_results", results)
    rows = rebuild.ablation_rows(["uniform", "norm"], "ot")
    assert [r["column"] for r in rows] == ["th @ 20", "th @ 100", "th @ all"] * 2
    assert [r["settings"] for r in rows[::3]] == [{"ot_marginals": "uniform"}, {"ot_marginals": "norm"}]
