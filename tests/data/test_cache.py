"""The parameter-keyed, atomic cache."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest

from ecg_mlflow.config import DataConfig
from ecg_mlflow.data import cache, dataset
from ecg_mlflow.data.dataset import load_dataset


def entries(cache_dir) -> list:
    """The cached datasets (folders); the remembered input hashes are a file beside them."""
    return [p for p in cache_dir.iterdir() if p.is_dir()]


def test_write_then_read_roundtrip_and_checksums(tmp_path) -> None:
    arrays = {"x": np.arange(6, dtype=np.float32).reshape(2, 3), "r": np.array(["100", ""])}
    manifest = cache.write_entry(tmp_path / "e", arrays, {"source": "test"})
    got, read_manifest = cache.read_entry(tmp_path / "e")
    assert np.array_equal(got["x"], arrays["x"]) and got["r"].tolist() == ["100", ""]
    assert read_manifest["checksums"] == manifest["checksums"] == cache.array_checksums(arrays)
    assert [p.name for p in tmp_path.iterdir()] == ["e"]  # no temp dir left behind


def test_a_corrupt_entry_is_not_trusted(tmp_path) -> None:
    cache.write_entry(tmp_path / "e", {"x": np.zeros(3)}, {})
    (tmp_path / "e" / cache.MANIFEST_FILE).write_text('{"checksums": {"x": "0"}}')
    assert cache.read_entry(tmp_path / "e") is None
    assert cache.read_entry(tmp_path / "missing") is None


def test_an_interrupted_write_leaves_nothing(tmp_path, monkeypatch) -> None:
    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez_compressed", boom)
    with pytest.raises(KeyboardInterrupt):
        cache.write_entry(tmp_path / "e", {"x": np.zeros(3)}, {})
    assert list(tmp_path.iterdir()) == []


def test_dataset_is_built_once_and_reused(synthetic_mitdb, tmp_path, monkeypatch) -> None:
    config = DataConfig(data_dir=str(synthetic_mitdb), cache_dir=str(tmp_path))
    first = load_dataset(config)
    calls = []
    monkeypatch.setattr(dataset, "read_beats", lambda *a, **k: calls.append(a))
    second = load_dataset(config)
    assert calls == []
    assert second.digest == first.digest and np.array_equal(second.train.x, first.train.x)
    assert len(entries(tmp_path)) == 1


def test_parameters_that_change_the_arrays_change_the_key_max_beats_does_not(synthetic_mitdb, tmp_path) -> None:
    base = DataConfig(data_dir=str(synthetic_mitdb), cache_dir=str(tmp_path))
    load_dataset(base)
    load_dataset(DataConfig(**{**base.__dict__, "max_beats": 50}))
    assert len(entries(tmp_path)) == 1
    load_dataset(DataConfig(**{**base.__dict__, "split_seed": 1}))
    load_dataset(DataConfig(**{**base.__dict__, "split": "inter"}))
    load_dataset(DataConfig(**{**base.__dict__, "test_fraction": 0.3}))
    assert len(entries(tmp_path)) == 4


def test_an_edited_record_of_the_same_size_is_rebuilt_not_reused(synthetic_mitdb, tmp_path) -> None:
    """Issue: the key was the files' names and sizes, so a same-size edit reused stale beats."""
    import shutil

    data_dir = tmp_path / "data"
    shutil.copytree(synthetic_mitdb, data_dir)
    config = DataConfig(data_dir=str(data_dir), cache_dir=str(tmp_path / "cache"))
    before = load_dataset(config)
    dat = data_dir / "mitdb" / "100.dat"
    raw = bytearray(dat.read_bytes())
    raw[3000:3600] = bytes(600)  # the same size, other samples
    dat.write_bytes(bytes(raw))
    after = load_dataset(config)
    assert after.digest != before.digest
    assert after.manifest["input_sha256"]["mitdb/100.dat"] == cache.file_sha256(dat)


def test_input_hashes_are_remembered_until_a_file_changes(synthetic_mitdb, tmp_path, monkeypatch) -> None:
    files = sorted((synthetic_mitdb / "mitdb").glob("*.dat"))
    first = cache.content_digests(files, tmp_path)
    hashed = []
    monkeypatch.setattr(cache, "file_sha256", lambda path: hashed.append(path) or "x")
    assert cache.content_digests(files, tmp_path) == first
    assert hashed == []  # nothing changed: no file is read again


def test_a_stale_temporary_folder_of_a_dead_build_is_removed_at_the_next_write(tmp_path) -> None:
    """Issue: an interrupted cache write left .tmp-* folders (23 MB each) behind for ever."""
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".tmp-e-{int(dead.stdout)}-abcd"
    stale.mkdir()
    (stale / cache.ARRAYS_FILE).write_bytes(b"half")
    live = tmp_path / f".tmp-other-{__import__('os').getpid()}-efgh"  # this process: a build in progress
    live.mkdir()
    cache.write_entry(tmp_path / "e", {"x": np.zeros(3)}, {})
    assert not stale.exists() and live.exists()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_write_atomically_is_0600_from_creation_and_atomic(tmp_path, monkeypatch) -> None:
    target = tmp_path / "credentials"
    seen: list[int] = []
    real_replace = os.replace

    def replace(src: Path, dst: Path) -> None:  # the temporary file, just before it takes the name
        seen.append(_mode(Path(src)))
        real_replace(src, dst)

    monkeypatch.setattr(cache.os, "replace", replace)
    old_umask = os.umask(0)  # the most permissive umask: the mode must not come from it
    try:
        cache.write_atomically(target, "first")
        cache.write_atomically(target, "second")
    finally:
        os.umask(old_umask)
    assert seen == [0o600, 0o600] and _mode(target) == 0o600 and target.read_text() == "second"

    def failing_fsync(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(cache.os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="disk full"):
        cache.write_atomically(target, "third")
    assert target.read_text() == "second"  # the old content, whole
    assert [p.name for p in tmp_path.iterdir()] == ["credentials"]  # no temporary file left
