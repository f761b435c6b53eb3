"""Download a PhysioNet database and check every file against PhysioNet's SHA256SUMS.txt.

Files go to a temporary folder inside DATA_DIR first; only when every checksum matches are they
moved into DATA_DIR/<db>/, so a failed or interrupted download leaves nothing half-written: the
temporary folder is removed on any error, on Ctrl-C and on SIGTERM, and the folder of a download
whose process was killed outright is removed by the next download.

wfdb gives the file index and the database's current version (wfdb.io.download), but its own
`dl_files` has no network timeout (a stalled connection hung until killed), so each file is
fetched with urllib under TIMEOUT_SECONDS and retried RETRIES times with a growing pause (tenacity).
The fetch function is injectable so the logic is testable without network (local_fetcher).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_incrementing

from ecg_mlflow.data.cache import file_sha256, remove_stale_temporaries
from ecg_mlflow.data.databases import DATABASES, Database
from ecg_mlflow.data.errors import DataError
from ecg_mlflow.processes import terminate_as_interrupt

SUMS_FILE = "SHA256SUMS.txt"
WANTED_SUFFIXES = {".hea", ".dat", ".atr"}
WANTED_NAMES = {"RECORDS", "LICENSE.txt", "LICENSE.md", "ANNOTATORS"}

TMP_PREFIX = ".download-"
TIMEOUT_SECONDS = 30.0
RETRIES = 3
RETRY_PAUSE_SECONDS = 2.0

# fetch(files relative to the database root, destination dir): writes dest/file for each file.
Fetch = Callable[[Sequence[str], Path], None]


def physionet_fetcher(
    db: str,
    *,
    base_url: str | None = None,
    timeout: float = TIMEOUT_SECONDS,
    retries: int = RETRIES,
    pause: float = RETRY_PAUSE_SECONDS,
) -> Fetch:
    """Files of the current version of `db` from PhysioNet (or `base_url`), each under a timeout, with retries."""
    state: dict[str, str] = {}

    def root() -> str:
        if "url" not in state:
            if base_url is not None:
                state["url"] = base_url.rstrip("/")
            else:
                from wfdb.io import download as wfdb_download

                version = _retrying(db, "its version", lambda: wfdb_download.get_version(db), retries, pause)
                state["url"] = f"{wfdb_download.config.db_index_url.rstrip('/')}/{db}/{version}"
        return state["url"]

    def fetch(files: Sequence[str], dest: Path) -> None:
        for name in files:
            url = f"{root()}/{name}"
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            _retrying(db, name, lambda u=url, t=target: _get(u, t, timeout), retries, pause)

    return fetch


def _get(url: str, target: Path, timeout: float) -> None:
    with urllib.request.urlopen(url, timeout=timeout) as response, open(target, "wb") as out:
        shutil.copyfileobj(response, out)


def _retrying(db: str, what: str, call: Callable[[], object], retries: int, pause: float) -> object:
    """`call` up to `retries` times, pausing pause x attempt between; the last failure is one DataError line."""
    try:
        return Retrying(
            stop=stop_after_attempt(retries),
            wait=wait_incrementing(start=pause, increment=pause),
            retry=retry_if_exception_type((OSError, ValueError)),  # timeouts and urllib's URLError are OSErrors
            reraise=True,
        )(call)
    except (OSError, ValueError) as exc:
        raise DataError(
            f"could not download {db}/{what} from PhysioNet after {retries} attempts "
            f"({type(exc).__name__}: {exc}); without network, copy the files from "
            f"https://physionet.org/content/{db}/ into DATA_DIR/{db}/"
        ) from None


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
    remove_stale_temporaries(data_dir, TMP_PREFIX)
    with terminate_as_interrupt():
        return _download_into(db, data_dir, fetch, on_file)


def _download_into(db: str, data_dir: Path, fetch: Fetch, on_file: Callable[[str], None] | None) -> Path:
    tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{db}-{os.getpid()}-", dir=data_dir))
    try:
        fetch([SUMS_FILE], tmp)
        sums = parse_sha256sums((tmp / SUMS_FILE).read_text())
        files = wanted_files(DATABASES[db], sums)
        if not files:
            raise DataError(f"{SUMS_FILE} of {db} lists no record files")
        for name in files:
            fetch([name], tmp)
            got = file_sha256(tmp / name)
            if got != sums[name]:
                raise DataError(
                    f"{db}/{name}: checksum mismatch (expected {sums[name]}, got {got}); nothing was written"
                )
            if on_file:
                on_file(name)
        return _move_into_place(tmp, data_dir / DATABASES[db].directory, [*files, SUMS_FILE])
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
