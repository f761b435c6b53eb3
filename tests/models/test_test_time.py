"""Test-time adaptation to each recording: label-free, per recording, undone after each, repeatable."""

from __future__ import annotations

import numpy as np
import pytest

from ecg_mlflow.data.adaptation import ADAPTATIONS
from ecg_mlflow.models.backbones import build_encoder
from ecg_mlflow.models.catalog import BACKBONES
from ecg_mlflow.models.classifier import ContextSpec, build_classifier
from ecg_mlflow.models.test_time import (
    MIN_BEATS,
    AdaptationError,
    Recording,
    adapted_probabilities,
    batch_norms,
    confident_labels,
    dominant_beats,
    em_prior_shift,
)

CHANGING = sorted(name for name, adaptation in ADAPTATIONS.items() if adaptation.recording)
NAMES = ("pre_rr", "pre_local")


def _beats(n: int, seed: int, noise: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    shape = np.exp(-0.5 * ((np.arange(187) - 62) / 4.0) ** 2)
    x = (shape[None, :] * rng.uniform(0.8, 1.2, (n, 1)) + rng.normal(0, noise, (n, 187))).astype(np.float32)
    context = np.column_stack([rng.uniform(0.6, 1.0, n), rng.uniform(0.92, 1.1, n)]).astype(np.float32)
    return x, context


@pytest.fixture(scope="module")
def network():
    """A small untrained CNN with normalisation layers and rhythm context (every adaptation can change it)."""
    _, context = _beats(64, 0)
    encoder = build_encoder("cnn_bn", BACKBONES["cnn_bn"].defaults)
    return build_classifier(encoder, 5, context=ContextSpec.fit(NAMES, context))


@pytest.mark.parametrize("adapt", CHANGING)
def test_each_adaptation_is_undone_after_each_recording_and_repeatable(network, adapt) -> None:
    x, context = _beats(2 * 60, 1)
    records = np.repeat(np.array(["r1", "r2"], dtype=object), 60)
    before = [w.copy() for w in network.get_weights()]
    first = adapted_probabilities(network, (x, context, NAMES), records, adapt, 5, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(before, network.get_weights(), strict=True))
    again = adapted_probabilities(network, (x, context, NAMES), records, adapt, 5, seed=3)
    np.testing.assert_allclose(first.proba, again.proba, atol=1e-6)
    np.testing.assert_allclose(first.proba.sum(axis=1), 1.0, atol=1e-4)
    # A recording's answer does not depend on the other recordings of the set.
    alone = adapted_probabilities(network, (x[60:], context[60:], NAMES), records[60:], adapt, 5, seed=3)
    np.testing.assert_allclose(alone.proba, first.proba[60:], atol=1e-5)


@pytest.mark.parametrize("adapt", ["adabn", "tent", "self_train", "ssl"])
def test_an_adaptation_that_trains_changes_the_answers(network, adapt) -> None:
    x, context = _beats(80, 2)
    records = np.zeros(80, dtype=np.int64)
    plain = adapted_probabilities(network, (x * 3.0, context, NAMES), records, "none", 5).proba
    adapted = adapted_probabilities(network, (x * 3.0, context, NAMES), records, adapt, 5).proba
    assert np.abs(plain - adapted).max() > 1e-4


def test_a_recording_too_short_is_labelled_as_trained_and_named(network) -> None:
    x, context = _beats(MIN_BEATS + 10, 4)
    records = np.array(["short"] * (MIN_BEATS - 1) + ["long"] * 11, dtype=object)
    plain = adapted_probabilities(network, (x, context, NAMES), records, "none", 5).proba
    adapted = adapted_probabilities(network, (x, context, NAMES), records, "self_train", 5)
    assert adapted.unadapted == ("long", "short")  # both under MIN_BEATS here
    np.testing.assert_allclose(adapted.proba, plain, atol=1e-6)


def test_normalisation_adaptations_need_normalisation_layers() -> None:
    x, _ = _beats(40, 5)
    plain = build_classifier(build_encoder("cnn", BACKBONES["cnn"].defaults), 5)
    assert not list(batch_norms(plain))
    with pytest.raises(AdaptationError, match=r"no normalisation layers.*cnn_bn"):
        adapted_probabilities(plain, (x, None, ()), np.zeros(40), "adabn", 5)


def test_em_finds_a_recording_mostly_of_one_class() -> None:
    """A model trained on balanced classes says 60 % N for normal beats; in a recording of 95 % such beats EM
    raises the N prior, so those beats become sure N, while the beats it was sure were V stay V."""
    normal = np.tile([0.6, 0.2, 0.2], (95, 1))
    odd = np.tile([0.01, 0.01, 0.98], (5, 1))
    adjusted = em_prior_shift(np.vstack([normal, odd]))
    assert adjusted[:95, 0].min() > 0.9
    assert (adjusted[95:].argmax(axis=1) == 2).all()
    assert adjusted.mean(axis=0)[0] > 0.9
    balanced = np.eye(3)[np.arange(99) % 3] * 0.8 + 0.2 / 3
    np.testing.assert_allclose(em_prior_shift(balanced), balanced, atol=1e-5)


def test_class_wise_thresholds_keep_a_rare_class() -> None:
    proba = np.vstack([np.tile([0.99, 0.01], (98, 1)), [[0.4, 0.6], [0.45, 0.55]]])
    labels, keep = confident_labels(proba, share=0.5)
    assert keep[labels == 1].sum() == 1 and keep[labels == 0].sum() >= 49


def test_dominant_beats_are_the_usual_shape_at_the_usual_time() -> None:
    x, context = _beats(50, 6, noise=0.01)
    x[10] = -x[10]  # another shape
    context[20, 1] = 0.6  # premature
    usual = dominant_beats(Recording(x, context, NAMES))
    assert not usual[10] and not usual[20] and usual.sum() >= 45
    assert dominant_beats(Recording(x))[20]  # without the rhythm numbers, shape alone
    likeness = np.column_stack([context[:, 1], np.where(np.arange(50) == 30, 0.5, 0.97)])
    told = dominant_beats(Recording(x, likeness, ("pre_local", "corr_record")))
    assert not told[30] and told[10]  # the context's likeness to the record's beats, where the model takes it


def test_every_member_of_an_average_adapts_its_own_encoder(network) -> None:
    """An average of networks (a cross-validation's final model) holds one encoder per member; ssl adapts each."""
    from ecg_mlflow.models.classifier import build_ensemble
    from ecg_mlflow.models.test_time import encoders

    other = build_classifier(build_encoder("cnn_bn", BACKBONES["cnn_bn"].defaults), 5, context=network_context())
    averaged = build_ensemble([network, other], 5)
    assert [encoder.name for encoder in encoders(averaged)] == ["cnn_bn_encoder", "cnn_bn_encoder"]
    x, context = _beats(MIN_BEATS, 7)
    answer = adapted_probabilities(averaged, (x, context, NAMES), np.zeros(MIN_BEATS), "ssl", 5)
    assert answer.proba.shape == (MIN_BEATS, 5) and not answer.unadapted


def network_context() -> ContextSpec:
    return ContextSpec.fit(NAMES, _beats(64, 0)[1])
