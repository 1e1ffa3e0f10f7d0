"""Where the data is: an explicit directory, $OPTICAL_REF_DATA, ../shared/data, or a user cache.

The data is never copied into the repository. The first place that holds a known dataset folder
(``mtop/`` with ``dev.json``, ``mtop/<lang>/`` official TSVs, or ``mtod/``) wins; if none does, the error
lists every place that was tried and how to get the data.
"""
from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "OPTICAL_REF_DATA"
REPO_ROOT = Path(__file__).resolve().parents[2]


def user_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "optical-ref" / "data"


def candidate_dirs(data_dir=None) -> list:
    """The places looked at, in order (each with where it came from)."""
    if data_dir is not None:
        return [(Path(data_dir), "--data-dir / data_dir argument")]
    candidates = []
    if os.environ.get(ENV_VAR):
        candidates.append((Path(os.environ[ENV_VAR]), f"${ENV_VAR}"))
    candidates.append((Path.cwd().parent / "shared" / "data", "../shared/data from the current directory"))
    candidates.append((REPO_ROOT.parent / "shared" / "data", "../shared/data from the repository root"))
    candidates.append((user_cache_dir(), "the user cache directory"))
    return candidates


def add_data_dir_argument(parser) -> None:
    """The one ``--data-dir`` option every command and tutorial takes (one help text, one search order)."""
    parser.add_argument("--data-dir", default=None, metavar="DIR",
                        help=f"data directory (default: ${ENV_VAR}, ../shared/data, then the user cache; see tutorials/DATA.md)")


def holds_data(path: Path, dataset: str | None = None) -> bool:
    mtop = (path / "mtop" / "dev.json").is_file() or (path / "mtop" / "en" / "test.txt").is_file()
    mtod = (path / "mtod" / "en" / "train.tsv").is_file()
    return {"mtop": mtop, "mtod": mtod, None: mtop or mtod}[dataset]


class DataNotFoundError(FileNotFoundError):
    """No candidate place holds the data; ``places`` lists every (path, origin, state) looked at, as data."""

    def __init__(self, message: str, places: list):
        super().__init__(message)
        self.places = places


def find_data_dir(data_dir=None, dataset: str | None = None) -> Path:
    """Return the first candidate directory that holds the data (``dataset``: "mtop", "mtod" or any)."""
    places = []
    for path, origin in candidate_dirs(data_dir):
        if holds_data(path, dataset):
            return path.resolve()
        state = ("is a file, not a directory" if path.is_file() else "no such directory" if not path.is_dir()
                 else "no " + (dataset or "mtop/ or mtod/") + " data in it")
        places.append((path, origin, state))
    what = dataset or "MTOP or MTOD"
    raise DataNotFoundError(
        f"could not find the {what} data. Looked in:\n"
        + "\n".join(f"  - {path} ({origin}): {state}" for path, origin, state in places) + "\n"
        "Fix: pass --data-dir DIR (or set $OPTICAL_REF_DATA) to a folder with mtop/dev.json, mtop/test.json and "
        "mtod/; the project's shared copy lives in ../shared/data beside the repository. With network access, "
        "`python -m optical_ref fetch mtop-reduced` (or mtod, all) downloads a verified copy into the user cache "
        "(compare and data-summary do this by themselves unless --offline / OPTICAL_REF_OFFLINE=1).", places)
