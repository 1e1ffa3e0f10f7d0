"""The ``check`` command: one exercise (``check EXERCISE --impl FILE.py:FUNCTION``, ``--list``) or a whole class
(``check --grade SUBMISSIONS_DIR [--json OUT] [--csv OUT] [--seed N] [--time-limit S]``). It sits on top of the
exercise catalogue (:mod:`optical_ref.classroom.exercises`), which knows nothing of it; the hidden cases come from
:mod:`optical_ref.classroom.reference.hidden`, next to the public cases' builders.

``SUBMISSIONS_DIR/<student>/`` holds that student's copies of ``tutorials/exercises/exNN_*.py`` (same file and
function names). Every exercise of every student is run on

- the public cases of ``optical_ref/classroom/reference/`` (the ones ``check`` shows while students work), and
- ``HIDDEN_PER_EXERCISE`` (or one more than the public cases, whichever is larger) hidden cases drawn fresh at grading time from a seed and answered by the library at
  grading time. They outnumber the public ones, so a submission that looks the public expected values up
  scores well below a pass; the public cases show every kind of input the hidden ones use.

**Isolation.** Each student's submissions run in a fresh process (:mod:`optical_ref.classroom.sandbox`) that only calls
the functions on the cases' inputs, with a time limit per exercise; the comparison with the expected values
happens here, in the grader's process. A student's crash, ``sys.exit``, endless loop or monkeypatching can
cost that student that exercise, never another student's score or the class's grading: a process that dies
is replaced by a fresh one for the student's remaining exercises.

**The library's own implementation scores 0.** The graded function must be defined in the student's file, and
every call into ``optical_ref`` code made under the student's code is recorded by what it runs, not by name
(re-exports, aliases, ``__wrapped__``, ``importlib.reload`` included); each exercise names what it may call
(``allowed``: ``ot-loss`` may call a Sinkhorn solver, since its point is the cost and the masks). A missing
file scores 0.

Output: a table on the screen; ``grades.csv`` (``--csv PATH``, default ``./grades.csv``, never inside the
submissions): student, one column per exercise (score 0..1), and the total in percent; with ``--json``,
``{"seed", "version", "graded_at", "time_limit", "hidden_per_exercise", "students": {student: {exercise:
{"passed", "total", "score", "failed": [case names], "note"}}}}``. The CSV's first line names the seed, version
and time as a comment, so that a grade can be reproduced (``--seed``).
"""
from __future__ import annotations

import csv
import json
import secrets
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

HIDDEN_PER_EXERCISE = 8
DEFAULT_TIME_LIMIT = 20.0     # seconds per exercise; a correct solution of any exercise takes well under 1 s
STARTUP_ALLOWANCE = 60.0      # the sandbox's own start (python, numpy, torch) before the first exercise


# --------------------------------------------------------------------------------------------------
# Grading
# --------------------------------------------------------------------------------------------------
def cases_for(name: str, exercise, rng_seed: int) -> list:
    from .reference import load
    from .reference.hidden import hidden_cases
    from .exercises import EXERCISES

    public = [c for c in load(exercise.kind)["cases"] if not exercise.case_filter or exercise.case_filter(c)]
    rng = np.random.default_rng([rng_seed, sorted(EXERCISES).index(name)])
    n_hidden = max(HIDDEN_PER_EXERCISE, len(public) + 1)      # hidden cases always outnumber the public ones
    return public + hidden_cases(exercise.kind, rng, n_hidden, small_eps=exercise.case_filter is None)


def run_sandbox(exercises: list, time_limit: float) -> dict:
    """Run one student's exercises in fresh processes; {exercise name: sandbox result or {"died": note}}."""
    results, todo = {}, list(exercises)
    while todo:
        with tempfile.TemporaryDirectory(prefix="optical-ref-grade-") as tmp:
            request, result = Path(tmp) / "request.json", Path(tmp) / "result.jsonl"
            request.write_text(json.dumps({"result": str(result), "exercises": todo}), encoding="utf-8")
            try:
                done = subprocess.run([sys.executable, "-m", "optical_ref.classroom.sandbox", str(request)], cwd=tmp,
                                      capture_output=True, timeout=STARTUP_ALLOWANCE + time_limit * len(todo),
                                      stdin=subprocess.DEVNULL)
                ending = f"the process ended with exit code {done.returncode}"
            except subprocess.TimeoutExpired:
                ending = "the process was stopped at the time limit"
            lines = result.read_text(encoding="utf-8").splitlines() if result.is_file() else []
        for line in lines:
            try:
                item = json.loads(line)
            except json.JSONDecodeError:
                break                        # a line cut short: that exercise is the one that ended the process
            if item.get("name") in {e["name"] for e in todo} and item["name"] not in results:
                results[item["name"]] = item
        remaining = [e for e in todo if e["name"] not in results]
        if remaining:     # the first unfinished exercise ended (or hung) the process; the rest get a fresh one
            results[remaining[0]["name"]] = {"died": f"{ending} while running this exercise (sys.exit, a crash of "
                                                     "the interpreter, or a hang); the other exercises were run again"}
        todo = remaining[1:]
    return results


def zero_score(cases: list, note: str) -> dict:
    """An exercise scored 0 on every case, with the reason."""
    return {"passed": 0, "total": len(cases), "score": 0.0, "failed": [c["name"] for c in cases], "note": note}


def judge(name: str, exercise, cases: list, outcome: dict) -> dict:
    from .exercises import hint
    from .reference.engine import judge_case

    if "died" in outcome:
        return zero_score(cases, outcome["died"])
    if outcome.get("refused"):
        return zero_score(cases, outcome["refused"])
    refused = [c for c in outcome.get("library_calls", []) if c not in exercise.allowed]
    if refused:
        allowed = ", ".join(exercise.allowed) or "nothing from optical_ref"
        return zero_score(cases, f"calls the library's own {', '.join(refused[:3])} (this exercise may use {allowed}): scored 0")
    results = [judge_case(exercise.kind, case, tuple(o), hint=hint, skip_fields=("envelope_grad_X",))
               for case, o in zip(cases, outcome["outcomes"])]
    passed = sum(r.passed for r in results)
    notes = sorted({r.hint or r.crash for r in results if not r.passed and (r.hint or r.crash)})
    return {"passed": passed, "total": len(cases), "score": round(passed / len(cases), 4),
            "failed": [r.name for r in results if not r.passed], "note": "; ".join(notes)[:500]}


def grade(submissions, seed: int | None = None, progress=print, time_limit: float = DEFAULT_TIME_LIMIT) -> dict:
    from .. import __version__
    from .exercises import EXERCISES

    root = Path(submissions)
    if not root.is_dir():
        raise FileNotFoundError(f"--grade {root}: no such folder; give a folder with one sub-folder per student")
    students = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not students:
        raise ValueError(f"--grade {root}: no student folders in it (expected {root}/<student>/exNN_*.py)")
    if seed is not None and not 0 <= seed < 2**32:
        raise ValueError(f"--seed {seed}: give an integer in [0, 2^32)")
    if not time_limit > 0:
        raise ValueError(f"--time-limit {time_limit}: give a positive number of seconds")
    seed = seed if seed is not None else secrets.randbelow(2**31)
    progress(f"[grade] {len(students)} students x {len(EXERCISES)} exercises, each student in a fresh process "
             f"({time_limit:g} s per exercise); hidden cases from seed {seed} (rerun with --seed {seed} to reproduce)")
    cases = {name: cases_for(name, ex, seed) for name, ex in EXERCISES.items()}
    table = {}
    for student in students:
        row, present = {}, []
        for name, ex in EXERCISES.items():
            if not (student / ex.skeleton).is_file():
                row[name] = zero_score(cases[name], f"missing file {ex.skeleton}")
            else:
                present.append({"name": name, "file": str((student / ex.skeleton).resolve()), "function": ex.function,
                                "kind": ex.kind, "allowed": list(ex.allowed), "time_limit": time_limit,
                                "cases": [{"name": c["name"], "inputs": c["inputs"]} for c in cases[name]]})
        outcomes = run_sandbox(present, time_limit) if present else {}
        for name, ex in EXERCISES.items():
            if name in outcomes:
                row[name] = judge(name, ex, cases[name], outcomes[name])
        table[student.name] = {name: row[name] for name in EXERCISES}
        scores = [r["score"] for r in table[student.name].values()]
        progress(f"  {student.name:<20} " + " ".join(f"{s:.2f}" for s in scores)
                 + f"  total {100 * sum(scores) / len(scores):.1f}%")
    return {"seed": seed, "version": __version__, "graded_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "time_limit": time_limit, "hidden_per_exercise": HIDDEN_PER_EXERCISE, "students": table}


def write_csv(graded: dict, path) -> None:
    from .exercises import EXERCISES
    with open(path, "w", newline="", encoding="utf-8") as fh:
        fh.write(f"# optical-ref {graded['version']} grades, seed {graded['seed']}, {graded['graded_at']}\n")
        writer = csv.writer(fh)
        writer.writerow(["student", *EXERCISES, "total_percent"])
        for student, row in graded["students"].items():
            scores = [row[name]["score"] for name in EXERCISES]
            writer.writerow([student, *scores, round(100 * sum(scores) / len(scores), 2)])


def main_grade(args) -> int:
    graded = grade(args.grade, args.seed, time_limit=args.time_limit)
    csv_path = Path(args.csv) if args.csv else Path.cwd() / "grades.csv"
    if csv_path.resolve().is_relative_to(Path(args.grade).resolve()):
        raise ValueError(f"--csv {csv_path}: the grades must not be written inside the submissions folder; "
                         "choose a path outside it")
    write_csv(graded, csv_path)
    print(f"[grade] scores: {csv_path}")
    if args.json:
        Path(args.json).write_text(json.dumps(graded, indent=2), encoding="utf-8")
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
    parser.add_argument("--csv", metavar="OUT", help="--grade: the score table (default ./grades.csv, never inside the "
                        "submissions)")
    parser.add_argument("--seed", type=int, default=None, help="--grade: the hidden cases' seed (default: a fresh one, "
                        "printed and saved)")
    parser.add_argument("--time-limit", type=float, default=DEFAULT_TIME_LIMIT,
                        help=f"seconds per exercise (per student with --grade; default {DEFAULT_TIME_LIMIT:g})")


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
                         f"{EXERCISES.get(args.exercise, EXERCISES['frobenius']).skeleton}:"
                         f"{EXERCISES.get(args.exercise, EXERCISES['frobenius']).function})")
    if not args.time_limit > 0:
        raise ValueError(f"--time-limit {args.time_limit}: give a positive number of seconds")
    function = load_function(args.impl)
    from .sandbox import TimeLimit, alarm_after
    try:
        with alarm_after(args.time_limit):
            results = check_exercise(args.exercise, function)
    except TimeLimit:
        raise ValueError(f"{args.impl} ran longer than {args.time_limit:g} s on exercise {args.exercise} (a correct "
                         "solution takes well under 1 s): look for a loop that never ends, e.g. a while loop whose "
                         "condition never changes; --time-limit S allows more") from None
    return report(f"checking {args.impl} on exercise {args.exercise}", results)
