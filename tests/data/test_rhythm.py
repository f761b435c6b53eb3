"""R-R context features against values computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from ecg_mlflow.data.rhythm import RR_FEATURES, rr_features


def test_features_of_a_premature_beat_by_hand() -> None:
    fs = 100
    # R peaks at 0, 1.0, 2.0, 2.5 (premature), 4.0 (compensatory pause), 5.0 s
    peaks = np.array([0, 100, 200, 250, 400, 500])
    f = rr_features(peaks, fs)
    assert f.shape == (6, len(RR_FEATURES)) and f.dtype == np.float32
    pre = [1.0, 1.0, 1.0, 0.5, 1.5, 1.0]  # the first beat borrows its next interval
    post = [1.0, 1.0, 0.5, 1.5, 1.0, 1.0]  # the last borrows its previous one
    np.testing.assert_allclose(f[:, 0], pre)
    np.testing.assert_allclose(f[:, 1], post)
    # local_rr: all six beats lie within +-10 beats of each other -> mean of pre
    np.testing.assert_allclose(f[:, 2], np.mean(pre))
    # mean_rr: causal running mean of pre over the past 300 s
    np.testing.assert_allclose(f[:, 3], np.cumsum(pre) / np.arange(1, 7), rtol=1e-6)
    np.testing.assert_allclose(f[3, 4], 0.5 / np.mean(pre), rtol=1e-6)  # pre / local: premature
    np.testing.assert_allclose(f[3, 7], 1.5 / 0.5, rtol=1e-6)  # post / pre
    np.testing.assert_allclose(f[:, 6], np.array(pre) / (np.cumsum(pre) / np.arange(1, 7)), rtol=1e-6)


def test_local_window_is_ten_beats_each_side_and_running_mean_forgets_after_five_minutes() -> None:
    fs = 10
    rr = np.r_[np.full(400, 1.0), np.full(400, 0.5)]
    peaks = np.r_[0, np.cumsum(rr * fs)].astype(np.int64)
    f = rr_features(peaks, fs)
    np.testing.assert_allclose(f[600, 2], 0.5)  # 10 beats either side are all 0.5 s
    # beat 405: beats 395-400 follow 1.0 s intervals, beats 401-415 follow 0.5 s ones
    np.testing.assert_allclose(f[405, 2], (6 * 1.0 + 15 * 0.5) / 21, rtol=1e-6)
    # 200 beats of 0.5 s = 100 s after the switch: the 300 s window still holds 200 s of 1.0 s beats
    times, pre = peaks / fs, np.r_[rr[0], rr]
    i = 600
    in_window = (times > times[i] - 300.0) & (np.arange(len(times)) <= i)
    assert f[i, 3] == pytest.approx(pre[in_window].mean(), rel=1e-5)
    assert 0.5 < f[i, 3] < 1.0


def test_same_times_at_another_rate_give_the_same_features() -> None:
    seconds = np.array([0.4, 1.2, 2.0, 2.6, 3.6, 4.4])
    a = rr_features(np.rint(seconds * 360).astype(int), 360)
    b = rr_features(np.rint(seconds * 128).astype(int), 128)
    np.testing.assert_allclose(a, b, atol=0.02)


def test_edge_cases_and_bad_input() -> None:
    assert rr_features(np.array([], dtype=int), 360).shape == (0, len(RR_FEATURES))
    single = rr_features(np.array([100]), 360)
    assert single.shape == (1, len(RR_FEATURES)) and np.isfinite(single).all()
    with pytest.raises(ValueError, match="increasing"):
        rr_features(np.array([10, 10, 20]), 360)
    with pytest.raises(ValueError, match="fs"):
        rr_features(np.array([10, 20]), 0)


def test_gaps_in_the_annotations_are_capped() -> None:
    f = rr_features(np.array([0, 360, 720, 720 + 360 * 100, 720 + 360 * 101]), 360)
    assert f[:, :4].max() <= 3.0 + 1e-6 and f[3, 0] == pytest.approx(3.0)
