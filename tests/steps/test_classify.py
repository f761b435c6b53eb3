"""`classify` end to end on WFDB records the tests write: beats found, labelled, written where they belong."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import wfdb
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from ecg_mlflow.cli import app
from ecg_mlflow.config import BACKBONE_DEFAULTS, BackboneConfig, ClassifyConfig
from ecg_mlflow.data.context import CONTEXT_KINDS
from ecg_mlflow.models.backbones import build_encoder
from ecg_mlflow.models.classifier import ContextSpec, build_classifier
from ecg_mlflow.steps.classify import ANNOTATION_EXTENSION, classify_record, run_classify
from ecg_mlflow.tracking.classifiers import load_served, log_served_classifier
from ecg_mlflow.tracking.upstream import UpstreamError

CLASSES = ["N", "S", "V", "F", "Q"]
SMALL_MLP = BackboneConfig(**{**vars(BACKBONE_DEFAULTS["mlp"]), "units": 16, "depth": 2})


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Two served classifiers on a temporary store: beats only, and beats with R-R context."""
    store = tmp_path_factory.mktemp("classify-store")
    mlflow.set_tracking_uri(f"sqlite:///{store / 'mlflow.db'}")
    beats = np.random.default_rng(0).uniform(size=(4, 187)).astype(np.float32)
    uris = {}
    # An experiment of its own: a module fixture runs before the per-test MLflow state reset.
    experiment_id = mlflow.MlflowClient().create_experiment("classify-models")
    with mlflow.start_run(experiment_id=experiment_id):
        plain = build_classifier(build_encoder("mlp", SMALL_MLP), 5)
        uris["plain"] = log_served_classifier(plain, beats, None, CLASSES).model_uri
    names = CONTEXT_KINDS["rr"]
    spec = ContextSpec(names, tuple(0.8 for _ in names), tuple(0.04 for _ in names))
    with mlflow.start_run(experiment_id=experiment_id):
        with_rr = build_classifier(build_encoder("mlp", SMALL_MLP), 5, context=spec)
        rhythm = np.full((4, len(names)), 0.8, dtype=np.float32)
        uris["rr"] = log_served_classifier(with_rr, beats, rhythm, CLASSES, names).model_uri
    return {**uris, "tracking_uri": mlflow.get_tracking_uri()}


def written_record(folder: Path, record_writer, fs: int, annotated: bool) -> tuple[Path, np.ndarray]:
    """A 60-s two-lead record at `fs`; returns its path and the true R-peak samples."""
    folder.mkdir(parents=True, exist_ok=True)
    record_writer(folder, "rec", ["MLII", "V1"], seconds=60.0, seed=3, fs=fs)
    truth = wfdb.rdann(str(folder / "rec"), "atr")
    peaks = np.array([s for s, sym in zip(truth.sample, truth.symbol, strict=True) if sym != "+"])
    if not annotated:
        (folder / "rec.atr").unlink()
    return folder / "rec", peaks


@pytest.mark.parametrize("fs", [250, 360])
def test_unannotated_record_every_beat_found_within_50_ms(tmp_path, record_writer, models, fs) -> None:
    path, peaks = written_record(tmp_path, record_writer, fs, annotated=False)
    result = classify_record(ClassifyConfig(record=str(path), model=models["plain"]), load_served(models["plain"]))
    found = result.table["sample"].to_numpy()
    assert result.peaks_from == "QRS detector" and len(found) == len(peaks)
    nearest = np.abs(found[:, None] - peaks[None, :]).min(axis=0)
    assert nearest.max() <= 0.05 * fs, nearest.max() / fs
    assert "reference" not in result.table


def test_outputs_put_each_label_at_its_beat(tmp_path, record_writer, models) -> None:
    path, peaks = written_record(tmp_path / "in", record_writer, 360, annotated=True)
    out = tmp_path / "out"
    result = run_classify(ClassifyConfig(record=str(path), model=models["rr"], out=str(out)))
    table = pd.read_csv(out / "rec_beats.csv", keep_default_na=False)
    np.testing.assert_array_equal(table["sample"], peaks)  # the annotations' R peaks, every beat
    np.testing.assert_allclose(table["time_s"], peaks / 360, atol=1e-4)
    probs = table[[f"p_{c}" for c in CLASSES]].to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-4)
    assert table["label"].tolist() == [CLASSES[i] for i in probs.argmax(axis=1)]
    assert set(table["reference"]) <= {*CLASSES, ""} and "S" in set(table["reference"])
    written = wfdb.rdann(str(out / "rec"), ANNOTATION_EXTENSION)
    np.testing.assert_array_equal(written.sample, table["sample"])
    assert written.symbol == table["label"].tolist() and written.fs == 360
    assert (out / "rec_strip.png").stat().st_size > 10_000
    printed = result.text
    assert f"{len(peaks)} beats, R peaks from annotations (atr)" in printed
    assert "agreement with the reference annotations" in printed


def test_cli_classifies_and_logs_a_run_when_asked(tmp_path, record_writer, models, monkeypatch) -> None:
    path, peaks = written_record(tmp_path, record_writer, 250, annotated=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", models["tracking_uri"])
    out = tmp_path / "labels"
    cli = ["classify", str(path), "--model", models["plain"], "--out", str(out), "--log-run", "true"]
    result = CliRunner().invoke(app, cli)
    assert result.exit_code == 0, result.output
    assert f"{len(peaks)} beats, R peaks from QRS detector" in result.output
    run = MlflowClient().search_runs(
        [MlflowClient().get_experiment_by_name("ecg-classify").experiment_id], "tags.`ecg_mlflow.step` = 'classify'"
    )[0]
    assert run.info.status == "FINISHED" and run.data.metrics["beats"] == len(peaks)
    artefacts = {a.path for a in MlflowClient().list_artifacts(run.info.run_id, "classified")}
    expected = {f"rec.{ANNOTATION_EXTENSION}", "rec_beats.csv", "rec_strip.png"}
    assert artefacts == {f"classified/{name}" for name in expected}


def test_bad_model_or_record_is_one_line_and_exit_1(tmp_path, record_writer, models, monkeypatch) -> None:
    path, _ = written_record(tmp_path, record_writer, 360, annotated=True)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", models["tracking_uri"])
    runner = CliRunner()
    wrong_model = runner.invoke(app, ["classify", str(path), "--model", "models:/no-such-model@current"])
    assert wrong_model.exit_code == 1 and "cannot load it as a served classifier" in wrong_model.output
    missing = runner.invoke(app, ["classify", str(tmp_path / "nope"), "--model", models["plain"]])
    assert missing.exit_code == 1 and "nope" in missing.output and "Traceback" not in missing.output
    assert "without its extension" in missing.output and "download" not in missing.output
    with pytest.raises(UpstreamError):
        load_served("runs:/0123456789abcdef0123456789abcdef/model")


def test_a_record_with_no_beat_is_one_line_and_writes_nothing(tmp_path, models, monkeypatch) -> None:
    """A flat signal: no QRS to label. One line naming the record and what to check; no output folder."""
    import wfdb

    wfdb.wrsamp("flat", fs=360, units=["mV"], sig_name=["MLII"], p_signal=np.zeros((360 * 20, 1)),
                fmt=["212"], adc_gain=[200.0], baseline=[1024], write_dir=str(tmp_path))  # fmt: skip
    monkeypatch.setenv("MLFLOW_TRACKING_URI", models["tracking_uri"])
    out = tmp_path / "labels"
    command = ["classify", str(tmp_path / "flat"), "--model", models["plain"], "--out", str(out)]
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "record flat: no beat found" in result.output and len(result.output.strip().splitlines()) == 1
    assert not out.exists()
