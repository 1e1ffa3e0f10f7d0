"""The grader's sandbox: one student's submissions run in a fresh process
(``python -B -m optical_ref.classroom.sandbox``).

Why a process of its own: a submission is arbitrary code. Run in the grader's process it could end the grading
(``sys.exit``), hang it (a loop that never ends), or patch the comparison so that a later student's wrong answer
passes. Here it can do none of that: this process only *calls* the student's functions on the cases' inputs
(it never sees an expected value, nor the seed they were drawn from) and sends the outputs back; the grader
compares them in its own process (:func:`optical_ref.classroom.reference.engine.judge_case`), and enforces the
time limit of each case from outside (:mod:`optical_ref.classroom.check`), killing this process and all it
started when a case runs past it.

What is checked here, because only here can it be seen:

- the graded function must be **defined in the student's file**: a function imported from ``optical_ref`` (or
  any other module), or a wrapper of one, is refused whatever its name;
- every call into the library's code, or into another optimal-transport library (``ot`` (POT), ``geomloss``,
  ``ott``), that has a frame of the student's file anywhere above it is recorded, by a profiler
  (``sys.setprofile``, ``threading.setprofile``) that looks at each call's code, not at names: re-exports,
  aliases, ``__wrapped__``, ``importlib.reload`` and attribute tricks all end in library code and are all seen.
  Calls the exercise allows (``ot-loss`` may call a Sinkhorn solver) and everything they call are not recorded;
  module import (``<module>`` code) is not a call. A submission that switches the profiler off
  (``sys.setprofile(None)``) is refused;
- every function run under the student's code whose code is a **copy** of one of the library's (the same
  fingerprint, :mod:`optical_ref.classroom.fingerprint`: pasted, copied into a helper module, or read as text
  and ``exec``'d) is recorded as that function, marked as a copy.

The limit of in-process checks: code in this process can, with deliberate effort, defeat them (walk the stack
to :func:`run_exercise` and call its ``send``, or empty the profiler's record). The per-sandbox key stops
lines a submission writes to the channel by itself; under ``--isolate namespaces`` the library is not in this
process's file system, so there is nothing to hide a call to; tutorials/exercises/GRADING.md gives the
threat model and what the grades' ``"verified"`` means.

Protocol: the request comes on stdin as one JSON object, ``{"key": a fresh random key, "library_code":
{fingerprint: qualified name}, "exercises": [{"name", "file", "function", "kind", "allowed": [qualified
names], "first": index of the first case, "cases": [{"name", "inputs"}]}]}`` (stdin, not argv or the
environment: no other process can read it). The answers go to the original stdout, one JSON line each, every
one carrying ``"key"``: ``{"ready": true}`` once, then per exercise ``{"ex", "loaded": true}`` or ``{"ex",
"refused": reason, "library_calls"}``, one ``{"ex", "i", "outcome": [status, fields], "library_calls": [so
far]}`` per case, and ``{"ex", "end": true, "library_calls": [...], "refused": reason or null}``. What a
submission prints goes to stderr, never into the channel.
"""
from __future__ import annotations

import contextlib
import importlib.util
import inspect
import json
import os
import signal
import sys
import threading
from pathlib import Path

from .fingerprint import COPY, fingerprint
from .isolation import OTHER_OT_LIBRARIES   # refused like optical_ref where the exercise asks for a solver

LIBRARY = str(Path(__file__).resolve().parents[1])   # the optical_ref package, whose calls are watched
NUMPY_KINDS = ("sinkhorn", "sinkhorn_fixed", "exact_ot", "frobenius")   # the others hand over torch tensors


class TimeLimit(BaseException):   # not an Exception: a submission's `except Exception` cannot swallow it
    """An exercise ran past its time limit."""


def watched_roots() -> list:
    """The folders whose code the profiler watches: optical_ref, and every other OT library installed here
    (found without importing it)."""
    roots = [LIBRARY]
    for name in OTHER_OT_LIBRARIES:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            continue
        if spec is not None and spec.submodule_search_locations:
            for loc in spec.submodule_search_locations:     # as imported and as resolved (a venv may be a link)
                roots.extend(dict.fromkeys([os.path.join(loc, ""), os.path.join(str(Path(loc).resolve()), "")]))
    return roots


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
    """The profiler: records watched library functions, and copies of the library's functions
    (:mod:`optical_ref.classroom.fingerprint`), entered under a frame of the student's file."""

    def __init__(self, student_file: str, allowed, roots=None, copies=None):
        self.student_file, self.allowed, self.seen = student_file, set(allowed), []
        self.roots = tuple(roots or watched_roots())
        self.copies = copies or {}      # {fingerprint: qualified name} of the library's functions
        self.known = {}                 # id(code) -> (code, identity): each code object is looked at once

    def qualified(self, code) -> str:
        root = next(r for r in self.roots if code.co_filename.startswith(r))
        module = Path(code.co_filename).relative_to(Path(root).parent).with_suffix("")
        return ".".join(module.parts).removesuffix(".__init__") + "." + getattr(code, "co_qualname", code.co_name)

    def identity(self, code) -> str | None:
        """The library name of ``code``: its own when it is watched library code, the name it is a copy of
        (marked with COPY) when its fingerprint is a library function's, None otherwise."""
        hit = self.known.get(id(code))
        if hit is None:          # the code object is kept with its answer, so its id is never reused
            if code.co_filename.startswith(self.roots):
                name = self.qualified(code)
            else:
                name = self.copies.get(fingerprint(code))
                name = name + COPY if name else None
            self.known[id(code)] = hit = (code, name)
        return hit[1]

    def __call__(self, frame, event, arg):
        if event != "call":
            return
        entry = self.identity(frame.f_code)
        if entry is None or frame.f_code.co_name == "<module>" or entry.removesuffix(COPY) in self.allowed:
            return               # not library code, an import (module code is not a call), or allowed
        f = frame
        while f is not None:
            code = f.f_code
            if code.co_filename == self.student_file:     # a copy pasted into the student's file counts too
                if entry not in self.seen:
                    self.seen.append(entry)
                return
            if f is not frame:
                outer = self.identity(code)
                if outer is not None:
                    if code.co_name == "<module>" or outer.removesuffix(COPY) in self.allowed:
                        return   # an import, or inside a call the exercise allows
                    entry = outer
            f = f.f_back


def run_exercise(exercise: dict, send, copies=None) -> None:
    """Load the student's function and call it on every case, sending one line per step (see the protocol);
    ``copies``: the library's fingerprints, {fingerprint: qualified name}."""
    from .reference.engine import call_case, load_function

    path = str(Path(exercise["file"]).resolve())
    watch = LibraryCalls(path, exercise.get("allowed", ()), copies=copies)
    name, refused = exercise["name"], None
    sys.setprofile(watch)
    threading.setprofile(watch)        # threads the submission starts are watched too
    try:
        fn = load_function(f"{path}:{exercise['function']}")
        refused = _not_own_function(fn, path, exercise["function"])
        if refused:
            return send({"ex": name, "refused": refused, "library_calls": watch.seen})
        send({"ex": name, "loaded": True})
        for i, case in enumerate(exercise["cases"], start=exercise.get("first", 0)):
            status, fields = call_case(exercise["kind"], fn, case)
            if sys.getprofile() is not watch:
                refused = "switched off the grader's library-call watcher (sys.setprofile): refused"
                sys.setprofile(watch)
            plain = _out_of_reach(fields) if status != "ok" else {k: _plain(v) for k, v in fields.items()}
            send({"ex": name, "i": i, "library_calls": watch.seen, "outcome": [status, plain]})
    except (ValueError, FileNotFoundError) as err:
        return send({"ex": name, "refused": _load_failure(err, path), "library_calls": watch.seen})
    finally:
        sys.setprofile(None)
        threading.setprofile(None)
    send({"ex": name, "end": True, "library_calls": watch.seen, "refused": refused})


def _load_failure(err, path: str) -> str:
    """Why the student's file could not be loaded, in their terms (their file's name, not the private copy's
    path nor the --impl spelling of the one-student check)."""
    text = str(err).split("': ", 1)[-1] if str(err).startswith("--impl '") else str(err)
    return _out_of_reach(text.replace(path, Path(path).name)) + ": scored 0"


def _out_of_reach(text: str) -> str:
    """``text`` (a failure) with the reason when it is an import of library code the sandbox does not hold."""
    if "No module named 'optical_ref" in text or "out of reach of graded code" in text:
        return text + (" (graded code sees only the part of the library its exercise may use: "
                       "tutorials/exercises/GRADING.md)")
    return text


def _not_own_function(fn, path: str, function: str) -> str | None:
    """Why ``fn`` is not the student's own function (None when it is)."""
    if inspect.isfunction(fn) and str(Path(fn.__code__.co_filename).resolve()) == path:
        return None
    where = getattr(getattr(fn, "__code__", None), "co_filename", None) or getattr(fn, "__module__", "?")
    return (f"{function} is not defined in {Path(path).name} (it comes from {where}); a submission must write "
            "its own function")


@contextlib.contextmanager
def alarm_after(seconds: float):
    """Raise :class:`TimeLimit` in the main thread once ``seconds`` of wall clock have passed inside the block (a
    Python loop is interrupted where it stands); the previous alarm handler is restored on the way out. Used by
    ``check EXERCISE`` (one student's own run); the grader enforces its limits from outside."""
    def on_alarm(signum, frame):
        raise TimeLimit()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, float(seconds))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def open_channel(key: str):
    """The grader's channel (the original stdout) as a function that sends one JSON line carrying ``key``;
    stdout itself is pointed at stderr so that what a submission prints never reaches the channel."""
    channel = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def send(message: dict) -> None:
        channel.write(json.dumps({**message, "key": key}) + "\n")
        channel.flush()
    return send


def main(argv=None) -> int:
    request = json.loads(sys.stdin.read())
    # The key lives on only inside `send`: a line a submission writes to the channel by itself lacks it
    # (GRADING.md says what this does and does not stop).
    send = open_channel(str(request.pop("key", "")))
    exercises, copies = request.pop("exercises"), request.pop("library_code", {})
    del request
    import numpy  # noqa: F401  (imported before the first time limit starts: the start is not the student's)
    if any(e["kind"] not in NUMPY_KINDS for e in exercises):
        import torch  # noqa: F401
    send({"ready": True})
    for exercise in exercises:
        run_exercise(exercise, send, copies)
    return 0


if __name__ == "__main__":
    sys.exit(main())
