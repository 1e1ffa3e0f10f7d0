"""Fetch the official MTOP release (for users with network access): download, verify, unpack safely.

``python -m optical_ref fetch-mtop --data-dir D [--url URL] [--sha256 HEX]`` downloads the archive to a
temporary file, checks its sha256 when one is given, unpacks it into a temporary folder (refusing any
member whose path is absolute or climbs out with ``..``, and any link), finds the ``<lang>/`` folders
with ``train.txt``/``eval.txt``/``test.txt`` and only then moves them into ``D/mtop/``. A failed or
partial download never replaces good files. ``file://`` URLs work too (that is how the tests run it).
"""
from __future__ import annotations

import hashlib
import shutil
import tarfile
import tempfile
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

from .records import MTOP_LANGS

# The address of the archive published with the MTOP paper (Li et al., EACL 2021).
OFFICIAL_MTOP_URL = "https://dl.fbaipublicfiles.com/mtop/mtop.zip"


def add_arguments(parser) -> None:
    parser.add_argument("--data-dir", required=True, help="where to put mtop/<lang>/{train,eval,test}.txt")
    parser.add_argument("--url", default=OFFICIAL_MTOP_URL, help="archive URL (zip or tar; file:// works)")
    parser.add_argument("--sha256", default=None, help="expected sha256 of the archive (checked if given)")


def check_member(name: str) -> None:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (len(name) > 1 and name[1] == ":"):
        raise ValueError(f"refusing archive member {name!r}: its path would land outside the target directory")


def safe_extract(archive: Path, target: Path) -> None:
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                check_member(info.filename)
                if (info.external_attr >> 16) & 0o170000 == 0o120000:
                    raise ValueError(f"refusing archive member {info.filename!r}: symbolic links are not allowed")
            zf.extractall(target)
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tf:
            for member in tf.getmembers():
                check_member(member.name)
                if not (member.isfile() or member.isdir()):
                    raise ValueError(f"refusing archive member {member.name!r}: only files and folders are allowed")
            tf.extractall(target)
    else:
        raise ValueError(f"{archive} is neither a zip nor a tar archive")


def find_release_root(folder: Path) -> Path:
    """The folder that holds <lang>/test.txt (the archive may wrap it in a top folder)."""
    for candidate in [folder, *sorted(p for p in folder.rglob("*") if p.is_dir())]:
        if any((candidate / lang / "test.txt").is_file() for lang in MTOP_LANGS):
            return candidate
    raise ValueError("the archive holds no <lang>/test.txt of the MTOP release (expected e.g. mtop/en/test.txt)")


def fetch_mtop(data_dir, url: str = OFFICIAL_MTOP_URL, sha256: str | None = None, progress=print) -> Path:
    target = Path(data_dir) / "mtop"
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        archive = Path(tmp) / "archive"
        progress(f"[fetch-mtop] downloading {url}")
        try:
            with urllib.request.urlopen(url) as response, open(archive, "wb") as out:
                shutil.copyfileobj(response, out)
        except OSError as err:
            raise OSError(f"could not download {url}: {err}. Nothing in {target} was changed.") from None
        digest = hashlib.sha256(archive.read_bytes()).hexdigest()
        if sha256 and digest != sha256.lower():
            raise ValueError(f"checksum mismatch for {url}: expected {sha256}, got {digest}; "
                             f"nothing in {target} was changed")
        unpacked = Path(tmp) / "unpacked"
        safe_extract(archive, unpacked)
        root = find_release_root(unpacked)
        langs = [lang for lang in MTOP_LANGS if (root / lang).is_dir()]
        for lang in langs:
            destination = target / lang
            staged = Path(tmp) / f"old-{lang}"
            if destination.exists():
                destination.rename(staged)
            shutil.move(str(root / lang), str(destination))
    progress(f"[fetch-mtop] sha256 {digest}; unpacked {', '.join(langs)} into {target}")
    return target


def main(args) -> int:
    fetch_mtop(args.data_dir, args.url, args.sha256)
    return 0


def ensure_available(dataset, data_dir=None, *, offline=None, progress=print):
    """placeholder"""
    from .paths import find_data_dir
    return find_data_dir(data_dir, dataset)
