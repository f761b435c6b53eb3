"""PTB Diagnostic ECG Database -> beats labelled healthy control 0 / myocardial infarction 1.

PTB has no beat annotations, so R peaks are detected: on lead ii (lead i when ii is absent)
resampled to 125 Hz, each 10 s window normalised to [0, 1], scipy.signal.find_peaks keeps local
maxima above PEAK_HEIGHT (Kachuee et al.'s own detector uses a 0.9 threshold on normalised local
maxima; 0.9 is kept as the default) at least MIN_RR_SECONDS apart. The beats are then cut exactly
as for MIT-BIH (physionet.cut_beats), so both datasets share one path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import wfdb
from scipy.signal import find_peaks

from ecg_mlflow.config import SAMPLING_RATE
from ecg_mlflow.data.errors import DataError
from ecg_mlflow.data.physionet import (
    DOWNLOAD_HINT,
    WINDOW_SECONDS,
    choose_lead,
    cut_beats,
    list_records,
    normalise_windows,
    resample_signal,
)

PTB_LEADS: tuple[str, ...] = ("ii", "i")
PEAK_HEIGHT = 0.9
MIN_RR_SECONDS = 0.3
DIAGNOSIS_LABELS: dict[str, int] = {"healthy control": 0, "myocardial infarction": 1}


@dataclass(frozen=True)
class PtbRecordBeats:
    record: str
    lead: str
    beats: np.ndarray
    labels: np.ndarray
    positions: np.ndarray  # R peak sample index at the record's original rate


def ptb_diagnosis(comments: Sequence[str]) -> int | None:
    """Label from the header's 'Reason for admission' comment: 0 healthy, 1 MI, None = other (dropped)."""
    for comment in comments:
        key, _, value = comment.partition(":")
        if key.strip().lower() == "reason for admission":
            return DIAGNOSIS_LABELS.get(value.strip().lower())
    return None


def detect_r_peaks(normalised: np.ndarray, fs: int = SAMPLING_RATE) -> np.ndarray:
    """R peaks in a window-normalised signal: local maxima >= PEAK_HEIGHT, >= MIN_RR_SECONDS apart."""
    peaks, _ = find_peaks(normalised, height=PEAK_HEIGHT, distance=max(1, int(MIN_RR_SECONDS * fs)))
    return peaks.astype(np.int64)


def build_ptb_record_beats(db_dir: Path, record: str) -> PtbRecordBeats | None:
    """Beats of one PTB record, or None when its diagnosis is neither healthy control nor MI."""
    path = Path(db_dir) / record
    if not path.with_suffix(".hea").is_file() or not path.with_suffix(".dat").is_file():
        raise DataError(
            f"PTB record {record}: {path}.hea/.dat missing; run `{DOWNLOAD_HINT.format(db='ptbdb')}` "
            "or copy the PhysioNet ptbdb files there (patientNNN/sNNNNxxxx_re.{dat,hea})"
        )
    header = wfdb.rdheader(str(path))
    label = ptb_diagnosis(header.comments or [])
    if label is None:
        return None
    lead = choose_lead(header.sig_name, PTB_LEADS)
    signal = wfdb.rdrecord(str(path), channels=[lead]).p_signal[:, 0]
    signal = np.nan_to_num(resample_signal(signal, int(header.fs)))
    window = round(WINDOW_SECONDS * SAMPLING_RATE)
    normalised = normalise_windows(signal, window)
    peaks = detect_r_peaks(normalised)
    beats = cut_beats(normalised, peaks, window)
    positions = np.rint(peaks * header.fs / SAMPLING_RATE).astype(np.int64)
    return PtbRecordBeats(record, header.sig_name[lead], beats, np.full(len(peaks), label, np.int64), positions)


def build_ptb_beats(
    db_dir: Path, records: Sequence[str] | None = None, on_record: Callable[[str], None] | None = None
) -> list[PtbRecordBeats]:
    """Beats of every healthy-control or MI record under db_dir (patientNNN/sNNNNxxxx_re)."""
    records = list(records) if records is not None else list_records(db_dir, "ptbdb")
    results = []
    for record in records:
        beats = build_ptb_record_beats(db_dir, record)
        if beats is not None:
            results.append(beats)
        if on_record:
            on_record(record)
    return results
