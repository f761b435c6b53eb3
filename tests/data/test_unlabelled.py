"""Unlabelled sources for pretraining: which records a source names, and beats that never read a label."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from ecg_mlflow.data.errors import DataError
from ecg_mlflow.data.unlabelled import parse_source, unlabelled_beats


def test_a_source_names_a_database_a_declared_set_named_records_or_a_folder(
    synthetic_patientwise_mitdb, synthetic_other_databases
) -> None:
    data_dir = synthetic_patientwise_mitdb
    assert parse_source("mitdb", data_dir).records == ("101", "106", "108", "109", "112", "114", "100", "103")
    assert parse_source("mitdb:100+103", data_dir).records == ("100", "103")
    assert parse_source("mitdb:100+103", data_dir).record_ids() == ["mitdb/100", "mitdb/103"]
    folder = parse_source(str(synthetic_other_databases / "svdb"), data_dir)
    assert folder.records == ("800", "801") and folder.database.beat_annotator is None


def test_a_bad_source_is_one_line_naming_the_fix(
    synthetic_patientwise_mitdb, synthetic_other_databases, tmp_path
) -> None:
    with pytest.raises(DataError, match=r"not a database .* nor a folder; give e.g. mitdb:DS2"):
        parse_source("nosuchdb", synthetic_patientwise_mitdb)
    with pytest.raises(DataError, match=r"no record 105 .* or a declared set \(DS1, DS2\)"):
        parse_source("mitdb:DS2", synthetic_patientwise_mitdb)  # the synthetic folder has 2 of the 22
    with pytest.raises(DataError, match="svdb does not exist; run `ecg-mlflow data download svdb"):
        parse_source("svdb", tmp_path)

    # a folder of the user's own records cannot be downloaded: the error says to copy the file, nothing else
    folder = _copy(synthetic_other_databases / "svdb", tmp_path / "mine")
    (folder / "801.dat").unlink()
    with pytest.raises(DataError, match=r"record 801: .*801\.dat is missing; copy it there$"):
        unlabelled_beats((str(folder),), synthetic_patientwise_mitdb, tmp_path / "cache")


def _copy(folder: Path, target: Path) -> Path:
    shutil.copytree(folder, target)
    return target


def test_the_pretraining_set_is_identical_without_or_with_scrambled_annotations(
    synthetic_patientwise_mitdb, tmp_path
) -> None:
    """Beats come from the QRS detector: the .atr files are never opened, nor part of the cache key."""
    spec = ("mitdb:101+106+100",)
    original = _copy(synthetic_patientwise_mitdb, tmp_path / "original")
    beats, records = unlabelled_beats(spec, original, tmp_path / "cache-original")
    assert records == ["mitdb/101", "mitdb/106", "mitdb/100"] and len(beats) > 50 and beats.shape[1] == 187
    removed = _copy(synthetic_patientwise_mitdb, tmp_path / "removed")
    for atr in removed.rglob("*.atr"):
        atr.unlink()
    scrambled = _copy(synthetic_patientwise_mitdb, tmp_path / "scrambled")
    for atr in scrambled.rglob("*.atr"):
        atr.write_bytes(np.random.default_rng(0).bytes(atr.stat().st_size))
    for folder in (removed, scrambled):
        again, _ = unlabelled_beats(spec, folder, tmp_path / f"cache-{folder.name}")  # built anew, not cached
        np.testing.assert_array_equal(again, beats)


def test_unlabelled_beats_are_cached_by_the_signal_files_content(synthetic_patientwise_mitdb, tmp_path) -> None:
    folder = _copy(synthetic_patientwise_mitdb, tmp_path / "data")
    cache = tmp_path / "cache"
    first, _ = unlabelled_beats(("mitdb:101",), folder, cache)
    assert len(list(cache.glob("unlabelled-*"))) == 1
    unlabelled_beats(("mitdb:101",), folder, cache)
    assert len(list(cache.glob("unlabelled-*"))) == 1  # read back, not rebuilt
    dat = folder / "mitdb" / "101.dat"
    dat.write_bytes(dat.read_bytes()[::-1])  # another signal under the same name
    changed, _ = unlabelled_beats(("mitdb:101",), folder, cache)
    assert len(list(cache.glob("unlabelled-*"))) == 2 and not np.array_equal(changed, first)
