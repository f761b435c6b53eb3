"""Download logic against a local mirror with a SHA256SUMS.txt (no network here)."""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from ecg_mlflow.data.databases import DATABASES
from ecg_mlflow.data.download import (
    download_database,
    local_fetcher,
    parse_sha256sums,
    physionet_fetcher,
    wanted_files,
)
from ecg_mlflow.data.errors import DataError


@pytest.fixture
def mirror(synthetic_mitdb, tmp_path):
    """A copy of the synthetic mitdb plus an extra folder, with PhysioNet-style SHA256SUMS.txt."""
    src = tmp_path / "mirror"
    shutil.copytree(synthetic_mitdb / "mitdb", src)
    (src / "x_mitdb").mkdir()
    (src / "x_mitdb" / "x_100.dat").write_bytes(b"extra")
    lines = [
        f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(src).as_posix()}"
        for p in sorted(src.rglob("*"))
        if p.is_file()
    ]
    (src / "SHA256SUMS.txt").write_text("\n".join(lines) + "\n")
    return src


def test_downloads_and_verifies_the_record_files(mirror, tmp_path) -> None:
    target = download_database("mitdb", tmp_path / "data", fetch=local_fetcher(mirror))
    assert target == tmp_path / "data" / "mitdb"
    assert (target / "100.dat").read_bytes() == (mirror / "100.dat").read_bytes()
    assert (target / "RECORDS").is_file() and not (target / "x_mitdb").exists()
    assert [p.name for p in (tmp_path / "data").iterdir()] == ["mitdb"]  # no temp dir left


def test_checksum_mismatch_is_a_clear_error_and_writes_nothing(mirror, tmp_path) -> None:
    (mirror / "101.dat").write_bytes(b"corrupted")
    with pytest.raises(DataError, match=r"mitdb/101.dat: checksum mismatch"):
        download_database("mitdb", tmp_path / "data", fetch=local_fetcher(mirror))
    assert list((tmp_path / "data").iterdir()) == []


def test_a_second_download_updates_an_existing_folder(mirror, tmp_path) -> None:
    download_database("mitdb", tmp_path / "data", fetch=local_fetcher(mirror))
    (tmp_path / "data" / "mitdb" / "100.hea").write_text("stale")
    download_database("mitdb", tmp_path / "data", fetch=local_fetcher(mirror))
    assert (tmp_path / "data" / "mitdb" / "100.hea").read_bytes() == (mirror / "100.hea").read_bytes()


def test_sums_parsing_and_file_selection() -> None:
    sums = parse_sha256sums("ab  100.dat\ncd *RECORDS\nef  mitdbdir/intro.htm\n01  patient001/s0010_re.hea\n")
    assert sums == {"100.dat": "ab", "RECORDS": "cd", "mitdbdir/intro.htm": "ef", "patient001/s0010_re.hea": "01"}
    assert wanted_files(DATABASES["mitdb"], sums) == ["100.dat", "RECORDS"]
    assert wanted_files(DATABASES["ptbdb"], sums) == ["100.dat", "RECORDS", "patient001/s0010_re.hea"]


def test_unknown_database_is_rejected(tmp_path) -> None:
    with pytest.raises(DataError, match="unknown database"):
        download_database("nope", tmp_path)


@contextlib.contextmanager
def http_server(handler_class) -> Iterator[tuple[str, list[str]]]:
    """A real HTTP server on a loopback port in a thread; yields its URL and the paths it was asked for."""
    requested: list[str] = []

    class Handler(handler_class):
        def log_message(self, *args) -> None:  # keep the test output clean
            pass

        def do_GET(self) -> None:
            requested.append(self.path)
            super().do_GET()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requested
    finally:
        server.shutdown()
        server.server_close()


class Stalling(http.server.BaseHTTPRequestHandler):
    """Accepts the request and never answers: the network hang the timeout exists for."""

    def do_GET(self) -> None:
        time.sleep(30)


def test_downloads_over_http_from_a_served_mirror(mirror, tmp_path) -> None:
    class Serving(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, directory=str(mirror), **kwargs)

    with http_server(Serving) as (url, requested):
        target = download_database("mitdb", tmp_path / "data", fetch=physionet_fetcher("mitdb", base_url=url))
    assert (target / "100.atr").read_bytes() == (mirror / "100.atr").read_bytes()
    assert "/SHA256SUMS.txt" in requested and "/x_mitdb/x_100.dat" not in requested


def test_a_stalled_connection_times_out_retries_and_leaves_nothing(tmp_path) -> None:
    with http_server(Stalling) as (url, requested):
        fetch = physionet_fetcher("mitdb", base_url=url, timeout=0.5, retries=2, pause=0.0)
        start = time.monotonic()
        with pytest.raises(DataError, match=r"could not download mitdb/SHA256SUMS.txt .* after 2 attempts"):
            download_database("mitdb", tmp_path / "data", fetch=fetch)
        assert time.monotonic() - start < 10
    assert len(requested) == 2
    assert list((tmp_path / "data").iterdir()) == []


def test_sigterm_during_a_download_leaves_no_temporary_folder(tmp_path) -> None:
    data_dir = tmp_path / "data"
    with http_server(Stalling) as (url, _):
        script = (
            "import sys; from pathlib import Path\n"
            "from ecg_mlflow.data.download import download_database, physionet_fetcher\n"
            f"download_database('mitdb', Path({str(data_dir)!r}), fetch=physionet_fetcher('mitdb', base_url={url!r}))\n"
        )
        child = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while not list(data_dir.glob(".download-*")) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert list(data_dir.glob(".download-*")), "the download never started"
        child.send_signal(signal.SIGTERM)
        child.wait(timeout=30)
    assert child.returncode != 0
    assert list(data_dir.iterdir()) == []


def test_the_folder_of_a_killed_download_is_removed_by_the_next_one(mirror, tmp_path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / "data" / f".download-mitdb-{int(dead.stdout)}-abcd1234"
    stale.mkdir(parents=True)
    (stale / "100.dat").write_bytes(b"half")
    download_database("mitdb", tmp_path / "data", fetch=local_fetcher(mirror))
    assert [p.name for p in (tmp_path / "data").iterdir()] == ["mitdb"]
