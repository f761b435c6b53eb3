"""Likeness to the patient's own beats, and the context table that selects columns by kind."""

from __future__ import annotations

import numpy as np
import pytest

from ecg_mlflow.data.context import CONTEXT_COLUMNS, CONTEXT_KINDS, select_context
from ecg_mlflow.data.errors import DataError
from ecg_mlflow.data.morphology import TEMPLATE_FEATURES, template_features


def _beat(width: float, t: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * (t / width) ** 2) + 0.3 * np.exp(-0.5 * ((t - 35) / 6) ** 2)


def test_identical_beats_match_their_templates_and_an_odd_beat_does_not() -> None:
    t = np.arange(187, dtype=float)
    beats = np.tile(_beat(2.0, t), (30, 1))
    beats[15] = _beat(9.0, t)  # one wide, ventricular-looking beat
    f = template_features(beats)
    assert f.shape == (30, len(TEMPLATE_FEATURES)) and f.dtype == np.float32
    normal = np.delete(np.arange(30), 15)
    np.testing.assert_allclose(f[normal, 0], 1.0, atol=1e-6)  # corr_record
    np.testing.assert_allclose(f[normal, 1], 0.0, atol=1e-6)  # dist_record
    np.testing.assert_allclose(f[normal, 4], 1.0, atol=1e-6)  # energy_ratio
    assert f[15, 0] < 0.95 and f[15, 1] > 0.05 and f[15, 2] < 0.95 and f[15, 4] > 1.2


def test_templates_need_no_labels_and_handle_short_records() -> None:
    assert template_features(np.zeros((0, 187))).shape == (0, len(TEMPLATE_FEATURES))
    flat = template_features(np.zeros((3, 187)))
    assert np.isfinite(flat).all()


def test_context_kinds_select_their_columns_in_order() -> None:
    context = np.arange(4 * len(CONTEXT_COLUMNS), dtype=np.float32).reshape(4, -1)
    assert select_context(context, CONTEXT_COLUMNS, "none") is None
    rr = select_context(context, CONTEXT_COLUMNS, "rr")
    assert rr.shape == (4, len(CONTEXT_KINDS["rr"])) and np.array_equal(rr, context[:, : len(CONTEXT_KINDS["rr"])])
    assert select_context(context, CONTEXT_COLUMNS, "rr_template").shape == (4, len(CONTEXT_COLUMNS))
    with pytest.raises(DataError, match="rebuild"):
        select_context(context[:, :8], CONTEXT_COLUMNS[:8], "rr_template")
