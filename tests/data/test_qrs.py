"""QRS detection (ecg_mlflow.data.qrs) on synthetic ECG written here, and on MIT-BIH record 100 when present."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from ecg_mlflow.data.errors import DataError
from ecg_mlflow.data.qrs import DEFAULT_DETECTOR, DETECTORS, detect_r_peaks, match_peaks

TOLERANCE_S = 0.05
MIT_BEAT_SYMBOLS = frozenset(("N", "L", "R", "e", "j", "A", "a", "J", "S", "V", "E", "F", "/", "f", "Q"))


def beat_positions(seconds: float, fs: float, rng: np.random.Generator) -> np.ndarray:
    """R peaks about every 0.8 s (72 bpm) with jitter, from 0.5 s to 0.5 s before the end."""
    rr = rng.uniform(0.7, 0.9, size=int(seconds / 0.7) + 2)
    peaks = np.rint((0.5 + np.cumsum(rr)) * fs)
    return peaks[peaks < (seconds - 0.5) * fs].astype(np.int64)


def synthetic_ecg(n: int, fs: float, peaks: np.ndarray, rng: np.random.Generator, amplitude: float = 1.0) -> np.ndarray:
    """Noise and a slow baseline wander, a narrow R spike at every peak and a broad T wave 250 ms after it (mV)."""
    t = np.arange(n)
    signal = 0.02 * rng.standard_normal(n) + 0.05 * np.sin(2 * np.pi * 0.2 * t / fs)
    for p in peaks:
        window = slice(max(0, int(p - 0.1 * fs)), min(n, int(p + 0.5 * fs)))
        tw = t[window]
        signal[window] += amplitude * np.exp(-0.5 * ((tw - p) / (0.012 * fs)) ** 2)
        signal[window] += 0.25 * amplitude * np.exp(-0.5 * ((tw - p - 0.25 * fs) / (0.05 * fs)) ** 2)
    return signal


def make_ecg(fs: float, seconds: float = 60.0, seed: int = 0, amplitude: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    peaks = beat_positions(seconds, fs, rng)
    return synthetic_ecg(int(seconds * fs), fs, peaks, rng, amplitude), peaks


def assert_all_found(truth: np.ndarray, found: np.ndarray, fs: float) -> None:
    ref_idx, _ = match_peaks(truth, found, TOLERANCE_S * fs)
    missed = np.setdiff1d(np.arange(len(truth)), ref_idx)
    assert len(missed) == 0, f"missed beats at samples {truth[missed].tolist()}"
    assert len(found) == len(truth), f"{len(found) - len(truth)} extra detections"


def assert_index_array(peaks: np.ndarray, n: int) -> None:
    assert peaks.dtype == np.int64
    assert peaks.ndim == 1
    assert np.all(np.diff(peaks) > 0), "not sorted and unique"
    assert peaks.size == 0 or (peaks[0] >= 0 and peaks[-1] < n)


@pytest.mark.parametrize("method", sorted(DETECTORS))
@pytest.mark.parametrize("fs", [360, 257, 128])
def test_every_beat_found_within_50ms(method: str, fs: int) -> None:
    signal, truth = make_ecg(fs, seed=fs)
    peaks = detect_r_peaks(signal, fs, method=method)
    assert_index_array(peaks, len(signal))
    assert_all_found(truth, peaks, fs)


def test_default_detector_is_offered() -> None:
    assert DEFAULT_DETECTOR in DETECTORS


@pytest.mark.parametrize("scale", [1e-3, 0.2, 1000.0])
def test_default_detector_ignores_units_and_amplitude(scale: float) -> None:
    """gqrs has absolute (uV) thresholds; the amplitude normalisation makes V, small-QRS and uV records work."""
    signal, truth = make_ecg(360, seconds=30.0, seed=3)
    assert_all_found(truth, detect_r_peaks(signal * scale, 360), 360)


def test_unknown_method_names_the_choices() -> None:
    signal, _ = make_ecg(360, seconds=5.0)
    with pytest.raises(DataError) as info:
        detect_r_peaks(signal, 360, method="hamilton")
    message = str(info.value)
    assert "hamilton" in message
    for name in DETECTORS:
        assert name in message


@pytest.mark.parametrize("method", sorted(DETECTORS))
def test_nan_samples_are_interpolated(method: str) -> None:
    fs = 360
    signal, truth = make_ecg(fs, seconds=30.0, seed=5)
    gap = slice(int(10.0 * fs), int(11.5 * fs))  # a 1.5 s dropout: its beats are lost, the rest must be found
    signal[gap] = np.nan
    signal[0] = np.inf
    peaks = detect_r_peaks(signal, fs, method=method)
    assert_index_array(peaks, len(signal))
    outside = truth[(truth < gap.start - 0.1 * fs) | (truth > gap.stop + 0.1 * fs)]
    ref_idx, _ = match_peaks(outside, peaks, TOLERANCE_S * fs)
    assert len(ref_idx) == len(outside)


@pytest.mark.parametrize("method", sorted(DETECTORS))
def test_degenerate_signals_give_no_peaks(method: str) -> None:
    for signal in (np.zeros(3600), np.full(3600, np.nan), np.ones(100), np.zeros(0)):
        peaks = detect_r_peaks(signal, 360, method=method)
        assert peaks.dtype == np.int64
        assert peaks.size == 0


@pytest.mark.parametrize(
    ("signal", "fs", "match"),
    [
        (np.zeros((3600, 2)), 360, "1-D"),
        (np.zeros(3600), 0, "positive"),
        (np.zeros(3600), -360, "positive"),
        (np.zeros(3600), float("nan"), "positive"),
        (np.zeros(3600), 20, "too low"),
        (np.array(["a"] * 3600), 360, "real-valued"),
    ],
)
def test_bad_input_raises_data_error(signal: np.ndarray, fs: float, match: str) -> None:
    with pytest.raises(DataError, match=match):
        detect_r_peaks(signal, fs)


@pytest.mark.parametrize("method", sorted(DETECTORS))
def test_libraries_print_nothing(method: str, capfd: pytest.CaptureFixture[str]) -> None:
    signal, _ = make_ecg(360, seconds=10.0)
    detect_r_peaks(signal, 360, method=method)
    out, err = capfd.readouterr()
    assert out == ""
    assert err == ""


def test_match_peaks_is_one_to_one_and_nearest_first() -> None:
    reference = np.array([100, 200, 300])
    detected = np.array([95, 104, 210, 400])
    ref_idx, det_idx = match_peaks(reference, detected, tolerance=10)
    assert ref_idx.tolist() == [0, 1]
    assert det_idx.tolist() == [1, 2]  # 104 (4 away) beats 95 (5 away); 210 is exactly at the tolerance
    assert match_peaks(reference, np.zeros(0, dtype=np.int64), 10)[0].size == 0
    # wfdb's compare_annotations gives 510 to both 518 and 520 (beats closer than 2 x tolerance): kept one-to-one
    ref_idx, det_idx = match_peaks(np.array([518, 519, 520, 528]), np.array([510, 527]), tolerance=18)
    assert ref_idx.tolist() == [0, 3] and det_idx.tolist() == [0, 1]


@pytest.mark.realdata
def test_mitdb_record_100_first_five_minutes() -> None:
    env = os.environ.get("ECG_DATA_DIR")
    if not env or not (Path(env) / "mitdb" / "100.hea").is_file():
        pytest.skip("ECG_DATA_DIR not set or has no mitdb/100.hea: real MIT-BIH QRS test skipped")
    import wfdb

    path = str(Path(env) / "mitdb" / "100")
    fs = 360
    sampto = 5 * 60 * fs
    signal = wfdb.rdrecord(path, channels=[0], sampto=sampto).p_signal[:, 0]  # MLII
    ann = wfdb.rdann(path, "atr", sampto=sampto)
    truth = np.array([s for s, sym in zip(ann.sample, ann.symbol, strict=True) if sym in MIT_BEAT_SYMBOLS])
    peaks = detect_r_peaks(signal, fs)
    tp = len(match_peaks(truth, peaks, TOLERANCE_S * fs)[0])
    sensitivity, positive_predictivity = tp / len(truth), tp / len(peaks)
    assert sensitivity >= 0.99, (sensitivity, positive_predictivity)
    assert positive_predictivity >= 0.99, (sensitivity, positive_predictivity)
