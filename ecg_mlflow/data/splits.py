"""Train/val/test splits: intra-patient (random, stratified), inter-patient (de Chazal DS1/DS2), subsets."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ecg_mlflow.data.databases import MIT_DS1, MIT_DS2, InterPatientSplit
from ecg_mlflow.data.errors import DataError

MIN_VAL_RECORDS = 3
VAL_RECORD_DRAWS = 2000
FOLD_DRAWS = 200
REQUIRED_SHARE = 0.01  # classes with at least this share of the training records' beats must be in validation


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


def split_inter(
    records: np.ndarray,
    y: np.ndarray,
    val_fraction: float,
    seed: int,
    inter: InterPatientSplit | None = None,
) -> SplitIndices:
    """Patient-wise: train on the declared training records, test on the test records only.

    Validation is whole training records held out (choose_validation_records), never random
    beats of training patients, so model selection sees patients the model has not trained on.
    """
    inter = inter or InterPatientSplit(MIT_DS1, MIT_DS2, "de Chazal et al. 2004")
    records, y = np.asarray(records), np.asarray(y)
    pool = np.flatnonzero(np.isin(records, inter.train_records))
    test = np.flatnonzero(np.isin(records, inter.test_records))
    if len(pool) == 0 or len(test) == 0:
        raise DataError(
            f"split='inter' needs records of both sets ({inter.reference}: training {' '.join(inter.train_records[:3])}"
            f" ..., test {' '.join(inter.test_records[:3])} ...); found {len(pool)} training and {len(test)} test beats"
        )
    val_records = choose_validation_records(records[pool], y[pool], val_fraction, seed)
    in_val = np.isin(records[pool], val_records)
    return SplitIndices(pool[~in_val], pool[in_val], test)


def choose_validation_records(records: np.ndarray, y: np.ndarray, fraction: float, seed: int) -> list[str]:
    """Whole records holding about `fraction` of the beats, whose class mix is closest to all of them.

    A validation set of a few records is easily dominated by one odd record; of VAL_RECORD_DRAWS
    seeded draws (records added in random order until the share is reached, at least
    MIN_VAL_RECORDS when there are enough), the one whose class proportions deviate least from
    the training records' (chi-style distance) wins, among draws that contain every class with at
    least REQUIRED_SHARE of the beats and leave training records behind. Only training records'
    labels are read, never the test records'.
    """
    names, beats = np.unique(records, return_counts=True)
    if len(names) < 2:
        raise DataError(f"split='inter' needs at least 2 training records to hold one out for validation, got {names}")
    classes = np.unique(y)
    per_record = np.array([[np.sum((records == r) & (y == c)) for c in classes] for r in names], dtype=np.float64)
    overall = per_record.sum(axis=0) / per_record.sum()
    required = overall >= REQUIRED_SHARE
    target = fraction * len(y)
    min_records = min(MIN_VAL_RECORDS, len(names) - 1)

    def draw(order: np.ndarray) -> list[int]:
        count = max(int(np.searchsorted(np.cumsum(beats[order]), target) + 1), min_records)
        return sorted(order[: min(count, len(names) - 1)].tolist())

    def score(chosen: list[int]) -> float:
        mix = per_record[chosen].sum(axis=0)
        covers = bool(np.all(mix[required] > 0))
        return float(np.sum(np.abs(mix / mix.sum() - overall) / np.sqrt(overall))) + (0.0 if covers else 1e6)

    rng = np.random.default_rng(seed)
    best = min((draw(rng.permutation(len(names))) for _ in range(VAL_RECORD_DRAWS)), key=score)
    return [str(names[i]) for i in best]


def split_given_test(y: np.ndarray, test_rows: np.ndarray, val_fraction: float, seed: int) -> SplitIndices:
    """When the files fix the test rows (the Kaggle MIT CSVs): validation carved from the other rows."""
    y = np.asarray(y)
    train, val = _carve(np.setdiff1d(np.arange(len(y)), test_rows), y, val_fraction, seed + 1)
    return SplitIndices(train, val, np.asarray(test_rows))


def patient_folds(records: np.ndarray, y: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """The cross-validation fold (0..folds-1) of every beat: whole records, class mix balanced, seeded.

    Of FOLD_DRAWS seeded draws, each putting the records in a random order into the fold whose class
    counts (and beat total) stay nearest an equal share, the draw that strays least wins. Only the
    labels of the records given are read. scikit-learn's StratifiedGroupKFold balances the same way,
    but its shuffle only breaks ties, so another seed does not give another assignment; repeated
    cross-validation needs one that does.
    """
    records, y = np.asarray(records), np.asarray(y)
    names, row_record = np.unique(records, return_inverse=True)
    if len(names) < folds:
        raise DataError(
            f"{folds}-fold cross-validation by patient needs at least {folds} training records, found {len(names)} "
            f"({' '.join(names[:8].tolist())}); use fewer folds"
        )
    classes, row_class = np.unique(y, return_inverse=True)
    counts = np.zeros((len(names), len(classes) + 1))
    np.add.at(counts, (row_record, row_class), 1.0)
    counts[:, -1] = counts[:, :-1].sum(axis=1)  # the beat total: folds of similar size
    target = counts.sum(axis=0) / folds

    def score(assignment: np.ndarray) -> float:
        fold_counts = np.stack([counts[assignment == f].sum(axis=0) for f in range(folds)])
        return float(np.sum(((fold_counts - target) / target) ** 2))

    rng = np.random.default_rng(seed)
    draws = (_greedy_folds(counts, target, rng.permutation(len(names)), folds) for _ in range(FOLD_DRAWS))
    return min(draws, key=score)[row_record]


def _greedy_folds(counts: np.ndarray, target: np.ndarray, order: np.ndarray, folds: int) -> np.ndarray:
    """Records in `order`, each to the fold where it adds least to the squared relative shortfall/excess."""
    fold_counts = np.zeros((folds, counts.shape[1]))
    assignment = np.full(len(counts), -1)
    for record in order:
        cost = np.sum(((fold_counts + counts[record] - target) / target) ** 2, axis=1)
        cost -= np.sum(((fold_counts - target) / target) ** 2, axis=1)
        fold = int(np.argmin(cost))
        fold_counts[fold] += counts[record]
        assignment[record] = fold
    return assignment
