"""Input kinds: what the network sees of each beat, cut from records at any rate."""

from __future__ import annotations

import numpy as np
import pytest
import wfdb

from ecg_mlflow.config import DataConfig
from ecg_mlflow.data.databases import get_database
from ecg_mlflow.data.inputs import INPUT_KINDS
from ecg_mlflow.data.physionet import record_inputs
from ecg_mlflow.data.records import read_record_signal
from ecg_mlflow.errors import ConfigError


@pytest.fixture(params=[360, 128])
def record(request, tmp_path, record_writer):
    """A synthetic two-lead record: R spikes of +1 mV on MLII, -0.5 mV on V1."""
    fs = request.param
    record_writer(tmp_path, "r", ["MLII", "V1"], seconds=30.0, seed=1, fs=fs)
    database = get_database("wfdb")
    return read_record_signal(database, tmp_path, "r")


@pytest.mark.parametrize("kind", sorted(INPUT_KINDS))
def test_every_kind_gives_187_finite_samples_per_beat(record, kind) -> None:
    x = record_inputs(record, record.qrs, kind)
    assert x.shape == (len(record.qrs), 187) and x.dtype == np.float32 and np.isfinite(x).all()


def test_window_keeps_the_p_wave_side_and_the_amplitude(record) -> None:
    """The R peak sits 62 samples (0.5 s) in, at its height in mV above the window's median (the next beat
    may come into the last second: the peak is looked for before it)."""
    x = record_inputs(record, record.qrs[2:-2], "window")[:, :100]
    assert np.all(np.abs(x.argmax(axis=1) - 62) <= 1)
    assert np.all((x.max(axis=1) > 0.7) & (x.max(axis=1) < 1.4))


def test_three_beats_show_the_neighbours_at_their_distance(record) -> None:
    x = record_inputs(record, record.qrs[2:-2], "three_beats")
    assert np.all(np.abs(x[:, 80:106].argmax(axis=1) + 80 - 93) <= 1)
    rr = np.diff(record.qrs)[2:-1] / record.fs * 62.5  # the next beat's distance at 62.5 Hz
    after = x[:, 103:160].argmax(axis=1) + 103  # R-R is 0.7-0.9 s: 44-56 samples on
    assert np.all(np.abs(after[:-1] - 93 - rr[:-1]) <= 2)


def test_two_leads_put_the_second_lead_beside_the_first(record) -> None:
    x = record_inputs(record, record.qrs[2:-2], "two_leads")
    assert np.all(np.abs(x[:, :50].argmax(axis=1) - 31) <= 1)  # MLII: upward spike
    assert np.all(np.abs(x[:, 94:144].argmin(axis=1) - 31) <= 1)  # V1: inverted


def test_a_record_with_one_lead_repeats_it(tmp_path, record_writer) -> None:
    record_writer(tmp_path, "one", ["MLII"], seconds=20.0, seed=2)
    read = read_record_signal(get_database("wfdb"), tmp_path, "one")
    assert read.second is None
    x = record_inputs(read, read.qrs, "two_leads")
    np.testing.assert_allclose(x[:, :93], x[:, 94:], atol=5e-3)  # the same lead; medians of 94 and 93 samples
    assert wfdb.rdheader(str(tmp_path / "one")).n_sig == 1


def test_isolated_beats_have_only_the_papers_input() -> None:
    with pytest.raises(ConfigError, match="input='window' is cut from the records' signal"):
        DataConfig(source="kaggle", input="window")
