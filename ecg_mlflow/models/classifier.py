"""Supervised classifiers on an encoder, and the averaging ensemble of trained classifiers.

Two classes (PTB: normal / MI) use one sigmoid unit with binary cross-entropy as in the
paper; more (MIT: N S V F Q) use softmax with sparse categorical cross-entropy on integer
labels. predict_proba hides the difference: it always returns (n, n_classes).

With context (context=rr, rr_template) a classifier has two named inputs, `beat` (n, 187, 1) and
`rhythm` (n, k): the context is normalised with the training split's statistics (stored in the
model, so a served model takes raw seconds) and joined to the encoder's features after the
encoder, so a pretrained encoder transfers into it unchanged. The join is wide and deep: the
head sees the normalised context directly (a linear path, as in de Chazal's linear discriminant)
beside a Dense layer over [encoder features with dropout, context]. Measured on the patient-wise
split, the plain deep join let the beat's shape dominate and chose worse on the held-out DS1
records (docs/results.md): shapes memorise training patients, timing carries over to new ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import keras
import numpy as np

from ecg_mlflow.models.backbones import as_model_input
from ecg_mlflow.models.schedules import LearningRate
from ecg_mlflow.models.served import BEAT_INPUT, CONTEXT_INPUT, class_probabilities

HEAD = "class_probs"
CONTEXT_UNITS = 32
FEATURE_DROPOUT = 0.5

ModelInput = np.ndarray | dict[str, np.ndarray]


@dataclass(frozen=True)
class ContextSpec:
    """The context features a classifier takes and the training statistics that normalise them."""

    names: tuple[str, ...]
    mean: tuple[float, ...]
    variance: tuple[float, ...]
    join: str = "wide_deep"  # models/catalog.CONTEXT_JOINS

    @classmethod
    def fit(cls, names: Sequence[str], context: np.ndarray, join: str = "wide_deep") -> ContextSpec:
        """Statistics of the training split's context (never validation or test)."""
        context = np.asarray(context, dtype=np.float64)
        if context.ndim != 2 or context.shape[1] != len(names) or len(context) == 0:
            raise ValueError(f"context must be (n > 0, {len(names)}), got {context.shape}")
        variance = np.maximum(context.var(axis=0), 1e-6)
        return cls(tuple(names), tuple(context.mean(axis=0).tolist()), tuple(variance.tolist()), join)


def build_classifier(
    encoder: keras.Model, n_classes: int, freeze: bool = False, context: ContextSpec | None = None
) -> keras.Model:
    """encoder + task head; freeze=True keeps the (pretrained) encoder fixed as a feature extractor.

    With `context`, the model takes {"beat", "rhythm"}: the normalised context and the encoder's
    features (with dropout) go through one Dense layer, and the head sees that layer and, for
    join="wide_deep", the normalised context itself (the wide, linear path; CONTEXT_JOINS).
    """
    _check_classes(n_classes)
    encoder.trainable = not freeze
    beat = keras.Input(shape=encoder.input_shape[1:], name=BEAT_INPUT)
    features = encoder(beat)
    inputs: keras.KerasTensor | dict[str, keras.KerasTensor] = beat
    if context is not None:
        rhythm = keras.Input(shape=(len(context.names),), name=CONTEXT_INPUT)
        scaled = keras.layers.Normalization(
            mean=list(context.mean), variance=list(context.variance), name="rhythm_normalise"
        )(rhythm)
        dropped = keras.layers.Dropout(FEATURE_DROPOUT, name="beat_feature_dropout")(features)
        joined = keras.layers.Concatenate(name="join_rhythm")([dropped, scaled])
        hidden = keras.layers.Dense(CONTEXT_UNITS, activation="relu", name="rhythm_dense")(joined)
        wide = context.join == "wide_deep"
        features = keras.layers.Concatenate(name="wide_rhythm")([hidden, scaled]) if wide else hidden
        inputs = {BEAT_INPUT: beat, CONTEXT_INPUT: rhythm}
    if n_classes == 2:
        outputs = keras.layers.Dense(1, activation="sigmoid", name=HEAD)(features)
    else:
        outputs = keras.layers.Dense(n_classes, activation="softmax", name=HEAD)(features)
    return keras.Model(inputs, outputs, name=f"classifier_{encoder.name}")


def uses_context(model: keras.Model) -> bool:
    """Whether the model takes the rhythm context as a second input."""
    return CONTEXT_INPUT in input_names(model)


def input_names(model: keras.Model) -> list[str]:
    return [tensor.name for tensor in keras.tree.flatten(model.inputs)]


def model_inputs(model: keras.Model, beats: np.ndarray, context: np.ndarray | None = None) -> ModelInput:
    """What `model` takes: the beats (n, 187, 1), or {"beat", "rhythm"} for a model with context."""
    x = as_model_input(beats)
    if not uses_context(model):
        return x
    if context is None or np.asarray(context).ndim != 2 or len(context) != len(x):
        shape = None if context is None else np.asarray(context).shape
        raise ValueError(f"model {model.name} takes rhythm context for each of the {len(x)} beats, got {shape}")
    return {BEAT_INPUT: x, CONTEXT_INPUT: np.asarray(context, dtype=np.float32)}


def compile_classifier(
    model: keras.Model, n_classes: int, learning_rate: LearningRate, steps_per_execution: int = 1
) -> keras.Model:
    """Adam; binary CE for 2 classes, sparse categorical CE (integer labels) otherwise; "accuracy" metric.

    `learning_rate` is a rate or a schedule (models/schedules.py).
    """
    _check_classes(n_classes)
    if n_classes == 2:
        loss = keras.losses.BinaryCrossentropy()
        accuracy = keras.metrics.BinaryAccuracy(name="accuracy")
    else:
        loss = keras.losses.SparseCategoricalCrossentropy()
        accuracy = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss=loss,
        metrics=[accuracy],
        steps_per_execution=steps_per_execution,
    )
    return model


def predict_proba(
    model: keras.Model, x: np.ndarray, n_classes: int, batch_size: int = 1024, context: np.ndarray | None = None
) -> np.ndarray:
    """Class probabilities (n, n_classes) from a classifier or ensemble; sigmoid -> [1 - p, p]."""
    inputs = model_inputs(model, x, context)
    probs = class_probabilities(model.predict(inputs, batch_size=batch_size, verbose=0), n_classes)
    if probs.shape[-1] != n_classes:
        raise ValueError(f"model {model.name} gives {probs.shape[-1]} outputs per beat, expected {n_classes}")
    return probs


def build_ensemble(members: list[keras.Model], n_classes: int) -> keras.Model:
    """Average the members' outputs on one shared input; members stay trainable (trained again).

    Each member is wrapped as a sub-model named f"member_{i}_{name}" so two members with
    the same backbone (and so the same layer names) can sit side by side. When any member
    takes rhythm context the ensemble takes {"beat", "rhythm"} and hands each member what it takes.
    """
    _check_classes(n_classes)
    if not members:
        raise ValueError("an ensemble needs at least one member")
    width = 1 if n_classes == 2 else n_classes
    beat = keras.Input(shape=_beat_shape(members[0]), name=BEAT_INPUT)
    inputs: dict[str, keras.KerasTensor] = {BEAT_INPUT: beat}
    context_widths = {context_width(m) for m in members if uses_context(m)}
    if len(context_widths) > 1:
        raise ValueError(f"members take rhythm context of different widths {sorted(context_widths)}")
    if context_widths:
        inputs[CONTEXT_INPUT] = keras.Input(shape=(context_widths.pop(),), name=CONTEXT_INPUT)
    outputs = []
    for i, member in enumerate(members):
        if member.output_shape[-1] != width:
            raise ValueError(f"member {i} ({member.name}) gives {member.output_shape[-1]} outputs, expected {width}")
        member.trainable = True
        for layer in member.layers:
            layer.trainable = True
        wrapped = keras.Model(member.input, member.output, name=f"member_{i}_{member.name}")
        outputs.append(wrapped(inputs if uses_context(member) else beat))
    averaged = keras.layers.Average(name="average")(outputs) if len(outputs) > 1 else outputs[0]
    return keras.Model(inputs if len(inputs) > 1 else beat, averaged, name="ensemble")


def _beat_shape(model: keras.Model) -> tuple[int, ...]:
    tensors = keras.tree.flatten(model.inputs)
    beat = next((t for t in tensors if t.name == BEAT_INPUT), tensors[0])
    return tuple(beat.shape[1:])


def context_width(model: keras.Model) -> int:
    """How many context features the model's `rhythm` input takes."""
    return int(next(t for t in keras.tree.flatten(model.inputs) if t.name == CONTEXT_INPUT).shape[-1])


def encoder_of(model: keras.Model) -> keras.Model:
    """The encoder sub-model (named "<backbone>_encoder") of a classifier or SSL model."""
    encoders = [layer for layer in model.layers if isinstance(layer, keras.Model) and layer.name.endswith("_encoder")]
    if len(encoders) != 1:
        names = [layer.name for layer in model.layers]
        raise ValueError(f"model {model.name} has {len(encoders)} encoder sub-models (layers: {names}); expected 1")
    return encoders[0]


def _check_classes(n_classes: int) -> None:
    if n_classes < 2:
        raise ValueError(f"n_classes={n_classes} must be >= 2")
