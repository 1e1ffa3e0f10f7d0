"""A grader no student can break (#32): one student never stops the class, nothing a student starts outlives
their turn, time limits are enforced from outside and per case, students are graded from private source-only
copies, the OS isolates them where it can, and the grader's own inputs are refused before any grading."""
import hashlib
import json
import os
import py_compile
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from optical_ref.classroom.check import grade
from optical_ref.classroom.isolation import namespaces_available

INSTRUCTOR = Path(__file__).resolve().parents[1] / "instructor"
CORRECT = (INSTRUCTOR / "ex03_frobenius.py").read_text(encoding="utf-8")
WRONG = "def frobenius(P, C):\n    return 0.0\n"
TIME_LIMIT = 4
HAS_NAMESPACES = namespaces_available()


def student(root: Path, name, code: str) -> Path:
    folder = root / name if isinstance(name, str) else Path(os.fsdecode(os.fsencode(root) + b"/" + name))
    folder.mkdir(parents=True)
    (folder / "ex03_frobenius.py").write_text(textwrap.dedent(code), encoding="utf-8")
    return folder


def fingerprint(root: Path) -> dict:
    """Every path under the class folder with the hash of its bytes: what grading must leave as it was."""
    return {os.fsencode(p): (hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() and not p.is_symlink()
                             else "dir" if p.is_dir() else "link") for p in sorted(root.rglob("*"))}


ORPHAN = """
    import os, time, pathlib
    MARK = pathlib.Path({mark!r})
    if os.fork() == 0:                      # a double-forked, setsid grandchild, as a daemon would
        os.setsid()
        if os.fork() == 0:
            (MARK / "started").write_text("1")
            time.sleep(2)
            (MARK / "survived").write_text("1")
        os._exit(0)
    def frobenius(P, C):
        return float((P * C).sum())
"""
VANDAL = """
    import pathlib
    def frobenius(P, C):
        for up in pathlib.Path(__file__).resolve().parents[:3]:
            for folder in up.glob("*"):
                try:
                    (folder / "ex03_frobenius.py").write_text("def frobenius(P, C):\\n    return 0.0\\n")
                except OSError:
                    pass
        return float((P * C).sum())
"""


def tricky_class(root: Path, marks: Path) -> None:
    """The students who break things by accident or on purpose: results no comparison survives, forged lines,
    orphans, endless loops, threads; then the cheaters."""
    student(root, "a-ok", CORRECT)
    student(root, "b-orphan", ORPHAN.format(mark=str(marks)))
    student(root, "c-overflow", "def frobenius(P, C):\n    return 10**400\n")
    student(root, "d-bigint", """
        import sys
        sys.set_int_max_str_digits(0)
        def frobenius(P, C):
            return 10**5000
    """)
    student(root, "e-missing-field", """
        import os
        def frobenius(P, C):
            os.write(3, b'{"ex": "frobenius", "i": 0}\\n')       # the grader's channel: a line without outcome
            return float((P * C).sum())
    """)
    student(root, "f-deep-json", """
        import os
        def frobenius(P, C):
            os.write(3, b"[" * 100000 + b"]" * 100000 + b"\\n")
            return float((P * C).sum())
    """)
    student(root, "g-alarm-off", """
        import signal
        signal.signal(signal.SIGALRM, signal.SIG_IGN)
        def frobenius(P, C):
            while True:
                pass
    """)
    student(root, "h-thread", """
        import threading
        threading.Thread(target=lambda: [None for _ in iter(int, 1)]).start()     # never ends, not a daemon
        def frobenius(P, C):
            return float((P * C).sum())
    """)
    cheating_students(root, marks)


def cheating_students(root: Path, marks: Path) -> None:
    """The students who try to reach what they must not: other folders, bytecode, the library, the answer key,
    the grader's processes; and the entries of the class folder that are not students."""
    student(root, "i-vandal", VANDAL)
    pyc = student(root, "j-pyc", WRONG)
    (pyc / "__pycache__").mkdir()
    good = root / "correct_source.py"
    good.write_text(CORRECT, encoding="utf-8")
    tag = __import__("sys").implementation.cache_tag
    py_compile.compile(str(good), cfile=str(pyc / "__pycache__" / f"ex03_frobenius.{tag}.pyc"),
                       invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    good.unlink()
    student(root, "k-profiler-off", """
        import sys
        import optical_ref.ot
        def frobenius(P, C):
            sys.setprofile(None)
            return optical_ref.ot.frobenius(P, C)
    """)
    student(root, "l-thread-library", """
        import threading
        import optical_ref.ot
        def frobenius(P, C):
            out = []
            worker = threading.Thread(target=lambda: out.append(optical_ref.ot.frobenius(P, C)))
            worker.start(); worker.join()
            return out[0]
    """)
    student(root, "m-pot", """
        import ot
        def frobenius(P, C):
            return float((ot.utils.list_to_array(P)[0] * C).sum())
    """)
    student(root, "n-answer-key", """
        import pathlib
        import optical_ref
        KEY = pathlib.Path(optical_ref.__file__).resolve().parents[1] / "instructor" / "ex03_frobenius.py"
        def frobenius(P, C):
            space = {}
            exec(KEY.read_text(), space)
            return space["frobenius"](P, C)
    """)
    student(root, "o-slow", """
        import time
        def frobenius(P, C):
            time.sleep(0.45)                  # every case in time, all cases together past the limit
            return float((P * C).sum())
    """)
    student(root, "p-snoop", f"""
        import os, pathlib
        def frobenius(P, C):
            seen = [pathlib.Path("/proc/self/cmdline").read_bytes(), pathlib.Path("/proc/self/environ").read_bytes()]
            for entry in pathlib.Path("/proc").iterdir():
                try:
                    seen.append(pathlib.Path(entry, "cmdline").read_bytes())
                except OSError:
                    pass
            pathlib.Path({str(marks / "snooped")!r}).write_bytes(b"\\n".join(seen))
            return float((P * C).sum())
    """)
    student(root, b"q-\xff-latin1", CORRECT)
    not_students(root)


def not_students(root: Path) -> None:
    """Entries of a class folder that are not students: named in the report, never graded nor followed."""
    (root / "archive.zip").write_bytes(b"PK\x05\x06" + bytes(18))
    (root / "dangling").symlink_to(root / "nowhere")
    (root / "key-link").symlink_to(INSTRUCTOR)
    (root / "__pycache__").mkdir()


@pytest.fixture(scope="module")
def tricky(tmp_path_factory):
    root, marks = tmp_path_factory.mktemp("tricky"), tmp_path_factory.mktemp("marks")
    tricky_class(root, marks)
    before = fingerprint(root)
    started = time.monotonic()
    graded = grade(root, seed=7, progress=lambda *_: None, time_limit=TIME_LIMIT)
    return {"root": root, "marks": marks, "before": before, "graded": graded,
            "seconds": time.monotonic() - started, "rows": graded["students"]}


def score(tricky, name):
    row = tricky["rows"][name]["frobenius"]
    return row["score"], row["note"]


def test_the_class_is_graded_in_bounded_time_and_correct_students_score_full_marks(tricky):
    assert tricky["seconds"] < 120
    for name in ("a-ok", "h-thread", "i-vandal", "b-orphan", "p-snoop", "q-\\xff-latin1"):
        assert score(tricky, name)[0] == 1.0, (name, score(tricky, name))


def test_a_result_that_breaks_the_comparison_scores_zero_and_grading_goes_on(tricky):
    value, note = score(tricky, "c-overflow")          # caught where the case is compared: the other cases count
    assert value == 0 and note == "the result cannot be compared (OverflowError)"
    assert score(tricky, "d-bigint")[0] == 0 and "could not be read" in score(tricky, "d-bigint")[1]


def test_forged_lines_missing_a_field_or_nested_too_deep_score_zero_with_a_note(tricky):
    value, note = score(tricky, "e-missing-field")
    assert value == 0 and "misses the field 'outcome'" in note
    assert score(tricky, "f-deep-json")[0] == 0 and "RecursionError" in score(tricky, "f-deep-json")[1]


def test_a_student_cannot_switch_the_time_limit_off_from_inside(tricky):
    value, note = score(tricky, "g-alarm-off")
    assert value == 0 and f"time limit of {TIME_LIMIT} s" in note


def test_the_time_limit_is_per_case_so_a_slow_correct_solution_keeps_its_marks(tricky):
    assert score(tricky, "o-slow")[0] == 1.0


def test_a_double_forked_setsid_process_does_not_outlive_the_students_turn(tricky):
    marks = tricky["marks"]
    assert (marks / "started").exists()                 # it did start
    time.sleep(max(0.0, (marks / "started").stat().st_mtime + 3 - time.time()))
    assert not (marks / "survived").exists()


def test_grading_leaves_every_student_folder_as_it_was_and_writes_no_bytecode_into_it(tricky):
    # same paths, same bytes: the vandal's ../ writes reached no folder, and no __pycache__ appeared anywhere
    assert fingerprint(tricky["root"]) == tricky["before"]


def test_a_shipped_pyc_is_ignored_only_the_source_is_graded(tricky):
    assert score(tricky, "j-pyc")[0] == 0


def test_switching_the_profiler_off_or_calling_the_library_from_a_thread_scores_zero(tricky):
    assert score(tricky, "k-profiler-off")[0] == 0 and "switched off" in score(tricky, "k-profiler-off")[1]
    value, note = score(tricky, "l-thread-library")
    assert value == 0 and "optical_ref.ot.frobenius" in note


def test_another_ot_library_is_refused_like_optical_ref(tricky):
    value, note = score(tricky, "m-pot")
    assert value == 0 and "ot.utils" in note


def test_archives_symlinks_and_the_cache_folder_are_named_not_graded(tricky):
    skipped = " ".join(tricky["graded"]["skipped"])
    assert "archive.zip" in skipped and "dangling" in skipped and "key-link" in skipped and "__pycache__" in skipped
    assert "archive.zip" not in tricky["rows"] and "dangling" not in tricky["rows"]
    assert "key-link" not in tricky["rows"] and "__pycache__" not in tricky["rows"]


def test_the_request_never_travels_in_argv_or_the_environment(tricky):
    snooped = (tricky["marks"] / "snooped").read_bytes()
    assert b"hidden-" not in snooped and b"inputs" not in snooped


def test_the_grades_say_which_isolation_was_used(tricky):
    assert tricky["graded"]["isolation"] == ("namespaces" if HAS_NAMESPACES else "process")


@pytest.mark.skipif(not HAS_NAMESPACES, reason="no unprivileged user namespaces on this system")
def test_under_namespaces_the_answer_key_and_the_grader_are_out_of_sight(tricky):
    assert score(tricky, "n-answer-key")[0] == 0
    snooped = (tricky["marks"] / "snooped").read_bytes()
    assert b"pytest" not in snooped                  # the grader's process (its command line, a seed) is not visible


@pytest.mark.skipif(not HAS_NAMESPACES, reason="no unprivileged user namespaces on this system")
def test_under_namespaces_the_sandbox_has_no_network():
    result = subprocess.run(["unshare", "--user", "--map-root-user", "--pid", "--fork", "--mount-proc", "--net",
                             "--mount", "cat", "/proc/net/dev"], capture_output=True, text=True, timeout=20)
    interfaces = [line.split(":")[0].strip() for line in result.stdout.splitlines()[2:]]
    assert interfaces == ["lo"]


# ---- process level: still a grade for everyone, still nothing left behind ---------------------------------
def test_without_isolation_every_student_gets_a_grade_and_nothing_outlives_grading(tmp_path):
    root, marks = tmp_path / "class", tmp_path / "marks"
    marks.mkdir()
    student(root, "a-ok", CORRECT)
    student(root, "b-orphan", ORPHAN.format(mark=str(marks)))
    student(root, "c-vandal", VANDAL)
    student(root, "d-after", CORRECT)
    before = fingerprint(root)
    graded = grade(root, seed=3, progress=lambda *_: None, time_limit=TIME_LIMIT, isolate="none")
    assert graded["isolation"] == "process"
    assert {s: r["frobenius"]["score"] for s, r in graded["students"].items()} == \
        {"a-ok": 1.0, "b-orphan": 1.0, "c-vandal": 1.0, "d-after": 1.0}
    assert fingerprint(root) == before
    time.sleep(max(0.0, (marks / "started").stat().st_mtime + 3 - time.time()))
    assert not (marks / "survived").exists()


def test_rerunning_with_the_same_seed_gives_identical_grades(tmp_path):
    root = tmp_path / "class"
    student(root, "a-ok", CORRECT)
    student(root, "b-wrong", WRONG)
    first, second = (grade(root, seed=9, progress=lambda *_: None, time_limit=TIME_LIMIT, isolate="none")
                     for _ in range(2))
    assert first["students"] == second["students"]


# ---- the grader's own inputs, refused before any grading -------------------------------------------------
@pytest.mark.parametrize("flags, words", [
    (["--time-limit", "inf"], "--time-limit inf"),
    (["--time-limit", "nan"], "--time-limit nan"),
    (["--csv", "{root}/a-ok/grades.csv"], "inside the submissions"),
    (["--json", "{root}/a-ok/grades.json"], "inside the submissions"),
])
def test_bad_grader_options_are_one_sentence_and_grade_nobody(tmp_path, flags, words):
    root = tmp_path / "class"
    student(root, "a-ok", CORRECT)
    before = fingerprint(root)
    flags = [f.format(root=root) for f in flags]
    done = subprocess.run([__import__("sys").executable, "-m", "optical_ref", "check", "--grade", str(root), *flags],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode != 0 and words in done.stderr + done.stdout and "Traceback" not in done.stderr
    assert fingerprint(root) == before and not (tmp_path / "grades.csv").exists()


def test_grade_files_are_written_whole_through_a_temporary_file(tmp_path, monkeypatch):
    from optical_ref.classroom import check
    target = tmp_path / "grades.csv"
    target.write_text("previous grades\n")

    def broken_replace(*_):
        raise OSError("disk full")

    monkeypatch.setattr(check.os, "replace", broken_replace)
    with pytest.raises(OSError):
        check.write_atomically(target, "new grades\n")
    assert target.read_text() == "previous grades\n" and [p.name for p in tmp_path.iterdir()] == ["grades.csv"]


def test_a_student_folder_whose_name_is_not_utf8_gets_a_row_in_both_files(tricky, tmp_path):
    from optical_ref.classroom.check import write_csv, write_atomically
    write_csv(tricky["graded"], tmp_path / "g.csv")
    write_atomically(tmp_path / "g.json", json.dumps(tricky["graded"]))
    assert "q-\\xff-latin1" in (tmp_path / "g.csv").read_text(encoding="utf-8")
    assert "q-\\xff-latin1" in json.loads((tmp_path / "g.json").read_text())["students"]
