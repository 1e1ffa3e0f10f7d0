"""Tutorial 08 - the OT-vs-KD comparison on reduced MTOP with the quick preset, and how to read it.

What you learn: what `python -m optical_ref compare` does (teacher once, then one student per language,
budget, method and seed), where its outputs are, and how to read summary.md: rows are methods, columns are
language @ bitext pairs, cells are mean ± std over seeds; zero-shot is the floor, target-supervised an upper
bound that uses labels the other methods never see.
Read first: 07_ot_distillation_loop.py and tutorials/results/README.md. Needs the data. Next: 09_budgets.py.
"""
# %% Run the quick preset (under a minute on 2 idle CPU cores)
from optical_ref.experiment.compare import make_config, run_comparison
from optical_ref.tutorial import setup

out, smoke = setup(__doc__)
overrides = {"teacher_epochs": 2, "student_steps": 10} if smoke else None
config = make_config("quick", train_overrides=overrides)
results = run_comparison(config, out / "quick", progress_bars=False)

# %% Read the table
print((out / "quick" / "summary.md").read_text(encoding="utf-8"))
by = {(r["method"], r["lang"]): r for r in results["runs"]}
for lang in config.langs:
    floor, kd, ot = by[("zero-shot", lang)], by[("kd-mse", lang)], by[("ot", lang)]
    print(f"{lang}: zero-shot {floor['intent_acc']:.3f} -> kd-mse {kd['intent_acc']:.3f}, ot {ot['intent_acc']:.3f}; "
          f"English after distillation {kd['en_acc']:.3f} vs teacher {floor['en_acc']:.3f} (forgetting)")
print("one seed cannot separate methods a point apart: the default preset runs two seeds and reports the spread")
