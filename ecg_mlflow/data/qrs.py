"""R-peak (QRS) detection for records without beat annotations (PTB, a user's own WFDB record).

Records with reference beat annotations (MIT-BIH .atr) take their R peaks from those; everything
else goes through `detect_r_peaks`, which wraps a detector of a maintained library (wfdb.processing)
rather than one of our own, so that its behaviour is documented and tested elsewhere.

Each detector runs in two steps:

1. The library's detector finds the QRS complexes. Its fiducial point is not the R peak: gqrs marks
   a point ~35 ms away from the annotated R peak, xqrs the maximum of its band-passed signal.
2. `snap_to_r_peak` moves every detection to the largest deviation (up or down) of the signal from
   its 150 ms moving average within +-50 ms (wfdb.processing.correct_peaks, peak_dir="both"), which
   is where the MIT-BIH annotators put the beat fiducial, also for negative (QS) complexes.

Measured on the first 10 min of all 48 MIT-BIH records (benchmarks/bench_qrs.py, +-50 ms matching
window, docs/data.md), F1 / seconds per hour of signal on one core: gqrs + snap 0.9940 / 5.2 s (0.9940
at 128 Hz, 0.9931 at 257 Hz), gqrs alone 0.9729 (timing error 34.6 ms, 3.2 ms snapped), xqrs + snap
0.9874 / 4.5 s (0.9545 at 128 Hz), xqrs alone 0.9796. neurokit2 0.3.0's ecg_peaks was measured too:
"neurokit" 0.9593 / 0.14 s, "pantompkins1985" 0.5283; 35x faster but clearly less accurate, so it is
not offered (and is not a project dependency).
"""

from __future__ import annotations

import contextlib
import io
import math
import warnings
from collections.abc import Callable, Iterator

import numpy as np
from scipy.ndimage import uniform_filter1d
from wfdb import processing

from ecg_mlflow.data.errors import DataError

Detector = Callable[[np.ndarray, float], np.ndarray]

MIN_FS = 50.0  # a QRS complex is ~10-25 Hz: no detector is tried below this rate (gqrs needs more, below)
# gqrs times its 70 ms QRS window in quarters of int(fs) samples: below 58 Hz it raises a bare Exception.
DETECTOR_MIN_FS: dict[str, float] = {"gqrs": 58.0}
MIN_SECONDS = 0.5  # xqrs's filters need about that much signal; a shorter one holds no full beat
SNAP_RADIUS_S = 0.05  # how far a detection may move to reach the R peak
SNAP_SMOOTH_S = 0.15  # moving average subtracted before snapping: removes baseline and P/T waves
# gqrs's thresholds are absolute (QRSa = 750 uV, QRSamin = 130 uV), so a record in other units
# (uV, V) or with a small QRS is missed or over-detected. The signal is therefore rescaled so that the
# median peak-to-peak of its high-passed 2 s windows is GQRS_AMPLITUDE (in mV); on MIT-BIH (median
# 2.1 mV) 1.0 gave the same F1 as the unscaled mV signal (0.994 vs 0.993, first 3 min of 48 records).
GQRS_AMPLITUDE = 1.0
GQRS_WINDOW_S = 2.0
FLAT_WINDOW_FRACTION = 1e-3  # a window whose peak-to-peak is below this share of the largest one's is flat


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the libraries' own printing and warnings.

    xqrs prints "Learning initial signal parameters..." unless verbose=False (which we pass too); this
    also catches any other print or numpy/scipy warning from inside the detectors. It redirects this
    process's stdout/stderr for the duration, so output from other threads in that window is
    swallowed too: acceptable for the data layer, which runs detectors in worker processes.
    """
    sink = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        warnings.simplefilter("ignore")
        yield


def _as_indices(peaks: np.ndarray | list[int], n: int) -> np.ndarray:
    """int64, sorted, unique, inside [0, n)."""
    out = np.unique(np.asarray(peaks, dtype=np.float64).round().astype(np.int64))
    return out[(out >= 0) & (out < n)]


def snap_to_r_peak(signal: np.ndarray, peaks: np.ndarray, fs: float) -> np.ndarray:
    """Move each detection to the largest |signal - 150 ms moving average| within +-50 ms.

    "both" directions rather than "compare" (one direction for the whole record) because the largest
    deflection of ectopic beats often points the other way from the normal beats' R wave.
    """
    peaks = _as_indices(peaks, len(signal))
    if len(peaks) == 0:
        return peaks
    radius = max(1, round(SNAP_RADIUS_S * fs))
    smooth = max(1, round(SNAP_SMOOTH_S * fs))
    snapped = processing.correct_peaks(signal, peaks, search_radius=radius, smooth_window_size=smooth, peak_dir="both")
    return _as_indices(snapped, len(signal))


def gqrs_scale(signal: np.ndarray, fs: float) -> float:
    """Factor that brings the typical QRS peak-to-peak to GQRS_AMPLITUDE (1.0 for a flat signal).

    The median over 2 s windows (each holds at least one beat above 30 bpm) of the peak-to-peak of
    the signal minus its 150 ms moving average: noise bursts and artefacts in a few windows do not move it.
    Flat windows (a lead off, a gap interpolated by clean_signal) are left out: with more than half of
    them, the median would be rounding noise and the factor ~1e14, which overflows gqrs.
    """
    high = signal - uniform_filter1d(signal, size=max(1, round(SNAP_SMOOTH_S * fs)), mode="nearest")
    window = max(1, round(GQRS_WINDOW_S * fs))
    n_windows = len(high) // window
    if n_windows:
        blocks = high[: n_windows * window].reshape(n_windows, window)
        spans = blocks.max(axis=1) - blocks.min(axis=1)
        live = spans[spans > FLAT_WINDOW_FRACTION * spans.max()]
        amplitude = float(np.median(live)) if len(live) else 0.0
    else:
        amplitude = float(np.ptp(high)) if len(high) else 0.0
    return GQRS_AMPLITUDE / amplitude if amplitude > 0 and math.isfinite(amplitude) else 1.0


def gqrs_library(signal: np.ndarray, fs: float) -> np.ndarray:
    """wfdb.processing.gqrs_detect on the amplitude-normalised signal; the library's own fiducial points."""
    scaled = signal * gqrs_scale(signal, fs)
    with _quiet():
        peaks = processing.gqrs_detect(sig=scaled, fs=fs)
    return _as_indices(peaks, len(signal))


def xqrs_library(signal: np.ndarray, fs: float) -> np.ndarray:
    """wfdb.processing.xqrs_detect (scale-invariant: it learns its thresholds); the library's own fiducial points."""
    with _quiet():
        peaks = processing.xqrs_detect(sig=signal, fs=fs, verbose=False)
    return _as_indices(peaks, len(signal))


# The libraries' detections before snapping: kept separate so the benchmark can show what snapping adds.
LIBRARY_DETECTORS: dict[str, Detector] = {"gqrs": gqrs_library, "xqrs": xqrs_library}


def _snapped(library: Detector) -> Detector:
    def detector(signal: np.ndarray, fs: float) -> np.ndarray:
        return snap_to_r_peak(signal, library(signal, fs), fs)

    detector.__name__ = f"{library.__name__}_snapped"
    detector.__doc__ = f"{library.__name__}, then snap_to_r_peak."
    return detector


DETECTORS: dict[str, Detector] = {name: _snapped(fn) for name, fn in LIBRARY_DETECTORS.items()}

# gqrs + snap: the best F1 on MIT-BIH at 360 Hz and after resampling to 128 and 257 Hz, at about the
# speed of xqrs (a few seconds per hour of signal); see the module docstring and docs/data.md.
DEFAULT_DETECTOR: str = "gqrs"


def clean_signal(signal: np.ndarray | list[float]) -> np.ndarray:
    """float64 copy with non-finite samples (NaN, +-inf: gaps, clipped ADC values) linearly interpolated.

    Interpolation rather than zeros so that a gap does not put an artificial step (a fake QRS) into
    the signal; samples before the first or after the last finite one take its value; an all-NaN
    signal becomes zeros (and yields no peaks).
    """
    x = np.array(signal, dtype=np.float64)
    bad = ~np.isfinite(x)
    if bad.any():
        good = np.flatnonzero(~bad)
        if len(good) == 0:
            return np.zeros_like(x)
        x[bad] = np.interp(np.flatnonzero(bad), good, x[good])
    return x


def detect_r_peaks(signal: np.ndarray, fs: float, method: str = DEFAULT_DETECTOR) -> np.ndarray:
    """R-peak sample indices (int64, sorted, unique, at `fs`) of one ECG lead in physical units.

    signal: 1-D; NaN/inf samples are linearly interpolated first (see `clean_signal`).
    fs: sampling rate in Hz, at least MIN_FS (50 Hz; 58 Hz for gqrs, DETECTOR_MIN_FS).
    method: a key of DETECTORS ("gqrs" default, "xqrs").
    A signal shorter than MIN_SECONDS (0.5 s) or flat returns no peaks. The libraries' printing and
    warnings are suppressed. Raises DataError for a bad signal, rate or method.
    """
    if method not in DETECTORS:
        raise DataError(f"unknown QRS detector {method!r}; choose one of: {', '.join(sorted(DETECTORS))}")
    x = np.asarray(signal)
    if x.ndim != 1:
        raise DataError(f"detect_r_peaks needs one lead (a 1-D signal), got shape {x.shape}; pass e.g. p_signal[:, 0]")
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise DataError(f"detect_r_peaks needs a real-valued signal, got dtype {x.dtype}")
    try:
        rate = float(fs)
    except (TypeError, ValueError) as exc:
        raise DataError(f"sampling rate must be a number, got {fs!r}") from exc
    if not math.isfinite(rate) or rate <= 0:
        raise DataError(f"sampling rate must be a positive number of Hz, got {fs!r}")
    minimum = DETECTOR_MIN_FS.get(method, MIN_FS)
    if rate < minimum:
        raise DataError(
            f"sampling rate {rate:g} Hz is too low for QRS detection ({method}); need at least {minimum:g} Hz"
        )
    if len(x) < MIN_SECONDS * rate:
        return np.zeros(0, dtype=np.int64)
    x = clean_signal(x)
    if np.ptp(x) == 0:
        return np.zeros(0, dtype=np.int64)
    return _as_indices(DETECTORS[method](x, rate), len(x))


def match_peaks(reference: np.ndarray, detected: np.ndarray, tolerance: float) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one matching of detected to reference peaks at most `tolerance` samples apart.

    Returns (reference indices, detected indices) of the matched pairs, sorted by reference: the scoring
    of wfdb.processing.compare_annotations (each beat gets its nearest free detection; a detection nearer
    the next beat is left to it). Its window is exclusive (< window_width), so `tolerance` itself matches
    as floor(tolerance) + 1 samples. Inputs must be sorted.
    """
    ref = np.asarray(reference, dtype=np.int64)
    det = np.asarray(detected, dtype=np.int64)
    if len(ref) == 0 or len(det) == 0:  # compare_annotations divides by both counts
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    comparison = processing.compare_annotations(ref, det, math.floor(tolerance) + 1)
    ref_idx, det_idx = comparison.matched_ref_inds.astype(np.int64), comparison.matched_test_inds.astype(np.int64)
    # Beats closer than 2 x tolerance (never real ones) can get one detection twice there: the first keeps it.
    first = np.sort(np.unique(det_idx, return_index=True)[1])
    return ref_idx[first], det_idx[first]
