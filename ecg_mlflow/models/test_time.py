"""Test-time adaptation: a trained classifier adapted to one recording, without labels, before it labels its beats.

Why: the model for new patients carries over on average, not recording by recording. Its false alarms come in
bursts from the recordings least like the training patients (another recorder, noise, the patient's own QRS), and
nothing else in the pipeline looks at a recording as a whole before labelling its beats.

Each method is a function `(model, recording, n_classes, rng) -> probabilities`, declared in
data/adaptation.py (`recording="ecg_mlflow.models.test_time:<name>"`). It is given the recording's beats and
context and never a label: the signature holds none, and a test scrambles the annotations and gets the same
answers. `adapted_probabilities` runs one over every recording of a set and restores the trained weights after
each, so one recording's adaptation never reaches another's.

- prior: EM on the recording's class priors (Saerens, Latinne & Decaestecker 2002, "Adjusting the outputs of a
  classifier to new a priori probabilities"). Most beats of a recording are normal; a model trained with balanced
  class weights answers as if the classes were equally common.
- adabn: the normalisation statistics re-estimated on the recording (Li et al. 2016, AdaBN).
- tent: adabn, then the normalisation's scale and shift trained to minimise the entropy of the answers (Wang et
  al. 2021, Tent).
- self_train: fine-tuned on its own most confident answers with class-wise thresholds, so rare classes keep
  pseudo-labels (Zou et al. 2018, class-balanced self-training).
- dominant: self_train, with the Holter analyst's prior: beats of the recording's dominant shape that come at
  the regular rhythm are the patient's normal beats.
- ssl: test-time training with the paper's pretext task (Sun et al. 2020, TTT): new heads for the 8 transforms
  are fitted on the recording's transformed beats with the encoder fixed (logistic regressions), then encoder and
  heads trained together a few steps.

The knobs (steps, rates, shares) are module constants: each is a choice measured on DS1 cross-validation
(docs/results.md), none on DS2 or the SVDB.
"""

from __future__ import annotations

import importlib
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import keras
import numpy as np

from ecg_mlflow.data.adaptation import ADAPTATIONS
from ecg_mlflow.data.morphology import row_correlation
from ecg_mlflow.errors import UserError
from ecg_mlflow.models.catalog import BACKBONES
from ecg_mlflow.models.classifier import ModelInput, model_inputs, predict_proba
from ecg_mlflow.models.ssl import build_ssl_model
from ecg_mlflow.transforms import TRANSFORM_NAMES, TransformConfig, build_representation_set

MIN_BEATS = 30  # fewer beats than this say too little about a recording: its beats are labelled unadapted
NORMAL_CLASS = 0  # every database declares its normal class first (N; PTB's "normal")
BATCH = 128
EM_ITERATIONS, EM_TOLERANCE = 100, 1e-6
MAX_STATISTICS_BEATS = 8192  # adabn estimates on at most this many beats, evenly spread (a day's Holter fits)
TENT_STEPS, TENT_RATE = 10, 1e-3
SELF_TRAIN_SHARE, SELF_TRAIN_STEPS, SELF_TRAIN_RATE = 0.5, 20, 1e-4
DOMINANT_CORRELATION, REGULAR_RHYTHM = 0.9, 0.9  # shape like the median beat; pre-R-R / local R-R at least this
SSL_HEAD_ITERATIONS, SSL_STEPS, SSL_RATE = 200, 10, 1e-4

# (the model to adapt, in place; one recording; the number of classes; its random numbers) -> (n, n_classes)
Adapter = Callable[[keras.Model, "Recording", int, np.random.Generator], np.ndarray]


class AdaptationError(UserError, ValueError):
    """An adaptation that cannot work on this model (adabn on a network with no normalisation layers)."""


@dataclass(frozen=True)
class Recording:
    """One recording's beats as a model takes them: (n, L) beats and their context numbers, no labels."""

    x: np.ndarray
    context: np.ndarray | None = None
    context_names: tuple[str, ...] = ()

    def inputs(self, model: keras.Model, rows: np.ndarray | None = None) -> ModelInput:
        chosen = slice(None) if rows is None else rows
        return model_inputs(model, self.x[chosen], None if self.context is None else self.context[chosen])

    def column(self, name: str) -> np.ndarray | None:
        """A context number of every beat, or None when the model was given no such column."""
        if self.context is None or name not in self.context_names:
            return None
        return self.context[:, self.context_names.index(name)]


@dataclass(frozen=True)
class Adapted:
    """Every beat's probabilities, and the recordings that were too short to adapt (labelled as trained)."""

    proba: np.ndarray
    unadapted: tuple[str, ...] = ()


def load_adapter(adapt: str) -> Adapter | None:
    """The function of an adaptation that changes the model per recording; None for one that does not."""
    target = ADAPTATIONS[adapt].recording
    if target is None:
        return None
    module, _, function = target.partition(":")
    return getattr(importlib.import_module(module), function)


def adapted_probabilities(
    model: keras.Model,
    recordings: tuple[np.ndarray, np.ndarray | None, tuple[str, ...]],
    records: np.ndarray,
    adapt: str,
    n_classes: int,
    seed: int = 0,
) -> Adapted:
    """(x, context, context names) of many beats, adapted to recording by recording (`records` names each beat's).

    The model's weights are restored after every recording, and on error. A recording's random numbers come
    from the seed and its own name, so its answer does not depend on which other recordings are in the set.
    """
    x, context, names = recordings
    adapter = load_adapter(adapt)
    if adapter is None:
        return Adapted(predict_proba(model, x, n_classes, context=context))
    proba = np.zeros((len(x), n_classes), dtype=np.float32)
    unadapted: list[str] = []
    trained = model.get_weights()
    try:
        for record in np.unique(np.asarray(records)):
            rows = np.flatnonzero(records == record)
            recording = Recording(x[rows], None if context is None else context[rows], names)
            if len(rows) < MIN_BEATS:
                unadapted.append(str(record))
                proba[rows] = _predict(model, recording, n_classes)
                continue
            rng = np.random.default_rng([seed, zlib.crc32(str(record).encode())])
            proba[rows] = adapter(model, recording, n_classes, rng)
            model.set_weights(trained)
    finally:
        model.set_weights(trained)
    return Adapted(proba, tuple(unadapted))


def _predict(model: keras.Model, recording: Recording, n_classes: int) -> np.ndarray:
    return predict_proba(model, recording.x, n_classes, context=recording.context)


# --- the methods ---------------------------------------------------------------------------------------------------


def prior(model: keras.Model, recording: Recording, n_classes: int, rng: np.random.Generator) -> np.ndarray:
    """The model's answers under the recording's own class priors, found by EM (no weight changes)."""
    return em_prior_shift(_predict(model, recording, n_classes))


def em_prior_shift(proba: np.ndarray, trained_priors: np.ndarray | None = None) -> np.ndarray:
    """Saerens et al. 2002: posteriors re-weighted by new priors / training priors, the new priors being the mean
    re-weighted posterior, to a fixed point. Training priors default to equal (balanced class weights)."""
    proba = np.clip(np.asarray(proba, dtype=np.float64), 1e-7, 1.0)
    trained = np.full(proba.shape[1], 1.0 / proba.shape[1]) if trained_priors is None else trained_priors
    priors, adjusted = trained, proba
    for _ in range(EM_ITERATIONS):
        adjusted = proba * (priors / trained)
        adjusted /= adjusted.sum(axis=1, keepdims=True)
        new = adjusted.mean(axis=0)
        if np.abs(new - priors).max() < EM_TOLERANCE:
            break
        priors = new
    return adjusted.astype(np.float32)


def adabn(model: keras.Model, recording: Recording, n_classes: int, rng: np.random.Generator) -> np.ndarray:
    renormalise(model, recording)
    return _predict(model, recording, n_classes)


def renormalise(model: keras.Model, recording: Recording) -> None:
    """Every BatchNormalization's moving statistics set to the recording's (one pass with momentum 0)."""
    norms = list(batch_norms(model))
    if not norms:
        raise AdaptationError(
            f"the model {model.name} has no normalisation layers to adapt: train a backbone with them (cnn_bn) "
            "or choose another adapt"
        )
    rows = np.unique(np.linspace(0, len(recording.x) - 1, min(len(recording.x), MAX_STATISTICS_BEATS)).astype(int))
    momenta = [norm.momentum for norm in norms]
    try:
        for norm in norms:
            norm.momentum = 0.0
        model(recording.inputs(model, rows), training=True)
    finally:
        for norm, momentum in zip(norms, momenta, strict=True):
            norm.momentum = momentum


def tent(model: keras.Model, recording: Recording, n_classes: int, rng: np.random.Generator) -> np.ndarray:
    renormalise(model, recording)
    scales = [weight for norm in batch_norms(model) for weight in (norm.gamma, norm.beta) if weight is not None]

    def entropy(outputs, rows):
        p = _probabilities(outputs, n_classes)
        return -keras.ops.mean(keras.ops.sum(p * keras.ops.log(keras.ops.clip(p, 1e-7, 1.0)), axis=1))

    descend(model, scales, (lambda rows: recording.inputs(model, rows), entropy), len(recording.x), TENT_STEPS, rng)
    return _predict(model, recording, n_classes)


def self_train(model: keras.Model, recording: Recording, n_classes: int, rng: np.random.Generator) -> np.ndarray:
    labels, keep = confident_labels(_predict(model, recording, n_classes))
    return _fit_own_labels(model, recording, labels, keep, n_classes, rng)


def dominant(model: keras.Model, recording: Recording, n_classes: int, rng: np.random.Generator) -> np.ndarray:
    labels, keep = confident_labels(_predict(model, recording, n_classes))
    usual = dominant_beats(recording)
    labels[usual], keep[usual] = NORMAL_CLASS, True
    return _fit_own_labels(model, recording, labels, keep, n_classes, rng)


def confident_labels(proba: np.ndarray, share: float = SELF_TRAIN_SHARE) -> tuple[np.ndarray, np.ndarray]:
    """The model's answers, and which to learn from: of the beats it calls class c, the `share` it is most sure
    of (class-wise thresholds, so a class it rarely calls keeps its pseudo-labels)."""
    labels, confidence = proba.argmax(axis=1), proba.max(axis=1)
    keep = np.zeros(len(labels), dtype=bool)
    for label in np.unique(labels):
        rows = labels == label
        keep[rows] = confidence[rows] >= np.quantile(confidence[rows], 1.0 - share)
    return labels, keep


def dominant_beats(recording: Recording) -> np.ndarray:
    """The patient's own normal beat: beats shaped like the recording's median beat (correlation >=
    DOMINANT_CORRELATION) that are not premature (pre_local >= REGULAR_RHYTHM, when the model takes the rhythm
    numbers). The shape is the context's `corr_record` (QRS to T wave of the Kachuee beat, data/morphology.py) when
    the model takes it, else the correlation of the model's input with its median. Measured on the DS1 records:
    with corr_record and pre_local, 74 % of the beats are dominant, and 99.6 % of those are N."""
    shape = recording.column("corr_record")
    if shape is None:
        shape = row_correlation(recording.x, np.median(recording.x, axis=0, keepdims=True))
    usual = shape >= DOMINANT_CORRELATION
    timing = recording.column("pre_local")
    return usual if timing is None else usual & (timing >= REGULAR_RHYTHM)


def _fit_own_labels(
    model: keras.Model,
    recording: Recording,
    labels: np.ndarray,
    keep: np.ndarray,
    n_classes: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """A few steps of class-balanced cross-entropy on the kept beats' own labels, then the answers."""
    kept = np.flatnonzero(keep)
    counts = np.bincount(labels[kept], minlength=n_classes).astype(np.float64)
    weights = np.where(counts > 0, len(kept) / (np.count_nonzero(counts) * np.maximum(counts, 1)), 0.0)

    def cross_entropy(outputs, rows):
        picked = keras.ops.take_along_axis(
            _probabilities(outputs, n_classes), keras.ops.convert_to_tensor(labels[rows][:, None]), axis=1
        )[:, 0]
        weight = keras.ops.convert_to_tensor(weights[labels[rows]].astype(np.float32))
        return -keras.ops.mean(weight * keras.ops.log(keras.ops.clip(picked, 1e-7, 1.0)))

    batches = (lambda rows: recording.inputs(model, rows), cross_entropy)
    descend(model, model.trainable_variables, batches, kept, SELF_TRAIN_STEPS, rng, SELF_TRAIN_RATE)
    return _predict(model, recording, n_classes)


def ssl(model: keras.Model, recording: Recording, n_classes: int, rng: np.random.Generator) -> np.ndarray:
    """For each encoder of the model (one per averaged network): new transform heads fitted on the recording's 8
    versions of every beat with the encoder fixed (logistic regressions on its features), then encoder and heads
    trained together a few steps; the task head is left as trained."""
    versions, targets = build_representation_set(recording.x, TransformConfig(), rng)
    for encoder in encoders(model):
        pretext = build_ssl_model(encoder)
        fit_transform_heads(pretext, encoder.predict(versions[:, :, None], batch_size=1024, verbose=0), targets)

        def transform_loss(outputs, rows):
            guessed = keras.ops.concatenate(outputs, axis=1)
            return keras.ops.mean(keras.losses.binary_crossentropy(keras.ops.convert_to_tensor(targets[rows]), guessed))

        batches = (lambda rows: versions[rows][:, :, None], transform_loss)
        descend(pretext, list(pretext.trainable_variables), batches, len(versions), SSL_STEPS, rng, SSL_RATE)
    return _predict(model, recording, n_classes)


def fit_transform_heads(pretext: keras.Model, features: np.ndarray, targets: np.ndarray) -> None:
    """Each "was transform k applied?" head set to a logistic regression on the encoder's features: the heads start
    where the fixed encoder lets them, so the joint steps adapt the encoder rather than train heads from noise."""
    from sklearn.linear_model import LogisticRegression

    for k, name in enumerate(TRANSFORM_NAMES):
        fitted = LogisticRegression(max_iter=SSL_HEAD_ITERATIONS).fit(features, targets[:, k])
        pretext.get_layer(name).set_weights([fitted.coef_.T.astype(np.float32), fitted.intercept_.astype(np.float32)])


# --- shared machinery ----------------------------------------------------------------------------------------------


def descend(
    model: keras.Model,
    variables: list,
    batches: tuple[Callable[[np.ndarray], ModelInput], Callable],
    pool: int | np.ndarray,
    steps: int,
    rng: np.random.Generator,
    learning_rate: float = TENT_RATE,
) -> None:
    """`steps` Adam steps on `variables` against loss(model(inputs(rows)), rows) over random batches of `pool`
    (rows, or a count). The model runs in inference mode (no dropout; normalisation by its moving statistics)."""
    import tensorflow as tf

    inputs_of, loss_of = batches
    rows = np.arange(pool) if isinstance(pool, int) else np.asarray(pool)
    if len(rows) == 0 or not variables:
        return
    optimizer = keras.optimizers.Adam(learning_rate=learning_rate)
    for _ in range(steps):
        batch = np.sort(rng.choice(rows, size=min(BATCH, len(rows)), replace=False))
        with tf.GradientTape() as tape:
            loss = loss_of(model(inputs_of(batch), training=False), batch)
        optimizer.apply(tape.gradient(loss, variables), variables)


def _probabilities(outputs, n_classes: int):
    """A network's outputs as (n, n_classes) probabilities inside a gradient (one sigmoid p: [1 - p, p])."""
    if n_classes == 2 and outputs.shape[-1] == 1:
        return keras.ops.concatenate([1.0 - outputs, outputs], axis=1)
    return outputs


def batch_norms(model: keras.Model) -> Iterator[keras.layers.BatchNormalization]:
    """Every BatchNormalization of the model, inside nested models (encoders, averaged members) too."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            yield layer
        elif isinstance(layer, keras.Model):
            yield from batch_norms(layer)


def encoders(model: keras.Model) -> Iterator[keras.Model]:
    """Every encoder sub-model ("<backbone>_encoder", models/backbones.build_encoder): one per network, one per
    member in an average (whose members are named member_<i>_classifier_<backbone>_encoder, and are not encoders)."""
    names = {f"{backbone}_encoder" for backbone in BACKBONES}
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            if layer.name in names:
                yield layer
            else:
                yield from encoders(layer)
