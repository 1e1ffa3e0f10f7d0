"""The ``check`` command: one exercise (``check EXERCISE --impl FILE.py:FUNCTION``, ``--list``) or a whole class
(``check --grade SUBMISSIONS_DIR [--json OUT] [--csv OUT] [--seed N]``). It sits on top of the exercise
catalogue (:mod:`optical_ref.exercises`), which knows nothing of it; the hidden cases come from
:mod:`optical_ref.reference.hidden`, next to the public cases' builders.

``SUBMISSIONS_DIR/<student>/`` holds that student's copies of ``tutorials/exercises/exNN_*.py`` (same file and
function names). Every exercise of every student is run on

- the public cases of ``optical_ref/reference/`` (the ones ``check`` shows while students work), and
- ``HIDDEN_PER_EXERCISE`` hidden cases drawn fresh at grading time from a seed (printed, so that a result can be
  reproduced) and answered by the library at grading time: looking the public expected values up gains nothing.
  They cover the failure modes of each exercise (unequal weights and non-square problems, tiny eps, NaN in
  padded costs and tokens, several temperatures).

A submission that calls the library's own implementation (``optical_ref.ot.sinkhorn`` for a Sinkhorn exercise,
``optical_ref.losses.kd_kl`` for kd-kl, ...), directly, under another name or through ``importlib``, scores 0
for that exercise, with the reason: every ``optical_ref`` function is wrapped to record calls from outside the
library
while it runs, so no way of reaching them escapes. Each exercise names what it may call (``allowed``;
``ot-loss`` may call a Sinkhorn solver, since its point is the cost and the masks). A missing file scores 0.

Output: a table on the screen, a CSV (student, then one score column per exercise, then the total) and, with
``--json``, ``{student: {exercise: {"passed", "total", "score", "failed": [case names], "note"}}}``.
"""
from __future__ import annotations

import csv
import json
import secrets
import sys
from pathlib import Path

import numpy as np

HIDDEN_PER_EXERCISE = 4
LIBRARY = Path(__file__).resolve().parent


# --------------------------------------------------------------------------------------------------
# Watching which library functions a submission calls
# --------------------------------------------------------------------------------------------------
class LibraryWatch:
    """While active, every function of the loaded ``optical_ref`` modules is replaced, in every module that
    exposes it, by a wrapper that records its name when it is called from outside the library. Load the
    submission inside the watch: ``from optical_ref.ot import sinkhorn as s``, ``importlib.import_module(...)``
    and attribute access all reach the wrappers. Calls between library functions are not recorded (the caller's
    frame is in the library), and nothing costs anything per numpy or torch operation."""

    def __init__(self):
        self.entered, self._saved = [], []

    def __enter__(self):
        import inspect
        wrappers = {}
        for name, module in list(sys.modules.items()):
            if not (name == "optical_ref" or name.startswith("optical_ref.")) or module is None or name == __name__:
                continue   # the grader itself is not watched (its helpers run inside every wrapper)
            for attr, value in list(vars(module).items()):
                if inspect.isfunction(value) and getattr(value, "__module__", "").startswith("optical_ref"):
                    wrapper = wrappers.get(id(value)) or self._wrap(value)
                    wrappers[id(value)] = wrapper
                    self._saved.append((module, attr, value))
                    setattr(module, attr, wrapper)
        return self

    def _wrap(self, fn):
        import functools
        qualified = f"{fn.__module__}.{fn.__qualname__}"

        outside = _outside_library    # bound now: the wrapper must not go through a wrapped name

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            caller = sys._getframe(1).f_code
            if outside(caller.co_filename):
                self.entered.append(qualified)
            return fn(*args, **kwargs)
        return wrapper

    def __exit__(self, *exc):
        for module, attr, value in reversed(self._saved):
            setattr(module, attr, value)
        self._saved.clear()
        return False


def _outside_library(filename: str) -> bool:
    try:
        Path(filename).resolve().relative_to(LIBRARY)
        return False
    except (ValueError, OSError):
        return True


# --------------------------------------------------------------------------------------------------
# Grading
# --------------------------------------------------------------------------------------------------
def grade_one(name: str, exercise, path: Path, rng_seed: int) -> dict:
    from .exercises import run_cases
    from .reference import load
    from .reference.hidden import hidden_cases
    from .reference.engine import load_function

    public = [c for c in load(exercise.kind)["cases"] if not exercise.case_filter or exercise.case_filter(c)]
    rng = np.random.default_rng([rng_seed, sorted(_exercise_names()).index(name)])
    hidden = hidden_cases(exercise.kind, rng, HIDDEN_PER_EXERCISE, small_eps=exercise.case_filter is None)
    cases = public + hidden
    names = [c["name"] for c in cases]

    def zero(note):
        return {"passed": 0, "total": len(cases), "score": 0.0, "failed": names, "note": note}

    if not path.is_file():
        return zero(f"missing file {path.name}")
    with LibraryWatch() as watch:
        try:
            fn = load_function(f"{path}:{exercise.function}")
        except (ValueError, FileNotFoundError) as err:
            return zero(str(err))
        results = run_cases(exercise.kind, fn, cases=cases)
    refused = sorted({e for e in watch.entered if e not in exercise.allowed})
    if refused:
        allowed = ", ".join(exercise.allowed) or "nothing from optical_ref"
        return zero(f"calls the library's own {', '.join(refused)} (this exercise may use {allowed}): scored 0")
    passed = sum(r.passed for r in results)
    failed = [r.name for r in results if not r.passed]
    notes = sorted({r.hint or r.crash for r in results if not r.passed and (r.hint or r.crash)})
    return {"passed": passed, "total": len(results), "score": round(passed / len(results), 4), "failed": failed,
            "note": "; ".join(notes)[:500]}


def _exercise_names():
    from .exercises import EXERCISES
    return list(EXERCISES)


def grade(submissions, seed: int | None = None, progress=print) -> dict:
    from .exercises import EXERCISES

    root = Path(submissions)
    if not root.is_dir():
        raise FileNotFoundError(f"--grade {root}: no such folder; give a folder with one sub-folder per student")
    students = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not students:
        raise ValueError(f"--grade {root}: no student folders in it (expected {root}/<student>/exNN_*.py)")
    seed = seed if seed is not None else secrets.randbelow(2**31)
    progress(f"[grade] {len(students)} students x {len(EXERCISES)} exercises; hidden cases from seed {seed} "
             f"(rerun with --seed {seed} to reproduce)")
    table = {}
    for student in students:
        table[student.name] = {name: grade_one(name, ex, student / ex.skeleton, seed) for name, ex in EXERCISES.items()}
        scores = [r["score"] for r in table[student.name].values()]
        progress(f"  {student.name:<20} " + " ".join(f"{s:.2f}" for s in scores) + f"  total {sum(scores):.2f}")
    return {"seed": seed, "students": table}


def write_csv(graded: dict, path) -> None:
    from .exercises import EXERCISES
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["student", *EXERCISES, "total", "max"])
        for student, row in graded["students"].items():
            scores = [row[name]["score"] for name in EXERCISES]
            writer.writerow([student, *scores, round(sum(scores), 4), len(EXERCISES)])


def main_grade(args) -> int:
    graded = grade(args.grade, args.seed)
    csv_path = Path(args.csv) if args.csv else Path(args.grade) / "grades.csv"
    write_csv(graded, csv_path)
    print(f"[grade] scores: {csv_path}")
    if args.json:
        Path(args.json).write_text(json.dumps(graded["students"], indent=2), encoding="utf-8")
        print(f"[grade] details: {args.json} (seed {graded['seed']})")
    return 0


# --------------------------------------------------------------------------------------------------
# The command line
# --------------------------------------------------------------------------------------------------
def add_arguments(parser) -> None:
    parser.add_argument("exercise", nargs="?", help="exercise name (see --list)")
    parser.add_argument("--impl", help="the function to check: FILE.py:FUNCTION or module:FUNCTION")
    parser.add_argument("--list", action="store_true", help="list the exercises")
    parser.add_argument("--grade", metavar="SUBMISSIONS_DIR",
                        help="grade a class: one sub-folder per student with their exNN_*.py files")
    parser.add_argument("--json", metavar="OUT", help="--grade: also write the details as JSON")
    parser.add_argument("--csv", metavar="OUT", help="--grade: the score table (default SUBMISSIONS_DIR/grades.csv)")
    parser.add_argument("--seed", type=int, default=None, help="--grade: the hidden cases' seed (default: a fresh one, printed)")


def main(args) -> int:
    from .exercises import EXERCISES, check_exercise, load_function, report

    if args.grade:
        return main_grade(args)
    if args.list or not args.exercise:
        print("exercises (skeletons in tutorials/exercises/):")
        for name, ex in EXERCISES.items():
            allowed = ", ".join(ex.allowed) or "nothing from optical_ref"
            print(f"  {name:<17} {ex.task}\n  {'':<17} skeleton: {ex.skeleton} ({ex.function}); read first: "
                  f"{ex.tutorial}; may call: {allowed}")
        return 0
    if not args.impl:
        raise ValueError("--impl FILE.py:FUNCTION is required (e.g. tutorials/exercises/"
                         f"{EXERCISES.get(args.exercise, EXERCISES['frobenius']).skeleton}:solve)")
    results = check_exercise(args.exercise, load_function(args.impl))
    return report(f"checking {args.impl} on exercise {args.exercise}", results)
