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

**Isolation.** Each student is graded from a private copy of their folder (``.py`` sources only) in fresh
processes (:mod:`optical_ref.classroom.sandbox`, driven case by case by :mod:`optical_ref.classroom.runner`)
that only call the functions on the cases' inputs, with a time limit per case enforced from outside; the
comparison with the expected values happens here, in the grader's process. With ``--isolate auto`` (default)
or ``namespaces`` the sandbox runs in namespaces of its own (:mod:`optical_ref.classroom.isolation`); the grader
is the reaper of every process a student starts, and kills them all when the student's turn ends. A student's
crash, ``sys.exit``, endless loop, monkeypatching or unreadable output costs that student that exercise (or
that case), never another student's score or the class's grading. ``tutorials/exercises/GRADING.md`` says
what each level protects against.

**The library's own implementation scores 0.** The graded function must be defined in the student's file;
every call into ``optical_ref`` code made under the student's code is recorded by what it runs, not by name
(re-exports, aliases, ``__wrapped__``, ``importlib.reload`` included), and so is every copy of a library
function (:mod:`optical_ref.classroom.fingerprint`), run in the sandbox or found here in the sources the
exercise's file imports; each exercise names what it may call (``allowed``: ``ot-loss`` may call a Sinkhorn
solver, since its point is the cost and the masks). Under namespaces the sandbox holds only that part of the
library. A missing file scores 0.

Output: a table on the screen; ``grades.csv`` (``--csv PATH``, default ``./grades.csv``, never inside the
submissions, written whole or not at all): student, one column per exercise (score 0..1), and the total in
percent; with ``--json``, ``{"seed", "version", "graded_at", "time_limit", "hidden_per_exercise", "isolation",
"reaper", "skipped": [notes], "students": {student: {exercise:
{"passed", "total", "score", "failed": [case names], "note", "verified"}}}}`` (``verified``: whether the grader
can vouch for the points, see :meth:`Setup.vouched`; the report line names the exercises that are not). The
CSV's first line names the seed, version and time as a comment, so that a grade can be reproduced (``--seed``).
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import secrets
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ..files import check_writable_file

HIDDEN_PER_EXERCISE = 8
DEFAULT_TIME_LIMIT = 20.0     # seconds per case; a correct solution of any case takes well under 1 s
MAX_TIME_LIMIT = 3600.0       # a limit beyond an hour per case is a typo (and `inf` would switch it off)
PACKAGE_PARENT = Path(__file__).resolve().parents[2]     # the folder optical_ref is imported from
INSTRUCTOR = PACKAGE_PARENT / "instructor"                 # the answer key: never visible to a sandbox


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


def zero_score(cases: list, note: str) -> dict:
    """An exercise scored 0 on every case, with the reason (a zero is always verified: see :func:`judge`)."""
    return {"passed": 0, "total": len(cases), "score": 0.0, "failed": [c["name"] for c in cases], "note": note,
            "verified": True}


def judge(name: str, exercise, cases: list, outcome, copies=(), vouched: bool = False) -> dict:
    """Score one exercise of one student from its :class:`~optical_ref.classroom.runner.Outcome` and the
    library ``copies`` found in the sources it imports; whatever they hold, the answer is a score with a note,
    never an exception. ``verified`` says whether the grader can vouch for the points (``vouched``: the
    sandbox had no library code within reach, see GRADING.md); forging can only raise a score, so a 0 is
    always verified."""
    try:
        graded = _judge(name, exercise, cases, outcome, list(copies))
    except Exception as err:    # noqa: BLE001 (a result no check foresaw: that exercise's 0, not the class's end)
        graded = zero_score(cases, f"the result could not be judged ({type(err).__name__}): scored 0")
    graded["verified"] = vouched or graded["score"] == 0
    return graded


def _judge(name: str, exercise, cases: list, outcome, copies: list) -> dict:
    from .exercises import hint_for
    from .fingerprint import COPY

    if outcome.refused:
        return zero_score(cases, outcome.refused)
    allowed = ", ".join(exercise.allowed) or "nothing from optical_ref or another OT library"
    called = [c for c in outcome.library_calls if not c.endswith(COPY) and c not in exercise.allowed]
    if called:
        return zero_score(cases, f"calls the library's own {', '.join(called[:3])} (optical_ref's, or another OT "
                                 f"library's; this exercise may use {allowed}): scored 0")
    ran = [c.removesuffix(COPY) for c in outcome.library_calls if c.endswith(COPY)]
    copied = [c for c in dict.fromkeys(ran + copies) if c not in exercise.allowed]
    if copied:
        return zero_score(cases, f"runs or holds a copy of the library's own {', '.join(copied[:3])} (the same code "
                                 f"up to names; this exercise may use {allowed}): scored 0")
    hint = hint_for(name)
    results = [_judge_one(exercise.kind, case, outcome.outcomes.get(i), hint) for i, case in enumerate(cases)]
    passed = sum(r.passed for r in results)
    notes = sorted({r.hint or r.crash for r in results if not r.passed and (r.hint or r.crash)})
    return {"passed": passed, "total": len(cases), "score": round(passed / len(cases), 4),
            "failed": [r.name for r in results if not r.passed], "note": "; ".join(notes)[:500]}


def _judge_one(kind: str, case, outcome, hint):
    """One case's verdict; a case never run, or a result that breaks the comparison (10**400, a string where a
    plan should be), fails with the reason."""
    from .exercises import judge_exercise_case
    from .reference.engine import CaseResult, tolerance_of

    if outcome is None:
        return CaseResult(case["name"], False, None, 0.0, crash="not run")
    try:
        return judge_exercise_case(kind, case, tuple(outcome), hint)
    except Exception as err:     # noqa: BLE001 (OverflowError, RecursionError, ...: this case fails, nothing else)
        return CaseResult(case["name"], False, None, tolerance_of(case, "plan"),
                          crash=f"the result cannot be compared ({type(err).__name__})")


def list_students(root: Path) -> tuple:
    """(student folders, notes on what was skipped and why): hidden entries, ``__pycache__``, files (a .zip),
    symlinks (never followed: one could point at the answer key) and broken links are named, not graded."""
    students, skipped = [], []
    for entry in sorted(root.iterdir(), key=lambda p: os.fsencode(p.name)):
        shown = printable(entry.name)
        if entry.name.startswith("."):
            continue
        if entry.is_symlink():
            skipped.append(f"{shown}: a symlink, not followed (a student's work must be a folder)")
        elif entry.name == "__pycache__":
            skipped.append(f"{shown}: Python's cache folder, not a student")
        elif entry.is_dir():
            students.append(entry)
        else:
            skipped.append(f"{shown}: not a folder (unpack archives such as .zip into a folder per student)")
    return students, skipped


def printable(name: str) -> str:
    """A folder name as text whatever bytes it holds (a name that is not UTF-8 is shown escaped)."""
    return os.fsencode(name).decode("utf-8", errors="backslashreplace")


def check_time_limit(time_limit) -> float:
    if not (isinstance(time_limit, (int, float)) and math.isfinite(time_limit) and 0 < time_limit <= MAX_TIME_LIMIT):
        raise ValueError(f"--time-limit {time_limit}: give a number of seconds in (0, {MAX_TIME_LIMIT:g}]")
    return float(time_limit)


def grade(submissions, seed: int | None = None, progress=print, time_limit: float = DEFAULT_TIME_LIMIT,
          isolate: str = "auto") -> dict:
    """Grade every student folder of ``submissions``; every student gets a grade for every exercise."""
    from .. import __version__
    from .exercises import EXERCISES
    from .isolation import become_subreaper, choose_isolation

    root = Path(submissions)
    if not root.is_dir():
        raise FileNotFoundError(f"--grade {root}: no such folder; give a folder with one sub-folder per student")
    students, skipped = list_students(root)
    if not students:
        raise ValueError(f"--grade {root}: no student folders in it (expected {root}/<student>/exNN_*.py)")
    if seed is not None and not 0 <= seed < 2**32:
        raise ValueError(f"--seed {seed}: give an integer in [0, 2^32)")
    time_limit = check_time_limit(time_limit)
    level = choose_isolation(isolate)
    reaper = become_subreaper()
    seed = seed if seed is not None else secrets.randbelow(2**31)
    progress(f"[grade] {len(students)} students x {len(EXERCISES)} exercises, each student in fresh processes "
             f"({time_limit:g} s per case); hidden cases from seed {seed} (rerun with --seed {seed} to reproduce)")
    progress(f"[grade] isolation: {ISOLATION_TEXT[level]}")
    for note in skipped:
        progress(f"[grade] skipped {note}")
    cases = {name: cases_for(name, ex, seed) for name, ex in EXERCISES.items()}
    with tempfile.TemporaryDirectory(prefix="optical-ref-grade-") as work:
        table = grade_all(students, cases, make_setup(level, time_limit, root, Path(work)), progress)
    return {"seed": seed, "version": __version__, "graded_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "time_limit": time_limit, "hidden_per_exercise": HIDDEN_PER_EXERCISE, "isolation": level,
            "reaper": "subreaper" if reaper else "process group", "skipped": skipped, "students": table}


ISOLATION_TEXT = {
    "namespaces": "namespaces (each sandbox has its own PID, mount and network namespaces and sees only its own "
                  "read-only copy and the part of the library its exercise may use)",
    "process": "process level only (no user namespaces here): a submission could read other files of this user "
               "and forge its results; the grades say isolation \"process\" and mark points \"unverified\"",
}


@dataclass
class Setup:
    """How every student of one grading is run."""
    level: str              # "namespaces" or "process"
    time_limit: float
    hidden: list            # folders covered by empty file systems (namespaces): submissions, answer key
    blocked: list           # folders whose import is refused (namespaces): every copy of the library, OT libraries
    views: dict             # allowed functions -> the library view put first on the sandbox's path (namespaces)
    library_code: dict      # {fingerprint: qualified name} of the library's functions, to recognise copies
    work: Path              # the grader's own folder for this grading: views, and each turn's private copy

    def vouched(self, exercise) -> bool:
        """Whether the grader can vouch for this exercise's points: only where the sandbox had no library code
        within reach at all (namespaces, an exercise that may call nothing), since whatever the watch inside
        the student's process reports could be forged by it."""
        return self.level == "namespaces" and not exercise.allowed


def make_setup(level: str, time_limit: float, root: Path, work: Path) -> Setup:
    from .exercises import EXERCISES
    from .fingerprint import library_fingerprints
    from .isolation import LIBRARY, library_locations, library_view

    views = {}
    if level == "namespaces":
        for k, allowed in enumerate(sorted({ex.allowed for ex in EXERCISES.values()})):
            views[allowed] = library_view(work / f"library-{k}", allowed)
    return Setup(level, time_limit, [root, INSTRUCTOR], library_locations() if level == "namespaces" else [],
                 views, library_fingerprints(LIBRARY), work)


def grade_all(students: list, cases: dict, setup: Setup, progress) -> dict:
    """Every student's sources read first (so no student can change another's files before they are graded),
    then each student in turn from a private copy that exists only for that turn."""
    from .isolation import read_sources, remove_private_copy, write_private_copy

    snapshots, table = {}, {}
    for student in students:
        try:
            snapshots[student] = read_sources(student)
        except OSError as err:
            snapshots[student] = (None, [f"the folder could not be read ({type(err).__name__})"])
    for k, student in enumerate(students):
        sources, notes = snapshots[student]
        folder = setup.work / f"s{k:04d}"
        try:
            own = write_private_copy(sources, folder) if sources is not None else None
        except OSError as err:
            own, notes = None, [*notes, f"its private copy could not be written ({type(err).__name__})"]
        try:
            row = table[printable(student.name)] = grade_student(own, notes, cases, setup)
        finally:
            remove_private_copy(folder)
        progress(report_line(printable(student.name), row, setup.level))
    return table


def report_line(student: str, row: dict, level: str) -> str:
    """One student's line of the report: scores, total, and which points the grader cannot vouch for."""
    scores = [r["score"] for r in row.values()]
    line = f"  {student:<20} " + " ".join(f"{s:.2f}" for s in scores) + f"  total {100 * sum(scores) / len(scores):.1f}%"
    unverified = [name for name, r in row.items() if not r["verified"]]
    if unverified:
        line += (f"  unverified ({level} level, see GRADING.md)" if level == "process"
                 else f"  unverified: {', '.join(unverified)}")
    return line


def grade_student(folder, notes: list, cases: dict, setup: Setup) -> dict:
    """{exercise: score record} of one student, from their private copy ``folder``; never raises."""
    from .exercises import EXERCISES
    from .runner import run_student

    row = {}
    try:
        present = {}
        for name, ex in EXERCISES.items():
            if folder is None or not (folder / ex.skeleton).is_file():
                row[name] = zero_score(cases[name], f"missing file {ex.skeleton}" + _notes(notes))
            else:
                present[name] = {"name": name, "file": str(folder / ex.skeleton), "function": ex.function,
                                 "kind": ex.kind, "allowed": list(ex.allowed),
                                 "cases": [{"name": c["name"], "inputs": c["inputs"]} for c in cases[name]]}
        outcomes = {}
        for view, requests in sandbox_groups(present, setup).items():
            env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(view or PACKAGE_PARENT)}
            outcomes.update(run_student(requests, setup.time_limit, _command(setup, folder, view), folder, env,
                                        setup.library_code))
        compiled = {}                  # path -> copies found in it: a helper imported by several exercises is read once
        for name, outcome in outcomes.items():
            copies = library_copies(folder, EXERCISES[name].skeleton, setup.library_code, compiled)
            row[name] = judge(name, EXERCISES[name], cases[name], outcome, copies, setup.vouched(EXERCISES[name]))
    except Exception as err:      # noqa: BLE001 (the grader's own failure on this student: 0 with the reason)
        for name in EXERCISES:
            row.setdefault(name, zero_score(cases[name], f"the grader could not run this student "
                                                         f"({type(err).__name__}: {err}): scored 0"))
    return {name: row[name] for name in EXERCISES}


def sandbox_groups(present: dict, setup: Setup) -> dict:
    """{library view (None at process level): the exercise requests run in one sandbox with it}: under
    namespaces each group of exercises sees only the part of the library it may call."""
    from .exercises import EXERCISES

    groups = {}
    for name, request in present.items():
        view = setup.views.get(EXERCISES[name].allowed) if setup.level == "namespaces" else None
        groups.setdefault(view, []).append(request)
    return groups


def _command(setup: Setup, folder: Path, view) -> list:
    from .runner import sandbox_command
    return sandbox_command(setup.level, folder, setup.hidden, setup.blocked, view)


def library_copies(folder: Path, skeleton: str, known: dict, cache: dict) -> list:
    """The library functions that the exercise's file, or a module of the student's it imports (at any depth),
    holds a copy of: read and compiled here, in the grader's process, never run (the sandbox's watch sees
    copies too, but from inside the student's process)."""
    from .fingerprint import copies_in

    found = []
    for path in student_imports(folder, folder / skeleton):
        if path not in cache:
            cache[path] = copies_in(path.read_bytes(), str(path), known)
        found += cache[path]
    return list(dict.fromkeys(found))


def student_imports(folder: Path, start: Path) -> list:
    """``start`` and every file of the student's ``folder`` it imports, directly or not (``import helpers.x``,
    ``from helpers import x``, relative imports inside a helper package), found by reading the imports."""
    import ast

    seen, todo = [], [start]
    while todo:
        path = todo.pop()
        if path in seen or not path.is_file():
            continue
        seen.append(path)
        try:
            tree = ast.parse(path.read_bytes())
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                todo += [f for alias in node.names for f in _module_files(folder, alias.name.split("."))]
            elif isinstance(node, ast.ImportFrom):
                base = path.parents[node.level - 1] if 0 < node.level <= len(path.parents) else folder
                if not base.is_relative_to(folder):
                    continue                   # a relative import that leads out of the student's folder
                parts = node.module.split(".") if node.module else []
                for alias in node.names:
                    todo += _module_files(base, [*parts, alias.name])
    return seen


def _module_files(base: Path, parts: list) -> list:
    """The files that importing ``a.b.c`` from ``base`` runs: a, a.b and a.b.c, each as x.py or x/__init__.py."""
    files = []
    for k in range(1, len(parts) + 1):
        stem = base.joinpath(*parts[:k])
        files += [p for p in (stem.with_name(stem.name + ".py"), stem / "__init__.py") if p.is_file()]
    return files


def _notes(notes: list) -> str:
    return f" ({'; '.join(notes)[:200]})" if notes else ""


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file beside it: the file is whole or not there."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_csv(graded: dict, path) -> None:
    from .exercises import EXERCISES
    buffer = io.StringIO()
    buffer.write(f"# optical-ref {graded['version']} grades, seed {graded['seed']}, {graded['graded_at']}\n")
    writer = csv.writer(buffer)
    writer.writerow(["student", *EXERCISES, "total_percent"])
    for student, row in graded["students"].items():
        scores = [row[name]["score"] for name in EXERCISES]
        writer.writerow([student, *scores, round(100 * sum(scores) / len(scores), 2)])
    write_atomically(Path(path), buffer.getvalue())


def output_paths(args) -> tuple:
    """(csv path, json path or None), refused before any grading when one lies inside the submissions."""
    csv_path = Path(args.csv) if args.csv else Path.cwd() / "grades.csv"
    json_path = Path(args.json) if args.json else None
    root = Path(args.grade).resolve()
    for flag, path in (("--csv", csv_path), ("--json", json_path)):
        if path is None:
            continue
        if path.resolve().is_relative_to(root):
            raise ValueError(f"{flag} {path}: the grades must not be written inside the submissions folder; "
                             "choose a path outside it")
        check_writable_file(flag, path)
    return csv_path, json_path


def main_grade(args) -> int:
    check_time_limit(args.time_limit)
    csv_path, json_path = output_paths(args)
    graded = grade(args.grade, args.seed, time_limit=args.time_limit, isolate=args.isolate)
    write_csv(graded, csv_path)
    print(f"[grade] scores: {csv_path}")
    if json_path:
        write_atomically(json_path, json.dumps(graded, indent=2))
        print(f"[grade] details: {json_path} (seed {graded['seed']})")
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
                        help=f"seconds per case (default {DEFAULT_TIME_LIMIT:g})")
    parser.add_argument("--isolate", choices=("auto", "namespaces", "none"), default="auto",
                        help="--grade: run each student in namespaces of its own (no network, no view of the "
                        "other students, the grader or the answer key) where the system allows; auto (default) "
                        "falls back to process level and says so")


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
    check_time_limit(args.time_limit)
    from .sandbox import TimeLimit, alarm_after
    try:
        with alarm_after(args.time_limit):
            function = load_function(args.impl)
    except TimeLimit:
        raise ValueError(f"loading {args.impl} ran longer than {args.time_limit:g} s: look for a loop that never "
                         "ends at the top level of the file (outside the function)") from None
    results = check_exercise(args.exercise, function, time_limit=args.time_limit)   # a limit per case
    return report(f"checking {args.impl} on exercise {args.exercise}", results)
