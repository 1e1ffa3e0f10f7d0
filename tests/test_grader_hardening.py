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
from optical_ref.classroom.isolation import library_locations, namespaces_available

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


FORGER = """
    import json, os
    def frobenius(P, C):
        value = float((P * C).sum())
        line = {"ex": "frobenius", "i": 0, "library_calls": [], "outcome": ["ok", {"value": value}]}
        os.write(3, (json.dumps(line) + "\\n").encode())      # the grader's channel: a well-formed line, no key
        os._exit(0)                                             # so that the sandbox's own line never comes
"""


LIBRARY_CHEATS = {   # what the watch catches at process level; under namespaces the imports themselves fail
    "k-profiler-off": """
        import sys
        import optical_ref.ot
        def frobenius(P, C):
            sys.setprofile(None)
            return optical_ref.ot.frobenius(P, C)
    """,
    "l-thread-library": """
        import threading
        import optical_ref.ot
        def frobenius(P, C):
            out = []
            worker = threading.Thread(target=lambda: out.append(optical_ref.ot.frobenius(P, C)))
            worker.start(); worker.join()
            return out[0]
    """,
    "m-pot": """
        import ot
        def frobenius(P, C):
            return float((ot.utils.list_to_array(P)[0] * C).sum())
    """,
}


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
    student(root, "e-forged-line", FORGER)
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
    helper = student(root, "r-helper-package", "from helpers.tools import product\ndef frobenius(P, C):\n"
                                               "    return product(P, C)\n")
    (helper / "helpers" / "deeper").mkdir(parents=True)
    (helper / "helpers" / "__init__.py").write_text("")
    (helper / "helpers" / "tools.py").write_text("from .deeper.sums import total\ndef product(P, C):\n"
                                                 "    return total(P * C)\n")
    (helper / "helpers" / "deeper" / "sums.py").write_text("def total(x):\n    return float(x.sum())\n")
    leak = student(root, "s-leaking-link", "from sub.leak import frobenius\n")
    (leak / "sub").mkdir()
    (leak / "sub" / "leak.py").symlink_to(INSTRUCTOR / "ex03_frobenius.py")      # out of the folder: not copied
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
    for name, code in LIBRARY_CHEATS.items():
        student(root, name, code)
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
    places = [str(p) for p in library_locations()]             # the grader's package, an editable install's, ...
    (marks / "library-locations").write_text("".join(f"{p}\n" for p in places))
    student(root, "t-library-by-path", f"""
        import pathlib
        def frobenius(P, C):
            for place in {places!r}:
                try:
                    text = pathlib.Path(place, "ot.py").read_text()
                except OSError:
                    continue
                pathlib.Path({str(marks / "library-read")!r}).write_text(place)
            return float((P * C).sum())
    """)
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
    report = []
    graded = grade(root, seed=7, progress=report.append, time_limit=TIME_LIMIT)
    return {"root": root, "marks": marks, "before": before, "graded": graded, "report": report,
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


def test_a_well_formed_result_line_the_submission_writes_itself_scores_zero_with_a_note(tricky):
    value, note = score(tricky, "e-forged-line")           # the right shape, the right value: but not the key
    assert value == 0 and "without this sandbox's key" in note
    assert score(tricky, "f-deep-json")[0] == 0 and "RecursionError" in score(tricky, "f-deep-json")[1]


def test_a_helper_package_in_sub_folders_is_graded_with_the_student_and_links_out_are_not(tricky):
    assert score(tricky, "r-helper-package")[0] == 1.0      # helpers/tools.py imports helpers/deeper/sums.py
    value, note = score(tricky, "s-leaking-link")
    assert value == 0 and "No module named 'sub" in note    # the link to the answer key was never copied


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
def test_under_namespaces_the_library_and_other_ot_libraries_are_out_of_the_sandboxs_reach(tricky):
    for name in ("k-profiler-off", "l-thread-library", "m-pot"):   # `import optical_ref.ot`, `import ot`
        value, note = score(tricky, name)
        assert value == 0 and "sees only the part of the library its exercise may use" in note, (name, note)


@pytest.mark.skipif(not HAS_NAMESPACES, reason="no unprivileged user namespaces on this system")
def test_under_namespaces_points_are_verified_and_the_report_line_says_nothing_more(tricky):
    assert tricky["rows"]["a-ok"]["frobenius"]["verified"] is True
    line = next(line for line in tricky["report"] if line.strip().startswith("a-ok "))
    assert "unverified" not in line


def test_a_library_view_holds_the_sandbox_and_what_the_exercise_may_call_and_nothing_else(tmp_path):
    from optical_ref.classroom.exercises import EXERCISES
    from optical_ref.classroom.isolation import library_view
    bare = library_view(tmp_path / "bare") / "optical_ref"
    solver = library_view(tmp_path / "solver", EXERCISES["ot-loss"].allowed) / "optical_ref"
    assert (bare / "classroom" / "sandbox.py").is_file() and (bare / "classroom" / "reference" / "engine.py").is_file()
    assert not (bare / "ot.py").exists() and not (bare / "losses.py").exists() and not (bare / "ot_torch.py").exists()
    assert (solver / "ot.py").is_file() and (solver / "ot_torch.py").is_file() and not (solver / "losses.py").exists()


@pytest.mark.skipif(not HAS_NAMESPACES, reason="no unprivileged user namespaces on this system")
def test_under_namespaces_no_copy_of_the_library_python_could_import_can_be_read_by_path(tricky):
    assert (tricky["marks"] / "library-locations").read_text().count("\n") >= 1     # it knew where to look
    assert not (tricky["marks"] / "library-read").exists()


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


# ---- process level: the watch inside the student's process, and grades that say they are unverified ------
def renamed_library_frobenius() -> str:
    """optical_ref.ot.frobenius with every name changed (function, arguments, numpy's alias) and a new
    docstring: the text differs everywhere, the code does not."""
    import ast
    import inspect
    import optical_ref.ot

    names = {"P": "plan", "C": "cost", "np": "numpy", "frobenius": "my_inner_product"}

    class Rename(ast.NodeTransformer):
        def visit_Name(self, node):
            node.id = names.get(node.id, node.id)
            return node

        def visit_arg(self, node):
            node.arg = names.get(node.arg, node.arg)
            return node

    tree = Rename().visit(ast.parse(inspect.getsource(optical_ref.ot.frobenius)))
    tree.body[0].name, tree.body[0].body[0].value.value = "my_inner_product", "My own inner product."
    return "import numpy\n\n\n" + ast.unparse(tree) + "\n"


@pytest.fixture(scope="module")
def watched(tmp_path_factory):
    """A class graded at process level (--isolate none): the library is within every sandbox's reach, so the
    watch inside the student's process and the channel's key are what stand in the way."""
    root = tmp_path_factory.mktemp("watched")
    student(root, "a-ok", CORRECT)
    for name, code in LIBRARY_CHEATS.items():
        student(root, name, code)
    student(root, "e-forged-line", FORGER.replace("value = float((P * C).sum())",
                                                  "value = __import__('optical_ref.ot').ot.frobenius(P, C)"))
    student(root, "u-exec-library-text", """
        import pathlib, optical_ref
        space = {}
        exec(compile((pathlib.Path(optical_ref.__file__).parent / "ot.py").read_text(), "mine.py", "exec"), space)
        def frobenius(P, C):
            return space["frobenius"](P, C)
    """)
    held = student(root, "v-copy-held-in-a-helper", """
        from mylib.inner import my_inner_product       # imported, never called: the copy is held, not run
        def frobenius(P, C):
            return float((P * C).sum())
    """)
    (held / "mylib").mkdir()
    (held / "mylib" / "inner.py").write_text(renamed_library_frobenius())
    student(root, "w-copy-pasted-renamed", renamed_library_frobenius() + "\n\ndef frobenius(P, C):\n"
                                                                      "    return my_inner_product(P, C)\n")
    report = []
    graded = grade(root, seed=13, progress=report.append, time_limit=TIME_LIMIT, isolate="none")
    return {"rows": graded["students"], "report": report, "graded": graded}


def test_switching_the_profiler_off_or_calling_the_library_from_a_thread_scores_zero(watched):
    assert score(watched, "k-profiler-off")[0] == 0 and "switched off" in score(watched, "k-profiler-off")[1]
    value, note = score(watched, "l-thread-library")
    assert value == 0 and "optical_ref.ot.frobenius" in note


def test_another_ot_library_is_refused_like_optical_ref(watched):
    value, note = score(watched, "m-pot")
    assert value == 0 and "ot.utils" in note


def test_a_forged_line_that_hides_a_library_call_scores_zero_at_process_level(watched):
    value, note = score(watched, "e-forged-line")      # "library_calls": [] and the library's own value
    assert value == 0 and "without this sandbox's key" in note


def test_library_text_read_and_executed_under_another_file_name_scores_zero(watched):
    value, note = score(watched, "u-exec-library-text")
    assert value == 0 and "copy of the library's own optical_ref.ot.frobenius" in note


def test_a_renamed_copy_of_a_library_function_scores_zero_pasted_or_held_in_a_helper(watched):
    for name in ("w-copy-pasted-renamed", "v-copy-held-in-a-helper"):   # run; imported but never run
        value, note = score(watched, name)
        assert value == 0 and "copy of the library's own optical_ref.ot.frobenius" in note, (name, note)


def test_at_process_level_points_are_marked_unverified_in_the_grades_and_the_report(watched):
    ok = watched["rows"]["a-ok"]["frobenius"]
    assert ok["score"] == 1.0 and ok["verified"] is False
    assert watched["rows"]["a-ok"]["kd-kl"]["verified"] is True              # a missing file's 0 needs no vouching
    line = next(line for line in watched["report"] if line.strip().startswith("a-ok "))
    assert "unverified (process level" in line
    zero = next(line for line in watched["report"] if line.strip().startswith("m-pot "))
    assert "unverified" not in zero                                           # forging can only raise a score


def test_a_result_line_without_the_sessions_key_is_refused_by_the_runner():
    from optical_ref.classroom.runner import FORGED, parse
    assert parse(b'{"ready": true, "key": "k1"}', "k1") == {"ready": True, "key": "k1"}
    for line in (b'{"ready": true}', b'{"ready": true, "key": "k2"}'):
        with pytest.raises(ValueError, match="without this sandbox's key"):
            parse(line, "k1")
    assert "key" in FORGED


def test_a_fingerprint_sees_through_renaming_but_not_an_independent_solution():
    import optical_ref
    from optical_ref.classroom.fingerprint import copies_in, library_fingerprints
    known = library_fingerprints(Path(optical_ref.__file__).resolve().parent)
    assert copies_in(renamed_library_frobenius(), "mine.py", known) == ["optical_ref.ot.frobenius"]
    assert copies_in(CORRECT, "mine.py", known) == []
    for name in ("ex01_kernel_sinkhorn.py", "ex02_log_sinkhorn.py", "ex06_ot_loss.py", "ex07_batched_sinkhorn.py"):
        assert copies_in((INSTRUCTOR / name).read_bytes(), name, known) == [], name   # written out, not copied


def test_a_private_copy_holds_sub_folder_sources_but_no_bytecode_hidden_folders_or_links_out(tmp_path):
    from optical_ref.classroom.isolation import read_sources, remove_private_copy, write_private_copy
    folder = tmp_path / "student"
    (folder / "pkg" / "__pycache__").mkdir(parents=True)
    (folder / ".venv").mkdir()
    (folder / "ex03_frobenius.py").write_text(CORRECT)
    (folder / "pkg" / "__init__.py").write_text("")
    (folder / "pkg" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    (folder / ".venv" / "site.py").write_text("")
    (folder / "pkg" / "key.py").symlink_to(INSTRUCTOR / "ex03_frobenius.py")
    (folder / "pkg" / "same.py").symlink_to(folder / "ex03_frobenius.py")
    sources, notes = read_sources(folder)
    assert sorted(sources) == ["ex03_frobenius.py", "pkg/__init__.py", "pkg/same.py"]
    assert any("pkg/key.py is a symlink out of the folder" in n for n in notes)
    copy = write_private_copy(sources, tmp_path / "copy")
    assert (copy / "pkg" / "same.py").read_text() == CORRECT
    assert [oct(p.stat().st_mode & 0o777) for p in (copy, copy / "pkg", copy / "pkg" / "same.py")] == \
        ["0o555", "0o555", "0o444"]                                              # read-only, folders included
    remove_private_copy(copy)
    assert not copy.exists()


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
