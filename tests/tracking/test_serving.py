"""`mlflow models serve` on a registered classifier, over HTTP on 127.0.0.1, as a user calls it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pytest

from ecg_mlflow.config import BACKBONE_DEFAULTS
from ecg_mlflow.models.backbones import build_encoder
from ecg_mlflow.models.classifier import build_classifier, predict_proba
from ecg_mlflow.tracking.classifiers import load_classifier, log_served_classifier
from ecg_mlflow.tracking.registry import register_with_alias

CLASSES = ["N", "S", "V", "F", "Q"]


def _untrained_network(factory: pytest.TempPathFactory, backbone: str, seed: int) -> tuple:
    """A folder with its own sqlite tracking store (set as current), an untrained classifier and a few beats."""
    folder = factory.mktemp(f"serve_{backbone}")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    beats = np.random.default_rng(seed).normal(size=(6, 187)).astype(np.float32)
    return folder, uri, build_classifier(build_encoder(backbone, BACKBONE_DEFAULTS[backbone]), 5), beats


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, model_server
) -> Iterator[tuple[str, np.ndarray, np.ndarray, Path]]:
    """A CNN classifier registered as ecg-mit-cnn@current, served by `mlflow models serve`."""
    folder, uri, model, beats = _untrained_network(tmp_path_factory, "cnn", 0)
    # An experiment of its own: a module fixture runs before the per-test MLflow state reset.
    experiment_id = mlflow.MlflowClient().create_experiment("serving")
    with mlflow.start_run(experiment_id=experiment_id) as run:
        info = log_served_classifier(model, beats, None, CLASSES)
    register_with_alias(info.model_uri, "ecg-mit-cnn", "current", tags={"run_id": run.info.run_id})
    expected = predict_proba(load_classifier("models:/ecg-mit-cnn@current"), beats, 5)
    with model_server("models:/ecg-mit-cnn@current", uri, folder) as (url, log):
        yield url, beats, expected, log


def test_beats_posted_as_lists_get_labels_and_probabilities(served, post_json) -> None:
    url, beats, expected, _ = served
    status, answer = post_json(url, {"inputs": beats.tolist()})
    assert status == 200, answer
    rows = answer["predictions"]
    assert [row["label"] for row in rows] == [CLASSES[i] for i in expected.argmax(axis=1)]
    probs = np.array([[row[f"p_{name}"] for name in CLASSES] for row in rows])
    np.testing.assert_allclose(probs, expected, atol=1e-5)


def test_a_short_beat_gets_a_400_that_says_what_is_wrong(served, post_json) -> None:
    url, beats, _, _ = served
    status, answer = post_json(url, {"inputs": beats[:, :180].tolist()})
    assert status == 400
    assert "187" in answer["message"] and len(answer["message"]) < 2000


def test_requests_leave_no_progress_bars_in_the_server_log(served, post_json) -> None:
    url, beats, _, log = served
    for _ in range(3):
        assert post_json(url, {"inputs": beats.tolist()})[0] == 200
    text = log.read_text()
    assert "step" not in text and "━" not in text, text[-2000:]


@pytest.fixture(scope="module")
def served_adapting(tmp_path_factory: pytest.TempPathFactory, model_server) -> Iterator[tuple[str, Path]]:
    """A CNN with normalisation layers that adapts to each request (adapt=tent), served by `mlflow models serve`."""
    folder, uri, model, beats = _untrained_network(tmp_path_factory, "cnn_bn", 1)
    experiment_id = mlflow.MlflowClient().create_experiment("serving-adapting")
    with mlflow.start_run(experiment_id=experiment_id):
        info = log_served_classifier(model, beats, None, CLASSES, adapt="tent")
    with model_server(info.model_uri, uri, folder) as (url, _):
        yield url, info.model_uri


def test_a_served_model_that_adapts_adapts_to_each_request_and_says_so(served_adapting, post_json) -> None:
    """A request is one recording: the answer is the in-process adaptation's, and a request too short to adapt
    is answered as trained, with `adapted` false."""
    from ecg_mlflow.models.test_time import MIN_BEATS, adapted_probabilities
    from ecg_mlflow.tracking.classifiers import load_served

    url, model_uri = served_adapting
    recording = np.random.default_rng(2).normal(size=(MIN_BEATS + 10, 187)).astype(np.float32)
    status, answer = post_json(url, {"inputs": recording.tolist()})
    assert status == 200, answer
    rows = answer["predictions"]
    assert all(row["adapted"] for row in rows)
    network = load_served(model_uri).keras_model
    expected = adapted_probabilities(network, (recording, None, ()), np.zeros(len(recording)), "tent", 5).proba
    probs = np.array([[row[f"p_{name}"] for name in CLASSES] for row in rows])
    np.testing.assert_allclose(probs, expected, atol=1e-4)
    status, answer = post_json(url, {"inputs": recording[: MIN_BEATS - 1].tolist()})
    assert status == 200 and not any(row["adapted"] for row in answer["predictions"])
