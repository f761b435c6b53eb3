"""Supervised classifiers on an encoder, and the averaging ensemble of trained classifiers.

Two classes (PTB: normal / MI) use one sigmoid unit with binary cross-entropy as in the
paper; more (MIT: N S V F Q) use softmax with sparse categorical cross-entropy on integer
labels. predict_proba hides the difference: it always returns (n, n_classes).
"""

from __future__ import annotations

import keras
import numpy as np

HEAD = "class_probs"


def build_classifier(encoder: keras.Model, n_classes: int, freeze: bool = False) -> keras.Model:
    """encoder + task head; freeze=True keeps the (pretrained) encoder fixed as a feature extractor."""
    _check_classes(n_classes)
    encoder.trainable = not freeze
    inputs = keras.Input(shape=encoder.input_shape[1:], name="beat")
    features = encoder(inputs)
    if n_classes == 2:
        outputs = keras.layers.Dense(1, activation="sigmoid", name=HEAD)(features)
    else:
        outputs = keras.layers.Dense(n_classes, activation="softmax", name=HEAD)(features)
    return keras.Model(inputs, outputs, name=f"classifier_{encoder.name}")


def compile_classifier(
    model: keras.Model, n_classes: int, learning_rate: float, steps_per_execution: int = 1
) -> keras.Model:
    """Adam; binary CE for 2 classes, sparse categorical CE (integer labels) otherwise; "accuracy" metric."""
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


def predict_proba(model: keras.Model, x: np.ndarray, n_classes: int, batch_size: int = 1024) -> np.ndarray:
    """Class probabilities (n, n_classes) from a classifier or ensemble; sigmoid -> [1 - p, p]."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 2:
        x = x[:, :, None]
    probs = np.asarray(model.predict(x, batch_size=batch_size, verbose=0), dtype=np.float32)
    if n_classes == 2 and probs.shape[-1] == 1:
        probs = np.concatenate([1.0 - probs, probs], axis=1)
    if probs.shape[-1] != n_classes:
        raise ValueError(f"model {model.name} gives {probs.shape[-1]} outputs per beat, expected {n_classes}")
    return probs


def build_ensemble(members: list[keras.Model], n_classes: int) -> keras.Model:
    """Average the members' outputs on one shared input; members stay trainable (trained again).

    Each member is wrapped as a sub-model named f"member_{i}_{name}" so two members with
    the same backbone (and so the same layer names) can sit side by side.
    """
    _check_classes(n_classes)
    if not members:
        raise ValueError("an ensemble needs at least one member")
    width = 1 if n_classes == 2 else n_classes
    inputs = keras.Input(shape=members[0].input_shape[1:], name="beat")
    outputs = []
    for i, member in enumerate(members):
        if member.output_shape[-1] != width:
            raise ValueError(f"member {i} ({member.name}) gives {member.output_shape[-1]} outputs, expected {width}")
        member.trainable = True
        for layer in member.layers:
            layer.trainable = True
        wrapped = keras.Model(member.inputs[0], member.outputs[0], name=f"member_{i}_{member.name}")
        outputs.append(wrapped(inputs))
    averaged = keras.layers.Average(name="average")(outputs) if len(outputs) > 1 else outputs[0]
    return keras.Model(inputs, averaged, name="ensemble")


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
