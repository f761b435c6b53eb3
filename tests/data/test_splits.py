"""Stratified subsets, intra and inter (de Chazal) splits."""

from __future__ import annotations

import numpy as np
import pytest

from ecg_mlflow.data.databases import MIT_DS1 as DS1
from ecg_mlflow.data.databases import MIT_DS2 as DS2
from ecg_mlflow.data.databases import MIT_PACED as PACED
from ecg_mlflow.data.errors import DataError
from ecg_mlflow.data.splits import (
    choose_validation_records,
    patient_folds,
    split_inter,
    split_intra,
    stratified_sample,
    stratified_subset,
)

Y = np.repeat(np.arange(5), [900, 30, 70, 8, 80])


def test_stratified_subset_keeps_class_proportions_and_is_seeded() -> None:
    idx = stratified_subset(Y, 0.1, seed=3)
    assert np.bincount(Y[idx], minlength=5).tolist() == [90, 3, 7, 1, 8]
    assert np.array_equal(idx, stratified_subset(Y, 0.1, seed=3))
    assert not np.array_equal(idx, stratified_subset(Y, 0.1, seed=4))
    assert len(np.unique(idx)) == len(idx)


def test_small_samples_keep_every_class() -> None:
    idx = stratified_sample(Y, 20, seed=0)
    assert len(idx) == 20 and set(Y[idx]) == {0, 1, 2, 3, 4}


def test_stratified_subset_rejects_bad_fraction() -> None:
    with pytest.raises(ValueError, match="fraction"):
        stratified_subset(Y, 0.0, seed=0)


def test_split_intra_is_disjoint_complete_and_stratified() -> None:
    s = split_intra(Y, test_fraction=0.2, val_fraction=0.1, seed=42)
    joined = np.concatenate([s.train, s.val, s.test])
    assert sorted(joined.tolist()) == list(range(len(Y)))
    assert np.bincount(Y[s.test]).tolist() == [180, 6, 14, 2, 16]
    assert np.bincount(Y[s.val]).tolist() == [72, 2, 6, 1, 6]  # 10% of the training part


def test_split_inter_uses_ds1_for_training_ds2_for_testing_and_drops_paced() -> None:
    records = np.array(["101"] * 10 + ["100"] * 10 + ["102"] * 10 + ["114"] * 10)
    y = np.tile([0, 0, 0, 0, 0, 0, 1, 1, 2, 2], 4)
    s = split_inter(records, y, val_fraction=0.2, seed=0)
    assert set(records[s.train]) | set(records[s.val]) == {"101", "114"}
    assert set(records[s.test]) == {"100"}
    assert len(s.train) + len(s.val) + len(s.test) == 30
    assert not set(PACED) & (set(DS1) | set(DS2)) and not set(DS1) & set(DS2)


def test_split_inter_without_ds2_records_is_a_data_error() -> None:
    with pytest.raises(DataError, match="test 100 103"):
        split_inter(np.array(["101"] * 5), np.zeros(5, dtype=int), 0.2, 0)


def _mit_like_table(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Every DS1, DS2 and paced record with 200-600 beats; S and V beats in a few records only."""
    rng = np.random.default_rng(seed)
    records, labels = [], []
    for i, record in enumerate((*DS1, *DS2, *PACED)):
        n = int(rng.integers(200, 600))
        y = np.zeros(n, dtype=np.int64)
        if i % 3 == 0:
            y[: n // 10] = 1  # S in every third record
        if i % 4 == 1:
            y[-n // 8 :] = 2  # V in every fourth
        records += [record] * n
        labels.append(y)
    return np.array(records), np.concatenate(labels)


def test_inter_validation_is_whole_ds1_records_never_ds2_and_disjoint_from_training() -> None:
    records, y = _mit_like_table()
    s = split_inter(records, y, val_fraction=0.1, seed=3)
    train_records, val_records, test_records = set(records[s.train]), set(records[s.val]), set(records[s.test])
    assert not (train_records | val_records) & set(DS2)  # no DS2 record in any training or validation index
    assert not train_records & val_records  # validation patients are never trained on
    assert train_records | val_records == set(DS1) and test_records == set(DS2)
    assert len(val_records) >= 3
    assert {0, 1, 2} <= set(y[s.val].tolist())  # N, S and V beats to select on
    assert not set(records[np.concatenate([s.train, s.val, s.test])]) & set(PACED)
    again = split_inter(records, y, val_fraction=0.1, seed=3)
    assert np.array_equal(s.val, again.val)  # the seed repeats the choice


def test_validation_records_match_the_training_class_mix_better_than_a_random_pick() -> None:
    records, y = _mit_like_table(1)
    pool = np.isin(records, DS1)
    chosen = choose_validation_records(records[pool], y[pool], 0.15, seed=0)
    overall = np.bincount(y[pool], minlength=3) / pool.sum()
    share = np.bincount(y[pool][np.isin(records[pool], chosen)], minlength=3)
    share = share / share.sum()
    rng = np.random.default_rng(0)
    random_pick = rng.choice(DS1, size=len(chosen), replace=False)
    random_share = np.bincount(y[pool][np.isin(records[pool], random_pick)], minlength=3)
    random_share = random_share / random_share.sum()
    assert np.abs(share - overall).sum() <= np.abs(random_share - overall).sum()


def test_the_validation_choice_never_reads_the_test_records_labels() -> None:
    records, y = _mit_like_table(2)
    shuffled = y.copy()
    in_ds2 = np.isin(records, DS2)
    shuffled[in_ds2] = np.random.default_rng(9).permutation(shuffled[in_ds2])
    shuffled[in_ds2 & (shuffled == 0)] = 3  # and other classes altogether
    a = split_inter(records, y, val_fraction=0.1, seed=0)
    b = split_inter(records, shuffled, val_fraction=0.1, seed=0)
    assert np.array_equal(a.val, b.val) and np.array_equal(a.train, b.train)


def _patients(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """22 records with MIT-like uneven class mixes: a few hold most S beats, others most V beats."""
    rng = np.random.default_rng(seed)
    records, labels = [], []
    for i in range(22):
        counts = [rng.integers(1000, 3000), rng.integers(0, 40), rng.integers(0, 60), rng.integers(0, 5)]
        counts[1] += 400 if i % 7 == 0 else 0  # S concentrated in records 0, 7, 14, 21
        counts[2] += 500 if i % 5 == 1 else 0
        records += [f"r{i:02d}"] * int(sum(counts))
        labels += [c for c, n in enumerate(counts) for _ in range(int(n))]
    return np.array(records), np.array(labels)


def _imbalance(records: np.ndarray, y: np.ndarray, fold_of: np.ndarray) -> float:
    """How far the folds' class shares stray from the whole's (summed absolute deviation)."""
    overall = np.bincount(y, minlength=4) / len(y)
    return sum(
        np.abs(np.bincount(y[fold_of == f], minlength=4) / np.sum(fold_of == f) - overall).sum()
        for f in np.unique(fold_of)
    )


def test_patient_folds_hold_out_whole_records_each_once() -> None:
    records, y = _patients()
    fold_of = patient_folds(records, y, folds=5, seed=0)
    assert set(fold_of.tolist()) == {0, 1, 2, 3, 4}  # every beat has a fold; no fold is empty
    for record in np.unique(records):
        assert len(set(fold_of[records == record].tolist())) == 1  # a record is in one fold only


def test_patient_folds_balance_the_class_mix_better_than_random_records() -> None:
    records, y = _patients()
    names = np.unique(records)
    balanced = np.mean([_imbalance(records, y, patient_folds(records, y, 5, seed)) for seed in range(5)])
    rng = np.random.default_rng(1)
    random_folds = []
    for _ in range(20):
        assignment = dict(zip(names, rng.permutation(np.arange(len(names)) % 5), strict=True))
        random_folds.append(_imbalance(records, y, np.array([assignment[r] for r in records])))
    assert balanced < 0.7 * np.mean(random_folds)
    for fold in range(5):  # the rare, concentrated classes reach every fold
        held = patient_folds(records, y, 5, seed=0) == fold
        assert {1, 2} <= set(y[held].tolist())


def test_patient_folds_are_repeatable_from_the_seed() -> None:
    records, y = _patients()
    assert np.array_equal(patient_folds(records, y, 5, seed=3), patient_folds(records, y, 5, seed=3))
    assert not np.array_equal(patient_folds(records, y, 5, seed=3), patient_folds(records, y, 5, seed=4))


def test_more_folds_than_records_is_a_data_error_naming_the_fix() -> None:
    records, y = np.array(["a", "a", "b", "c"]), np.array([0, 1, 0, 1])
    with pytest.raises(DataError, match=r"at least 4 training records, found 3.*fewer folds"):
        patient_folds(records, y, folds=4, seed=0)


@pytest.mark.realdata
def test_patient_folds_on_the_real_ds1_records(real_data_dir) -> None:
    """The 22 DS1 records' reference labels (annotations only): 5 folds, each with N, S and V beats."""
    import wfdb

    from ecg_mlflow.data.aami import AAMI_CLASSES, SYMBOL_TO_AAMI

    records, y = [], []
    for record in DS1:
        symbols = wfdb.rdann(str(real_data_dir / "mitdb" / record), "atr").symbol
        classes = [AAMI_CLASSES.index(SYMBOL_TO_AAMI[s]) for s in symbols if s in SYMBOL_TO_AAMI]
        records += [record] * len(classes)
        y += classes
    records, y = np.array(records), np.array(y)
    fold_of = patient_folds(records, y, folds=5, seed=42)
    held_out = [sorted(set(records[fold_of == f].tolist())) for f in range(5)]
    assert sorted(r for fold in held_out for r in fold) == sorted(DS1)
    for fold in range(5):
        assert {0, 1, 2} <= set(y[fold_of == fold].tolist()), held_out[fold]
