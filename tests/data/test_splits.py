"""Stratified subsets, intra and inter (de Chazal) splits."""

from __future__ import annotations

import numpy as np
import pytest

from ecg_mlflow.data.errors import DataError
from ecg_mlflow.data.splits import DS1, DS2, PACED, split_inter, split_intra, stratified_sample, stratified_subset

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
    with pytest.raises(DataError, match="DS2"):
        split_inter(np.array(["101"] * 5), np.zeros(5, dtype=int), 0.2, 0)
