"""Label-free adaptation to each record: the derived columns, and the same columns for beats read afresh."""

from __future__ import annotations

import numpy as np
import pytest

from ecg_mlflow.data.adaptation import ADAPTATIONS, adapt_context, context_matrix, record_standardised
from ecg_mlflow.data.errors import DataError

NAMES = ("pre_rr", "post_rr")


def _context() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    fast, slow = rng.normal(0.5, 0.05, size=(40, 2)), rng.normal(1.2, 0.2, size=(60, 2))
    return np.vstack([fast, slow]).astype(np.float32), np.array(["a"] * 40 + ["b"] * 60)


def test_record_norm_standardises_each_column_within_each_record() -> None:
    context, records = _context()
    z, names = record_standardised(context, NAMES, records)
    assert names == ("pre_rr_record_z", "post_rr_record_z")
    for record in ("a", "b"):
        np.testing.assert_allclose(z[records == record].mean(axis=0), 0.0, atol=1e-5)
        np.testing.assert_allclose(z[records == record].std(axis=0), 1.0, atol=1e-4)


def test_a_record_of_one_beat_stands_at_zero_not_infinity() -> None:
    z, _ = record_standardised(np.array([[0.8, 0.9]], np.float32), NAMES, np.array(["x"]))
    assert np.all(np.isfinite(z)) and np.all(z == 0)


@pytest.mark.parametrize("adapt", sorted(ADAPTATIONS))
def test_beats_read_afresh_get_the_columns_the_model_was_trained_with(adapt) -> None:
    """What `evaluate` and `classify` compute from a record equals what training computed."""
    context, records = _context()
    adapted, names = adapt_context(adapt, context, NAMES, records)
    np.testing.assert_allclose(context_matrix(context, NAMES, records, names), adapted, atol=1e-6)
    assert adapt_context(adapt, None, (), records) == (None, ())


def test_a_column_nobody_computes_is_a_data_error() -> None:
    context, records = _context()
    with pytest.raises(DataError, match="takes the context 'qt_interval'"):
        context_matrix(context, NAMES, records, ("pre_rr", "qt_interval"))
