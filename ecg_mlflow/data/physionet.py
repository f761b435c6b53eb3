"""Beats from PhysioNet records: the Kachuee et al. 2018 cut, and a database's whole beat table.

Procedure (the one behind the Kaggle heartbeat set): one lead, resampled to 125 Hz, cut into
10 s windows each min-max normalised to [0, 1]; a beat starts at an R peak and lasts 1.2 x the
window's median R-R interval, zero-padded or cropped to 187 samples. Records are read and
checked by data/records.py; this module turns them into a BeatTable (data/beats.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from dataclasses import fields
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from ecg_mlflow.data import cache, qrs, splits
from ecg_mlflow.data.beats import BEAT_LENGTH, SAMPLING_RATE, BeatTable, resample_positions, resample_signal
from ecg_mlflow.data.context import beat_context
from ecg_mlflow.data.databases import Database, get_database
from ecg_mlflow.data.errors import DataError
from ecg_mlflow.data.inputs import DEFAULT_INPUT, INPUT_KINDS
from ecg_mlflow.data.records import RecordSignal, database_dir, database_records, read_record_signal
from ecg_mlflow.progress import bar

WINDOW_SECONDS = 10.0
RR_FACTOR = 1.2
DEFAULT_DATABASE = "mitdb"  # the paper's records


def normalise_windows(signal: np.ndarray, window: int) -> np.ndarray:
    """Min-max normalise each consecutive `window`-sample block (the last may be shorter) to [0, 1].

    The last block is padded with its own last value, which changes neither its minimum nor its maximum."""
    n = len(signal)
    if n == 0:
        return np.zeros(0)
    blocks = np.pad(np.asarray(signal, dtype=np.float64), (0, -n % window), mode="edge").reshape(-1, window)
    low = blocks.min(axis=1, keepdims=True)
    span = blocks.max(axis=1, keepdims=True) - low
    return np.where(span > 0, (blocks - low) / np.where(span > 0, span, 1.0), 0.0).ravel()[:n]


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


def record_inputs(read: RecordSignal, peaks: np.ndarray, input_kind: str = DEFAULT_INPUT) -> np.ndarray:
    """What the network sees of the beats at `peaks`, as the input kind says (data/inputs.py)."""
    cut = INPUT_KINDS[input_kind].cut
    if cut is None:
        return beats_from_signal(np.nan_to_num(read.signal), read.fs, peaks)
    return cut(read.leads(), read.fs, np.asarray(peaks, dtype=np.int64))


def build_record_beats(
    db_dir: Path, record: str, database: Database | None = None, input_kind: str = DEFAULT_INPUT
) -> BeatTable | None:
    """The labelled beats of one record (as `input_kind` cuts them) with their rhythm context; None when the
    record has no label. The context's likeness to the patient's beats is always read off the Kachuee beats."""
    database = database or get_database(DEFAULT_DATABASE)
    read = read_record_signal(database, db_dir, record)
    if read is None:
        return None
    labelled = read.labels >= 0
    peaks = read.qrs[labelled].astype(np.int64)
    beats = beats_from_signal(np.nan_to_num(read.signal), read.fs, peaks)
    return BeatTable(
        x=beats if input_kind == DEFAULT_INPUT else record_inputs(read, peaks, input_kind),
        y=read.labels[labelled],
        records=np.full(len(peaks), record),
        positions=peaks,
        context=beat_context(read.qrs, read.fs, labelled, beats),
        leads={record: read.lead},
        rates={record: read.fs},
    )


def build_beats(
    db_dir: Path,
    records: Sequence[str] | None = None,
    workers: int = 1,
    on_record: Callable[[str], None] | None = None,
    database: Database | None = None,
    input_kind: str = DEFAULT_INPUT,
) -> list[BeatTable]:
    """Beats of every labelled record, in record order; workers > 1 spreads records over processes."""
    database = database or get_database(DEFAULT_DATABASE)
    records = list(records) if records is not None else database_records(database, db_dir)
    build = partial(build_record_beats, db_dir, database=database, input_kind=input_kind)
    parallel = workers > 1 and len(records) > 1
    with ProcessPoolExecutor(max_workers=workers) if parallel else nullcontext() as pool:
        results = []
        for record, result in zip(records, (pool.map if pool else map)(build, records), strict=True):
            results.append(result)
            if on_record:
                on_record(record)
    return [r for r in results if r is not None]


def record_table(
    database: Database,
    data_dir: Path,
    progress: bool = False,
    workers: int = 1,
    records: list[str] | None = None,
    input_kind: str = DEFAULT_INPUT,
) -> BeatTable:
    """Every labelled beat of a database folder (or of `records` of it), concatenated over records."""
    db_dir = database_dir(database, data_dir)
    records = records if records is not None else database_records(database, db_dir)
    what = f"building {database.name} beats"
    with bar(what, len(records), enabled=progress) as update:
        parts = build_beats(
            db_dir,
            records,
            workers=workers,
            on_record=lambda record: update(advance=1, description=f"{what} {record}"),
            database=database,
            input_kind=input_kind,
        )
    if sum(len(p.y) for p in parts) == 0:
        raise DataError(f"no labelled beats found in {db_dir} (for ptbdb: no healthy-control or MI records)")
    return BeatTable.concat(parts)


def extraction_fingerprint(database: Database) -> str:
    """What decides the beats besides the input files: the database's declaration, the QRS detector and
    the rules that choose validation records. Part of every cache key, so changing any of them rebuilds."""
    described = ("title", "citation", "paper_accuracy", "kaggle")  # not how beats are cut from its records
    declaration = {f.name: _stable(getattr(database, f.name)) for f in fields(database) if f.name not in described}
    detector = [
        qrs.DEFAULT_DETECTOR,
        qrs.GQRS_AMPLITUDE,
        qrs.SNAP_RADIUS_S,
        qrs.SNAP_SMOOTH_S,
        qrs.FLAT_WINDOW_FRACTION,
    ]
    validation = [splits.MIN_VAL_RECORDS, splits.VAL_RECORD_DRAWS, splits.REQUIRED_SHARE]
    return cache.stable_hash({"database": declaration, "qrs": detector, "validation": validation})


def _stable(value: Any) -> Any:
    """A value as the same text in every process: a function by its qualified name, not its address."""
    return f"{value.__module__}.{value.__qualname__}" if callable(value) else value
