"""The README's code examples run, so the documentation cannot rot."""
import re
from pathlib import Path

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


def test_readme_benchmark_tables_are_the_saved_benchmark_outputs():
    import json
    text = README.read_text(encoding="utf-8")
    for name in ("bench_sinkhorn.json", "bench_distill.json"):
        path = README.parent / "tutorials" / "results" / name
        assert path.is_file() and name in text
        json.loads(path.read_text(encoding="utf-8"))
