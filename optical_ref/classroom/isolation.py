"""What the operating system gives the grader to keep one student's code away from everything else.

- **Reaping.** On Linux the grader makes itself a *child subreaper* (``prctl(PR_SET_CHILD_SUBREAPER)``): a
  process a student starts that outlives its parent (a double fork, ``setsid``) is re-parented to the grader
  instead of to init, so the grader can still find it. When a student's turn ends, :func:`reap` kills every
  descendant of the sandbox and every orphan that came back to the grader during the turn, until none is left.
  Elsewhere the sandbox runs in a process group of its own, which is killed as a whole.
- **Namespaces** (``--isolate namespaces``; ``auto`` uses them when the kernel allows unprivileged user
  namespaces): the sandbox gets its own PID namespace (it cannot see the grader's command line, so not the
  seed), its own network namespace (no network), and its own mount namespace in which the submissions and the
  answer key (``instructor/``) are covered by empty file systems, every copy of the library Python could
  import and the other OT libraries are blocked (:func:`library_locations`), and its own copy and its view of
  the library (:func:`library_view`: only what its exercise may use) are read-only.
- **Private copies.** A student is graded from a copy of their folder that holds their ``.py`` sources only,
  sub-folders included (no ``.pyc``, no symlinks leading out), read for every student before the first one
  runs and written out, read-only, only for that student's turn, so nothing a student writes into another's
  folder changes a grade, and the grader writes nothing (no ``__pycache__``) into a student's folder.
"""
from __future__ import annotations

import ast
import ctypes
import importlib.util
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


BLOCKED_INIT = ('raise ImportError("this library is out of reach of graded code: the grader shows the sandbox '
                'only what the exercise may use (tutorials/exercises/GRADING.md)")\n')


def namespace_prefix(hidden: list, blocked: list, read_only: list) -> list:
    """The command that runs the sandbox in namespaces of its own: ``hidden`` folders are covered by empty
    file systems, ``blocked`` library folders by ones whose ``__init__.py`` refuses the import (a clear
    message, where an empty folder would import as an empty namespace package), ``read_only`` folders (the
    student's private copy, the library view) are bound read-only, then the rest runs."""
    script = ('set -e; while [ "$1" != "--" ]; do mount -t tmpfs -o size=1m,mode=0 none "$1"; shift; done; shift; '
              'while [ "$1" != "--" ]; do mount -t tmpfs -o size=1m,mode=0755 none "$1"; '
              'printf "%s" "$BLOCKED_INIT" > "$1/__init__.py"; mount -o remount,ro "$1"; shift; done; shift; '
              'while [ "$1" != "--" ]; do mount --bind "$1" "$1"; mount -o remount,bind,ro "$1"; shift; done; '
              'shift; exec "$@"')
    covered = outermost([p for p in hidden if Path(p).is_dir()])
    blocked = [p for p in outermost([p for p in blocked if Path(p).is_dir()])
               if not any(_inside(p, c) for c in covered)]          # already out of sight with its parent
    return ["unshare", "--user", "--map-root-user", "--pid", "--fork", "--mount-proc", "--net", "--mount",
            "env", f"BLOCKED_INIT={BLOCKED_INIT}", "sh", "-c", script, "sandbox",
            *map(str, covered), "--", *map(str, blocked), "--", *map(str, read_only), "--"]


def outermost(paths: list) -> list:
    """``paths`` without those inside another one of them (a mount over a folder inside a covered one fails)."""
    resolved = sorted({Path(p).resolve() for p in paths}, key=lambda p: len(p.parts))
    kept = []
    for path in resolved:
        if not any(_inside(path, k) for k in kept):
            kept.append(path)
    return kept


def _inside(path, folder) -> bool:
    return Path(path).resolve().is_relative_to(Path(folder).resolve())


# --------------------------------------------------------------------------------------------------
# What of the library a sandbox sees under namespaces
# --------------------------------------------------------------------------------------------------
LIBRARY = Path(__file__).resolve().parents[1]        # the optical_ref package the grader runs
SANDBOX_FILES = ("__init__.py", "classroom/__init__.py", "classroom/sandbox.py", "classroom/fingerprint.py",
                 "classroom/isolation.py", "classroom/reference/__init__.py",
                 "classroom/reference/engine.py")      # what the sandbox imports: none holds an exercise's answer
OTHER_OT_LIBRARIES = ("ot", "geomloss", "ott")      # POT, GeomLoss, OTT: their solvers answer the exercises too


def library_view(target: Path, allowed=()) -> Path:
    """A folder holding the optical_ref package as a sandbox sees it under namespaces: the sandbox's own
    modules (which hold no exercise's answer), the public reference cases (students have them anyway), and
    the modules of the ``allowed`` functions with every module they import; nothing else of the library.
    ``target`` goes first on the sandbox's path; every real copy of the library is blocked
    (:func:`library_locations`)."""
    files = set(SANDBOX_FILES) | {p.relative_to(LIBRARY).as_posix()
                                  for p in (LIBRARY / "classroom" / "reference").glob("*.json")}
    files |= module_closure(_module_of(name) for name in allowed)
    for rel in sorted(files):
        dest = target / "optical_ref" / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(LIBRARY / rel, dest)
    return target


def _module_file(module: str) -> str | None:
    """'optical_ref.ot' -> 'ot.py' (its file inside the package, posix), None if it is no module of it."""
    parts = module.split(".")[1:]
    for rel in (f"{'/'.join(parts)}.py" if parts else None, "/".join([*parts, "__init__.py"])):
        if rel and (LIBRARY / rel).is_file():
            return rel
    return None


def _module_of(qualified: str) -> str:
    """'optical_ref.ot_torch.sinkhorn' -> 'optical_ref.ot_torch' (the longest prefix that is a module)."""
    parts = qualified.split(".")
    return next((".".join(parts[:k]) for k in range(len(parts), 0, -1) if _module_file(".".join(parts[:k]))),
                "optical_ref")


def module_closure(modules) -> set:
    """The files of ``modules`` and of every optical_ref module they import (at any depth of the file, so a
    lazy import inside a function is there when it runs), with their parent packages."""
    files, todo = set(), list(modules)
    while todo:
        name = todo.pop()
        rel = _module_file(name)
        if rel is None or rel in files:
            continue
        files.add(rel)
        package = name.split(".") if rel.endswith("__init__.py") else name.split(".")[:-1]
        todo.extend(".".join(package[:k]) for k in range(1, len(package) + 1))
        for node in ast.walk(ast.parse((LIBRARY / rel).read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("optical_ref")):
                base = ".".join(package[: len(package) - node.level + 1] if node.level else [])
                target = ".".join(p for p in (base, node.module or "") if p)
                todo.extend([target, *(f"{target}.{alias.name}" for alias in node.names)])
            elif isinstance(node, ast.Import):
                todo.extend(alias.name for alias in node.names if alias.name.startswith("optical_ref"))
    return files


def library_locations() -> list:
    """Every folder this interpreter could import optical_ref's or another OT library's code from: the package
    the grader runs, an ``optical_ref`` folder on ``sys.path``, the folder a setuptools editable install maps
    it to, and the OT libraries' packages (found without importing them)."""
    found = {LIBRARY}
    for entry in sys.path:
        candidate = Path(entry or ".") / "optical_ref"
        if (candidate / "__init__.py").is_file():
            found.add(candidate.resolve())
    for name, module in list(sys.modules.items()):
        mapping = getattr(module, "MAPPING", None) if name.startswith("__editable__") else None
        if isinstance(mapping, dict) and isinstance(mapping.get("optical_ref"), str):
            found.add(Path(mapping["optical_ref"]).resolve())
    for name in OTHER_OT_LIBRARIES:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            continue
        for location in (spec.submodule_search_locations or ()) if spec is not None else ():
            found.add(Path(location).resolve())
    return sorted(found)


def read_sources(folder: Path) -> tuple:
    """({relative path: bytes} of a student's ``.py`` sources, in their folder and its sub-folders (a helper
    package works), notes on what was left out). Left out: ``__pycache__`` and compiled files, hidden
    folders (``.git``, ``.venv``), symlinks that lead out of the folder or to a folder, and anything past
    :data:`MAX_SOURCES` files or :data:`MAX_SOURCE_BYTES` bytes. Read for every student before the first
    one runs: nothing a student writes later into another's folder changes what that other is graded on."""
    sources, notes, total = {}, [], 0
    for entry in _entries(folder, folder, notes):
        rel = entry.relative_to(folder).as_posix()
        data = entry.read_bytes()
        if len(sources) >= MAX_SOURCES or total + len(data) > MAX_SOURCE_BYTES:
            notes.append(f"more than {MAX_SOURCES} sources or {MAX_SOURCE_BYTES // 2**20} MiB: "
                         f"{_printable(rel)} and the rest were left out")
            break
        sources[rel] = data
        total += len(data)
    return sources, notes


MAX_SOURCES = 500                # a class's helper packages hold tens of files; a copied venv, thousands
MAX_SOURCE_BYTES = 20 * 2**20
MAX_DEPTH = 16


def _entries(top: Path, folder: Path, notes: list, depth: int = 0):
    """The ``.py`` files to copy under ``folder`` (inside the student's ``top``), depth first in byte order of
    the names; what is left out is named in ``notes`` (see :func:`read_sources`)."""
    root = top.resolve()
    for entry in sorted(folder.iterdir(), key=lambda p: os.fsencode(p.name)):
        shown = _printable(entry.relative_to(top).as_posix())
        if entry.name == "__pycache__" or entry.suffix == ".pyc":
            notes.append(f"{shown}: compiled files are ignored, only sources are graded")
        elif entry.is_symlink():
            target = entry.resolve()
            inside = target.is_relative_to(root)
            if entry.suffix == ".py" and target.is_file() and inside:
                yield entry                                   # a link to a source of their own: its text
            elif not inside or target.is_dir():               # (a link to a non-source inside: ignored, as files are)
                notes.append(f"{shown} is a symlink {'to a folder' if inside else 'out of the folder'}: ignored")
        elif entry.is_dir() and not entry.name.startswith("."):
            if depth >= MAX_DEPTH:
                notes.append(f"{shown}: more than {MAX_DEPTH} folders deep, ignored")
            else:
                yield from _entries(top, entry, notes, depth + 1)
        elif entry.is_file() and entry.suffix == ".py":
            yield entry


def write_private_copy(sources: dict, target: Path) -> Path:
    """The student's private folder for their turn: their sources only (sub-folders included), read-only."""
    target.mkdir(mode=0o700)
    for rel, data in sources.items():
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod(0o444)
    folders = {target} | {p for rel in sources for p in (target / rel).parents if _inside(p, target)}
    for folder in sorted(folders, key=lambda p: -len(p.parts)):
        folder.chmod(0o555)                 # deepest first: a read-only folder takes no new entries
    return target


def remove_private_copy(target: Path) -> None:
    """Remove a private copy (the grader's own folder, never the student's) once the turn is over."""
    if target.exists():
        for folder in [target, *(p for p in target.rglob("*") if p.is_dir() and not p.is_symlink())]:
            folder.chmod(0o700)
        shutil.rmtree(target, ignore_errors=True)


def _printable(name: str) -> str:
    """A file name as text whatever bytes it holds (a name that is not UTF-8 is shown escaped)."""
    return os.fsencode(name).decode("utf-8", errors="backslashreplace")
