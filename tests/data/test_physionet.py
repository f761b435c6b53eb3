"""Kachuee beat extraction on synthetic WFDB records."""

from __future__ import annotations

import numpy as np
import pytest

from ecg_mlflow.data.aami import aami_labels
from ecg_mlflow.data.errors import DataError
from ecg_mlflow.data.physionet import (
    build_beats,
    build_record_beats,
    choose_lead,
    cut_beats,
    list_records,
    normalise_windows,
    window_median_rr,
)


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
    assert len(beats.labels) == (expected >= 0).sum()  # the '+' mark is not a beat
    assert beats.labels.tolist() == expected[expected >= 0].tolist()
    assert beats.positions.tolist() == np.asarray(ann.sample)[expected >= 0].tolist()
    assert beats.beats.shape == (len(beats.labels), 187)
    assert beats.beats.min() >= 0.0 and beats.beats.max() <= 1.0
    assert np.median(beats.beats[:, 0]) > 0.8  # starts at the R peak, near the window's maximum
    assert (beats.beats[:, -20:] == 0).all()  # ~0.8 s x 1.2 < 1.5 s: trailing zeros


def test_leads_for_records_without_mlii_or_with_mlii_as_lead_1(synthetic_mitdb) -> None:
    mitdb = synthetic_mitdb / "mitdb"
    assert build_record_beats(mitdb, "114").lead == "MLII"
    assert build_record_beats(mitdb, "102").lead == "V5"


def test_build_beats_parallel_equals_serial(synthetic_mitdb) -> None:
    mitdb = synthetic_mitdb / "mitdb"
    serial = build_beats(mitdb, ["100", "101"], workers=1)
    parallel = build_beats(mitdb, ["100", "101"], workers=2)
    for a, b in zip(serial, parallel, strict=True):
        assert a.record == b.record and np.array_equal(a.beats, b.beats)


def test_missing_records_give_a_data_error_naming_the_download_command(tmp_path) -> None:
    with pytest.raises(DataError, match="ecg-mlflow data download mitdb"):
        list_records(tmp_path)
    (tmp_path / "RECORDS").write_text("100\n")
    with pytest.raises(DataError, match="100"):
        build_record_beats(tmp_path, "100")
