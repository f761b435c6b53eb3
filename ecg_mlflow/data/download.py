"""Download a PhysioNet database, every file checked against its SHA256SUMS.txt before it reaches DATA_DIR/<db>/.

wfdb gives the current version, but its `dl_files` has no network timeout (a stalled connection hung until
killed), so files are fetched with urllib under a timeout, retried by tenacity, into a temporary folder that goes
on any error, Ctrl-C or SIGTERM (a killed download's: with the next one).
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
import urllib.request
from collections.abc import Callable
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

Fetch = Callable[[str, Path], None]  # fetch(a file's path in the database, where to write it)


def physionet_fetcher(
    db: str,
    *,
    base_url: str | None = None,
    timeout: float = TIMEOUT_SECONDS,
    retries: int = RETRIES,
    pause: float = RETRY_PAUSE_SECONDS,
) -> Fetch:
    """Files of the current version of `db` from PhysioNet (or `base_url`), each under a timeout, with retries."""

    def retrying(what: str, call: Callable[[], object]) -> object:
        """`call` up to `retries` times, pausing pause x attempt between; the last failure is one DataError line."""
        try:  # timeouts and urllib's URLError are OSErrors
            wait = wait_incrementing(start=pause, increment=pause)
            retry = retry_if_exception_type((OSError, ValueError))
            return Retrying(stop=stop_after_attempt(retries), wait=wait, retry=retry, reraise=True)(call)
        except (OSError, ValueError) as exc:
            raise DataError(
                f"could not download {db}/{what} from PhysioNet after {retries} attempts "
                f"({type(exc).__name__}: {exc}); without network, copy the files from "
                f"https://physionet.org/content/{db}/ into DATA_DIR/{db}/"
            ) from None

    @functools.cache
    def root() -> str:
        if base_url is not None:
            return base_url.rstrip("/")
        from wfdb.io import download as wfdb_download

        version = retrying("its version", lambda: wfdb_download.get_version(db))
        return f"{wfdb_download.config.db_index_url.rstrip('/')}/{db}/{version}"

    def fetch(name: str, target: Path) -> None:
        def get() -> None:
            with urllib.request.urlopen(url, timeout=timeout) as response, open(target, "wb") as out:
                shutil.copyfileobj(response, out)

        url = f"{root()}/{name}"
        retrying(name, get)

    return fetch


def local_fetcher(source_dir: Path) -> Fetch:
    """Copy from a local mirror of the database (tests, offline machines)."""

    def fetch(name: str, target: Path) -> None:
        if not (Path(source_dir) / name).is_file():
            raise DataError(f"{name} is not in the download source {source_dir}")
        shutil.copyfile(Path(source_dir) / name, target)

    return fetch


def parse_sha256sums(text: str) -> dict[str, str]:
    """`<hex>  <path>` lines (sha256sum format) -> {path: hex}."""
    pairs = (line.strip().partition(" ") for line in text.splitlines() if line.strip())
    return {name.strip().lstrip("*"): digest.lower() for digest, _, name in pairs}


def wanted_files(database: Database, sums: dict[str, str]) -> list[str]:
    """The record files (and RECORDS/licence) of the database; skips PhysioNet's extra folders (x_mitdb, ...)."""
    depth = 2 if database.nested_records else 1
    return [
        name
        for name in sorted(sums)
        if len(Path(name).parts) <= depth and (Path(name).suffix in WANTED_SUFFIXES or Path(name).name in WANTED_NAMES)
    ]


def download_database(
    db: str, data_dir: Path, fetch: Fetch | None = None, on_file: Callable[[str], None] | None = None
) -> Path:
    """Fetch `db` into DATA_DIR/<db>/ with every file checked; returns that folder. DataError on mismatch."""
    downloadable = [name for name, database in DATABASES.items() if database.downloadable]
    if db not in downloadable:
        raise DataError(f"unknown database {db!r}: choose one of {', '.join(downloadable)}")
    fetch = fetch or physionet_fetcher(db)
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(data_dir, TMP_PREFIX)
    prefix = f"{TMP_PREFIX}{db}-{os.getpid()}-"  # its pid: remove_stale_temporaries knows a killed download's
    with terminate_as_interrupt(), tempfile.TemporaryDirectory(prefix=prefix, dir=data_dir) as folder:
        tmp = Path(folder)
        fetch(SUMS_FILE, tmp / SUMS_FILE)
        sums = parse_sha256sums((tmp / SUMS_FILE).read_text())
        files = wanted_files(DATABASES[db], sums)
        if not files:
            raise DataError(f"{SUMS_FILE} of {db} lists no record files")
        for name in files:
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            fetch(name, tmp / name)
            if (got := file_sha256(tmp / name)) != sums[name]:
                raise DataError(
                    f"{db}/{name}: checksum mismatch (expected {sums[name]}, got {got}); nothing was written"
                )
            if on_file:
                on_file(name)
        # All verified: the folder renamed into place, or file by file into an existing one.
        target = data_dir / DATABASES[db].directory
        if not target.exists():
            os.replace(tmp, target)
            return target
        for name in [*files, SUMS_FILE]:
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp / name, target / name)
        return target
