"""The README and the pages it links teach what the code does: their examples run, and every number they show
is checked against its source (the saved benchmark outputs, the configuration, the measured preset times)."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BENCHMARKS = ROOT / "tutorials" / "results" / "BENCHMARKS.md"
SCALE_OUT = ROOT / "tutorials" / "SCALE_OUT.md"
# the pages the README sends readers to, which live in this repository beside it
OWN_PAGES = [BENCHMARKS, SCALE_OUT, ROOT / "tutorials" / "DATA.md", ROOT / "tutorials" / "REFERENCE.md",
             ROOT / "tutorials" / "TROUBLESHOOTING.md", ROOT / "tutorials" / "DISTIL.md"]


def python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_readme_has_python_examples():
    assert python_blocks(), "README.md should show at least one python example"


def test_every_readme_python_example_runs():
    for block in python_blocks():
        exec(compile(block, str(README), "exec"), {})


def test_readme_quick_start_names_the_ci_test_command_and_a_quick_first_taste():
    text = README.read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "bash .ci/setup && .venv/bin/python -m optical_ref compare\n" in text
    assert "bash .ci/setup && .venv/bin/python -m pytest -q\n" in text and ".venv/bin/python -m pytest -q" in ci
    assert ".venv/bin/python -m optical_ref compare --preset quick\n" in text


def _preset_minutes(preset):
    """The measured time of a preset in SCALE_OUT.md's table ("58 s", "9 min 16 s"), in minutes."""
    row = next(line for line in SCALE_OUT.read_text(encoding="utf-8").splitlines() if line.startswith(f"| `{preset}` |"))
    cell = row.rstrip(" |").rsplit("|", 1)[1]
    minutes = re.search(r"(\d+) min", cell)
    seconds = re.search(r"(\d+) s\b", cell)
    return (int(minutes.group(1)) if minutes else 0) + (int(seconds.group(1)) if seconds else 0) / 60


def test_readme_quick_start_times_are_the_measured_preset_times():
    text = " ".join(README.read_text(encoding="utf-8").split())
    quick, default = _preset_minutes("quick"), _preset_minutes("default")
    assert f"(about {round(quick)} minute against about {int(default)} on 2 CPU cores)" in text


def test_readme_python_version_and_data_size_are_the_packages():
    from optical_ref.data.fetch import DATASETS
    text = README.read_text(encoding="utf-8")
    requires = re.search(r"python_requires = >=(\S+)", (ROOT / "setup.cfg").read_text(encoding="utf-8")).group(1)
    assert f"Python {requires} or newer" in text
    mb = sum(float(re.search(r"([\d.]+) MB", r.size).group(1)) for r in DATASETS["mtop-reduced"].files.values())
    assert f"reduced MTOP, about {mb:.0f} MB" in text


def _choices_table():
    """The rows of every choices table in the README (the method's, and the retrieval teacher's)."""
    text, rows = README.read_text(encoding="utf-8"), []
    for start in [m.start() for m in re.finditer(r"\| choice \| `--set` key \|", text)]:
        table = text[start:].split("\n\n", 1)[0].splitlines()[2:]
        rows += [[cell.strip() for cell in line.strip("|").split("|")] for line in table]
    return rows


def _value(cell):
    value = re.match(r"`([^`]+)`", cell).group(1)
    try:
        return float(value)
    except ValueError:
        return value


def test_readme_choices_table_shows_the_defaults_of_both_encoders():
    from optical_ref.config import TrainConfig, defaults_for_encoder
    small, pretrained = TrainConfig(), TrainConfig(**defaults_for_encoder("e5-small"))
    rows = _choices_table()
    assert len(rows) >= 14
    for _, key, small_cell, pretrained_cell, _ in rows:
        key = key.strip("`")
        assert _value(small_cell) == getattr(small, key), f"README: {key} = {small_cell} for the small encoder"
        assert _value(pretrained_cell) == getattr(pretrained, key), f"README: {key} = {pretrained_cell} for e5-small"


def test_readme_states_the_verdict_and_leaves_the_tables_to_the_results_page():
    text = README.read_text(encoding="utf-8")
    verdict = text[text.index("## The verdict"):].split("\n## ", 1)[0]
    assert "(tutorials/results/README.md)" in verdict
    assert "results-table" not in text and not re.search(r"(?<![\w-])\d", verdict), \
        "the README's verdict quotes no number (names such as e5 aside): the results page holds them, checked"


def test_the_pages_the_readme_links_here_exist_and_carry_no_development_history():
    text = README.read_text(encoding="utf-8")
    for page in OWN_PAGES:
        assert f"({page.relative_to(ROOT)})" in text, f"the README should link {page.relative_to(ROOT)}"
    for page in [README, *OWN_PAGES]:
        found = re.findall(r"this round|previous (?:round|session)|not rerun|last round|earlier round",
                            page.read_text(encoding="utf-8"), flags=re.I)
        assert not found, f"{page.name} talks about how it was written ({found}); say what is, not what was"


def test_results_tables_are_the_ones_the_presets_produced():
    pages = [README, *sorted((ROOT / "tutorials").rglob("*.md"))]
    for page in pages:
        text = page.read_text(encoding="utf-8")
        for source, table in re.findall(r"<!-- results-table: (\S+) -->\n(.*?)<!-- /results-table -->", text, flags=re.S):
            summary = (ROOT / source).read_text(encoding="utf-8")
            assert table.strip() in summary, f"a table of {page.name} differs from {source}; copy it again after a rerun"


def _benchmark_rows(name):
    """The rows a saved benchmark JSON prints, as (first cells, numbers) the benchmark page must show."""
    import json
    data = json.loads((ROOT / "tutorials" / "results" / name).read_text(encoding="utf-8"))
    if "numpy_vs_pot" in data:
        for r in data["numpy_vs_pot"]:
            yield [str(r["n"]), r["method"], f"{r['ours_ms_per_iter']:.4f}", f"{r['pot_ms_per_iter']:.4f}",
                   f"{r['ratio']:.2f}x"]
        for r in data["batched"]:
            yield [f"{r['n']}x{r['n']}", r["method"], f"{r['torch_ms']:.2f}", f"{r['pot_loop_ms']:.1f}",
                   f"{r['pot_batch_ms']:.2f}", f"{r['speedup_vs_pot_loop']:.1f}x", f"{r['speedup_vs_pot_batch']:.2f}x",
                   f"{r['padding_overhead']:.2f}x"]
    if "ks" in data:     # bench freeze: one row per K
        for k, r in data["ks"].items():
            yield [f"embeddings+{k}" if int(k) else "embeddings", f"{r['ms_per_step']:.0f}", f"{r['speedup']:.2f}x",
                   *(f"{r['best'][m]:.4f}" for m in data["methods"])]
        return
    for method, r in (data.get("methods") or {}).items():
        yield [method, f"{r['ms_per_step']:.1f}", f"{r['relative_to_kd_mse']:.2f}x"]


@pytest.mark.parametrize("name", ["bench_sinkhorn.json", "bench_distill.json", "bench_distill_e5.json",
                                  "bench_distill_e5_cache.json", "bench_freeze_e5.json"])
def test_benchmark_tables_are_the_saved_benchmark_outputs(name):
    text = BENCHMARKS.read_text(encoding="utf-8")
    assert name in text, f"{BENCHMARKS.name} should name {name}, the file its benchmark table comes from"
    lines = [line.split() for line in text.splitlines()]
    rows = list(_benchmark_rows(name))
    assert rows
    for row in rows:
        cells = " ".join(row).split()     # method names such as "ot (unrolled grad)" span several cells
        assert any(line[-len(cells):] == cells or line[:len(cells)] == cells for line in lines), \
            f"{BENCHMARKS.name} shows no row {' '.join(row)!r} of {name}; copy the benchmark's output again"


def test_the_readme_states_the_retrieval_design_as_declared_in_the_presets():
    from optical_ref.experiment.presets import PRESETS, RETRIEVAL_DECLARATION
    text = " ".join(README.read_text(encoding="utf-8").split())
    declared = text[text.index("**Declared before its runs**"):].split("###")[0]
    for key in ("hypothesis",):
        assert RETRIEVAL_DECLARATION[key] in declared
    assert f"primary metric `{RETRIEVAL_DECLARATION['primary']}` under the {RETRIEVAL_DECLARATION['scorer']} scorer" in declared
    assert f"reference `{RETRIEVAL_DECLARATION['reference']}`" in declared
    for name, preset in PRESETS.items():
        if preset.get("declared"):
            assert preset["declared"] is RETRIEVAL_DECLARATION and f"`{name}`" in declared, name

# ---- formulas and tutorial texts that must say what the code does ------------------------------------------
def test_the_readmes_kd_mse_formula_is_the_mean_over_dimensions_the_code_computes():
    import torch
    from optical_ref.losses import kd_mse
    s, t = torch.randn(1, 8, dtype=torch.float64), torch.randn(1, 8, dtype=torch.float64)
    assert torch.isclose(kd_mse(s, t), ((s - t) ** 2).sum() / 8)            # ‖s − t‖² / d for one sentence
    text = README.read_text(encoding="utf-8")
    assert "| `kd-mse` | `‖s(x) − t(e)‖² / d`" in text and "||mean s - mean t||^2 / d" in text


def test_tutorial_05_gives_the_data_look_up_order_of_the_code(monkeypatch):
    from optical_ref.data.paths import candidate_dirs
    monkeypatch.setenv("OPTICAL_REF_DATA", "/somewhere")
    origins = [origin for _, origin in candidate_dirs()]
    words = {"$OPTICAL_REF_DATA": "$OPTICAL_REF_DATA", "current directory": "../shared/data from the current folder",
             "repository root": "../shared/data beside the repository", "user cache": "the user cache"}
    text = " ".join((ROOT / "tutorials" / "05_tokens_as_point_clouds.py").read_text(encoding="utf-8").split())
    said = ["--data-dir DIR"] + [next(w for key, w in words.items() if key in origin) for origin in origins]
    assert candidate_dirs("/given")[0][1].startswith("--data-dir")            # an explicit folder comes first
    positions = [text.find(phrase) for phrase in said]
    assert -1 not in positions and positions == sorted(positions), list(zip(said, positions))


def test_tutorial_07_labels_the_axis_with_what_it_plots():
    text = (ROOT / "tutorials" / "07_ot_distillation_loop.py").read_text(encoding="utf-8")
    assert "return (A / (A.trace() / d) - torch.eye(d)).norm().item()" in text       # ‖W M / s − I‖, s = tr / d
    assert 'ax.set_ylabel("||W M / s - I||,  s = tr(W M) / d")' in text
    assert "best fits" not in text and "best rescaling" not in text   # s I is closest to W M; no s is fitted


def test_tutorial_03_says_a_row_of_K_is_zero_only_past_C_over_eps_of_about_745():
    import numpy as np
    assert np.exp(-744.0) > 0 and np.exp(-746.0) == 0                       # the float64 edge the text names
    C = np.array([[1.0, 800.0]])                                             # one entry past 745, one not
    assert (np.exp(-C / 1.0) > 0).any(axis=1).all()                          # the row of K is not zero
    text = " ".join((ROOT / "tutorials" / "03_kernel_vs_log.py").read_text(encoding="utf-8").split())
    assert "a whole row of K is zero only once every C_ij/eps of that row passes about 745" in text


def test_readme_states_the_committed_results_folders_count_and_total_size():
    """#30: the README says how many committed result folders there are and what they weigh, runs included."""
    folders = [p for p in (ROOT / "tutorials" / "results").iterdir() if p.is_dir()]
    size = sum(f.stat().st_size for p in folders for f in p.rglob("*") if f.is_file()) / 1e6
    words = {5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine"}
    text = " ".join(README.read_text(encoding="utf-8").split())
    assert f"{words.get(len(folders), len(folders))} result folders, {size:.1f} MB in all" in text
