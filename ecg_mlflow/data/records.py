"""Reading a WFDB record and checking it against its database's declaration.

The first half of the records -> beats stage: which records a folder holds, one lead of each (the
database's preferred lead, else MLII, else the first ECG lead), its R peaks (reference annotations,
or the QRS detector when there are none) and what each peak is labelled. Every problem is one
DataError naming the record, the file and what to do.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

import numpy as np
import wfdb

from ecg_mlflow.data.aami import QRS_SYMBOLS
from ecg_mlflow.data.databases import NON_ECG_LEADS, Database, get_database
from ecg_mlflow.data.errors import DataError
from ecg_mlflow.data.qrs import detect_r_peaks

T = TypeVar("T")

PREFERRED_LEAD = "MLII"
DOWNLOAD_HINT = "ecg-mlflow data download {db} --data-dir DIR"


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
    record_paths(database, Path(db_dir), record)
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
            qrs = detect_r_peaks(signal, int(header.fs))
        except DataError as error:  # the detector's message does not know the record
            raise DataError(f"record {record} ({record}.hea): {error}") from None
        labels = np.full(len(qrs), record_label, dtype=np.int64)
    return RecordSignal(record, header.sig_name[lead], int(header.fs), signal, qrs, labels, second)


def second_lead(sig_names: Sequence[str], lead: int) -> list[int]:
    """[the first other ECG lead], or [] when the record has none (inputs of kind two_leads read it)."""
    others = [i for i, name in enumerate(sig_names) if i != lead and name.strip().lower() not in NON_ECG_LEADS]
    return others[:1]


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
        declared = without_labels(declared)
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


def without_labels(database: Database) -> Database:
    """The declaration, read without annotations: R peaks come from the QRS detector, every beat is kept."""
    return replace(database, beat_annotator=None, record_label=unlabelled_record, skip_unannotated=False)


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
    """Annotations sorted by time, of duplicates the first (R-R intervals need strictly increasing peaks)."""
    samples, first = np.unique(samples, return_index=True)
    return samples, symbols[first]


def database_dir(database: Database, data_dir: Path) -> Path:
    """DATA_DIR/<database folder>; DataError saying how to get the records when it is missing."""
    db_dir = data_dir / database.directory
    if not db_dir.is_dir():
        raise DataError(
            f"{db_dir} does not exist: put the PhysioNet {database.name} files there, set --data-dir / "
            f"$ECG_DATA_DIR, or run `ecg-mlflow data download {database.name} --data-dir {data_dir}`"
        )
    return db_dir


def record_paths(database: Database, db_dir: Path, record: str, data_dir: Path | str = "DIR") -> list[Path]:
    """The files one record needs; DataError naming the first missing one and how to get it."""
    paths = [db_dir / f"{record}{suffix}" for suffix in database.record_suffixes]
    for path in paths:
        if not path.is_file():
            download = DOWNLOAD_HINT.format(db=database.name).replace("DIR", str(data_dir))
            get = f"run `{download}` or copy the PhysioNet {database.name} files there"
            raise DataError(f"record {record}: {path} is missing; {get if database.downloadable else 'copy it there'}")
    return paths


def record_files(database: Database, data_dir: Path, records: list[str] | None = None) -> list[Path]:
    """Every file the beats of `database` (or of `records` of it) are built from; DataError naming one missing."""
    db_dir = database_dir(database, data_dir)
    names = records if records is not None else database_records(database, db_dir)
    return [path for record in names for path in record_paths(database, db_dir, record, data_dir)]
