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
from typing import Any

import joblib
import keras
import mlflow
import numpy as np
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.models.model import ModelInfo

from ecg_mlflow.models import served
from ecg_mlflow.models.classifier import CONTEXT_INPUT, uses_context
from ecg_mlflow.models.test_time import adapted_probabilities, load_adapter
from ecg_mlflow.tracking.upstream import UpstreamError

# What the served model needs, pinned to what trained it. A network that adapts to each recording also runs
# the package's test-time adaptation (its code path) and what that imports.
SERVED_PACKAGES = ("mlflow", "keras", "tensorflow-cpu", "tensorflow", "numpy", "pandas")
ADAPTING_PACKAGES = ("scipy", "scikit-learn", "pydantic")
PACKAGE_DIR = Path(__file__).resolve().parents[1]  # ecg_mlflow/, shipped with a model that adapts
SERVED_FEATURES_PACKAGES = ("mlflow", "scikit-learn", "joblib", "numpy", "pandas")  # a features model: no Keras


def served_requirements(packages: tuple[str, ...] = SERVED_PACKAGES) -> list[str]:
    """pip requirements of a served model: the installed versions of `packages`."""
    pins = []
    for package in packages:
        try:
            pins.append(f"{package}=={metadata.version(package)}")
        except metadata.PackageNotFoundError:
            continue
    return pins


def served_example(model: Any, beats: np.ndarray, context: np.ndarray | None) -> dict | np.ndarray:
    """What a client posts for these beats: (n, L) numbers, with the rhythm columns when the model takes them."""
    flat = np.asarray(beats, dtype=np.float32).reshape(len(beats), -1)
    if is_keras(model) and not uses_context(model):
        return flat
    return {served.BEAT_INPUT: flat, CONTEXT_INPUT: np.asarray(context, dtype=np.float32)}


def log_served_classifier(
    model: Any,
    beats: np.ndarray,
    context: np.ndarray | None,
    class_names: list[str],
    context_names: tuple[str, ...] = (),
    input_kind: str = "kachuee",
    adapt: str = "none",
) -> ModelInfo:
    """Log `model` wrapped for serving, with a signature and input example made from a few real beats; a network
    with an adaptation that changes it per recording (`adapt`) carries the package's code to do so."""
    example = served_example(model, beats, context)
    adapter = recording_adapter(model, adapt)
    wrapper = served.BeatClassifier.around(model, list(class_names), list(context_names), input_kind, (adapt, adapter))
    output = wrapper.predict(None, example)
    with tempfile.TemporaryDirectory(prefix="ecg-served-") as tmp:
        labels_path = Path(tmp) / served.LABELS_FILE
        labels = {"class_names": list(class_names), "context_names": list(context_names), "input": input_kind}
        labels |= {"beat_length": wrapper.beat_length, "adapt": adapt, "adapter": adapter}
        labels_path.write_text(json.dumps(labels))
        if is_keras(model):
            model_path, artifact = Path(tmp) / served.KERAS_FILE, served.KERAS_ARTIFACT
            packages = SERVED_PACKAGES + (ADAPTING_PACKAGES if adapter else ())
            model.save(model_path)
        else:
            model_path, artifact = Path(tmp) / served.SKLEARN_FILE, served.SKLEARN_ARTIFACT
            packages = SERVED_FEATURES_PACKAGES
            joblib.dump(model, model_path)
        return mlflow.pyfunc.log_model(
            name="model",
            python_model=served.__file__,
            artifacts={artifact: str(model_path), served.LABELS_ARTIFACT: str(labels_path)},
            signature=infer_signature(example, output),
            input_example=example,
            pip_requirements=served_requirements(packages),
            code_paths=[str(PACKAGE_DIR)] if adapter else None,
        )


def recording_adapter(model: Any, adapt: str) -> str:
    """The function a served model calls to adapt itself to each recording ("module:function"), or "" when `adapt`
    does not change this model per recording (no test-time adaptation, or a features model)."""
    if not is_keras(model) or load_adapter(adapt) is None:
        return ""
    return f"{adapted_probabilities.__module__}:{adapted_probabilities.__name__}"


def is_keras(model: Any) -> bool:
    """A Keras network (else a scikit-learn features model)."""
    return isinstance(model, keras.Model)


def load_served(model_uri: str) -> served.BeatClassifier:
    """The served classifier (models/served.BeatClassifier) behind `model_uri`; UpstreamError if it is not one."""
    try:
        wrapper = mlflow.pyfunc.load_model(model_uri).unwrap_python_model()
    except MlflowException as error:
        raise UpstreamError(
            f"{model_uri}: cannot load it as a served classifier ({error.message.splitlines()[0]}); "
            "use a transfer, crossval, features or ensemble model, e.g. models:/ecg-mit-cnn@current"
        ) from None
    if not hasattr(wrapper, "probabilities") or not hasattr(wrapper, "class_names"):
        raise UpstreamError(
            f"{model_uri} is not a classifier of this project; use a transfer, crossval, features or ensemble model"
        )
    return wrapper


def load_classifier(model_uri: str) -> keras.Model:
    """The Keras network behind a logged classifier: the served wrapper's, or a Keras-flavour model's."""
    if "keras" in mlflow.models.get_model_info(model_uri).flavors:
        return mlflow.keras.load_model(model_uri)
    return mlflow.pyfunc.load_model(model_uri).unwrap_python_model().keras_model
