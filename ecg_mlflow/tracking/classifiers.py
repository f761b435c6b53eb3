"""Log a trained classifier as the served model (models/served.py), and load its Keras network back.

A classifier run logs one model, `model`: MLflow's pyfunc flavour wrapping the Keras network, so
`mlflow models serve -m models:/ecg-mit-cnn@current` takes beats as lists of numbers and answers
with class names. Downstream steps (the ensemble, evaluate) want the Keras network itself:
`load_classifier` returns it from this wrapper and from runs logged with the Keras flavour alone
(before the wrapper existed).
"""

from __future__ import annotations

import json
import tempfile
from importlib import metadata
from pathlib import Path

import keras
import mlflow
import numpy as np
from mlflow.models import infer_signature
from mlflow.models.model import ModelInfo

from ecg_mlflow.models import served
from ecg_mlflow.models.classifier import CONTEXT_INPUT, uses_context

# What the served model needs, pinned to what trained it; the wrapper imports nothing else.
SERVED_PACKAGES = ("mlflow", "keras", "tensorflow-cpu", "tensorflow", "numpy", "pandas")


def served_requirements() -> list[str]:
    """pip requirements of a served model: the installed versions of SERVED_PACKAGES."""
    pins = []
    for package in SERVED_PACKAGES:
        try:
            pins.append(f"{package}=={metadata.version(package)}")
        except metadata.PackageNotFoundError:
            continue
    return pins


def served_example(model: keras.Model, beats: np.ndarray, context: np.ndarray | None) -> dict | np.ndarray:
    """What a client posts for these beats: (n, L) numbers, with the rhythm columns when the model takes them."""
    flat = np.asarray(beats, dtype=np.float32).reshape(len(beats), -1)
    if not uses_context(model):
        return flat
    return {served.BEAT_INPUT: flat, CONTEXT_INPUT: np.asarray(context, dtype=np.float32)}


def log_served_classifier(
    model: keras.Model,
    beats: np.ndarray,
    context: np.ndarray | None,
    class_names: list[str],
    context_names: tuple[str, ...] = (),
) -> ModelInfo:
    """Log `model` wrapped for serving, with a signature and input example made from a few real beats."""
    example = served_example(model, beats, context)
    wrapper = served.BeatClassifier.around(model, list(class_names), list(context_names))
    output = wrapper.predict(None, example)
    with tempfile.TemporaryDirectory(prefix="ecg-served-") as tmp:
        keras_path, labels_path = Path(tmp) / served.KERAS_FILE, Path(tmp) / served.LABELS_FILE
        model.save(keras_path)
        labels_path.write_text(json.dumps({"class_names": list(class_names), "context_names": list(context_names)}))
        return mlflow.pyfunc.log_model(
            name="model",
            python_model=served.__file__,
            artifacts={served.KERAS_ARTIFACT: str(keras_path), served.LABELS_ARTIFACT: str(labels_path)},
            signature=infer_signature(example, output),
            input_example=example,
            pip_requirements=served_requirements(),
        )


def load_classifier(model_uri: str) -> keras.Model:
    """The Keras network behind a logged classifier: the served wrapper's, or a Keras-flavour model's."""
    if "keras" in mlflow.models.get_model_info(model_uri).flavors:
        return mlflow.keras.load_model(model_uri)
    return mlflow.pyfunc.load_model(model_uri).unwrap_python_model().keras_model
