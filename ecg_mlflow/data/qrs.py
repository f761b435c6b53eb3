"""R-peak (QRS) detection for records without beat annotations (PTB, a user's own WFDB record).

wfdb.processing's detector finds the QRS complexes, then `snap_to_r_peak` moves its fiducial point (gqrs: ~35 ms
off) to where the MIT-BIH annotators put the beat. gqrs + snap is the most accurate on MIT-BIH (F1 0.994 at 360,
257 and 128 Hz; neurokit2 is faster but clearly worse: benchmarks/bench_qrs.py, docs/data.md).
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
# gqrs's thresholds are absolute (QRSa = 750 uV), so a record in uV, V or with a small QRS is missed or
# over-detected: the signal is rescaled to GQRS_AMPLITUDE mV (gqrs_scale); on MIT-BIH 1.0 = unscaled F1.
GQRS_AMPLITUDE = 1.0
GQRS_WINDOW_S = 2.0
FLAT_WINDOW_FRACTION = 1e-3  # a window whose peak-to-peak is below this share of the largest one's is flat


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the detectors' prints and numpy/scipy warnings (this process's stdout/stderr for the duration:
    acceptable for the data layer, which runs detectors in worker processes)."""
    sink = io.StringIO()
    with warnings.catch_warnings(action="ignore"), contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        yield


def _as_indices(peaks: np.ndarray | list[int], n: int) -> np.ndarray:
    """int64, sorted, unique, inside [0, n)."""
    out = np.unique(np.asarray(peaks, dtype=np.float64).round().astype(np.int64))
    return out[(out >= 0) & (out < n)]


def snap_to_r_peak(signal: np.ndarray, peaks: np.ndarray, fs: float) -> np.ndarray:
    """Move each detection to the largest |signal - 150 ms moving average| within +-50 ms: "both" directions, as
    the largest deflection of ectopic beats often points the other way from the normal beats' R wave."""
    if len(peaks := _as_indices(peaks, len(signal))) == 0:
        return peaks
    radius, smooth = max(1, round(SNAP_RADIUS_S * fs)), max(1, round(SNAP_SMOOTH_S * fs))
    snapped = processing.correct_peaks(signal, peaks, search_radius=radius, smooth_window_size=smooth, peak_dir="both")
    return _as_indices(snapped, len(signal))


def gqrs_scale(signal: np.ndarray, fs: float) -> float:
    """Factor that brings the median high-passed peak-to-peak of 2 s windows (a beat each) to GQRS_AMPLITUDE: a few
    noisy windows do not move it, flat ones (lead off, a gap) are left out (else ~1e14); 1.0 for a flat signal."""
    high = signal - uniform_filter1d(signal, size=max(1, round(SNAP_SMOOTH_S * fs)), mode="nearest")
    window = max(1, round(GQRS_WINDOW_S * fs))
    n = len(high) // window
    blocks = high[: n * window].reshape(n, window) if n else high.reshape(1, -1)  # shorter than a window: one
    spans = np.ptp(blocks, axis=1) if blocks.size else np.zeros(1)
    live = spans[spans > FLAT_WINDOW_FRACTION * spans.max()]
    amplitude = float(np.median(live)) if len(live) else 0.0
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
    return lambda signal, fs: snap_to_r_peak(signal, library(signal, fs), fs)


DETECTORS: dict[str, Detector] = {name: _snapped(fn) for name, fn in LIBRARY_DETECTORS.items()}

DEFAULT_DETECTOR: str = "gqrs"


def clean_signal(signal: np.ndarray | list[float]) -> np.ndarray:
    """float64 copy with non-finite samples (gaps, clipped ADC values) linearly interpolated, not zeroed, so a gap
    puts no step (a fake QRS) into the signal; an all-NaN signal becomes zeros (and yields no peaks)."""
    x = np.array(signal, dtype=np.float64)
    bad = ~np.isfinite(x)
    if bad.all():
        return np.zeros_like(x)
    x[bad] = np.interp(np.flatnonzero(bad), np.flatnonzero(~bad), x[~bad])
    return x


def detect_r_peaks(signal: np.ndarray, fs: float, method: str = DEFAULT_DETECTOR) -> np.ndarray:
    """R-peak sample indices (int64, sorted, unique) of one ECG lead (1-D, physical units, NaN interpolated) at
    `fs` Hz (at least DETECTOR_MIN_FS or MIN_FS) by a DETECTORS `method`; none for a signal shorter than MIN_SECONDS
    or flat. DataError for a bad signal, rate or method."""
    if method not in DETECTORS:
        raise DataError(f"unknown QRS detector {method!r}; choose one of: {', '.join(sorted(DETECTORS))}")
    x = np.asarray(signal)
    if x.ndim != 1:
        raise DataError(f"detect_r_peaks needs one lead (a 1-D signal), got shape {x.shape}; pass e.g. p_signal[:, 0]")
    if x.dtype.kind not in "iuf":  # signed, unsigned, float
        raise DataError(f"detect_r_peaks needs a real-valued signal, got dtype {x.dtype}")
    try:
        rate = float(fs)
    except (TypeError, ValueError) as exc:
        raise DataError(f"sampling rate must be a number, got {fs!r}") from exc
    if not math.isfinite(rate) or rate <= 0:
        raise DataError(f"sampling rate must be a positive number of Hz, got {fs!r}")
    if rate < (minimum := DETECTOR_MIN_FS.get(method, MIN_FS)):
        raise DataError(
            f"sampling rate {rate:g} Hz is too low for QRS detection ({method}); need at least {minimum:g} Hz"
        )
    if len(x) < MIN_SECONDS * rate:
        return np.zeros(0, dtype=np.int64)
    x = clean_signal(x)
    return _as_indices(DETECTORS[method](x, rate) if np.ptp(x) else [], len(x))


def match_peaks(reference: np.ndarray, detected: np.ndarray, tolerance: float) -> tuple[np.ndarray, np.ndarray]:
    """(reference indices, detected indices) of peaks matched one-to-one at most `tolerance` samples apart, sorted
    by reference: wfdb.processing.compare_annotations's scoring (its window is exclusive, hence the + 1). Sorted in."""
    ref, det = np.asarray(reference, dtype=np.int64), np.asarray(detected, dtype=np.int64)
    if len(ref) == 0 or len(det) == 0:  # compare_annotations divides by both counts
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    comparison = processing.compare_annotations(ref, det, math.floor(tolerance) + 1)
    ref_idx, det_idx = comparison.matched_ref_inds.astype(np.int64), comparison.matched_test_inds.astype(np.int64)
    # Beats closer than 2 x tolerance (never real ones) can get one detection twice there: the first keeps it.
    first = np.sort(np.unique(det_idx, return_index=True)[1])
    return ref_idx[first], det_idx[first]
