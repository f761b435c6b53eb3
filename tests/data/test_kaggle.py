"""Kaggle CSV import: row-level validation, nothing cached on error."""

from __future__ import annotations

import numpy as np
import pytest

from ecg_mlflow.config import DataConfig
from ecg_mlflow.data.dataset import load_dataset
from ecg_mlflow.data.errors import DataError
from ecg_mlflow.data.kaggle import read_kaggle_csv


def test_reads_values_and_labels(kaggle_csv_dir) -> None:
    x, y = read_kaggle_csv(kaggle_csv_dir / "mitbih_train.csv", 5)
    assert x.shape == (230, 187) and x.dtype == np.float32 and y.dtype == np.int64
    assert np.bincount(y).tolist() == [120, 30, 30, 20, 30]


def _corrupt(path, row: int, edit) -> None:
    lines = path.read_text().splitlines()
    cells = lines[row - 1].split(",")
    lines[row - 1] = ",".join(edit(cells))
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (lambda c: c[:-1], "187 columns, expected 188"),
        (lambda c: ["abc", *c[1:]], "'abc' is not a number"),
        (lambda c: ["nan", *c[1:]], "not a finite number"),
        (lambda c: [*c[:5], "inf", *c[6:]], "not a finite number"),
        (lambda c: [*c[:-1], "7"], "label '7' is outside the classes"),
        (lambda c: [*c[:-1], "1.5"], "outside the classes"),
    ],
)
def test_bad_rows_name_file_row_and_problem(kaggle_csv_dir, tmp_path, monkeypatch, edit, problem) -> None:
    path = kaggle_csv_dir / "mitbih_test.csv"
    _corrupt(path, 17, edit)
    with pytest.raises(DataError, match=f"mitbih_test.csv, row 17.*{problem}"):
        read_kaggle_csv(path, 5)
    cache = tmp_path / "cache"
    config = DataConfig(source="kaggle", data_dir=str(kaggle_csv_dir.parent), cache_dir=str(cache))
    with pytest.raises(DataError, match="row 17"):
        load_dataset(config)
    assert not cache.exists() or not any(p.is_dir() for p in cache.iterdir())  # no dataset cached


def test_ptb_files_must_hold_their_own_label(kaggle_csv_dir) -> None:
    _corrupt(kaggle_csv_dir / "ptbdb_normal.csv", 3, lambda c: [*c[:-1], "1"])
    with pytest.raises(DataError, match=r"ptbdb_normal\.csv, row 3.*expected 0"):
        read_kaggle_csv(kaggle_csv_dir / "ptbdb_normal.csv", 2, expected_label=0)


def test_kaggle_mit_files_define_train_and_test(kaggle_csv_dir, tmp_path) -> None:
    ds = load_dataset(DataConfig(source="kaggle", data_dir=str(kaggle_csv_dir.parent), cache_dir=str(tmp_path)))
    assert len(ds.test.y) == 59 and len(ds.train.y) + len(ds.val.y) == 230
    assert ds.class_counts()["val"]["F"] == 2  # 10% of 20, stratified
    assert set(ds.train.records) == {""} and (ds.test.positions == -1).all()


def test_kaggle_inter_split_is_a_clear_error(kaggle_csv_dir, tmp_path) -> None:
    config = DataConfig(source="kaggle", split="inter", data_dir=str(kaggle_csv_dir.parent), cache_dir=str(tmp_path))
    with pytest.raises(DataError, match="record ids"):
        load_dataset(config)


def test_kaggle_ptb_is_split_like_physionet_ptb(kaggle_csv_dir, tmp_path) -> None:
    config = DataConfig(dataset="ptb", source="kaggle", data_dir=str(kaggle_csv_dir.parent), cache_dir=str(tmp_path))
    ds = load_dataset(config)
    assert len(ds.test.y) == 30  # 20% of 150
    assert ds.class_counts()["test"] == {"normal": 12, "mi": 18}


def test_missing_kaggle_files_say_where_to_put_them(tmp_path) -> None:
    with pytest.raises(DataError, match="DATA_DIR/kaggle"):
        load_dataset(DataConfig(source="kaggle", data_dir=str(tmp_path), cache_dir=str(tmp_path / "c")))
