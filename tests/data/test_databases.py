"""The database table: lookups, declared checks, and adding a database with one declaration."""

from __future__ import annotations

import numpy as np
import pytest

from ecg_mlflow.config import EvaluateConfig
from ecg_mlflow.data.databases import DATABASES, beat_database, get_database, register_database, training_datasets
from ecg_mlflow.data.dataset import load_database_beats
from ecg_mlflow.data.errors import DataError


def test_lookup_by_slug_or_training_name_and_a_clear_error_otherwise() -> None:
    assert get_database("mit") is get_database("mitdb") is DATABASES["mitdb"]
    assert get_database("ptb").record_label is not None and get_database("ptb").beat_annotator is None
    assert set(training_datasets()) == {"mit", "ptb"}
    with pytest.raises(DataError, match="unknown database 'nope': choose one of mitdb"):
        get_database("nope")


def test_declared_rates_and_leads() -> None:
    assert {name: db.fs for name, db in DATABASES.items()} == {
        "mitdb": 360,
        "ptbdb": 1000,
        "svdb": 128,
        "incartdb": 257,
        "nstdb": 360,
        "wfdb": None,
    }
    assert get_database("mitdb").inter_split is not None and get_database("svdb").inter_split is None
    assert get_database("wfdb").directory == "" and not get_database("wfdb").downloadable


def test_a_database_is_declared_once(tmp_path) -> None:
    with pytest.raises(ValueError, match="declared twice"):
        register_database(beat_database("mitdb", "again", fs=360, n_signals=2, leads=("MLII",)))


def test_adding_a_database_is_one_declaration(tmp_path, record_writer) -> None:
    """A 200 Hz, 3-lead database: one register_database call, then evaluate and the builder know it."""
    toy = beat_database("toydb", "a toy 200 Hz database", fs=200, n_signals=3, leads=("II",))
    register_database(toy)
    try:
        folder = tmp_path / "toydb"
        folder.mkdir()
        record_writer(folder, "t1", ["I", "II", "V1"], seconds=30.0, seed=5, fs=200, main_lead="II")
        beats = load_database_beats(get_database("toydb"), tmp_path, tmp_path / "cache")
        assert set(beats.records.tolist()) == {"t1"} and beats.manifest["leads"] == {"t1": "II"}
        assert beats.manifest["sampling_rates"] == {"t1": 200} and len(beats.y) > 20
        assert np.isfinite(beats.context).all()
        assert EvaluateConfig(model_uri="models:/x@current", database="toydb").database == "toydb"
    finally:
        DATABASES.pop("toydb")


def test_the_generic_folder_reads_its_own_records_not_other_databases_below_it(tmp_path, record_writer) -> None:
    record_writer(tmp_path, "u1", ["MLII", "V1"], seconds=20.0, seed=1, fs=250)
    (tmp_path / "svdb").mkdir()
    record_writer(tmp_path / "svdb", "800", ["ECG1", "ECG2"], seconds=20.0, seed=2, fs=128, main_lead="ECG1")
    beats = load_database_beats(get_database("wfdb"), tmp_path, tmp_path / "cache")
    assert set(beats.records.tolist()) == {"u1"} and beats.manifest["sampling_rates"] == {"u1": 250}


def test_a_changed_declaration_changes_the_cache_key() -> None:
    from dataclasses import replace

    from ecg_mlflow.data.physionet import extraction_fingerprint

    mitdb = get_database("mitdb")
    assert extraction_fingerprint(mitdb) == extraction_fingerprint(get_database("mit"))
    assert extraction_fingerprint(replace(mitdb, leads=("V1",))) != extraction_fingerprint(mitdb)
    split = replace(mitdb.inter_split, train_records=mitdb.inter_split.train_records[1:])
    assert extraction_fingerprint(replace(mitdb, inter_split=split)) != extraction_fingerprint(mitdb)


def test_the_paper_reference_figures_are_declared_with_each_training_dataset() -> None:
    """`main` prints the paper's accuracy beside ours from the declaration: a new dataset needs no table elsewhere."""
    from ecg_mlflow.data.databases import get_database

    assert get_database("mit").paper_accuracy["scratch"]["mlp"] == 0.9038
    assert get_database("ptb").paper_accuracy["pretrained"]["ensemble"] == 0.9849
    assert get_database("svdb").paper_accuracy == {}  # evaluation only: no reference, no KeyError
