"""Tutorial 09 - low-resource budgets: accuracy vs number of bitext pairs.

What you learn: how much bitext distillation needs. The budgets are nested (the 50 pairs are inside the
200, inside all of them) so the curve compares like with like; each student gets the same number of
optimisation steps whatever its budget. Watch where OT and KD differ, and whether the difference is larger
than its 95% interval (one training seed here, so the interval is over test items only; with several seeds,
as in the default preset, it covers seed-to-seed variance too). The reference is kd-mse, declared before the
run: never the better of two KD methods picked on the test set.
Read first: 08_compare_quick.py. Needs the data.
"""
# %% Thai, three budgets, zero-shot vs kd-mse vs ot
from optical_ref.experiment.compare import make_config, run_comparison
from optical_ref.tutorial import setup

out, smoke = setup(__doc__)
overrides = {"teacher_epochs": 2, "student_steps": 10} if smoke else {"teacher_epochs": 8, "student_steps": 80}
config = make_config("quick", langs=["th"], methods=["zero-shot", "kd-mse", "ot"],
                     budgets=[50, 200, "all"], train_overrides=overrides)
results = run_comparison(config, out / "budgets", progress_bars=False)

# %% The curve
for method in config.methods:
    points = sorted((r["n_pairs"], r["intent_acc"]) for r in results["runs"] if r["method"] == method)
    print(f"{method:>9}: " + ", ".join(f"{n} pairs -> {acc:.3f}" for n, acc in points))
summary = (out / "budgets" / "summary.md").read_text(encoding="utf-8")
section = summary.split("Paired difference to `kd-mse` (intent_acc")[1].split("\n\n")[1]
print("ot minus kd-mse, intent accuracy, points [95% interval], p-value (and Holm-corrected):")
print("\n".join(line for line in section.splitlines() if line.startswith("| ot ") or line.startswith("| method")))
print(f"plot: {out / 'budgets' / 'budget.png'}")
