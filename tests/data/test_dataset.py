"""load_dataset: the contract the training steps rely on, on synthetic and (marked) real MIT-BIH data."""

from __future__ import annotations

import numpy as np
import pytest

from ecg_mlflow.config import DataConfig
from ecg_mlflow.data.databases import MIT_DS1 as DS1
from ecg_mlflow.data.databases import MIT_DS2 as DS2
from ecg_mlflow.data.dataset import SPLIT_NAMES, BeatDataset, load_dataset
from ecg_mlflow.data.errors import DataError

KAGGLE_TOTALS = {"N": 90589, "S": 2779, "V": 7236, "F": 803, "Q": 8039}


def _check_contract(ds: BeatDataset) -> None:
    for split in SPLIT_NAMES:
        x, y = ds.split(split)
        assert x.dtype == np.float32 and x.ndim == 2 and x.shape[1] == 187
        assert y.dtype == np.int64 and y.shape == (len(x),)
        assert ds.table(split).positions.dtype == np.int64
        assert len(ds.table(split).records) == len(x)


def test_synthetic_mit_dataset_contract(synthetic_mitdb, tmp_path) -> None:
    ds = load_dataset(DataConfig(data_dir=str(synthetic_mitdb), cache_dir=str(tmp_path)))
    _check_contract(ds)
    assert ds.class_names == ("N", "S", "V", "F", "Q") and ds.name == "mit-physionet-intra"
    assert len(ds.digest) == 16
    total = sum(len(ds.split(s)[1]) for s in SPLIT_NAMES)
    assert total == 364  # 5 records, every annotated beat (the '+' marks excluded)
    assert abs(len(ds.test.y) - 0.2 * total) <= 5
    m = ds.manifest
    assert m["source"] == "physionet" and m["leads"]["102"] == "V5" and m["leads"]["114"] == "MLII"
    assert m["class_counts"]["test"] == ds.class_counts()["test"]
    assert set(m["checksums"]) >= {"x_train", "y_test"} and "mitdb/100.dat" in m["input_sha256"]


def test_inter_split_on_synthetic_records(synthetic_mitdb, tmp_path) -> None:
    ds = load_dataset(DataConfig(split="inter", data_dir=str(synthetic_mitdb), cache_dir=str(tmp_path)))
    assert set(ds.train.records) | set(ds.val.records) == {"101", "114"}
    assert set(ds.test.records) == {"100", "103"}


def test_max_beats_caps_train_and_then_val_test_stratified(synthetic_mitdb, tmp_path) -> None:
    full = load_dataset(DataConfig(data_dir=str(synthetic_mitdb), cache_dir=str(tmp_path)))
    capped = load_dataset(DataConfig(data_dir=str(synthetic_mitdb), cache_dir=str(tmp_path), max_beats=40))
    assert len(capped.train.y) == 40 and set(capped.train.y) == {0, 1, 2, 3, 4}
    assert len(capped.test.y) == 10 and len(capped.val.y) == len(full.val.y)  # val (26) < 40: whole
    assert capped.digest != full.digest
    big = load_dataset(DataConfig(data_dir=str(synthetic_mitdb), cache_dir=str(tmp_path), max_beats=200))
    assert len(big.train.y) == 200 and len(big.test.y) == len(full.test.y)


def test_missing_data_dir_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(DataError, match="ecg-mlflow data download mitdb"):
        load_dataset(DataConfig(data_dir=str(tmp_path / "nowhere"), cache_dir=str(tmp_path)))


@pytest.fixture(scope="session")
def real_intra(real_data_dir, tmp_path_factory) -> BeatDataset:
    """All 48 real records, built once per session into a temp cache."""
    cache_dir = tmp_path_factory.mktemp("real_cache")
    return load_dataset(DataConfig(data_dir=str(real_data_dir), cache_dir=str(cache_dir)), workers=2)


@pytest.mark.realdata
@pytest.mark.slow
def test_real_totals_match_kaggle_within_1_percent(real_intra) -> None:
    counts = real_intra.class_counts()
    for name, expected in KAGGLE_TOTALS.items():
        total = sum(counts[s][name] for s in SPLIT_NAMES)
        assert abs(total - expected) <= 0.01 * expected, (name, total, expected)
    assert len(set(real_intra.manifest["records"]["train"])) == 48
    assert real_intra.manifest["leads"]["102"] == "V5" and real_intra.manifest["leads"]["114"] == "MLII"


@pytest.mark.realdata
@pytest.mark.slow
def test_real_beats_look_like_kaggle_beats(real_intra) -> None:
    x = real_intra.train.x
    assert x.min() >= 0.0 and x.max() <= 1.0
    assert np.median(x[:, 0]) > 0.85  # starts near 1.0 at the R peak
    assert (x[:, -1] == 0).mean() > 0.95  # trailing zeros
    assert (x[:, 0] > x.mean(axis=1)).mean() > 0.9


@pytest.mark.realdata
@pytest.mark.slow
def test_real_inter_split_uses_ds1_and_ds2_only(real_data_dir, real_intra) -> None:
    cache_dir = real_intra.manifest["cache_dir"].rsplit("/", 1)[0]
    ds = load_dataset(DataConfig(split="inter", data_dir=str(real_data_dir), cache_dir=cache_dir), workers=2)
    assert set(ds.train.records) | set(ds.val.records) == set(DS1)
    assert set(ds.test.records) == set(DS2)
