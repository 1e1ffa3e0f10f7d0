"""What the operating system gives the grader to keep one student's code away from everything else.

- **Reaping.** On Linux the grader makes itself a *child subreaper* (``prctl(PR_SET_CHILD_SUBREAPER)``): a
  process a student starts that outlives its parent (a double fork, ``setsid``) is re-parented to the grader
  instead of to init, so the grader can still find it. When a student's turn ends, :func:`reap` kills every
  descendant of the sandbox and every orphan that came back to the grader during the turn, until none is left.
  Elsewhere the sandbox runs in a process group of its own, which is killed as a whole.
- **Namespaces** (``--isolate namespaces``; ``auto`` uses them when the kernel allows unprivileged user
  namespaces): the sandbox gets its own PID namespace (it cannot see the grader's command line, so not the
  seed), its own network namespace (no network), and its own mount namespace in which the submissions, the
  answer key (``instructor/``) and the other students' private copies are covered by empty file systems and its
  own copy is read-only.
- **Private copies.** A student is graded from a copy of their folder that holds their ``.py`` sources only
  (no ``.pyc``, no symlinks), read for every student before the first one runs and written out, read-only, only
  for that student's turn, so nothing a student writes into another's folder changes a grade, and the grader
  writes nothing (no ``__pycache__``) into a student's folder.
"""
from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36
PROBE = ["unshare", "--user", "--map-root-user", "--pid", "--fork", "--mount-proc", "--net", "--mount", "true"]


def become_subreaper() -> bool:
    """Make this process the reaper of its orphaned descendants (Linux); False where that is not possible."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _parents() -> dict:
    """{pid: parent pid} of every process this user can see (Linux /proc); {} elsewhere."""
    table = {}
    for entry in Path("/proc").iterdir() if Path("/proc/self/stat").exists() else ():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text(encoding="ascii", errors="replace")
            table[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])   # the name may hold spaces and ')'
        except (OSError, ValueError, IndexError):
            continue                                                           # it ended while we read
    return table


def descendants(root: int) -> set:
    """Every process below ``root`` in the process tree (its children, their children, ...)."""
    parents, found, frontier = _parents(), set(), {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def own_children() -> set:
    """The grader's direct children now (orphans of a student come back here once the grader is a subreaper)."""
    me = os.getpid()
    return {pid for pid, parent in _parents().items() if parent == me}


def reap(process: subprocess.Popen, before: set, rounds: int = 200) -> None:
    """Kill the sandbox, everything below it and every orphan re-parented to the grader since ``before`` (the
    grader's children when the turn began); repeat until a scan finds none (a fork bomb forks while we kill)."""
    _kill(process.pid)
    if not sys.platform.startswith("linux"):
        _kill_group(process.pid)
    for _ in range(rounds):
        strays = descendants(process.pid) | (own_children() - before - {process.pid})
        strays |= {d for pid in strays for d in descendants(pid)}
        if not strays:
            break
        for pid in strays:
            _kill(pid)
        for pid in strays:
            _wait(pid)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, AttributeError):
        pass


def _wait(pid: int) -> None:
    """Collect a killed child of ours (a zombie otherwise); a process that is not our child is not ours to wait."""
    try:
        os.waitpid(pid, 0)
    except (ChildProcessError, OSError):
        pass


def namespaces_available() -> bool:
    """Whether unprivileged user, PID, mount and network namespaces can be made here (Linux, unshare)."""
    if not sys.platform.startswith("linux") or shutil.which("unshare") is None:
        return False
    try:
        return subprocess.run(PROBE, capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def choose_isolation(wanted: str) -> str:
    """'namespaces' or 'process' for --isolate auto|namespaces|none; namespaces asked for but missing is an error."""
    if wanted not in ("auto", "namespaces", "none"):
        raise ValueError(f"--isolate {wanted}: give auto, namespaces or none")
    if wanted == "none":
        return "process"
    if namespaces_available():
        return "namespaces"
    if wanted == "namespaces":
        raise ValueError("--isolate namespaces: this system does not allow unprivileged user namespaces "
                         "(or has no unshare); use --isolate auto or none to grade at process level")
    return "process"


def namespace_prefix(hidden: list, read_only: Path) -> list:
    """The command that runs the sandbox in namespaces of its own: ``hidden`` folders are covered by empty
    file systems, ``read_only`` (the student's private copy) is bound read-only, then the rest runs."""
    script = ('set -e; ro="$1"; shift; while [ "$1" != "--" ]; do mount -t tmpfs -o size=1m,mode=0 none "$1"; '
              'shift; done; shift; mount --bind "$ro" "$ro"; mount -o remount,bind,ro "$ro"; exec "$@"')
    existing = [str(p) for p in hidden if Path(p).is_dir()]
    return ["unshare", "--user", "--map-root-user", "--pid", "--fork", "--mount-proc", "--net", "--mount",
            "sh", "-c", script, "sandbox", str(read_only), *existing, "--"]


def read_sources(folder: Path) -> tuple:
    """({file name: bytes} of a student's ``.py`` sources (regular files at the top level, no symlinks), notes on
    what was left out). Read for every student before the first one runs: nothing a student writes later into
    another's folder changes what that other student is graded on."""
    sources, notes = {}, []
    for entry in sorted(folder.iterdir(), key=lambda p: os.fsencode(p.name)):
        if entry.is_symlink():
            notes.append(f"{_printable(entry.name)} is a symlink: ignored")
        elif entry.is_file() and entry.suffix == ".py":
            sources[entry.name] = entry.read_bytes()
        elif entry.suffix == ".pyc" or entry.name == "__pycache__":
            notes.append(f"{_printable(entry.name)}: compiled files are ignored, only sources are graded")
    return sources, notes


def write_private_copy(sources: dict, target: Path) -> Path:
    """The student's private folder for their turn: their sources only, read-only."""
    target.mkdir(mode=0o700)
    for name, data in sources.items():
        (target / name).write_bytes(data)
        (target / name).chmod(0o444)
    target.chmod(0o555)
    return target


def remove_private_copy(target: Path) -> None:
    """Remove a private copy (the grader's own folder, never the student's) once the turn is over."""
    if target.exists():
        target.chmod(0o700)
        shutil.rmtree(target, ignore_errors=True)


def _printable(name: str) -> str:
    """A file name as text whatever bytes it holds (a name that is not UTF-8 is shown escaped)."""
    return os.fsencode(name).decode("utf-8", errors="backslashreplace")
