"""Folders written whole or not at all: a new folder is built beside its target, then renamed into place.

Used by every writer of a folder a user may rely on (a prepared encoder checkpoint, a distilled student): an
interrupted or failed write never leaves a half-written folder that a later run would trust, and an existing
folder is swapped out only once its replacement is complete.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def replace_folder(new: Path, target: Path) -> None:
    """Move the complete folder ``new`` to ``target`` (one file system: a rename), replacing what was there; if the
    move fails, the previous folder is put back."""
    new, target = Path(new), Path(target)
    if target.exists():
        old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.old-"))
        os.replace(target, old / "previous")
        try:
            os.replace(new, target)
        except OSError:                      # roll back: the previous folder goes back where it was
            os.replace(old / "previous", target)
            shutil.rmtree(old, ignore_errors=True)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(new, target)


def check_writable_file(flag: str, path) -> Path:
    """``path`` as a Path, or a ValueError naming ``flag`` when a file cannot be written there: asked before the
    work whose results it would hold, so a typo never costs a run."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{flag} {path}: that is a folder; give a file name, e.g. {path / 'results.json'}")
    if not path.parent.is_dir():
        raise ValueError(f"{flag} {path}: the folder {path.parent} does not exist; create it or choose another path")
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ValueError(f"{flag} {path}: this user may not write there; choose another path")
    return path
