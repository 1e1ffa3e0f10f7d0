"""One student's turn: run their exercises in the sandbox (:mod:`optical_ref.classroom.sandbox`), case by case,
with the time limit of each case enforced from here, outside the student's process.

The sandbox sends one line per step (see its protocol). A case that runs past its limit, or a sandbox that dies,
costs that case: the sandbox and everything it started are killed (:func:`optical_ref.classroom.isolation.reap`)
and a fresh one goes on with the next case. Two such cases end the exercise (its other cases score 0), so an
endless loop costs bounded time. Whatever comes back is read defensively: a line too long, too deep, not JSON,
out of order or missing a field ends that exercise with a note, never the grading.
"""
from __future__ import annotations

import json
import os
import secrets
import select
import subprocess
import sys
import time
from dataclasses import dataclass, field

from . import isolation

STARTUP_ALLOWANCE = 60.0       # the sandbox's own start (python, numpy, torch) before the first exercise
IMPORT_ALLOWANCE = 15.0        # loading a file may import big libraries (scipy, POT: seconds), on top of the limit
MAX_LINE_BYTES = 64 * 2**20    # far above any result of the cases (the largest plan holds a few hundred numbers)
MAX_STRIKES = 2                # cases past the limit (or deaths) after which an exercise's other cases score 0


@dataclass
class Outcome:
    """What one exercise of one student produced: per-case outcomes, library calls seen, or why it was refused."""
    total: int
    outcomes: dict = field(default_factory=dict)       # case index -> [status, fields]
    library_calls: list = field(default_factory=list)
    refused: str | None = None
    loaded: bool = False
    done: bool = False
    strikes: int = 0

    def next_case(self) -> int:
        return len(self.outcomes)

    def finish(self, note: str | None = None) -> None:
        if note and self.refused is None:
            self.refused = note
        self.done = True


class Channel:
    """The sandbox's answers as lines, each awaited no longer than a deadline."""

    def __init__(self, stream):
        self.fd, self.buffer = stream.fileno(), b""

    def line(self, timeout: float):
        """The next line (bytes); None at the deadline; EOFError when the sandbox ended; ValueError if too long."""
        end = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            if len(self.buffer) > MAX_LINE_BYTES:
                raise ValueError(f"a result line longer than {MAX_LINE_BYTES // 2**20} MiB")
            left = end - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                return None
            chunk = os.read(self.fd, 1 << 20)
            if not chunk:
                raise EOFError
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line


FORGED = "a result line without this sandbox's key (written by the submission itself?)"


def parse(line: bytes, key: str) -> dict:
    """One line of the sandbox as a dict; any failure (not JSON, 100,000 levels deep, a 5,001-digit number,
    not an object, not carrying the session's ``key``) is a ValueError with one sentence."""
    try:
        message = json.loads(line)
    except (Exception, RecursionError) as err:   # RecursionError is an Exception; named for the reader
        raise ValueError(f"a result line could not be read ({type(err).__name__})") from None
    if not isinstance(message, dict):
        raise ValueError("a result line is not a JSON object")
    if message.get("key") != key:
        raise ValueError(FORGED)
    return message


def run_student(exercises: list, time_limit: float, command: list, cwd, env, library_code=None) -> dict:
    """{exercise name: Outcome} for one student's ``exercises`` (sandbox requests); fresh sandboxes until every
    exercise is done. ``library_code``: the library's fingerprints, for the sandbox's watch of copies."""
    state = {e["name"]: Outcome(total=len(e["cases"])) for e in exercises}
    while not all(s.done for s in state.values()):
        pending = [dict(e, first=state[e["name"]].next_case(), cases=e["cases"][state[e["name"]].next_case():])
                   for e in exercises if not state[e["name"]].done]
        session(pending, state, time_limit, (command, cwd, env), library_code or {})
    return state


def session(pending: list, state: dict, time_limit: float, launch: tuple, library_code: dict) -> None:
    """One sandbox process (``launch``: command, working folder, environment): send the request and a fresh
    key on stdin, follow its lines until it ends or breaks, then reap it and everything it started."""
    command, cwd, env = launch
    key = secrets.token_hex(16)                   # per sandbox: a line without it was not written by the sandbox
    before = isolation.own_children()
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               cwd=cwd, env=env, start_new_session=True)
    try:
        _send_request(process, {"key": key, "library_code": library_code, "exercises": pending})
        channel = Channel(process.stdout)
        first = state[pending[0]["name"]]
        if not _expect_ready(channel, first, process, key):
            return
        for exercise in pending:
            if not follow(channel, exercise, state[exercise["name"]], time_limit, process, key):
                return
    finally:
        isolation.reap(process, before)
        process.stdout.close()


def _send_request(process, request: dict) -> None:
    try:
        process.stdin.write(json.dumps(request).encode("utf-8"))
        process.stdin.close()
    except (BrokenPipeError, OSError):
        pass                                      # it died at once: the channel says so next


def _expect_ready(channel, first: Outcome, process, key: str) -> bool:
    try:
        line = channel.line(STARTUP_ALLOWANCE)
        ready = line is not None and parse(line, key).get("ready") is True
    except (EOFError, ValueError):
        ready = False
    if not ready:
        first.finish(f"the sandbox did not start ({_ending(process)}); the exercise could not be run")
    return ready


def follow(channel, exercise: dict, outcome: Outcome, time_limit: float, process, key: str) -> bool:
    """Read one exercise's lines into ``outcome``; False when the sandbox must be replaced (a case ran past its
    limit, the sandbox died, or it sent something unreadable)."""
    while not outcome.done:
        try:
            allowed = time_limit if outcome.loaded else time_limit + IMPORT_ALLOWANCE
            line = channel.line(allowed)
            if line is None:
                return _lost(outcome, f"ran past the time limit of {allowed:g} s", time_limit)
            apply(parse(line, key), exercise["name"], outcome)
        except EOFError:
            return _lost(outcome, f"the process ended ({_ending(process)})", time_limit)
        except KeyError as err:
            outcome.finish(f"a result line misses the field {err}: scored 0")
            return False
        except (ValueError, TypeError, AttributeError) as err:
            outcome.finish(f"{err}: scored 0")
            return False
    return True


def apply(message: dict, name: str, outcome: Outcome) -> None:
    """Take one message of the sandbox into ``outcome``; a message that is not the one expected next is a
    ValueError (a submission writing into the channel is caught here when it gets the order wrong)."""
    if message.get("ex") != name:
        raise ValueError("the result lines came out of order (written by the submission?)")
    if "refused" in message and "end" not in message:
        _merge_calls(outcome, message.get("library_calls", []))   # a library import that broke the load
        return outcome.finish(str(message["refused"])[:500])
    if message.get("loaded") is True:
        outcome.loaded = True
        return None
    if "end" in message:
        _merge_calls(outcome, message["library_calls"])
        refused = message.get("refused")
        return outcome.finish(str(refused)[:500] if refused else None)
    index, result = message["i"], message["outcome"]
    if index != outcome.next_case() or not outcome.loaded or index >= outcome.total:
        raise ValueError("the result lines came out of order (written by the submission?)")
    if not (isinstance(result, list) and len(result) == 2 and isinstance(result[0], str)):
        raise ValueError("a case's result came back in an unreadable form")
    outcome.outcomes[index] = result
    return _merge_calls(outcome, message.get("library_calls", []))


def _merge_calls(outcome: Outcome, calls) -> None:
    if not isinstance(calls, list) or not all(isinstance(c, str) for c in calls):
        raise ValueError("the library calls came back unreadable")
    outcome.library_calls = list(dict.fromkeys(outcome.library_calls + calls))


def _lost(outcome: Outcome, what: str, time_limit: float) -> bool:
    """The sandbox stopped answering during this exercise: the case it was on fails with the reason."""
    if not outcome.loaded:
        outcome.finish(f"{what} while loading the file (a loop or sys.exit at import?): scored 0")
        return False
    outcome.outcomes[outcome.next_case()] = ["crash", f"{what} on this case (a loop that never ends, sys.exit "
                                                      "or a crash of the interpreter?)"]
    outcome.strikes += 1
    if outcome.strikes >= MAX_STRIKES or outcome.next_case() >= outcome.total:
        outcome.finish(f"{what} on {outcome.strikes} case(s); the other cases were not run"
                       if outcome.next_case() < outcome.total else None)
    return False


def _ending(process) -> str:
    try:
        code = process.wait(timeout=2)
    except subprocess.TimeoutExpired:
        return "it stopped answering"
    return f"exit code {code}" if code >= 0 else f"killed by signal {-code}"


def sandbox_command(isolation_level: str, own_copy, hidden=(), blocked=(), view=None) -> list:
    """The command line of one sandbox: python without bytecode writing (-B) and without the working folder on
    its path (-P, where this Python has it), wrapped in namespaces when ``isolation_level`` says so: ``hidden``
    and ``blocked`` folders out of sight, the private copy ``own_copy`` and the library ``view`` read-only."""
    python = [sys.executable, "-B", *(["-P"] if sys.version_info >= (3, 11) else []),
              "-m", "optical_ref.classroom.sandbox"]
    if isolation_level == "namespaces":
        return isolation.namespace_prefix(list(hidden), list(blocked), [p for p in (own_copy, view) if p]) + python
    return python
