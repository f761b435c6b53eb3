"""PTB: header diagnosis -> label, detected R peaks, same beat path as MIT-BIH."""

from __future__ import annotations

import numpy as np

from ecg_mlflow.config import DataConfig
from ecg_mlflow.data.context import CONTEXT_COLUMNS
from ecg_mlflow.data.databases import get_database, ptb_diagnosis
from ecg_mlflow.data.dataset import load_dataset
from ecg_mlflow.data.physionet import build_beats


def test_diagnosis_from_header_comments() -> None:
    assert ptb_diagnosis(["age: 81", "Reason for admission: Myocardial infarction"]) == 1
    assert ptb_diagnosis(["Reason for admission: Healthy control"]) == 0
    assert ptb_diagnosis(["Reason for admission: Cardiomyopathy"]) is None
    assert ptb_diagnosis(["age: 81"]) is None


def test_ptb_records_become_labelled_beats_and_other_diagnoses_are_dropped(synthetic_ptbdb) -> None:
    parts = build_beats(synthetic_ptbdb / "ptbdb", database=get_database("ptb"))
    by_record = {p.records[0]: p for p in parts}
    assert "patient003/s0030_re" not in by_record  # cardiomyopathy
    assert set(by_record["patient001/s0010_re"].y) == {1}
    assert set(by_record["patient002/s0020_re"].y) == {0}
    for part in parts:
        assert list(part.leads.values()) == ["ii"] and list(part.rates.values()) == [1000]
        assert len(part.y) >= 33  # ~35 beats in 30 s, detected by the QRS detector
        assert part.x.min() >= 0 and part.x.max() <= 1
        assert np.median(part.x[:, 0]) > 0.85
        assert np.all(np.diff(part.positions) > 0.3 * 1000)
        assert part.context.shape == (len(part.y), len(CONTEXT_COLUMNS))
        assert 0.6 < np.median(part.context[:, 0]) < 1.0  # R-R of 0.7-0.9 s


def test_ptb_dataset_is_split_stratified(synthetic_ptbdb, tmp_path) -> None:
    ds = load_dataset(DataConfig(dataset="ptb", data_dir=str(synthetic_ptbdb), cache_dir=str(tmp_path)))
    assert ds.class_names == ("normal", "mi") and ds.name == "ptb-physionet-intra"
    counts = ds.class_counts()
    for split in ("train", "val", "test"):
        assert counts[split]["normal"] > 0 and counts[split]["mi"] > 0
    assert set(ds.test.records) <= {
        "patient001/s0010_re",
        "patient001/s0014lre",
        "patient002/s0020_re",
        "patient004/s0040_re",
    }
