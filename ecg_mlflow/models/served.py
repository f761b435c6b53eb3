"""The served form of a classifier: beats as a user has them in, class names and probabilities out.

MLflow's Keras flavour serves the raw network, which wants beats shaped (n, 187, 1), answers
with unnamed numbers and prints a progress bar per request. This pyfunc wraps the trained model
(a Keras network stored beside it as `classifier.keras`, or a scikit-learn model on the context
numbers alone, `classifier.joblib`: models/features.py) and, whichever it is:
- takes beats as lists of 187 numbers (or (n, 187, 1)); a model with rhythm context takes
  {"beat": [...], "rhythm": [...]} with the context columns named in the run's description;
- returns one row per beat: `label` (the class name) and `p_<class>` for every class;
- predicts quietly, so the server's log shows requests, not progress bars;
- with an adaptation that changes the model per recording (`adapt` in its labels: models/test_time.py), adapts
  to the beats of each request, which are one recording, before labelling them, and says so per beat
  (`adapted`: False for a recording too short to adapt).

It is logged as code (MLflow's "models from code"): this file is copied into the model and run
when the model loads. It imports nothing from ecg_mlflow: a model that adapts names its adaptation's
function in its labels ("module:function", as backbones name their builders) and carries the package
as its code path (tracking/classifiers.py). The package imports `class_probabilities` from here, so the
served model and the training steps turn a sigmoid into two class probabilities the same way.
"""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd

KERAS_ARTIFACT = "keras_model"
LABELS_ARTIFACT = "labels"
SKLEARN_ARTIFACT = "sklearn_model"
KERAS_FILE = "classifier.keras"
SKLEARN_FILE = "classifier.joblib"
LABELS_FILE = "labels.json"
BEAT_INPUT = "beat"
CONTEXT_INPUT = "rhythm"
LABEL_COLUMN = "label"
PROBABILITY_PREFIX = "p_"
ADAPTED_COLUMN = "adapted"


def class_probabilities(outputs: np.ndarray, n_classes: int) -> np.ndarray:
    """A model's raw outputs as (n, n_classes) probabilities: one sigmoid unit p becomes [1 - p, p]."""
    probs = np.asarray(outputs, dtype=np.float32)
    if n_classes == 2 and probs.shape[-1] == 1:
        probs = np.concatenate([1.0 - probs, probs], axis=1)
    return probs


def served_inputs(model_input: Any, beat_length: int, context_width: int) -> dict[str, np.ndarray]:
    """The model's named inputs from what a client sent: beats (n, L) or (n, L, 1), and rhythm if needed.

    Raises ValueError naming what was wrong (MLflow's server returns it as the HTTP 400 message).
    """
    if isinstance(model_input, dict):
        parts = dict(model_input)
    elif isinstance(model_input, pd.DataFrame):
        parts = {BEAT_INPUT: model_input.to_numpy()}
    else:
        parts = {BEAT_INPUT: model_input}
    if BEAT_INPUT not in parts:
        raise ValueError(f"send the beats as {BEAT_INPUT!r} (got {', '.join(map(str, parts)) or 'nothing'})")
    beats = np.asarray(parts[BEAT_INPUT], dtype=np.float32)
    if beats.ndim == 3 and beats.shape[-1] == 1:
        beats = beats[..., 0]
    if beats.ndim != 2 or beats.shape[1] != beat_length:
        raise ValueError(f"each beat must be {beat_length} numbers; got an array shaped {beats.shape}")
    inputs = {BEAT_INPUT: beats[..., None]}
    if context_width:
        if CONTEXT_INPUT not in parts:
            raise ValueError(
                f"this model also takes {context_width} rhythm features per beat: "
                f'send {{"{BEAT_INPUT}": [...], "{CONTEXT_INPUT}": [...]}}'
            )
        rhythm = np.asarray(parts[CONTEXT_INPUT], dtype=np.float32)
        if rhythm.shape != (len(beats), context_width):
            raise ValueError(f"{CONTEXT_INPUT} must be ({len(beats)}, {context_width}); got {rhythm.shape}")
        inputs[CONTEXT_INPUT] = rhythm
    return inputs


def features_probabilities(features_model: Any, rhythm: np.ndarray, n_classes: int) -> np.ndarray:
    """(n, n_classes) from a scikit-learn model fitted on integer labels; classes it never saw get 0."""
    probs = np.zeros((len(rhythm), n_classes), dtype=np.float32)
    if len(rhythm):
        probs[:, np.asarray(features_model.classes_, dtype=np.int64)] = features_model.predict_proba(rhythm)
    return probs


def label_table(probs: np.ndarray, class_names: list[str], adapted: np.ndarray | None = None) -> pd.DataFrame:
    """One row per beat: the most likely class's name, the probability of every class, and (for a model that
    adapts) whether the beat's recording was adapted to."""
    table = pd.DataFrame(probs, columns=[f"{PROBABILITY_PREFIX}{name}" for name in class_names])
    table.insert(0, LABEL_COLUMN, np.asarray(class_names, dtype=object)[probs.argmax(axis=1)])
    if adapted is not None:
        table[ADAPTED_COLUMN] = adapted
    return table


class BeatClassifier(mlflow.pyfunc.PythonModel):
    """Serve a trained classifier: beats (and rhythm context) in, labels and probabilities out.

    The model is a Keras network (`keras_model`) or a scikit-learn model on the context numbers
    alone (`features_model`, None for a network); both take the same request and give the same table.
    """

    keras_model: Any = None
    features_model: Any = None
    beat_length: int = 187
    input_kind: str = "kachuee"  # how the beats it takes were cut (ecg_mlflow/data/inputs.py)
    adapt: str = "none"  # the label-free adaptation to each recording (ecg_mlflow/data/adaptation.py)
    adapter: str = ""  # "module:function" adapting the network per recording (test_time.adapted_probabilities)

    @classmethod
    def around(
        cls,
        model: Any,
        class_names: list[str],
        context_names: list[str],
        input_kind: str = "kachuee",
        adapt: tuple[str, str] = ("none", ""),
    ) -> BeatClassifier:
        """The wrapper around a model in memory (for logging it, and for benchmarks), as load_context makes it;
        `adapt`: the adaptation's name and the function that adapts the network per recording ("" for none)."""
        wrapper = cls()
        wrapper.adapt, wrapper.adapter = adapt
        if hasattr(model, "predict_proba") and not hasattr(model, "layers"):
            wrapper.features_model = model
        else:
            wrapper.keras_model = model
            wrapper.beat_length = int(next(t for t in model.inputs if t.name == BEAT_INPUT).shape[1])
        wrapper.class_names, wrapper.context_names, wrapper.input_kind = class_names, context_names, input_kind
        return wrapper

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        labels = json.loads(Path(context.artifacts[LABELS_ARTIFACT]).read_text())
        self.class_names: list[str] = labels["class_names"]
        self.context_names: list[str] = labels["context_names"]
        self.beat_length = int(labels.get("beat_length", 187))
        self.input_kind = labels.get("input", "kachuee")
        self.adapt, self.adapter = labels.get("adapt", "none"), labels.get("adapter", "")
        if SKLEARN_ARTIFACT in context.artifacts:
            import joblib

            self.features_model = joblib.load(context.artifacts[SKLEARN_ARTIFACT])
            return
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        import keras

        self.keras_model = keras.saving.load_model(context.artifacts[KERAS_ARTIFACT], compile=False)

    def probabilities(self, model_input: Any, records: np.ndarray | None = None) -> np.ndarray:
        """(n, n_classes) class probabilities for what a client sent (see served_inputs)."""
        return self.adapted_probabilities(model_input, records)[0]

    def adapted_probabilities(
        self, model_input: Any, records: np.ndarray | None = None, seed: int = 0
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """(n, n_classes) probabilities and, for a model that adapts, whether each beat's recording was adapted
        to (`records` names each beat's recording; None: the beats are one recording)."""
        inputs = served_inputs(model_input, self.beat_length, len(self.context_names))
        n_classes = len(self.class_names)
        if self.features_model is not None:
            return features_probabilities(self.features_model, inputs[CONTEXT_INPUT], n_classes), None
        if self.adapter:
            module, _, function = self.adapter.partition(":")
            adapted_probabilities = getattr(importlib.import_module(module), function)
            beats = inputs[BEAT_INPUT][..., 0]
            records = np.zeros(len(beats), dtype=np.int64) if records is None else np.asarray(records)
            recording = (beats, inputs.get(CONTEXT_INPUT), tuple(self.context_names))
            answer = adapted_probabilities(self.keras_model, recording, records, self.adapt, n_classes, seed)
            return answer.proba, ~np.isin(records.astype(str), answer.unadapted)
        names = [t.name for t in self.keras_model.inputs]
        feed = inputs if len(names) > 1 else inputs[BEAT_INPUT]
        outputs = self.keras_model.predict(feed, batch_size=1024, verbose=0)
        return class_probabilities(outputs, n_classes), None

    def predict(self, context, model_input, params=None):  # no type hints: MLflow would read them as a schema
        """Labels and probabilities for the posted beats (see served_inputs for what may be posted): one
        recording's beats, which a model that adapts adapts to first."""
        proba, adapted = self.adapted_probabilities(model_input)
        return label_table(proba, self.class_names, adapted)


mlflow.models.set_model(BeatClassifier())
