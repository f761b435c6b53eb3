"""Bad input at scale: generated WFDB records and signals through the record reader and the beat builder.

Every generated record (any sampling rate and length, NaN runs, flat lines, one-lead records without
MLII, annotation symbols outside the AAMI table, annotations past the signal's end, broken files)
either gives beats that keep the builder's invariants or fails with the project's one-line error
naming the record; never another exception.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import wfdb
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from wfdb.io.annotation import ann_label_table

from ecg_mlflow.data.aami import QRS_SYMBOLS
from ecg_mlflow.data.beats import BEAT_LENGTH
from ecg_mlflow.data.context import CONTEXT_COLUMNS
from ecg_mlflow.data.databases import get_database
from ecg_mlflow.data.errors import DataError
from ecg_mlflow.data.inputs import INPUT_KINDS
from ecg_mlflow.data.physionet import beats_from_signal, build_record_beats, record_inputs, record_table
from ecg_mlflow.data.qrs import detect_r_peaks
from ecg_mlflow.data.records import RecordSignal, read_any_record
from ecg_mlflow.errors import UserError

# Writing and reading WFDB files costs a few ms per file: few examples, short records.
RECORD_SETTINGS = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
ARRAY_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MAX_SAMPLES = 8000
RECORD = "rec1"
# Lead names of PhysioNet records, non-ECG signals among them, and a name no table knows.
LEAD_NAMES = ("MLII", "V1", "V2", "V5", "II", "ECG1", "ECG2", "RESP", "ABP", "PLETH", "x")
STANDARD_SYMBOLS = tuple(str(s) for s in ann_label_table["symbol"] if str(s).strip())
CUSTOM_SYMBOL = "Z"  # a symbol outside the standard WFDB table, declared in the file's custom labels
CUSTOM_LABELS = [(42, CUSTOM_SYMBOL, "a custom label")]
DATABASES = ("wfdb", "mitdb", "svdb", "ptbdb")
PTB_REASONS = ("Healthy control", "Myocardial infarction", "Myocardial infarction", "Cardiomyopathy", "")
CORRUPTIONS = ("none",) * 6 + ("truncated_dat", "empty_atr", "garbage_atr")


@dataclass(frozen=True)
class RecordCase:
    """One generated record: what is written, and which database declaration reads it."""

    database: str
    fs: float
    leads: tuple[str, ...]
    signal: np.ndarray  # (n, len(leads)) physical units, NaN where samples are missing
    fmt: str
    annotations: tuple[tuple[int, str], ...] | None  # (sample, symbol), sorted; None: no .atr file
    comments: tuple[str, ...]
    corruption: str  # none | truncated_dat | empty_atr | garbage_atr


rates = st.one_of(
    st.sampled_from([128, 250, 257, 360, 500, 1000]),
    st.sampled_from([0.5, 1, 2.5, 49, 50, 57, 58, 128.5]),  # edges: below 1 Hz, fractional, the detectors' minima
    st.integers(1, 2000),
    st.floats(0.1, 2000.0).map(lambda f: round(f, 3)),
)


def ecg_peaks(n: int, fs: float) -> np.ndarray:
    """Where the ECG-like leads have their R spikes: every 0.8 s from 0.3 s."""
    return np.arange(0.3 * fs, n, 0.8 * fs).astype(np.int64)


def lead_column(kind: str, n: int, fs: float, seed: int) -> np.ndarray:
    """One lead: spiky ECG-like, noise, a flat line, zeros or all missing."""
    rng = np.random.default_rng(seed)
    if kind == "ecg":
        t = np.arange(n)
        column = 0.02 * rng.standard_normal(n)
        width = max(0.012 * fs, 0.5)
        for peak in ecg_peaks(n, fs):
            column += np.exp(-0.5 * ((t - peak) / width) ** 2)
        return column
    if kind == "noise":
        return rng.standard_normal(n)
    if kind == "flat":
        return np.full(n, 0.7)
    if kind == "zero":
        return np.zeros(n)
    return np.full(n, np.nan)


@st.composite
def record_cases(draw: st.DrawFn) -> RecordCase:
    """A record that wfdb can write, conforming to its database's declaration or not."""
    database = draw(st.sampled_from(DATABASES))
    declared = get_database(database)
    conforming = draw(st.integers(0, 3)) < 3
    fs = declared.fs if conforming and declared.fs else draw(rates)
    if conforming and declared.n_signals:
        leads = (*(f"L{i}" for i in range(declared.n_signals - 1)), declared.leads[0])
    else:
        leads = tuple(draw(st.lists(st.sampled_from(LEAD_NAMES), min_size=1, max_size=3, unique=True)))
    seconds = draw(st.floats(0.0, 20.0))
    n = int(np.clip(round(seconds * fs), 1, MAX_SAMPLES))
    seed = draw(st.integers(0, 2**16))
    kind = draw(st.sampled_from(["ecg", "ecg", "noise", "flat", "zero", "nan"]))  # of the last lead
    columns = [lead_column(kind if i == len(leads) - 1 else "ecg", n, fs, seed + i) for i in range(len(leads))]
    signal = np.clip(np.column_stack(columns), -5.0, 5.0)
    for start, length in draw(st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(1, n)), max_size=3)):
        first = int(start * (n - 1))
        signal[first : first + length, draw(st.integers(0, len(leads) - 1))] = np.nan
    annotations = None if draw(st.integers(0, 3)) == 3 else draw(annotation_lists(n, fs))
    return RecordCase(
        database=database,
        fs=fs,
        leads=leads,
        signal=signal,
        fmt=draw(st.sampled_from(["16", "212"])),
        annotations=annotations,
        comments=(f"Reason for admission: {draw(st.sampled_from(PTB_REASONS))}",),
        corruption=draw(st.sampled_from(CORRUPTIONS)),
    )


def annotation_lists(n: int, fs: float) -> st.SearchStrategy[tuple[tuple[int, str], ...]]:
    """Sorted (sample, symbol) pairs, any standard or custom symbol: at the R spikes with a few extra marks,
    or anywhere, some past the signal's end."""
    symbols = st.sampled_from((*STANDARD_SYMBOLS, CUSTOM_SYMBOL, "N", "N", "V", "A"))
    samples = st.integers(0, n + int(3 * fs) + 10)
    peaks = ecg_peaks(n, fs).tolist()
    extra = st.lists(st.tuples(samples, symbols), min_size=0 if peaks else 1, max_size=8)
    at_peaks = st.tuples(st.lists(symbols, min_size=len(peaks), max_size=len(peaks)), extra).map(
        lambda drawn: [*zip(peaks, drawn[0], strict=True), *drawn[1]]
    )
    anywhere = st.lists(st.tuples(samples, symbols), min_size=1, max_size=40)
    return st.one_of(at_peaks, anywhere).map(lambda pairs: tuple(sorted(pairs)))


def write_case(case: RecordCase, directory: Path, record: str = RECORD) -> None:
    """The record's .hea/.dat (and .atr) files, damaged as the case says."""
    wfdb.wrsamp(
        record,
        fs=case.fs,
        units=["mV"] * len(case.leads),
        sig_name=list(case.leads),
        p_signal=case.signal,
        fmt=[case.fmt] * len(case.leads),
        adc_gain=[200.0] * len(case.leads),
        baseline=[0] * len(case.leads),
        comments=list(case.comments),
        write_dir=str(directory),
    )
    if case.annotations is not None:
        samples = np.array([s for s, _ in case.annotations], dtype=np.int64)
        symbols = [s for _, s in case.annotations]
        custom = CUSTOM_LABELS if CUSTOM_SYMBOL in symbols else None
        wfdb.wrann(record, "atr", samples, symbol=symbols, custom_labels=custom, write_dir=str(directory))
    dat, atr = directory / f"{record}.dat", directory / f"{record}.atr"
    if case.corruption == "truncated_dat":
        dat.write_bytes(dat.read_bytes()[: len(dat.read_bytes()) // 3])
    elif case.corruption == "empty_atr":
        atr.write_bytes(b"")
    elif case.corruption == "garbage_atr":
        atr.write_bytes(bytes(range(7, 250, 3)))


def gist(message: str) -> str:
    """What an error says, without the record's name and paths (for hypothesis's statistics)."""
    return re.sub(r"record \S+|/\S+", "", message).strip(" :(")[:40]


def assert_one_line_error(error: BaseException, record: str = RECORD) -> None:
    """The project's error: a UserError whose message is one non-empty line naming the record."""
    assert isinstance(error, UserError), f"{type(error).__name__} instead of a UserError: {error}"
    message = str(error)
    event(f"refused: {gist(message)}")
    assert message.strip() and "\n" not in message, repr(message)
    assert record in message, message


def expected_beats(case: RecordCase, n: int) -> tuple[list[int], list[int]]:
    """(positions, labels) the reader must keep: the first QRS annotation per sample inside the signal,
    when its symbol is in the database's class table."""
    database = get_database(case.database)
    index = {name: i for i, name in enumerate(database.class_names)}
    positions: list[int] = []
    labels: list[int] = []
    seen: set[int] = set()
    for sample, symbol in case.annotations or ():
        if symbol not in QRS_SYMBOLS or not 0 <= sample < n or sample in seen:
            continue
        seen.add(sample)
        label = index.get(database.symbol_classes.get(symbol, ""), -1)
        if label >= 0:
            positions.append(sample)
            labels.append(label)
    return positions, labels


def assert_valid_inputs(x: np.ndarray, n_beats: int, kind: str) -> None:
    assert x.shape == (n_beats, BEAT_LENGTH) and x.dtype == np.float32
    assert np.isfinite(x).all()
    if kind == "kachuee" and n_beats:
        assert x.min() >= 0.0 and x.max() <= 1.0  # min-max normalised windows, zero padding


def assert_valid_read(read: RecordSignal, case: RecordCase) -> None:
    """A user's record: a lead it has, R peaks strictly increasing inside the signal, AAMI labels or -1."""
    n = len(read.signal)
    assert read.lead in case.leads and read.fs == int(case.fs)
    assert read.qrs.dtype == np.int64 and len(read.labels) == len(read.qrs)
    assert np.all(np.diff(read.qrs) > 0) and np.all((read.qrs >= 0) & (read.qrs < n))
    assert np.all((read.labels >= -1) & (read.labels < len(get_database("wfdb").class_names)))
    assert np.isfinite(read.leads()).all()


def one_lead_case(fs: float, annotated: bool = True) -> RecordCase:
    """A 20 s one-lead V1 record (no MLII) with its R spikes annotated N, or no annotation file."""
    n = int(20 * fs)
    signal = np.round(lead_column("ecg", n, fs, seed=0) * 200)[:, None] / 200
    annotations = tuple((int(p), "N") for p in ecg_peaks(n, fs)) if annotated else None
    return RecordCase("wfdb", fs, ("V1",), signal, "16", annotations, (), "none")


@RECORD_SETTINGS
@given(case=record_cases(), input_kind=st.sampled_from(sorted(INPUT_KINDS)))
@example(case=one_lead_case(0.5), input_kind="kachuee")  # was scipy's ValueError (int(0.5 Hz) = 0)
def test_generated_records_build_valid_beats_or_fail_with_one_line(case: RecordCase, input_kind: str) -> None:
    """build_record_beats on any record: beats, labels, positions and context keep their invariants,
    or the error is one line naming the record."""
    with tempfile.TemporaryDirectory() as folder:
        directory = Path(folder)
        write_case(case, directory)
        database = get_database(case.database)
        try:
            built = build_record_beats(directory, RECORD, database, input_kind)
        except Exception as error:  # the property: which exceptions escape
            assert_one_line_error(error)
            return
    if built is None:  # only a record without a per-record label is dropped
        event("dropped: no record label")
        assert database.record_label is not None and database.record_label(list(case.comments)) is None
        return
    k = len(built.y)
    event(f"built: {'no' if k == 0 else 'some'} beats")
    assert_valid_inputs(built.x, k, input_kind)
    assert built.y.dtype == np.int64 and np.all((built.y >= 0) & (built.y < len(database.class_names)))
    assert built.positions.shape == (k,) and np.all(np.diff(built.positions) > 0)
    assert np.all((built.positions >= 0) & (built.positions < len(case.signal)))
    assert built.context.shape == (k, len(CONTEXT_COLUMNS)) and np.isfinite(built.context).all()
    assert built.leads[RECORD] in case.leads and built.rates == {RECORD: int(case.fs)}
    if database.beat_annotator and case.corruption == "none":
        positions, labels = expected_beats(case, len(case.signal))
        assert built.positions.tolist() == positions and built.y.tolist() == labels


@RECORD_SETTINGS
@given(case=record_cases(), annotated=st.booleans())
@example(case=one_lead_case(20, annotated=False), annotated=False)  # the detector's message named no record
def test_any_user_record_reads_and_cuts_every_input_kind_or_fails_with_one_line(
    case: RecordCase, annotated: bool
) -> None:
    """read_any_record (reference annotations or the QRS detector) and every input kind's cut of its
    R peaks: valid arrays, or one line naming the record."""
    with tempfile.TemporaryDirectory() as folder:
        directory = Path(folder)
        write_case(case, directory)
        try:
            read = read_any_record(directory / RECORD, annotator="atr" if annotated else None)
            cuts = {kind: record_inputs(read, read.qrs, kind) for kind in INPUT_KINDS}
        except Exception as error:  # the property: which exceptions escape
            assert_one_line_error(error)
            return
    assert_valid_read(read, case)
    event(f"read: {'no' if len(read.qrs) == 0 else 'some'} R peaks")
    if annotated and case.annotations is not None and case.corruption == "none":
        qrs = sorted({s for s, sym in case.annotations if sym in QRS_SYMBOLS and 0 <= s < len(case.signal)})
        assert read.qrs.tolist() == qrs
    for kind, x in cuts.items():
        assert_valid_inputs(x, len(read.qrs), kind)


@settings(RECORD_SETTINGS, max_examples=15)
@given(
    cases=st.lists(record_cases(), min_size=1, max_size=3),
    listing=st.sampled_from([None, None, None, ["rec0", "nope"], ["", " ", "rec0"], ["../rec0"], []]),
)
def test_a_folder_of_generated_records_gives_one_beat_table_or_fails_in_one_line(
    cases: list[RecordCase], listing: list[str] | None
) -> None:
    """physionet.record_table over a folder of generated records read as `wfdb` (a RECORDS file listing
    any names, or none): one table whose columns agree row by row, or one line naming a record or the folder."""
    with tempfile.TemporaryDirectory() as folder:
        directory = Path(folder)
        names = [f"rec{i}" for i in range(len(cases))]
        for case, name in zip(cases, names, strict=True):
            write_case(case, directory, name)
        if listing is not None:
            (directory / "RECORDS").write_text("\n".join(listing) + "\n")
        try:
            table = record_table(get_database("wfdb"), directory)
        except Exception as error:  # the property: which exceptions escape
            assert isinstance(error, UserError), f"{type(error).__name__} instead of a UserError: {error}"
            message = str(error)
            assert message.strip() and "\n" not in message, repr(message)
            assert folder in message or any(f"record {name}" in message for name in [*names, *(listing or [])])
            event(f"refused: {gist(message)}")
            return
    n = len(table.y)
    event(f"table: {'no' if n == 0 else 'some'} beats")
    assert n > 0  # an empty table is refused
    assert_valid_inputs(table.x, n, "kachuee")
    assert np.all((table.y >= 0) & (table.y < len(get_database("wfdb").class_names)))
    assert table.records.shape == table.positions.shape == (n,)
    assert table.context.shape == (n, len(CONTEXT_COLUMNS)) and np.isfinite(table.context).all()
    assert set(table.records.tolist()) <= set(table.leads) <= set(names)
    for name in set(table.records.tolist()):
        positions = table.positions[table.records == name]
        assert np.all(np.diff(positions) > 0) and positions.max() < len(cases[names.index(name)].signal)


@ARRAY_SETTINGS
@given(
    values=st.lists(st.floats(-1e4, 1e4), min_size=1, max_size=3000),
    fs=st.integers(1, 5000),
    peak_fractions=st.lists(st.floats(0.0, 1.0), max_size=30),
    second_lead=st.booleans(),
)
def test_every_cut_of_any_signal_is_finite_and_187_wide(
    values: list[float], fs: int, peak_fractions: list[float], second_lead: bool
) -> None:
    """beats_from_signal and every input kind's cutter, on any finite signal at any integer rate with
    R peaks anywhere inside it: (n_peaks, 187) float32, finite; Kachuee beats in [0, 1]."""
    signal = np.asarray(values, dtype=np.float64)
    n = len(signal)
    peaks = np.unique(np.asarray([int(f * (n - 1)) for f in peak_fractions], dtype=np.int64))
    beats = beats_from_signal(signal, fs, peaks)
    assert_valid_inputs(beats, len(peaks), "kachuee")
    leads = np.column_stack([signal, signal[::-1]]) if second_lead else signal[:, None]
    for kind in INPUT_KINDS.values():
        if kind.cut is not None:
            assert_valid_inputs(kind.cut(leads, fs, peaks), len(peaks), kind.name)


@ARRAY_SETTINGS
@given(
    kind=st.sampled_from(["ecg", "ecg", "noise", "flat", "zero", "nan"]),
    fs=rates,
    seconds=st.floats(0.0, 30.0),
    gaps=st.lists(st.tuples(st.floats(0.0, 1.0), st.floats(0.0, 1.0)), max_size=3),
    scale=st.sampled_from([1.0, 1e-3, 1e3]),
    method=st.sampled_from(["gqrs", "xqrs"]),
)
@example(kind="ecg", fs=128, seconds=14.0, gaps=[(0.25, 0.7)], scale=1.0, method="gqrs")  # was an OverflowError
@example(kind="ecg", fs=50, seconds=10.0, gaps=[], scale=1.0, method="gqrs")  # was gqrs's bare Exception
def test_the_qrs_detector_finds_peaks_in_any_lead_or_fails_in_one_line(
    kind: str, fs: float, seconds: float, gaps: list[tuple[float, float]], scale: float, method: str
) -> None:
    """detect_r_peaks on any lead (NaN gaps over most of it, flat, any units, any rate): sorted unique
    int64 sample indices inside the signal, or one line (a rate too low for the detector)."""
    n = int(np.clip(round(seconds * fs), 1, MAX_SAMPLES))
    signal = np.round(lead_column(kind, n, fs, seed=0) * 200) / 200 * scale  # quantised like a 16-bit record
    for start, share in gaps:
        signal[int(start * n) : int(start * n) + int(share * n)] = np.nan
    try:
        peaks = detect_r_peaks(signal, fs, method)
    except Exception as error:  # the property: which exceptions escape
        assert isinstance(error, DataError), f"{type(error).__name__} instead of a DataError: {error}"
        assert "\n" not in str(error) and "too low" in str(error), str(error)
        return
    assert peaks.dtype == np.int64 and np.all(np.diff(peaks) > 0) and np.all((peaks >= 0) & (peaks < n))
