"""The grader's sandbox: one student's submissions run in a fresh process, ``python -m optical_ref.classroom.sandbox REQUEST``.

Why a process of its own: a submission is arbitrary code. Run in the grader's process it could end the grading
(``sys.exit``), hang it (a loop that never ends), or patch the comparison so that a later student's wrong answer
passes. Here it can do none of that: this process only *calls* the student's functions on the cases' inputs
(it never sees an expected value) and writes the outputs, one JSON line per exercise, to a result file; the
grader compares them in its own process (:func:`optical_ref.classroom.reference.engine.judge_case`).

What is checked here, because only here can it be seen:

- the graded function must be **defined in the student's file**: a function imported from ``optical_ref`` (or
  any other module), or a wrapper of one, is refused whatever its name;
- every call into the library's code that has a frame of the student's file anywhere above it is recorded, by a
  profiler (``sys.setprofile``) that looks at each call's code, not at names: re-exports, aliases,
  ``__wrapped__``, ``importlib.reload`` and attribute tricks all end in library code and are all seen. Calls the
  exercise allows (``ot-loss`` may call a Sinkhorn solver) and everything they call are not recorded; module
  import (``<module>`` code) is not a call.
- each exercise has a time limit (SIGALRM: a Python loop is interrupted where it stands).

The limit of in-process checks: code in this process can, with enough effort, defeat any of them (it could
forge its own result file). They stop the cheats a course meets; a grader for stakes runs this process in a
container without write access to anything but its result file.

Request (JSON file): ``{"result": path, "exercises": [{"name", "file", "function", "kind", "allowed": [qualified
names], "time_limit": seconds, "cases": [{"name", "inputs"}]}]}``. Result: one line per exercise,
``{"name", "outcomes": [[status, fields]], "library_calls": [...], "refused": reason or null, "seconds"}``.
"""
from __future__ import annotations

import contextlib
import inspect
import json
import signal
import sys
import time
from pathlib import Path

LIBRARY = str(Path(__file__).resolve().parent.parent)   # the optical_ref package, whose calls are watched


class TimeLimit(BaseException):   # not an Exception: a submission's `except Exception` cannot swallow it
    """An exercise ran past its time limit."""


def _plain(value):
    """A result field as JSON data (arrays and tensors as nested lists)."""
    import numpy as np
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        return value.astype(float).tolist() if value.dtype != bool else value.tolist()
    if isinstance(value, (np.floating, np.integer)):
        return float(value)
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return repr(value)[:200]


class LibraryCalls:
    """The profiler: records library functions entered under a frame of the student's file."""

    def __init__(self, student_file: str, allowed):
        self.student_file, self.allowed, self.seen = student_file, set(allowed), []

    @staticmethod
    def qualified(code) -> str:
        module = Path(code.co_filename).resolve().relative_to(Path(LIBRARY).parent).with_suffix("")
        return ".".join(module.parts).removesuffix(".__init__") + "." + getattr(code, "co_qualname", code.co_name)

    def __call__(self, frame, event, arg):
        if event != "call" or not frame.f_code.co_filename.startswith(LIBRARY):
            return
        entry, f = frame.f_code, frame
        while f is not None:
            code = f.f_code
            if code.co_filename == self.student_file:
                name = self.qualified(entry)
                if name not in self.seen:
                    self.seen.append(name)
                return
            if code.co_filename.startswith(LIBRARY):
                if code.co_name == "<module>" or self.qualified(code) in self.allowed:
                    return           # an import, or inside a call the exercise allows
                entry = code
            f = f.f_back


def run_exercise(exercise: dict) -> dict:
    path = str(Path(exercise["file"]).resolve())
    watch = LibraryCalls(path, exercise.get("allowed", ()))
    out = {"name": exercise["name"], "outcomes": [], "library_calls": [], "refused": None}
    started = time.perf_counter()
    try:
        with alarm_after(exercise["time_limit"]):
            _run_cases(exercise, path, watch, out)
    except TimeLimit:
        out["refused"] = f"ran past its time limit of {exercise['time_limit']:g} s (a loop that never ends?)"
    out["library_calls"] = watch.seen
    out["seconds"] = round(time.perf_counter() - started, 3)
    return out


def _run_cases(exercise, path, watch, out) -> None:
    from .reference.engine import call_case, load_function

    sys.setprofile(watch)
    try:
        fn = load_function(f"{path}:{exercise['function']}")
        if not inspect.isfunction(fn) or str(Path(fn.__code__.co_filename).resolve()) != path:
            where = getattr(getattr(fn, "__code__", None), "co_filename", None) or getattr(fn, "__module__", "?")
            out["refused"] = (f"{exercise['function']} is not defined in {Path(path).name} (it comes from {where}); "
                              "a submission must write its own function")
        else:
            for case in exercise["cases"]:
                status, fields = call_case(exercise["kind"], fn, case)
                out["outcomes"].append([status, fields if status != "ok" else
                                        {k: _plain(v) for k, v in fields.items()}])
    except (ValueError, FileNotFoundError) as err:
        out["refused"] = str(err)
    finally:
        sys.setprofile(None)


@contextlib.contextmanager
def alarm_after(seconds: float):
    """Raise :class:`TimeLimit` in the main thread once ``seconds`` of wall clock have passed inside the block (a
    Python loop is interrupted where it stands); the previous alarm handler is restored on the way out."""
    def on_alarm(signum, frame):
        raise TimeLimit()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, float(seconds))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def main(argv=None) -> int:
    request = json.loads(Path((argv or sys.argv[1:])[0]).read_text(encoding="utf-8"))
    with open(request["result"], "a", encoding="utf-8") as sink:
        for exercise in request["exercises"]:
            line = json.dumps(run_exercise(exercise))
            sink.write(line + "\n")
            sink.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
