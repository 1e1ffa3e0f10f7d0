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
