"""The README's code examples run, so the documentation cannot rot."""
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_readme_has_python_examples():
    assert python_blocks(), "README.md should show at least one python example"


def test_every_readme_python_example_runs():
    for block in python_blocks():
        exec(compile(block, str(README), "exec"), {})


def test_readme_quick_start_names_the_ci_test_command():
    text = README.read_text(encoding="utf-8")
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert ".venv/bin/python -m pytest -q" in text and ".venv/bin/python -m pytest -q" in ci
    assert "python -m optical_ref compare" in text


def test_readme_results_tables_are_the_ones_the_presets_produced():
    text = README.read_text(encoding="utf-8")
    matches = re.findall(r"<!-- results-table: (\S+) -->\n(.*?)<!-- /results-table -->", text, flags=re.S)
    assert matches, "README.md should mark its results tables"
    for source, table in matches:
        summary = (README.parent / source).read_text(encoding="utf-8")
        assert table.strip() in summary, f"a README table differs from {source}; copy it again after a rerun"


def _benchmark_rows(name):
    """The rows a saved benchmark JSON prints, as (first cells, numbers) the README's tables must show."""
    import json
    data = json.loads((README.parent / "tutorials" / "results" / name).read_text(encoding="utf-8"))
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
def test_readme_benchmark_tables_are_the_saved_benchmark_outputs(name):
    text = README.read_text(encoding="utf-8")
    assert name in text, f"the README should name {name}, the file its benchmark table comes from"
    lines = [line.split() for line in text.splitlines()]
    rows = list(_benchmark_rows(name))
    assert rows
    for row in rows:
        cells = " ".join(row).split()     # method names such as "ot (unrolled grad)" span several cells
        assert any(line[-len(cells):] == cells or line[:len(cells)] == cells for line in lines), \
            f"README shows no row {' '.join(row)!r} of {name}; copy the benchmark's output again"
