"""The sealed test split: while code that compares models runs, the dataset refuses its test split."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from ecg_mlflow.config import DataConfig
from ecg_mlflow.data.dataset import SPLIT_NAMES, load_dataset
from ecg_mlflow.data.sealed import (
    SealedTestSplitError,
    check_split_open,
    open_splits,
    seal_tag,
    sealed_by,
    sealed_test_split,
)


def test_the_seal_refuses_the_test_split_and_nothing_else() -> None:
    with sealed_test_split("an Optuna trial"):
        with pytest.raises(SealedTestSplitError, match="sealed while an Optuna trial runs"):
            check_split_open("test")
        check_split_open("train")
        check_split_open("val")
        assert open_splits(SPLIT_NAMES) == ("train", "val")
        assert seal_tag() == "sealed (an Optuna trial)"
    assert open_splits(SPLIT_NAMES) == SPLIT_NAMES and seal_tag() == "evaluated"


def test_the_seal_is_undone_when_the_comparison_fails() -> None:
    with pytest.raises(ZeroDivisionError), sealed_test_split("a fold"):
        1 / 0  # noqa: B018
    assert sealed_by() == ""
    check_split_open("test")


def test_the_seal_holds_for_the_code_that_set_it_only() -> None:
    """An Optuna trial in a worker thread seals its own trial, not its neighbours'."""
    seen: list[str] = []
    with sealed_test_split("a trial"):
        thread = threading.Thread(target=lambda: seen.append(sealed_by()))
        thread.start()
        thread.join()
        assert sealed_by() == "a trial"
    assert seen == [""]


def test_a_sealed_dataset_hands_out_no_test_beats_or_context(synthetic_mitdb, tmp_path) -> None:
    tiny_dataset = load_dataset(DataConfig(data_dir=str(synthetic_mitdb), cache_dir=str(tmp_path), max_beats=80))
    with sealed_test_split("a cross-validation fold"):
        x, _ = tiny_dataset.split("train")
        assert len(x)
        with pytest.raises(SealedTestSplitError):
            tiny_dataset.split("test")
        with pytest.raises(SealedTestSplitError):
            tiny_dataset.context("test", "rr")
    x_test, _ = tiny_dataset.split("test")
    assert np.isfinite(x_test).all()
