"""Kachuee et al. 2018 beat extraction from MIT-BIH WFDB records.

Procedure (the one behind the Kaggle heartbeat set): one lead, resampled 360 -> 125 Hz,
cut into 10 s windows each min-max normalised to [0, 1]; a beat starts at an annotated R peak
and lasts 1.2 x the window's median R-R interval, zero-padded or cropped to 187 samples.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import wfdb
from scipy.signal import resample_poly

from ecg_mlflow.config import BEAT_LENGTH, SAMPLING_RATE
from ecg_mlflow.data.aami import aami_labels
from ecg_mlflow.data.errors import DataError

MIT_FS = 360
WINDOW_SECONDS = 10.0
RR_FACTOR = 1.2
PREFERRED_LEAD = "MLII"
DOWNLOAD_HINT = "ecg-mlflow data download {db} --data-dir DIR"


@dataclass(frozen=True)
class RecordBeats:
    """The beats of one record, with where each came from."""

    record: str
    lead: str
    beats: np.ndarray  # float32 (n, 187)
    labels: np.ndarray  # int64 (n,)
    positions: np.ndarray  # int64 (n,), sample index of the R peak at the record's original rate


def choose_lead(sig_names: Sequence[str], preferred: Sequence[str] = (PREFERRED_LEAD,)) -> int:
    """Index of the first preferred lead present, else lead 0.

    MIT-BIH: MLII is lead 0 in 45 records and lead 1 in record 114; records 102 and 104 have no
    MLII (their surgical dressings forced V5 + V2), so their lead 0 (V5) stands in, as in the
    Kaggle set, whose Q class needs those two paced records.
    """
    lowered = [name.strip().lower() for name in sig_names]
    for name in preferred:
        if name.lower() in lowered:
            return lowered.index(name.lower())
    return 0


def resample_signal(signal: np.ndarray, fs_in: int, fs_out: int = SAMPLING_RATE) -> np.ndarray:
    """Polyphase (anti-aliased, zero-phase) resampling, so R peaks stay where they were."""
    if fs_in == fs_out:
        return np.asarray(signal, dtype=np.float64)
    g = math.gcd(int(fs_in), int(fs_out))
    return resample_poly(np.asarray(signal, dtype=np.float64), fs_out // g, fs_in // g)


def resample_positions(positions: np.ndarray, fs_in: int, fs_out: int = SAMPLING_RATE) -> np.ndarray:
    """Sample indices at fs_in -> the nearest index at fs_out."""
    return np.rint(np.asarray(positions, dtype=np.float64) * fs_out / fs_in).astype(np.int64)


def normalise_windows(signal: np.ndarray, window: int) -> np.ndarray:
    """Min-max normalise each consecutive `window`-sample block (the last may be shorter) to [0, 1]."""
    n = len(signal)
    n_full = n // window
    out = np.empty(n, dtype=np.float64)
    if n_full:
        blocks = signal[: n_full * window].reshape(n_full, window)
        out[: n_full * window] = _minmax_rows(blocks).ravel()
    if n > n_full * window:
        out[n_full * window :] = _minmax_rows(signal[n_full * window :][None, :]).ravel()
    return out


def _minmax_rows(blocks: np.ndarray) -> np.ndarray:
    low = blocks.min(axis=1, keepdims=True)
    span = blocks.max(axis=1, keepdims=True) - low
    return np.where(span > 0, (blocks - low) / np.where(span > 0, span, 1.0), 0.0)


def window_median_rr(peaks: np.ndarray, window: int) -> np.ndarray:
    """Per peak: the median R-R interval (samples) of the peaks in its window.

    A window with fewer than two peaks falls back to the record's median R-R, and a record
    with fewer than two peaks to the full beat length, so no annotated beat is dropped.
    """
    peaks = np.asarray(peaks, dtype=np.int64)
    fallback = float(np.median(np.diff(peaks))) if len(peaks) > 1 else BEAT_LENGTH / RR_FACTOR
    win = peaks // window
    rr = np.full(len(peaks), fallback)
    diffs = np.diff(peaks)
    same = win[1:] == win[:-1]
    for w in np.unique(win):
        in_window = same & (win[1:] == w)
        if in_window.any():
            rr[win == w] = np.median(diffs[in_window])
    return rr


def cut_beats(
    normalised: np.ndarray,
    peaks: np.ndarray,
    window: int,
    length: int = BEAT_LENGTH,
    rr_factor: float = RR_FACTOR,
) -> np.ndarray:
    """From each peak, rr_factor x window median R-R samples (not past the window's end), zero-padded to `length`."""
    peaks = np.asarray(peaks, dtype=np.int64)
    if len(peaks) == 0:
        return np.zeros((0, length), dtype=np.float32)
    rr = window_median_rr(peaks, window)
    window_end = np.minimum((peaks // window + 1) * window, len(normalised))
    keep = np.minimum(np.rint(rr_factor * rr).astype(np.int64), window_end - peaks)
    keep = np.clip(keep, 0, length)
    offsets = np.arange(length)
    index = np.clip(peaks[:, None] + offsets[None, :], 0, len(normalised) - 1)
    beats = np.where(offsets[None, :] < keep[:, None], normalised[index], 0.0)
    return beats.astype(np.float32)


def beats_from_signal(signal: np.ndarray, fs: int, peaks: np.ndarray) -> np.ndarray:
    """The whole Kachuee procedure for one lead whose R peaks (at fs) are known."""
    resampled = resample_signal(signal, fs)
    window = round(WINDOW_SECONDS * SAMPLING_RATE)
    normalised = normalise_windows(resampled, window)
    peaks_125 = np.clip(resample_positions(peaks, fs), 0, len(resampled) - 1)
    return cut_beats(normalised, peaks_125, window)


def list_records(db_dir: Path, db: str = "mitdb") -> list[str]:
    """Record names from the RECORDS file (as PhysioNet ships it), else every *.hea; DataError if none."""
    db_dir = Path(db_dir)
    listing = db_dir / "RECORDS"
    if listing.is_file():
        records = [line.strip() for line in listing.read_text().splitlines() if line.strip()]
    else:
        records = sorted(p.relative_to(db_dir).with_suffix("").as_posix() for p in db_dir.rglob("*.hea"))
    if not records:
        raise DataError(
            f"no {db} records found in {db_dir}: put the PhysioNet files there "
            f"(e.g. {db_dir}/100.hea) or run `{DOWNLOAD_HINT.format(db=db)}`"
        )
    return records


def read_mit_record(db_dir: Path, record: str) -> tuple[np.ndarray, str, np.ndarray, np.ndarray, int]:
    """One lead (MLII, see choose_lead) of a record plus its beat annotations: (signal, lead, samples, symbols, fs)."""
    path = Path(db_dir) / record
    for suffix in (".hea", ".dat", ".atr"):
        if not path.with_suffix(suffix).is_file():
            raise DataError(
                f"record {record}: {path.with_suffix(suffix)} is missing; "
                f"run `{DOWNLOAD_HINT.format(db='mitdb')}` or copy the PhysioNet mitdb files there"
            )
    header = wfdb.rdheader(str(path))
    lead = choose_lead(header.sig_name)
    rec = wfdb.rdrecord(str(path), channels=[lead], physical=True)
    ann = wfdb.rdann(str(path), "atr")
    return rec.p_signal[:, 0], header.sig_name[lead], np.asarray(ann.sample), np.asarray(ann.symbol), int(header.fs)


def build_record_beats(db_dir: Path, record: str) -> RecordBeats:
    """All AAMI-labelled beats of one MIT-BIH record; non-beat annotations are skipped."""
    signal, lead, samples, symbols, fs = read_mit_record(db_dir, record)
    labels = aami_labels(symbols)
    is_beat = labels >= 0
    peaks = samples[is_beat]
    beats = beats_from_signal(signal, fs, peaks)
    return RecordBeats(record, lead, beats, labels[is_beat], peaks.astype(np.int64))


def build_beats(
    db_dir: Path,
    records: Sequence[str] | None = None,
    workers: int = 1,
    on_record: Callable[[str], None] | None = None,
) -> list[RecordBeats]:
    """Beats of every record, in record order; workers > 1 spreads records over processes."""
    records = list(records) if records is not None else list_records(db_dir)
    if workers <= 1 or len(records) < 2:
        results = []
        for record in records:
            results.append(build_record_beats(db_dir, record))
            if on_record:
                on_record(record)
        return results
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(build_record_beats, db_dir, record) for record in records]
        results = []
        for record, future in zip(records, futures, strict=True):
            results.append(future.result())
            if on_record:
                on_record(record)
        return results
