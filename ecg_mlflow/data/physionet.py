"""Kachuee et al. 2018 beat extraction from MIT-BIH WFDB records.

Procedure (the one behind the Kaggle heartbeat set): one lead, resampled 360 -> 125 Hz,
cut into 10 s windows each min-max normalised to [0, 1]; a beat starts at an annotated R peak
and lasts 1.2 x the window's median R-R interval, zero-padded or cropped to 187 samples.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

import numpy as np
import wfdb
from scipy.signal import resample_poly

from ecg_mlflow.config import BEAT_LENGTH, SAMPLING_RATE
from ecg_mlflow.data.aami import QRS_SYMBOLS
from ecg_mlflow.data.context import beat_context
from ecg_mlflow.data.databases import NON_ECG_LEADS, Database, get_database
from ecg_mlflow.data.errors import DataError
from ecg_mlflow.data.inputs import DEFAULT_INPUT, INPUT_KINDS

T = TypeVar("T")

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
    context: np.ndarray  # float32 (n, len(CONTEXT_COLUMNS)): context.beat_context
    fs: int  # the record's own sampling rate


def choose_lead(sig_names: Sequence[str], preferred: Sequence[str] = (PREFERRED_LEAD,)) -> int:
    """The beat lead: the database's preferred leads in order, then MLII, then the first ECG lead.

    MIT-BIH: MLII is lead 0 in 45 records and lead 1 in record 114; records 102 and 104 have no
    MLII (their surgical dressings forced V5 + V2), so their first ECG lead (V5) stands in, as in
    the Kaggle set, whose Q class needs those two paced records. INCART prefers II, SVDB ECG1;
    a non-ECG signal (RESP, ABP, ...) is never chosen while an ECG lead exists.
    """
    lowered = [name.strip().lower() for name in sig_names]
    for name in (*preferred, PREFERRED_LEAD):
        if name.lower() in lowered:
            return lowered.index(name.lower())
    for index, name in enumerate(lowered):
        if name not in NON_ECG_LEADS:
            return index
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


def list_records(db_dir: Path, db: str = "mitdb", nested: bool = True) -> list[str]:
    """Record names from the RECORDS file (as PhysioNet ships it), else every *.hea; DataError if none.

    nested=False looks in db_dir itself only, so a folder of records that holds other databases'
    folders (DATA_DIR with `--database wfdb`) does not pool them.
    """
    db_dir = Path(db_dir)
    listing = db_dir / "RECORDS"
    if listing.is_file():
        records = [line.strip() for line in listing.read_text().splitlines() if line.strip()]
    else:
        headers = db_dir.rglob("*.hea") if nested else db_dir.glob("*.hea")
        records = sorted(p.relative_to(db_dir).with_suffix("").as_posix() for p in headers)
    if not records:
        raise DataError(
            f"no {db} records found in {db_dir}: put the PhysioNet files there "
            f"(e.g. {db_dir}/100.hea) or run `{DOWNLOAD_HINT.format(db=db)}`"
        )
    return records


def database_records(database: Database, db_dir: Path) -> list[str]:
    """The records of `database` under db_dir that can be read (nstdb's unannotated noise records are skipped)."""
    records = list_records(db_dir, database.name, nested=database.nested_records)
    if database.skip_unannotated and database.beat_annotator:
        records = [r for r in records if (Path(db_dir) / f"{r}.{database.beat_annotator}").is_file()]
        if not records:
            raise DataError(
                f"no record in {db_dir} has beat annotations (.{database.beat_annotator} files); "
                "evaluation needs reference beat labels"
            )
    return records


@dataclass(frozen=True)
class RecordSignal:
    """One lead of a record with its R peaks and what the annotations or header say about each."""

    record: str
    lead: str
    fs: int
    signal: np.ndarray  # physical units, the chosen lead
    qrs: np.ndarray  # int64 sample indices of every QRS (labelled or not), increasing
    labels: np.ndarray  # int64 class index per QRS, -1 = not a labelled beat
    second: np.ndarray | None = None  # the record's second ECG lead (physical units), None when it has one

    def leads(self) -> np.ndarray:
        """(n_samples, 1 or 2): the beat lead, then the second ECG lead if the record has one."""
        parts = [self.signal] if self.second is None else [self.signal, self.second]
        return np.nan_to_num(np.column_stack(parts))


def read_record_signal(database: Database, db_dir: Path, record: str) -> RecordSignal | None:
    """Read a record, check it against the database's declaration, find its R peaks and labels.

    None when the record has no label for this task (a PTB diagnosis outside healthy/MI).
    Every problem is a DataError naming the record, the file and what is wrong.
    """
    path = Path(db_dir) / record
    for suffix in database.record_suffixes:
        if not path.with_suffix(suffix).is_file():
            raise DataError(
                f"record {record}: {path.with_suffix(suffix)} is missing; "
                f"run `{DOWNLOAD_HINT.format(db=database.name)}` or copy the PhysioNet {database.name} files there"
            )
    header = _read(record, path.with_suffix(".hea"), lambda: wfdb.rdheader(str(path)))
    check_header(database, record, header)
    record_label = None
    if database.record_label is not None:
        record_label = database.record_label(header.comments or [])
        if record_label is None:
            return None
    lead = choose_lead(header.sig_name, database.leads)
    channels = [lead, *second_lead(header.sig_name, lead)]
    rec = _read(record, path.with_suffix(".dat"), lambda: wfdb.rdrecord(str(path), channels=channels, physical=True))
    signal = np.asarray(rec.p_signal[:, 0], dtype=np.float64)
    second = np.asarray(rec.p_signal[:, 1], dtype=np.float64) if len(channels) > 1 else None
    if database.beat_annotator:
        ann_file = path.with_suffix(f".{database.beat_annotator}")
        ann = _read(record, ann_file, lambda: wfdb.rdann(str(path), database.beat_annotator))
        samples, symbols = np.asarray(ann.sample, dtype=np.int64), np.asarray(ann.symbol)
        is_qrs = np.isin(symbols, sorted(QRS_SYMBOLS)) & (samples >= 0) & (samples < len(signal))
        qrs, symbols = _increasing(samples[is_qrs], symbols[is_qrs])
        labels = np.asarray(database.class_index(symbols), dtype=np.int64)
    else:
        try:
            qrs = detect_peaks(signal, int(header.fs))
        except DataError as error:  # the detector's message does not know the record
            raise DataError(f"record {record} ({record}.hea): {error}") from None
        labels = np.full(len(qrs), record_label, dtype=np.int64)
    return RecordSignal(record, header.sig_name[lead], int(header.fs), signal, qrs, labels, second)


def second_lead(sig_names: Sequence[str], lead: int) -> list[int]:
    """[the first other ECG lead], or [] when the record has none (inputs of kind two_leads read it)."""
    others = [i for i, name in enumerate(sig_names) if i != lead and name.strip().lower() not in NON_ECG_LEADS]
    return others[:1]


def record_inputs(read: RecordSignal, peaks: np.ndarray, input_kind: str = DEFAULT_INPUT) -> np.ndarray:
    """What the network sees of the beats at `peaks`, as the input kind says (data/inputs.py)."""
    cut = INPUT_KINDS[input_kind].cut
    if cut is None:
        return beats_from_signal(np.nan_to_num(read.signal), read.fs, peaks)
    return cut(read.leads(), read.fs, np.asarray(peaks, dtype=np.int64))


def read_any_record(path: Path, annotator: str | None = "atr") -> RecordSignal:
    """Any WFDB record at any rate, as a user brings it: the MLII lead if it has one, else its first ECG lead.

    R peaks come from the `annotator` file when the record has one (labels: its reference AAMI
    classes, -1 for other beats), else from the QRS detector (labels -1).
    """
    path = Path(path)
    if path.suffix in {".hea", ".dat"}:
        path = path.with_suffix("")
    if not path.with_suffix(".hea").is_file():
        raise DataError(
            f"record {path.name}: {path.with_suffix('.hea')} is missing; "
            "give the path of a WFDB record without its extension"
        )
    declared = get_database("wfdb")
    if not has_annotations(path, annotator):
        declared = replace(declared, beat_annotator=None, record_label=unlabelled_record)
    elif annotator != declared.beat_annotator:
        declared = replace(declared, beat_annotator=annotator)
    read = read_record_signal(declared, path.parent, path.name)
    if read is None:  # only a per-record label can drop a record, and unlabelled_record never does
        raise DataError(f"record {path.name}: could not be read as a WFDB record")
    return read


def has_annotations(path: Path, annotator: str | None) -> bool:
    """Whether the record at `path` (no extension) has the beat annotation file `annotator`."""
    return bool(annotator) and Path(path).with_suffix(f".{annotator}").is_file()


def unlabelled_record(comments: Sequence[str]) -> int:
    """The per-record "label" of a record read without annotations: none (-1), yet the record is kept."""
    return -1


def check_header(database: Database, record: str, header: wfdb.Record) -> None:
    """The record's rate (a whole number of Hz) and number of signals must be what the database declares."""
    where = f"record {record} ({record}.hea)"
    if not header.fs or header.fs <= 0:
        raise DataError(f"{where}: no valid sampling rate in the header")
    if not float(header.fs).is_integer():
        raise DataError(
            f"{where}: sampling rate {header.fs:g} Hz is not a whole number of Hz; beats are resampled "
            "from whole-number rates: resample the record (e.g. with wfdb.processing.resample_sig)"
        )
    if database.fs is not None and abs(float(header.fs) - database.fs) > 1e-6:
        raise DataError(
            f"{where}: sampling rate {header.fs:g} Hz, but {database.name} records are {database.fs} Hz; "
            f"the file is not a {database.title} record or was edited: download it again"
        )
    if database.n_signals is not None and header.n_sig != database.n_signals:
        raise DataError(
            f"{where}: {header.n_sig} signals, but {database.name} records have {database.n_signals}; "
            "download the record again"
        )
    if not header.sig_name:
        raise DataError(f"{where}: the header names no signals")


def _read(record: str, file: Path, read: Callable[[], T]) -> T:
    """Run a wfdb reader; any failure becomes one line naming the record and the file."""
    try:
        return read()
    except DataError:
        raise
    except Exception as error:  # wfdb raises bare ValueError/IndexError/struct errors on broken files
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DataError(
            f"record {record}: cannot read {file} ({type(error).__name__}: {reason}); "
            "the file is truncated or malformed: download the record again"
        ) from None


def _increasing(samples: np.ndarray, symbols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Annotations sorted by time with exact duplicates dropped (R-R intervals need strictly increasing peaks)."""
    order = np.argsort(samples, kind="stable")
    samples, symbols = samples[order], symbols[order]
    keep = np.concatenate([[True], np.diff(samples) > 0]) if len(samples) else np.zeros(0, dtype=bool)
    return samples[keep], symbols[keep]


def detect_peaks(signal: np.ndarray, fs: int) -> np.ndarray:
    """R peaks (at fs) of a record without beat annotations."""
    from ecg_mlflow.data.qrs import detect_r_peaks

    return detect_r_peaks(signal, fs)


def build_record_beats(
    db_dir: Path, record: str, database: Database | None = None, input_kind: str = DEFAULT_INPUT
) -> RecordBeats | None:
    """The labelled beats of one record (as `input_kind` cuts them) with their rhythm context; None when the
    record has no label. The context's likeness to the patient's beats is always read off the Kachuee beats."""
    database = database or get_database("mitdb")
    read = read_record_signal(database, db_dir, record)
    if read is None:
        return None
    labelled = read.labels >= 0
    peaks = read.qrs[labelled]
    beats = beats_from_signal(np.nan_to_num(read.signal), read.fs, peaks)
    return RecordBeats(
        record=record,
        lead=read.lead,
        beats=beats if input_kind == DEFAULT_INPUT else record_inputs(read, peaks, input_kind),
        labels=read.labels[labelled],
        positions=peaks.astype(np.int64),
        context=beat_context(read.qrs, read.fs, labelled, beats),
        fs=read.fs,
    )


def build_beats(
    db_dir: Path,
    records: Sequence[str] | None = None,
    workers: int = 1,
    on_record: Callable[[str], None] | None = None,
    database: Database | None = None,
    input_kind: str = DEFAULT_INPUT,
) -> list[RecordBeats]:
    """Beats of every labelled record, in record order; workers > 1 spreads records over processes."""
    database = database or get_database("mitdb")
    records = list(records) if records is not None else database_records(database, db_dir)
    results: list[RecordBeats | None] = []
    if workers <= 1 or len(records) < 2:
        for record in records:
            results.append(build_record_beats(db_dir, record, database, input_kind))
            if on_record:
                on_record(record)
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(build_record_beats, db_dir, record, database, input_kind) for record in records]
            for record, future in zip(records, futures, strict=True):
                results.append(future.result())
                if on_record:
                    on_record(record)
    return [r for r in results if r is not None]
