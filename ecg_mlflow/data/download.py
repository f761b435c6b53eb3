"""Download a PhysioNet database with wfdb and check every file against PhysioNet's SHA256SUMS.txt.

Files go to a temporary folder inside DATA_DIR first; only when every checksum matches are they
moved into DATA_DIR/<db>/, so a failed or interrupted download leaves nothing half-written.
The fetch function is injectable so the logic is testable without network (local_fetcher).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from ecg_mlflow.data.databases import DATABASES, Database
from ecg_mlflow.data.errors import DataError

SUMS_FILE = "SHA256SUMS.txt"
WANTED_SUFFIXES = {".hea", ".dat", ".atr", ".xyz"}
WANTED_NAMES = {"RECORDS", "LICENSE.txt", "LICENSE.md", "ANNOTATORS"}

# fetch(files relative to the database root, destination dir): writes dest/file for each file.
Fetch = Callable[[Sequence[str], Path], None]


def physionet_fetcher(db: str) -> Fetch:
    """wfdb.dl_files against physionet.org (the latest version of `db`)."""

    def fetch(files: Sequence[str], dest: Path) -> None:
        import wfdb

        try:
            wfdb.dl_files(db, str(dest), list(files), keep_subdirs=True, overwrite=True)
        except Exception as exc:  # wfdb raises bare HTTP/connection errors
            raise DataError(
                f"could not download {db} from PhysioNet ({type(exc).__name__}: {exc}); without network, copy "
                f"the files from https://physionet.org/content/{db}/ into DATA_DIR/{db}/"
            ) from exc

    return fetch


def local_fetcher(source_dir: Path) -> Fetch:
    """Copy from a local mirror of the database (tests, offline machines)."""

    def fetch(files: Sequence[str], dest: Path) -> None:
        for name in files:
            src = Path(source_dir) / name
            if not src.is_file():
                raise DataError(f"{name} is not in the download source {source_dir}")
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest / name)

    return fetch


def parse_sha256sums(text: str) -> dict[str, str]:
    """`<hex>  <path>` lines (sha256sum format) -> {path: hex}."""
    sums = {}
    for line in text.splitlines():
        if line.strip():
            digest, _, name = line.strip().partition(" ")
            sums[name.strip().lstrip("*")] = digest.lower()
    return sums


def wanted_files(database: Database, sums: dict[str, str]) -> list[str]:
    """The record files (and RECORDS/licence) of the database; skips PhysioNet's extra folders (x_mitdb, ...)."""
    keep = []
    for name in sorted(sums):
        path = Path(name)
        in_place = len(path.parts) == 1 or (database.nested_records and len(path.parts) == 2)
        if in_place and (path.suffix in WANTED_SUFFIXES or path.name in WANTED_NAMES):
            keep.append(name)
    return keep


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def download_database(
    db: str,
    data_dir: Path,
    fetch: Fetch | None = None,
    on_file: Callable[[str], None] | None = None,
) -> Path:
    """Fetch `db` into DATA_DIR/<db>/ with every file checked; returns that folder. DataError on mismatch."""
    downloadable = [name for name, database in DATABASES.items() if database.downloadable]
    if db not in downloadable:
        raise DataError(f"unknown database {db!r}: choose one of {', '.join(downloadable)}")
    fetch = fetch or physionet_fetcher(db)
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".download-{db}-", dir=data_dir))
    try:
        fetch([SUMS_FILE], tmp)
        sums = parse_sha256sums((tmp / SUMS_FILE).read_text())
        files = wanted_files(DATABASES[db], sums)
        if not files:
            raise DataError(f"{SUMS_FILE} of {db} lists no record files")
        for name in files:
            fetch([name], tmp)
            got = sha256_of(tmp / name)
            if got != sums[name]:
                raise DataError(
                    f"{db}/{name}: checksum mismatch (expected {sums[name]}, got {got}); nothing was written"
                )
            if on_file:
                on_file(name)
        return _move_into_place(tmp, data_dir / db, [*files, SUMS_FILE])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _move_into_place(tmp: Path, target: Path, files: Sequence[str]) -> Path:
    """All files verified: rename the folder into place, or file by file into an existing folder."""
    if not target.exists():
        os.replace(tmp, target)
        return target
    for name in files:
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp / name, target / name)
    return target
