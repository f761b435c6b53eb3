"""Kaggle heartbeat CSVs (Kachuee et al. 2018): 187 values + a label per row, no header.

Every row is validated so that a bad file fails loudly, naming the file, the row and the
problem, before anything is cached.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ecg_mlflow.config import BEAT_LENGTH
from ecg_mlflow.data.errors import DataError

KAGGLE_FILES: dict[str, tuple[str, ...]] = {
    "mit": ("mitbih_train.csv", "mitbih_test.csv"),
    "ptb": ("ptbdb_normal.csv", "ptbdb_abnormal.csv"),
}
PTB_FILE_LABELS: dict[str, int] = {"ptbdb_normal.csv": 0, "ptbdb_abnormal.csv": 1}


def kaggle_paths(kaggle_dir: Path, dataset: str) -> list[Path]:
    """The dataset's CSV paths; DataError naming the missing ones and where to put them."""
    paths = [Path(kaggle_dir) / name for name in KAGGLE_FILES[dataset]]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise DataError(
            f"Kaggle file(s) {', '.join(missing)} not found in {kaggle_dir}: download the Kaggle "
            "'ECG Heartbeat Categorization Dataset' (shayanfazeli/heartbeat) and put the CSVs in DATA_DIR/kaggle/"
        )
    return paths


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


def read_kaggle_mit(kaggle_dir: Path) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """((x_train, y_train), (x_test, y_test)) from mitbih_train.csv / mitbih_test.csv."""
    train_path, test_path = kaggle_paths(kaggle_dir, "mit")
    return read_kaggle_csv(train_path, 5), read_kaggle_csv(test_path, 5)


def read_kaggle_ptb(kaggle_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """All PTB beats (normal file -> 0, abnormal -> 1), to be split like PTB from PhysioNet."""
    parts = [read_kaggle_csv(p, 2, PTB_FILE_LABELS[p.name]) for p in kaggle_paths(kaggle_dir, "ptb")]
    return np.concatenate([x for x, _ in parts]), np.concatenate([y for _, y in parts])
