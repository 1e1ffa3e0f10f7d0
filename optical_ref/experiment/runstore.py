"""The comparison's run folder as a small, robust store: one JSON record per finished run in ``runs.jsonl``,
and every other file written atomically.

- Appends always start on a new line, so a line cut short by an interrupted write is never glued to the
  next record; such a line (or any line that is not a run record) is reported with its line number and
  ignored, and the run it belonged to is simply run again.
- A run that failed (a diverged loss, non-finite embeddings) is recorded with ``"failed": reason`` and no
  metric: it counts as done (a resume would fail the same way) and is reported, never scored.
- Records are keyed by (method, lang, budget, seed, split_seed, steps). Two records with the same key are the same
  run: identical ones count once; different ones are an error that names both lines (never averaged).
- JSON files (``config.json``, ``teacher.json``, ...) are written to a temporary file and renamed into
  place, and read back with a message that names the file and says how to recover.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from ..metrics import NAMES as METRIC_FIELDS  # two records of one run must agree on each of them

RECORD_FIELDS = {"method": str, "lang": str, "seed": int, "split_seed": int, "intent_acc": float}


class RunFolderError(ValueError):
    """A run folder holds something that cannot be used as it is; the message says how to recover."""


def run_key(record) -> tuple:
    """(method, lang, budget, seed, split_seed, steps): a run evaluated at several steps has a record per step."""
    return (record["method"], record["lang"], str(record["budget"]), int(record["seed"]), int(record["split_seed"]),
            int(record.get("steps") or 0))


def record_problem(record) -> str | None:
    """Why ``record`` is not a run record, or None."""
    if not isinstance(record, dict):
        return f"a JSON {type(record).__name__}, not an object"
    failed = isinstance(record.get("failed"), str)     # a failed run: its key and the reason, no metric
    for key, kind in RECORD_FIELDS.items():
        if failed and key == "intent_acc":
            continue
        value = record.get(key)
        if kind is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        else:
            ok = isinstance(value, kind) and not isinstance(value, bool)
        if not ok:
            return f"field {key!r} is missing or not a {kind.__name__}"
    steps = record.get("steps", 0)
    if not (isinstance(steps, int) and not isinstance(steps, bool) and steps >= 0):
        return "field 'steps' is not a non-negative integer"
    budget = record.get("budget")
    if not (budget == "all" or (isinstance(budget, int) and not isinstance(budget, bool) and budget > 0)):
        return "field 'budget' is missing or not a positive integer or 'all'"
    return None


def runs_path(out) -> Path | None:
    """The folder's ``runs.jsonl``, or its gzipped copy ``runs.jsonl.gz`` (a results folder made for committing),
    or None."""
    for name in ("runs.jsonl", "runs.jsonl.gz"):
        if (Path(out) / name).is_file():
            return Path(out) / name
    return None


def read_records(out, say=print) -> list:
    """The valid records of ``out/runs.jsonl`` (or ``runs.jsonl.gz``), each run once; bad lines are reported and
    skipped."""
    import gzip
    path = runs_path(out)
    if path is None:
        return []
    try:
        data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError) as err:
        raise RunFolderError(f"{path}: not a readable gzip file ({err}); restore it from the repository") from None
    records, seen = [], {}
    for line_no, raw in enumerate(data.splitlines(), start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as err:   # one damaged line costs its run, never the others
            say(f"[runs] {path}:{line_no}: byte {err.start + 1} is not UTF-8; line ignored, its run is redone")
            continue
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            say(f"[runs] {path}:{line_no}: not a complete JSON line (an interrupted write?); ignored, its run is redone")
            continue
        problem = record_problem(record)
        if problem:
            say(f"[runs] {path}:{line_no}: not a run record ({problem}); ignored")
            continue
        key = run_key(record)
        if key in seen:
            first_no, first = seen[key]
            if _metrics(first) != _metrics(record):
                raise RunFolderError(
                    f"{path}: lines {first_no} and {line_no} are the same run {key} with different results; "
                    "delete the wrong line (a run folder must hold one result per run)")
            continue
        seen[key] = (line_no, record)
        records.append(record)
    return records


def _metrics(record) -> dict:
    return {k: record.get(k) for k in METRIC_FIELDS}


def lacking_metrics(records) -> dict:
    """``{metric: [records without it]}``: scored records that lack a metric this version writes into every record
    (as None where it does not apply), i.e. records an earlier version of optical-ref wrote."""
    scored = [r for r in records if not r.get("failed")]
    lacking = {k: [r for r in scored if k not in r] for k in METRIC_FIELDS}
    return {k: rs for k, rs in lacking.items() if rs}


def runs_lacking(lacking: dict) -> list:
    """The distinct records named in a :func:`lacking_metrics` answer (a run lacking several metrics counts once)."""
    return list({id(r): r for rs in lacking.values() for r in rs}.values())


def check_records_current(out, records) -> None:
    """Refuse to add runs to a folder whose records an earlier version wrote without some metric: the tables would
    average those metrics over some runs only. The user moves the old lines out (their runs are then redone) or
    reports the folder as it is."""
    lacking = lacking_metrics(records)
    if lacking:
        raise RunFolderError(
            f"{runs_path(out)}: {len(runs_lacking(lacking))} of {len(records)} runs were written by an earlier version of optical-ref "
            f"and lack {', '.join(lacking)}; move those lines to another file so that --resume runs them again, "
            f"or read the folder as it is with `python -m optical_ref report {out}`")


def append_record(out, record) -> None:
    """Append one record to the folder's ``runs.jsonl`` (:func:`append_json_line`)."""
    append_json_line(Path(out) / "runs.jsonl", record)


def append_json_line(path, obj) -> None:
    """Append ``obj`` as one JSON line; a previous line left unfinished is closed first. An exclusive lock on the
    file makes appends from several processes (workers, two resumes) whole lines, never interleaved."""
    import fcntl

    path = Path(path)
    line = json.dumps(obj) + "\n"
    with open(path, "a", encoding="utf-8") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            needs_newline = path.stat().st_size > 0 and not _ends_with_newline(path)
            fh.write(("\n" if needs_newline else "") + line)
            fh.flush()
            os.fsync(fh.fileno())
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) == b"\n"


def write_atomic(path, data) -> None:
    """Write ``data`` (str or bytes) to ``path`` through a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_torch(path, obj) -> None:
    """``torch.save`` through :func:`write_atomic`: a reader never sees half a weights file."""
    import io

    import torch
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    write_atomic(path, buffer.getvalue())


def write_json(path, obj) -> None:
    write_atomic(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def read_json(path, what: str, recover: str):
    """Read a JSON file of the run folder, or raise RunFolderError naming it and saying how to recover."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise RunFolderError(f"{path}: cannot read the {what} ({type(err).__name__}: {err}); {recover}") from None


# --------------------------------------------------------------------------------------------------
# The run folder of a comparison
# --------------------------------------------------------------------------------------------------
def open_run_folder(out, saved_config: dict, normalise=lambda saved: saved, create: bool = True) -> Path:
    """The output folder; refuses a file, and a folder that holds a comparison of another configuration
    (``normalise`` brings a configuration saved by an earlier version to the current form first). Where the data
    lives (``data_dir``) may differ: the data's identity is checked instead (:func:`check_data_identity`).
    ``create=False``: check only (the caller creates the folder once every other check has passed)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out}: this is a file, not a folder; choose a folder name")
    config_path = out / "config.json"
    if out.is_dir() and not config_path.is_file() and any(p.name != ".lock" for p in out.iterdir()):
        raise ValueError(f"--out {out}: the folder holds other files and no comparison (no config.json); nothing "
                         "is written into it: choose an empty or new folder")
    if config_path.is_file():
        saved = normalise(read_json(config_path, "saved configuration", f"move {out} away or choose another --out"))
        changed = sorted(k for k in set(saved) | set(saved_config)
                         if k != "data_dir" and saved.get(k) != saved_config.get(k))
        if changed:
            raise ValueError(f"{out} holds a comparison with a different configuration (differs in: {', '.join(changed)}); "
                             f"continue it with --resume {out}, or choose another --out")
    if create:
        out.mkdir(parents=True, exist_ok=True)
    return out


def check_data_identity(out, description: dict) -> None:
    """A run folder belongs to one dataset: ``data.json`` keeps the identity (content hash) of the data its runs
    were made on; other data is refused, naming both places. The same data in another folder is fine."""
    path = Path(out) / "data.json"
    now = {"data_dir": description.get("data_dir"), "data_sha256": description.get("data_sha256"),
           "source": description.get("source")}
    if path.is_file():
        before = read_json(path, "data identity", f"delete {path} only if you are sure the data is the same")
        if before.get("data_sha256") != now["data_sha256"]:
            raise RunFolderError(
                f"{out} holds runs made on other data ({before.get('data_dir')}, sha256 "
                f"{str(before.get('data_sha256'))[:12]}) than the data found now ({now['data_dir']}, sha256 "
                f"{str(now['data_sha256'])[:12]}); give --data-dir the data those runs used, or start a new "
                "comparison with another --out")
        return
    write_json(path, now)


def save_config(out, saved_config: dict) -> None:
    write_json(Path(out) / "config.json", saved_config)


class FolderLock:
    """An exclusive lock on a run folder for the length of a ``compare`` (``.lock`` in it): a second compare or
    ``--resume`` on the same folder is refused at once instead of redoing every run beside the first."""

    def __init__(self, out):
        self.path = Path(out) / ".lock"
        self.handle = None

    def __enter__(self):
        import fcntl
        self.handle = open(self.path, "a")
        try:
            fcntl.flock(self.handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.handle.close()
            raise RunFolderError(f"{self.path.parent} is in use by another compare (it holds {self.path}); wait for "
                                 "it to finish, or resume there once it has stopped") from None
        return self

    def __exit__(self, *exc):
        import fcntl
        fcntl.flock(self.handle.fileno(), fcntl.LOCK_UN)
        self.handle.close()
        return False
