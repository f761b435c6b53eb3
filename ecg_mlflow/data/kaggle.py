"""Kaggle heartbeat CSVs (Kachuee et al. 2018): 187 values + a label per row, no header.

Every row is validated so that a bad file fails loudly, naming the file, the row and the
problem, before anything is cached.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ecg_mlflow.data.beats import BEAT_LENGTH, BeatTable
from ecg_mlflow.data.databases import Database, KaggleFiles
from ecg_mlflow.data.errors import DataError

KAGGLE_FOLDER = "kaggle"  # under DATA_DIR


def kaggle_files(database: Database) -> KaggleFiles:
    """The database's Kaggle CSVs as declared (DataConfig refuses source=kaggle for a database without any)."""
    if database.kaggle is None:
        raise ValueError(f"{database.name} declares no Kaggle CSVs")
    return database.kaggle


def kaggle_paths(database: Database, data_dir: Path) -> list[Path]:
    """The dataset's CSV paths (training files, then test files); DataError naming the missing ones."""
    files = kaggle_files(database)
    kaggle_dir = Path(data_dir) / KAGGLE_FOLDER
    paths = [kaggle_dir / name for name in (*files.train, *files.test)]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise DataError(
            f"Kaggle file(s) {', '.join(missing)} not found in {kaggle_dir}: download the Kaggle "
            "'ECG Heartbeat Categorization Dataset' (shayanfazeli/heartbeat) and put the CSVs in DATA_DIR/kaggle/"
        )
    return paths


def read_table(database: Database, data_dir: Path) -> BeatTable:
    """Every beat of the database's Kaggle CSVs, validated row by row; the test files' rows as `test_rows`."""
    files = kaggle_files(database)
    parts = [
        read_kaggle_csv(path, len(database.class_names), files.labels.get(path.name))
        for path in kaggle_paths(database, data_dir)
    ]
    y = np.concatenate([labels for _, labels in parts])
    n_train = sum(len(labels) for _, labels in parts[: len(files.train)])
    test_rows = np.arange(n_train, len(y)) if files.test else None
    return BeatTable.isolated(np.concatenate([x for x, _ in parts]), y, test_rows)


def read_kaggle_csv(path: Path, n_classes: int, expected_label: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(beats float32 (n, 187), labels int64 (n,)) from one Kaggle CSV, validated row by row."""
    path = Path(path)
    with open(path, newline="") as f:
        rows = [row for row in csv.reader(f)]
    if not rows:
        raise DataError(f"{path}: the file is empty")
    width = BEAT_LENGTH + 1
    lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    bad = np.flatnonzero(lengths != width)
    if len(bad):
        row = int(bad[0])
        raise DataError(f"{path}, row {row + 1}: {lengths[row]} columns, expected {width} (187 values + label)")
    text = np.array(rows, dtype=str)
    try:
        values = text.astype(np.float64)
    except ValueError:
        row, col = _first_non_number(text)
        raise DataError(f"{path}, row {row + 1}, column {col + 1}: {str(text[row, col])!r} is not a number") from None
    finite = np.isfinite(values)
    if not finite.all():
        row, col = (int(i) for i in np.argwhere(~finite)[0])
        raise DataError(f"{path}, row {row + 1}, column {col + 1}: {str(text[row, col])!r} is not a finite number")
    labels = values[:, -1]
    wrong = (labels != np.round(labels)) | (labels < 0) | (labels >= n_classes)
    if expected_label is not None:
        wrong |= labels != expected_label
    if wrong.any():
        row = int(np.flatnonzero(wrong)[0])
        allowed = f"{expected_label}" if expected_label is not None else f"an integer in 0..{n_classes - 1}"
        raise DataError(
            f"{path}, row {row + 1}: label {str(text[row, -1])!r} is outside the classes (expected {allowed})"
        )
    return values[:, :-1].astype(np.float32), labels.astype(np.int64)


def _first_non_number(text: np.ndarray) -> tuple[int, int]:
    for row, cells in enumerate(text):
        for col, cell in enumerate(cells):
            try:
                float(cell)
            except ValueError:
                return row, col
    return 0, 0
