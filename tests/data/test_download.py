"""Download logic against a local mirror with a SHA256SUMS.txt (no network here)."""

from __future__ import annotations

import hashlib
import shutil

import pytest

from ecg_mlflow.data.databases import DATABASES
from ecg_mlflow.data.download import download_database, local_fetcher, parse_sha256sums, wanted_files
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
