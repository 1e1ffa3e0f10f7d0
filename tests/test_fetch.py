"""Data on demand, specified against file:// mirrors the tests build (no test ever touches the network):
pinned checksums, a verified copy replacing the old one only when complete, offline mode, no second download."""
import hashlib
import shutil
import zipfile
from pathlib import Path

import pytest

from conftest import SHARED, cli_error, official_zip, write_tiny_mtop
from optical_ref.data.fetch import DATASETS, FetchError, ensure_available, fetch
from optical_ref.data.paths import holds_data

needs_shared = pytest.mark.skipif(not holds_data(SHARED), reason=f"the shared data is not at {SHARED}")
QUIET = {"progress": lambda *_: None}


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A classroom mirror in the documented layout, built from ../shared/data."""
    if not holds_data(SHARED):
        pytest.skip(f"the shared data is not at {SHARED}")
    base = tmp_path / "mirror"
    (base / "mtop-reduced").mkdir(parents=True)
    for name in ("dev.json", "test.json"):
        shutil.copyfile(SHARED / "mtop" / name, base / "mtop-reduced" / name)
    (base / "mtod").mkdir()
    with zipfile.ZipFile(base / "mtod" / "mtod.zip", "w") as zf:
        for path in sorted((SHARED / "mtod").rglob("*")):
            if path.is_file() and path.name != "SOURCE.md":
                zf.write(path, f"mtod/{path.relative_to(SHARED / 'mtod')}")
        zf.writestr("mtod/en/train.pkl", b"not wanted")
    monkeypatch.setenv("OPTICAL_REF_MIRROR", base.as_uri())
    monkeypatch.delenv("OPTICAL_REF_OFFLINE", raising=False)
    return base


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@needs_shared
def test_compare_fetches_reduced_mtop_into_an_empty_cache_from_the_mirror(mirror, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.chdir(tmp_path)                    # no ../shared/data from here
    monkeypatch.setattr("optical_ref.data.paths.REPO_ROOT", tmp_path / "repo")
    messages = []
    root = ensure_available("mtop", progress=messages.append)
    assert root == (cache / "optical-ref" / "data").resolve()
    assert sha(root / "mtop" / "dev.json") == DATASETS["mtop-reduced"].files["dev.json"].sha256
    assert any("from " + mirror.as_uri() in m for m in messages)       # says what, from where, where to
    # a second call finds the copy and downloads nothing
    (mirror / "mtop-reduced" / "dev.json").unlink()
    assert ensure_available("mtop", progress=messages.append) == root


@needs_shared
def test_mtod_is_unpacked_into_the_shared_layout_without_the_pickles(mirror, tmp_path):
    digest = sha(mirror / "mtod" / "mtod.zip")        # our zip, not the pinned one: its sha256 is given explicitly
    root = fetch("mtod", tmp_path / "data", sha256=digest, **QUIET)
    assert (root / "mtod" / "th" / "train.tsv").is_file() and not list((root / "mtod").rglob("*.pkl"))
    assert sha(root / "mtod" / "th" / "train.tsv") == sha(SHARED / "mtod" / "th" / "train.tsv")


@needs_shared
def test_a_wrong_checksum_is_refused_with_both_sums_and_nothing_changes(mirror, tmp_path):
    with pytest.raises(FetchError, match=r"expected sha256 0741ee8d.*got [0-9a-f]{64}"):
        fetch("mtod", tmp_path / "data", **QUIET)     # our repackaged zip is not the pinned archive
    assert not (tmp_path / "data" / "mtod").exists()


@needs_shared
def test_a_truncated_download_leaves_the_cache_as_it_was(mirror, tmp_path):
    data = tmp_path / "data"
    fetch("mtop-reduced", data, **QUIET)
    before = sha(data / "mtop" / "test.json")
    truncated = mirror / "mtop-reduced" / "test.json"
    truncated.write_bytes(truncated.read_bytes()[:1000])
    with pytest.raises(FetchError, match="checksum mismatch"):
        fetch("mtop-reduced", data, force=True, **QUIET)
    assert sha(data / "mtop" / "test.json") == before
    assert not [p for p in data.iterdir() if p.name.startswith(".fetch")]   # no staging left behind


def test_offline_refuses_to_download_and_keeps_the_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("OPTICAL_REF_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match="(?s)could not find the mtop data.*offline"):
        ensure_available("mtop", tmp_path / "nowhere", **QUIET)


def test_the_command_line_offline_flag_fails_at_once_in_one_line(tmp_path, capsys):
    message = cli_error(capsys, ["compare", "--offline", "--data-dir", str(tmp_path / "nowhere")])
    assert "could not find the mtop data" in message and "offline" in message


# ---- the official release: a partial or damaged archive never replaces good files -------------------
def _official(tmp_path, archive):
    return fetch("mtop-official", tmp_path / "data", url=archive.as_uri(), sha256=sha(archive), force=True, **QUIET)


@pytest.mark.parametrize("bad", ["only-en-test", "garbage", "crc-error"])
def test_an_incomplete_or_damaged_official_archive_never_deletes_good_files(tmp_path, bad):
    good = _official(tmp_path, official_zip(tmp_path / "good.zip"))
    before = {p: p.read_bytes() for p in (good / "mtop").rglob("*.txt")}
    archive = tmp_path / "bad.zip"
    if bad == "only-en-test":
        with zipfile.ZipFile(archive, "w") as zf:
            zf.writestr("mtop/en/test.txt", (good / "mtop" / "en" / "test.txt").read_text())
    elif bad == "garbage":
        official_zip(archive, garbage=True)
    else:
        raw = bytearray(official_zip(archive).read_bytes())
        raw[200] ^= 0xFF                                     # flip a byte inside the first member's data
        archive.write_bytes(bytes(raw))
    with pytest.raises(FetchError) as err:
        _official(tmp_path, archive)
    assert "\n" not in str(err.value)                        # one clear line
    assert {p: p.read_bytes() for p in (good / "mtop").rglob("*.txt")} == before


def test_an_official_release_beside_reduced_mtop_keeps_both(tmp_path):
    write_tiny_mtop(tmp_path / "data")
    _official(tmp_path, official_zip(tmp_path / "good.zip"))
    assert (tmp_path / "data" / "mtop" / "dev.json").is_file() and (tmp_path / "data" / "mtop" / "th" / "eval.txt").is_file()


# ---- fetching: --url where it applies, no stale staging, a kept .part, a SOURCE.md ----------------
def test_url_for_a_dataset_of_several_files_is_refused_not_ignored(tmp_path):
    with pytest.raises(FetchError, match="--url does not apply to mtop-reduced.*OPTICAL_REF_MIRROR"):
        fetch("mtop-reduced", tmp_path, url="file:///x", sha256="0" * 64, **QUIET)


def test_a_staging_folder_left_by_a_killed_fetch_is_removed_by_the_next(mirror, tmp_path):
    import os
    stale = tmp_path / "data" / ".fetch-mtop-reduced-killed"
    stale.mkdir(parents=True)
    (stale / "big.part").write_bytes(b"x" * 1000)
    os.utime(stale, (0, 0))                                   # old: its fetch is long dead
    messages = []
    fetch("mtop-reduced", tmp_path / "data", progress=messages.append)
    assert not stale.exists() and any("left by an interrupted fetch" in m for m in messages)


def test_a_timed_out_download_keeps_its_part_file_for_the_next_try(mirror, tmp_path, monkeypatch):
    import io
    import urllib.request

    class Slow(io.BytesIO):
        headers = {"Content-Length": "100000"}
        status = 200

        def read(self, n=-1):
            if self.tell() >= 3000:
                raise TimeoutError()
            return super().read(min(n, 1000))

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: Slow(b"y" * 100000))
    with pytest.raises(FetchError, match="timed out.*partial file is kept"):
        fetch("mtop-reduced", tmp_path / "data", **QUIET)
    parts = list((tmp_path / "data" / ".downloads").glob("*.part"))
    assert parts and parts[0].stat().st_size == 3000


def test_a_fetched_copy_carries_its_checksums_and_data_summary_verifies_them(mirror, tmp_path):
    from optical_ref.data.summary import verify_checksums
    digest = sha(mirror / "mtod" / "mtod.zip")
    root = fetch("mtod", tmp_path / "data", sha256=digest, url=(mirror / "mtod" / "mtod.zip").as_uri(), **QUIET)
    rows = [r for r in verify_checksums(root) if r["file"].startswith("mtod/")]
    assert len(rows) >= 5 and all(r["ok"] for r in rows) and (root / "mtod" / "SOURCE.md").is_file()
