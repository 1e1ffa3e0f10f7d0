"""Data on demand: ``python -m optical_ref fetch {mtop-reduced,mtod,mtop-official,all} [--data-dir DIR]``.

Every dataset the project knows is pinned to an immutable public copy and its sha256, downloaded once into
the user cache (``~/.cache/optical-ref/data``, or ``--data-dir``), verified, and never copied into the
repository. ``compare`` and ``data-summary`` call :func:`ensure_available`, which fetches what is missing
only when no copy is found in any of the usual places (``--data-dir``, ``$OPTICAL_REF_DATA``,
``../shared/data``, the user cache), and never with ``--offline`` or ``OPTICAL_REF_OFFLINE=1``.

================  ==========================================================================  ===========
dataset           pinned source                                                               size
================  ==========================================================================  ===========
``mtop-reduced``  ``dataset/mtop/{dev,test}.json`` of psunlpgroup/XSemPLR at commit af03531a...     ~3 MB
``mtod``          ``mtod.zip`` of milangritta/Datasets at commit de9084c5... (the pickles left out)  ~26 MB
``mtop-official`` the archive published with the MTOP paper (no pinned checksum: give ``--sha256``)  ~30 MB
================  ==========================================================================  ===========

A mirror replaces the public hosts for every dataset: ``OPTICAL_REF_MIRROR=BASE_URL`` (``file://`` too) with
``BASE_URL/mtop-reduced/dev.json``, ``BASE_URL/mtop-reduced/test.json``, ``BASE_URL/mtod/mtod.zip``,
``BASE_URL/mtop-official/mtop.zip``, checked against the same checksums. A classroom serves the files
locally; the tests use ``file://`` mirrors they build.

What is promised, like ``torchvision.datasets`` and ``datasets``: downloads show a progress bar, time out with a
clear message and restart cleanly (a ``.part`` file is resumed over HTTP when the server allows ranges); the
sha256 is checked before anything is moved; archives are unpacked safely (no absolute paths, no ``..``, no
links); the **complete** new copy is validated (every expected file present, its checksum or its loader happy,
sane row counts) in a staging folder beside the target; only then is the previous copy moved aside, the new one
renamed into place, and the old one deleted. A failure at any step leaves the data folder as it was.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ..files import replace_folder
from .records import MTOP_LANGS

OFFICIAL_MTOP_URL = "https://dl.fbaipublicfiles.com/mtop/mtop.zip"   # published with Li et al., EACL 2021
XSEMPLR = "https://raw.githubusercontent.com/psunlpgroup/XSemPLR/af03531af8cb6a39504e1044ba1edebef6c76d15/"
MTOD_ZIP = "https://raw.githubusercontent.com/milangritta/Datasets/de9084c5e15f723a88c2fc92ca669648d301dda0/mtod.zip"
MIRROR_VAR, OFFLINE_VAR = "OPTICAL_REF_MIRROR", "OPTICAL_REF_OFFLINE"
TIMEOUT_S = 60
MTOD_FILES = {   # from ../shared/data/mtod/SOURCE.md
    "en/dev-en.conllu": "e6df344b6e48147a63fb2ab0909a9cade0dffcb86ca16bb7de9bc4ed1ab4a955",
    "en/test-en.conllu": "4b763cd488f17c8bfcb85011a26161b43f046befaee4d511ca630bdce8d1eb80",
    "en/train-en.conllu": "8131f7b30a434b713762eafcf83d962b03b16ce9da57c96edc3633ba02ee59cf",
    "en/train.tsv": "95643ab1a5c97808a6ce75bcf4fdad9d0710d2e93f6c8fdd35ce155afe4cec01",
    "es/dev-es.conllu": "f03754c0284574422671837786a46af34e62a99a65ea30a3d5ba301863385d6f",
    "es/test-es.conllu": "c84bff3e72e028c948139a87a8bc5c8e5928a26e662b4f295f047f6cffdce7c6",
    "es/train-es.conllu": "27557fb7d48623619bfcefa124c4147ad34fb4c331616d840e554db81689f0f6",
    "es/train.tsv": "6c0f2131c738d96d41fadbe8c9bf2f839034f2ff3f13d25b268097f51a5e4bad",
    "th/dev-th.conllu": "850e8e05b975e2a479975712363019edbe36fcb4dd80ebd548761d2c209c78c2",
    "th/test-th.conllu": "04673e75010a63ce324243bcf82b61b7059538338d12766b753bc2bd2f6fda72",
    "th/train-th.conllu": "aa4e18da08c33af9ff3d0bc32ca0aa20f3e5932f574603c5581331399066096d",
    "th/train.tsv": "763a227090c83db2056016cea378cecf15a291918636a8c3b04ff3d3a9cd6888",
}


class FetchError(ValueError):
    """A download, checksum, archive or validation failure; the data folder was left as it was."""


@dataclass
class Remote:
    url: str
    mirror_path: str          # under OPTICAL_REF_MIRROR
    sha256: str | None
    size: str = ""

    def resolved_url(self) -> str:
        mirror = os.environ.get(MIRROR_VAR)
        return mirror.rstrip("/") + "/" + self.mirror_path if mirror else self.url


@dataclass
class Dataset:
    name: str
    folder: str               # under the data directory
    files: dict = field(default_factory=dict)   # name -> Remote, downloaded as they are
    archive: Remote | None = None
    description: str = ""


DATASETS = {
    "mtop-reduced": Dataset("mtop-reduced", "mtop", files={
        "dev.json": Remote(XSEMPLR + "dataset/mtop/dev.json", "mtop-reduced/dev.json",
                           "90786d97756b710c07db31610ad0fb60b8a15afee02e49a7db2be91b008c5e63", "about 1.2 MB"),
        "test.json": Remote(XSEMPLR + "dataset/mtop/test.json", "mtop-reduced/test.json",
                            "47d0f025d30abf205589d342ba31a432bb7eafb71dec476582e08ae0157a00c7", "about 1.8 MB")},
        description="MTOP eval+test, six languages in parallel (XSemPLR's copy)"),
    "mtod": Dataset("mtod", "mtod", archive=Remote(
        MTOD_ZIP, "mtod/mtod.zip", "0741ee8d7ad827ccb2e1d2cdd713988859b881b874906adeee9f9e2f1a576015", "about 26 MB"),
        description="MTOD en/es/th with the machine-translated train.tsv bitext"),
    "mtop-official": Dataset("mtop-official", "mtop", archive=Remote(
        OFFICIAL_MTOP_URL, "mtop-official/mtop.zip", None, "about 30 MB"),
        description="the official MTOP release, <lang>/{train,eval,test}.txt"),
}
FOR_COMPARE = {"mtop": "mtop-reduced", "mtod": "mtod"}


def add_arguments(parser) -> None:
    parser.add_argument("dataset", choices=[*DATASETS, "all"], help="what to fetch")
    parser.add_argument("--data-dir", default=None, help="where to put it (default: the user cache)")
    parser.add_argument("--url", default=None, help="another address of the file or archive (one-file datasets)")
    parser.add_argument("--sha256", default=None, help="expected sha256 (required with --url; mtop-official)")
    parser.add_argument("--force", action="store_true", help="fetch again even if a valid copy is there")


def is_offline(offline=None) -> bool:
    return bool(offline) or os.environ.get(OFFLINE_VAR, "").strip().lower() in ("1", "true", "yes")


# --------------------------------------------------------------------------------------------------
# Downloading
# --------------------------------------------------------------------------------------------------
def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download(url: str, destination: Path, expected_sha256: str | None, progress=print, timeout=TIMEOUT_S) -> str:
    """Download ``url`` to ``destination`` (via ``destination.part``), check its sha256, return it."""
    from tqdm import tqdm

    part = destination.with_name(destination.name + ".part")
    offset = part.stat().st_size if part.is_file() and url.startswith("http") else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            resumed = offset and getattr(response, "status", 200) == 206
            total = response.headers.get("Content-Length")
            total = int(total) + (offset if resumed else 0) if total and total.isdigit() else None
            with open(part, "ab" if resumed else "wb") as out, tqdm(
                    total=total, initial=offset if resumed else 0, unit="B", unit_scale=True,
                    desc=f"download {destination.name}", disable=None, leave=False) as bar:
                for chunk in iter(lambda: response.read(1 << 16), b""):
                    out.write(chunk)
                    bar.update(len(chunk))
    except TimeoutError:
        raise FetchError(f"downloading {url} timed out after {timeout} s; try again (the partial file is kept "
                         f"and resumed), or set {MIRROR_VAR} to a reachable mirror") from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise FetchError(f"could not download {url}: {reason}; check the network, or set {MIRROR_VAR} to a mirror, "
                         "or use --offline with a local copy (--data-dir)") from None
    digest = sha256_of(part)
    if expected_sha256 and digest != expected_sha256.lower():
        part.unlink()
        raise FetchError(f"checksum mismatch for {url}: expected sha256 {expected_sha256}, got {digest}; "
                         "the download was discarded and nothing was changed")
    os.replace(part, destination)
    return digest


# --------------------------------------------------------------------------------------------------
# Unpacking safely
# --------------------------------------------------------------------------------------------------
def check_member(name: str) -> None:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (len(name) > 1 and name[1] == ":"):
        raise FetchError(f"refusing archive member {name!r}: its path would land outside the target directory")


def safe_extract(archive: Path, target: Path) -> None:
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                for info in zf.infolist():
                    check_member(info.filename)
                    if (info.external_attr >> 16) & 0o170000 == 0o120000:
                        raise FetchError(f"refusing archive member {info.filename!r}: symbolic links are not allowed")
                zf.extractall(target)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tf:
                for member in tf.getmembers():
                    check_member(member.name)
                    if not (member.isfile() or member.isdir()):
                        raise FetchError(f"refusing archive member {member.name!r}: only files and folders are allowed")
                tf.extractall(target)
        else:
            raise FetchError(f"{archive.name} is neither a zip nor a tar archive")
    except (zipfile.BadZipFile, zlib.error, tarfile.TarError, EOFError) as err:
        raise FetchError(f"the archive is damaged ({type(err).__name__}: {err}); nothing was changed") from None


def find_root(folder: Path, marker: str) -> Path:
    """The folder under ``folder`` that holds ``marker`` (archives may wrap their content in a top folder)."""
    for candidate in [folder, *sorted(p for p in folder.rglob("*") if p.is_dir())]:
        if (candidate / marker).is_file():
            return candidate
    raise FetchError(f"the archive holds no {marker}; is it the right archive?")


# --------------------------------------------------------------------------------------------------
# Validating a complete copy
# --------------------------------------------------------------------------------------------------
def validate(dataset: Dataset, folder: Path) -> str:
    """Raise FetchError unless ``folder`` holds a complete, readable copy of ``dataset``; return a summary."""
    from .mtod import load_mtod, load_mtod_bitext
    from .mtop import load_mtop_json, load_mtop_tsv

    try:
        if dataset.name == "mtop-reduced":
            counts = {}
            for name, remote in dataset.files.items():
                if not (folder / name).is_file():
                    raise FetchError(f"{name} is missing")
                if sha256_of(folder / name) != remote.sha256:
                    raise FetchError(f"{name} does not have the pinned sha256 {remote.sha256}")
                counts[name] = len({u.id for u in load_mtop_json(folder / name)})
            return ", ".join(f"{k}: {v} items x 6 languages" for k, v in counts.items())
        if dataset.name == "mtod":
            for name, digest in MTOD_FILES.items():
                if not (folder / name).is_file():
                    raise FetchError(f"mtod/{name} is missing")
                if sha256_of(folder / name) != digest:
                    raise FetchError(f"mtod/{name} does not have the sha256 of SOURCE.md ({digest})")
            n = len(load_mtod_bitext(folder.parent, "th"))
            tests = {lang: len(load_mtod(folder.parent, lang, "test")) for lang in ("en", "es", "th")}
            return f"{n} bitext pairs per language, test sets {tests}"
        counts = {}
        for lang in MTOP_LANGS:
            for split in ("train", "eval", "test"):
                path = folder / lang / f"{split}.txt"
                if not path.is_file():
                    raise FetchError(f"{lang}/{split}.txt is missing (a complete release has train/eval/test for "
                                     f"{', '.join(MTOP_LANGS)})")
                rows = len(load_mtop_tsv(path, lang))
                if rows < 100:
                    raise FetchError(f"{lang}/{split}.txt has only {rows} rows; the release has thousands")
                counts[f"{lang}/{split}"] = rows
        return f"{sum(counts.values())} rows in {len(counts)} files"
    except FetchError:
        raise
    except (ValueError, OSError) as err:  # a loader refused a file: the copy is not usable
        raise FetchError(f"the new copy does not load: {err}") from None


# --------------------------------------------------------------------------------------------------
# Fetching: stage, validate, then swap
# --------------------------------------------------------------------------------------------------
def fetch_files(name, dataset, staging, target, downloads, url, sha256, progress) -> None:
    """Download a dataset's pinned files into ``staging`` (each checked, resumable in ``downloads``)."""
    for file_name, remote in dataset.files.items():
        source = url if (url and len(dataset.files) == 1) else remote.resolved_url()
        progress(f"[fetch] {name}: {file_name} ({remote.size}) from {source} -> {target}")
        download(source, downloads / f"{name}-{file_name}", sha256 or remote.sha256, progress)
        os.replace(downloads / f"{name}-{file_name}", staging / file_name)


def fetch_archive(name, dataset, staging, target, downloads, tmp: Path, url, sha256, progress) -> tuple:
    """Download a dataset's archive, unpack it safely and copy only the expected files into ``staging``;
    returns (the source it came from, the archive's path, deleted once the folder is in place)."""
    remote = dataset.archive
    source = url or remote.resolved_url()
    expected = sha256 or remote.sha256
    progress(f"[fetch] {name}: archive ({remote.size}) from {source} -> {target}")
    archive = downloads / f"{name}-archive"
    digest = download(source, archive, expected, progress)
    if not expected:
        progress(f"[fetch] {name}: no pinned checksum; the archive's sha256 is {digest} (pass --sha256 to pin it)")
    unpacked = tmp / "unpacked"
    safe_extract(archive, unpacked)
    if name == "mtod":
        source_root = find_root(unpacked, "en/train.tsv")
        for relative in MTOD_FILES:          # only the expected files: the pickles are left out
            if (source_root / relative).is_file():
                (staging / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source_root / relative, staging / relative)
    else:
        source_root = find_root(unpacked, "en/test.txt")
        for lang in MTOP_LANGS:
            if (source_root / lang).is_dir():
                shutil.rmtree(staging / lang, ignore_errors=True)
                shutil.copytree(source_root / lang, staging / lang)
    return source, archive


def fetch(name: str, data_dir=None, *, url: str | None = None, sha256: str | None = None, force: bool = False,
          progress=print) -> Path:
    """Fetch one dataset into ``data_dir`` (default: the user cache); returns the data directory."""
    from .paths import user_cache_dir

    if name not in DATASETS:
        raise FetchError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)} or all")
    dataset = DATASETS[name]
    if url and dataset.files and len(dataset.files) > 1:
        raise FetchError(f"--url does not apply to {name}: it is {len(dataset.files)} files ("
                         f"{', '.join(dataset.files)}); point {MIRROR_VAR} at a mirror that holds them instead")
    root = Path(data_dir) if data_dir else user_cache_dir()
    target = root / dataset.folder
    if not force and target.is_dir():
        try:
            summary = validate(dataset, target)
            progress(f"[fetch] {name}: a valid copy is already in {target} ({summary}); nothing to do")
            return root
        except FetchError:
            pass
    root.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(root, name, progress)
    downloads = root / ".downloads"      # survives a failed or interrupted fetch: a .part is resumed next time
    downloads.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=f".fetch-{name}-") as tmp:
        tmp = Path(tmp)
        staging = tmp / dataset.folder
        if target.is_dir():   # keep what the folder holds besides this dataset (mtop/ serves two datasets)
            shutil.copytree(target, staging)
        else:
            staging.mkdir()
        if dataset.files:
            source, archive = "pinned files", None
            fetch_files(name, dataset, staging, target, downloads, url, sha256, progress)
        else:
            source, archive = fetch_archive(name, dataset, staging, target, downloads, tmp, url, sha256, progress)
        summary = validate(dataset, staging)
        write_source(staging, dataset, source, summary)
        replace_folder(staging, target)       # the previous copy stays until the new one is in place
    if archive is not None:
        archive.unlink(missing_ok=True)
    progress(f"[fetch] {name}: verified and in place at {target} ({summary})")
    return root


STALE_AFTER_S = 3600   # a staging folder this old belongs to a fetch that was killed (a live one finishes sooner)


def remove_stale_staging(root: Path, name: str, progress=print) -> None:
    """Staging folders left by a killed fetch (SIGKILL skips the clean-up) are removed by the next one."""
    import time
    for stale in root.glob(f".fetch-{name}-*"):
        if stale.is_dir() and time.time() - stale.stat().st_mtime > STALE_AFTER_S:
            shutil.rmtree(stale, ignore_errors=True)
            progress(f"[fetch] removed {stale}, left by an interrupted fetch")


def write_source(folder: Path, dataset, source: str, summary: str) -> None:
    """A SOURCE.md with the sha256 of every file of a fetched copy (unless the copy has its own), so that
    ``data-summary`` verifies it like the shared copy."""
    path = folder / "SOURCE.md"
    if path.is_file() and "## Checksums" in path.read_text(encoding="utf-8"):
        return
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != "SOURCE.md")
    lines = [f"# {dataset.name}: fetched by optical-ref", "", f"- {dataset.description}", f"- From: {source}",
             f"- Checked on fetch: {summary}", "", "## Checksums (sha256)", "```"]
    lines += [f"{sha256_of(p)}  {p.relative_to(folder).as_posix()}" for p in files]
    path.write_text("\n".join(lines + ["```", ""]), encoding="utf-8")


def ensure_available(dataset: str, data_dir=None, *, offline=None, progress=print) -> Path:
    """The data directory holding ``dataset`` ("mtop" or "mtod"); fetched into the user cache (or into
    ``data_dir`` when one is given) only when no copy is found and downloads are allowed."""
    from .paths import DataNotFoundError, find_data_dir

    try:
        return find_data_dir(data_dir, dataset)
    except DataNotFoundError as err:
        if is_offline(offline):
            raise FileNotFoundError(f"{err}\n(offline: --offline or {OFFLINE_VAR}=1 forbids downloading it)") from None
        places = ", ".join(str(path) for path, _, _ in err.places)
    name = FOR_COMPARE[dataset]
    progress(f"[data] no copy of {dataset} in any place looked ({places}); fetching {name} once")
    root = fetch(name, data_dir, progress=progress)
    return find_data_dir(root, dataset)


def main(args) -> int:
    names = list(DATASETS) if args.dataset == "all" else [args.dataset]
    if args.url and (len(names) > 1 or not args.sha256):
        raise ValueError("--url needs one dataset and its --sha256 (a mirror must be checked like the pinned source)")
    if is_offline():
        raise ValueError(f"{OFFLINE_VAR} is set: downloads are forbidden; unset it to fetch")
    for name in names:
        if name == "mtop-official" and args.dataset == "all":
            continue   # not pinned: fetched only when asked for by name
        fetch(name, args.data_dir, url=args.url, sha256=args.sha256, force=args.force)
    return 0
