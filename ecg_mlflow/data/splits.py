"""Train/val/test splits: intra-patient (random, stratified), inter-patient (de Chazal DS1/DS2), subsets."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ecg_mlflow.data.errors import DataError

# de Chazal et al. 2004; the paced records 102 104 107 217 are in neither set.
DS1: tuple[str, ...] = tuple(
    "101 106 108 109 112 114 115 116 118 119 122 124 201 203 205 207 208 209 215 220 223 230".split()  # noqa: SIM905
)
DS2: tuple[str, ...] = tuple(
    "100 103 105 111 113 117 121 123 200 202 210 212 213 214 219 221 222 228 231 232 233 234".split()  # noqa: SIM905
)
PACED: tuple[str, ...] = ("102", "104", "107", "217")


@dataclass(frozen=True)
class SplitIndices:
    """Row indices into the full beat table for each split."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def stratified_counts(y: np.ndarray, total: int) -> dict[int, int]:
    """How many of each class a stratified sample of `total` rows takes (largest remainder).

    Every class present keeps at least one row when total allows it, so rare classes
    (F, S) never vanish from a small sample.
    """
    classes, sizes = np.unique(y, return_counts=True)
    total = int(min(max(total, 0), len(y)))
    if total == 0 or len(classes) == 0:
        return dict.fromkeys(classes.tolist(), 0)
    exact = sizes * total / len(y)
    counts = np.floor(exact).astype(np.int64)
    if total >= len(classes):
        counts = np.maximum(counts, 1)
    remainder = total - counts.sum()
    order = np.argsort(-(exact - counts), kind="stable")  # classes raised to 1 already got theirs
    i = 0
    while remainder > 0:
        c = order[i % len(order)]
        if counts[c] < sizes[c]:
            counts[c] += 1
            remainder -= 1
        i += 1
    while remainder < 0:  # the at-least-one rule overshot: take back from the largest classes
        c = int(np.argmax(counts))
        counts[c] -= 1
        remainder += 1
    return dict(zip(classes.tolist(), np.minimum(counts, sizes).tolist(), strict=True))


def stratified_sample(y: np.ndarray, total: int, seed: int) -> np.ndarray:
    """Sorted indices of a seeded, stratified sample of `total` rows of y."""
    y = np.asarray(y)
    rng = np.random.default_rng(seed)
    chosen = [rng.permutation(np.flatnonzero(y == cls))[:count] for cls, count in stratified_counts(y, total).items()]
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)


def stratified_subset(y: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Sorted indices of a seeded, stratified `fraction` of y (used for label_fraction and splits)."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction={fraction} must lie in (0, 1]")
    y = np.asarray(y)
    return stratified_sample(y, round(fraction * len(y)), seed)


def _carve(indices: np.ndarray, y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split `indices` into (rest, carved) with the carved part a stratified `fraction` of them."""
    picked = stratified_subset(y[indices], fraction, seed)
    mask = np.zeros(len(indices), dtype=bool)
    mask[picked] = True
    return indices[~mask], indices[mask]


def split_intra(y: np.ndarray, test_fraction: float, val_fraction: float, seed: int) -> SplitIndices:
    """The paper's split: stratified random beats for test, then val carved from the training part."""
    y = np.asarray(y)
    train, test = _carve(np.arange(len(y)), y, test_fraction, seed)
    train, val = _carve(train, y, val_fraction, seed + 1)
    return SplitIndices(train, val, test)


def split_inter(records: np.ndarray, y: np.ndarray, val_fraction: float, seed: int) -> SplitIndices:
    """de Chazal: train on DS1 records, test on DS2; val is a stratified part of DS1; paced records dropped."""
    records = np.asarray(records)
    train = np.flatnonzero(np.isin(records, DS1))
    test = np.flatnonzero(np.isin(records, DS2))
    if len(train) == 0 or len(test) == 0:
        raise DataError(
            "split='inter' needs records of both de Chazal sets (DS1: 101 106 ..., DS2: 100 103 ...); "
            f"found {len(train)} DS1 and {len(test)} DS2 beats"
        )
    train, val = _carve(train, np.asarray(y), val_fraction, seed + 1)
    return SplitIndices(train, val, test)


def split_train_test(y_train: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """When train/test are given (Kaggle MIT files): (train, val) indices within the training rows."""
    return _carve(np.arange(len(y_train)), np.asarray(y_train), val_fraction, seed + 1)
