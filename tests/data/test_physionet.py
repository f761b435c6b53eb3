"""Kachuee beat extraction on synthetic WFDB records."""

from __future__ import annotations

import numpy as np
import pytest

from ecg_mlflow.data.context import CONTEXT_COLUMNS
from ecg_mlflow.data.databases import get_database
from ecg_mlflow.data.errors import DataError
from ecg_mlflow.data.physionet import build_beats, build_record_beats, cut_beats, normalise_windows, window_median_rr
from ecg_mlflow.data.records import choose_lead, list_records


def aami_labels(symbols) -> np.ndarray:
    """Integer AAMI label per annotation symbol as the MIT-BIH declaration maps it; -1 for non-beats."""
    return np.asarray(get_database("mitdb").class_index(symbols), dtype=np.int64)


def test_aami_map_covers_the_kaggle_classes_and_skips_non_beats() -> None:
    labels = aami_labels(["N", "L", "R", "e", "j", "A", "a", "J", "S", "V", "E", "F", "/", "f", "Q", "+", "~", "|"])
    assert labels.tolist() == [0] * 5 + [1] * 4 + [2] * 2 + [3] + [4] * 3 + [-1] * 3


def test_choose_lead_prefers_mlii_and_falls_back_to_lead_0() -> None:
    assert choose_lead(["MLII", "V5"]) == 0
    assert choose_lead(["V5", "MLII"]) == 1  # record 114
    assert choose_lead(["V5", "V2"]) == 0  # records 102, 104


def test_normalise_windows_maps_every_window_to_0_1() -> None:
    x = np.concatenate([np.linspace(-3, 5, 10), np.linspace(10, 20, 10), [7.0, 9.0, 8.0]])
    out = normalise_windows(x, 10)
    for block in (out[:10], out[10:20], out[20:]):
        assert block.min() == 0.0 and block.max() == 1.0


def test_window_median_rr_is_per_window_with_record_fallback() -> None:
    peaks = np.array([0, 10, 20, 40, 100, 130, 220])
    rr = window_median_rr(peaks, window=100)
    assert rr[:4].tolist() == [10.0] * 4  # window 0: diffs 10, 10, 20
    assert rr[4:6].tolist() == [30.0] * 2  # window 1: diff 30
    assert rr[6] == np.median(np.diff(peaks))  # window 2 has a single peak


def test_cut_beats_takes_1_2_rr_from_the_peak_and_zero_pads() -> None:
    signal = np.linspace(0, 1, 1250)
    peaks = np.array([100, 200, 300])
    beats = cut_beats(signal, peaks, window=1250)
    assert beats.shape == (3, 187) and beats.dtype == np.float32
    assert np.allclose(beats[0, :120], signal[100:220])  # 1.2 x 100 samples
    assert (beats[:, 120:] == 0).all()


def test_cut_beats_stops_at_the_window_end() -> None:
    signal = np.ones(2500)
    beats = cut_beats(signal, np.array([1000, 1200]), window=1250)
    assert beats[1, :50].min() == 1.0 and (beats[1, 50:] == 0).all()


def test_record_beats_keep_every_annotated_beat_with_labels_and_positions(synthetic_mitdb) -> None:
    import wfdb

    mitdb = synthetic_mitdb / "mitdb"
    beats = build_record_beats(mitdb, "100")
    ann = wfdb.rdann(str(mitdb / "100"), "atr")
    expected = aami_labels(ann.symbol)
    assert len(beats.y) == (expected >= 0).sum()  # the '+' mark is not a beat
    assert beats.y.tolist() == expected[expected >= 0].tolist()
    assert beats.positions.tolist() == np.asarray(ann.sample)[expected >= 0].tolist()
    assert beats.x.shape == (len(beats.y), 187)
    assert beats.x.min() >= 0.0 and beats.x.max() <= 1.0
    assert np.median(beats.x[:, 0]) > 0.8  # starts at the R peak, near the window's maximum
    assert (beats.x[:, -20:] == 0).all()  # ~0.8 s x 1.2 < 1.5 s: trailing zeros


def test_leads_for_records_without_mlii_or_with_mlii_as_lead_1(synthetic_mitdb) -> None:
    mitdb = synthetic_mitdb / "mitdb"
    assert build_record_beats(mitdb, "114").leads == {"114": "MLII"}
    assert build_record_beats(mitdb, "102").leads == {"102": "V5"}


def test_build_beats_parallel_equals_serial(synthetic_mitdb) -> None:
    mitdb = synthetic_mitdb / "mitdb"
    serial = build_beats(mitdb, ["100", "101"], workers=1)
    parallel = build_beats(mitdb, ["100", "101"], workers=2)
    for a, b in zip(serial, parallel, strict=True):
        assert a.leads == b.leads and np.array_equal(a.x, b.x)


def test_missing_records_give_a_data_error_naming_the_download_command(tmp_path) -> None:
    with pytest.raises(DataError, match="ecg-mlflow data download mitdb"):
        list_records(tmp_path)
    (tmp_path / "RECORDS").write_text("100\n")
    with pytest.raises(DataError, match="100"):
        build_record_beats(tmp_path, "100")


def test_record_beats_carry_rr_context_aligned_one_to_one(synthetic_mitdb) -> None:
    import wfdb

    mitdb = synthetic_mitdb / "mitdb"
    beats = build_record_beats(mitdb, "101")
    ann = wfdb.rdann(str(mitdb / "101"), "atr")
    beat_samples = np.asarray(ann.sample)[aami_labels(ann.symbol) >= 0]
    assert beats.context.shape == (len(beats.y), len(CONTEXT_COLUMNS)) and beats.context.dtype == np.float32
    # pre_rr of beat k is the time since beat k-1, in seconds at the record's own rate (360 Hz)
    expected_pre = np.diff(beat_samples) / 360.0
    np.testing.assert_allclose(beats.context[1:, 0], expected_pre, rtol=1e-5)
    assert beats.rates == {"101": 360}


def _rewrite_header(record_dir, record: str, old: str, new: str) -> None:
    header = record_dir / f"{record}.hea"
    lines = header.read_text().splitlines()
    lines[0] = lines[0].replace(old, new)
    header.write_text("\n".join(lines) + "\n")


def _copy_record(src, dst, record: str) -> None:
    import shutil

    dst.mkdir(exist_ok=True)
    for suffix in (".hea", ".dat", ".atr"):
        shutil.copyfile(src / f"{record}{suffix}", dst / f"{record}{suffix}")


def test_a_wrong_sampling_rate_in_the_header_is_refused_naming_the_record(synthetic_mitdb, tmp_path) -> None:
    _copy_record(synthetic_mitdb / "mitdb", tmp_path, "100")
    _rewrite_header(tmp_path, "100", " 360 ", " 250 ")
    with pytest.raises(DataError, match=r"record 100 .*250 Hz, but mitdb records are 360 Hz"):
        build_record_beats(tmp_path, "100")


def test_a_truncated_dat_file_is_one_line_naming_record_and_file(synthetic_mitdb, tmp_path) -> None:
    _copy_record(synthetic_mitdb / "mitdb", tmp_path, "100")
    dat = tmp_path / "100.dat"
    dat.write_bytes(dat.read_bytes()[:1001])
    with pytest.raises(DataError) as caught:
        build_record_beats(tmp_path, "100")
    message = str(caught.value)
    assert "record 100" in message and "100.dat" in message and "\n" not in message


def test_a_garbage_header_is_one_line_naming_record_and_file(synthetic_mitdb, tmp_path) -> None:
    _copy_record(synthetic_mitdb / "mitdb", tmp_path, "100")
    (tmp_path / "100.hea").write_text("this is not a header\n\x00\x01\n")
    with pytest.raises(DataError) as caught:
        build_record_beats(tmp_path, "100")
    assert "record 100" in str(caught.value) and "100.hea" in str(caught.value)


def test_lead_rule_prefers_the_database_lead_then_mlii_then_the_first_ecg_lead() -> None:
    assert choose_lead(["I", "II", "III"], ("II",)) == 1  # INCART
    assert choose_lead(["ECG1", "ECG2"], ("ECG1",)) == 0  # SVDB
    assert choose_lead(["RESP", "V1", "MLII"], ()) == 2
    assert choose_lead(["RESP", "ABP", "V1"], ()) == 2


@pytest.mark.parametrize("fs", [128, 257, 360, 1000])
def test_resampling_to_125_hz_keeps_r_peaks_within_one_sample(fs) -> None:
    from ecg_mlflow.data.beats import resample_positions, resample_signal

    rng = np.random.default_rng(fs)
    seconds = 20.0
    peaks = (np.arange(0.5, seconds - 0.5, 0.83) * fs).astype(np.int64)
    t = np.arange(int(seconds * fs))
    signal = sum(np.exp(-0.5 * ((t - p) / (0.012 * fs)) ** 2) for p in peaks) + 0.01 * rng.standard_normal(len(t))
    resampled = resample_signal(signal, fs)
    moved = resample_positions(peaks, fs)
    for p in moved:
        local = p - 3 + int(np.argmax(resampled[p - 3 : p + 4]))
        assert abs(local - p) <= 1


def test_svdb_and_incart_like_records_use_their_own_rate_and_lead(synthetic_other_databases) -> None:
    svdb = build_beats(synthetic_other_databases / "svdb", database=get_database("svdb"))
    incart = build_beats(synthetic_other_databases / "incartdb", database=get_database("incartdb"))
    for parts, lead, fs in ((svdb, "ECG1", 128), (incart, "II", 257)):
        assert {p.leads[p.records[0]] for p in parts} == {lead} and {p.rates[p.records[0]] for p in parts} == {fs}
    for part in (*svdb, *incart):
        assert np.median(part.x[:, 0]) > 0.8  # cut from the R peak of the right lead
        assert 0.65 < np.median(part.context[:, 0]) < 0.95  # R-R in seconds, whatever the rate
