"""Classifiers, predict_proba, weight transfer from the SSL model, and the averaging ensemble."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from ecg_mlflow.config import BackboneConfig
from ecg_mlflow.data.beats import BEAT_LENGTH
from ecg_mlflow.models.backbones import build_encoder, transfer_encoder_weights
from ecg_mlflow.models.classifier import (
    CONTEXT_UNITS,
    HEAD,
    ContextSpec,
    build_classifier,
    build_ensemble,
    compile_classifier,
    encoder_of,
    input_names,
    predict_proba,
    uses_context,
)
from ecg_mlflow.models.ssl import build_ssl_model
from ecg_mlflow.transforms import synthetic_beats

SMALL = {
    "mlp": BackboneConfig(units=16, depth=3, dense_units=8, dropout=0.1, kernel_size=1),
    "cnn": BackboneConfig(units=4, depth=2, dense_units=8, dropout=0.1, kernel_size=3),
    "lstm": BackboneConfig(units=4, depth=1, dense_units=8, dropout=0.1, kernel_size=1),
    "resnet": BackboneConfig(units=4, depth=2, dense_units=8, dropout=0.0, kernel_size=3),
}


@pytest.fixture(autouse=True)
def _seed() -> None:
    keras.utils.set_random_seed(0)


@pytest.fixture(scope="module")
def beats() -> np.ndarray:
    return synthetic_beats(20, np.random.default_rng(0))


def _classifier(backbone: str, n_classes: int, freeze: bool = False) -> keras.Model:
    return build_classifier(build_encoder(backbone, SMALL[backbone]), n_classes, freeze=freeze)


def test_multiclass_head_is_softmax_and_probabilities_sum_to_one(beats: np.ndarray) -> None:
    model = compile_classifier(_classifier("cnn", 5), 5, 1e-3)
    assert model.output_shape == (None, 5)
    assert model.get_layer("class_probs").activation.__name__ == "softmax"
    probs = predict_proba(model, beats, 5)  # (n, 187) is accepted as well as (n, 187, 1)
    assert probs.shape == (len(beats), 5)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_binary_head_is_one_sigmoid_and_predict_proba_stacks_it(beats: np.ndarray) -> None:
    model = compile_classifier(_classifier("mlp", 2), 2, 1e-3)
    assert model.output_shape == (None, 1)
    p = model.predict(beats[:, :, None], verbose=0)[:, 0]
    probs = predict_proba(model, beats, 2)
    np.testing.assert_allclose(probs, np.stack([1 - p, p], axis=1), rtol=1e-6)


@pytest.mark.parametrize(("n_classes", "labels"), [(5, np.arange(20) % 5), (2, np.arange(20) % 2)])
def test_compiled_classifier_trains_on_integer_labels(beats: np.ndarray, n_classes: int, labels: np.ndarray) -> None:
    model = compile_classifier(_classifier("cnn", n_classes), n_classes, 1e-3)
    history = model.fit(beats[:, :, None], labels, validation_data=(beats, labels), epochs=1, verbose=0)
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(history.history)


def test_freeze_keeps_the_encoder_fixed(beats: np.ndarray) -> None:
    model = compile_classifier(_classifier("cnn", 5, freeze=True), 5, 1e-2)
    encoder = encoder_of(model)
    assert not encoder.trainable and len(model.trainable_weights) == 2  # the head's kernel and bias
    before = [w.copy() for w in encoder.get_weights()]
    model.fit(beats[:, :, None], np.arange(20) % 5, epochs=1, verbose=0)
    for old, new in zip(before, encoder.get_weights(), strict=True):
        np.testing.assert_array_equal(old, new)


def test_ssl_encoder_weights_transfer_into_a_fresh_classifier(beats: np.ndarray) -> None:
    ssl = build_ssl_model(build_encoder("cnn", SMALL["cnn"]))
    classifier = _classifier("cnn", 5)
    transfer_encoder_weights(encoder_of(ssl), encoder_of(classifier))
    x = beats[:, :, None]
    np.testing.assert_allclose(
        encoder_of(ssl).predict(x, verbose=0), encoder_of(classifier).predict(x, verbose=0), rtol=1e-6
    )


def test_encoder_of_refuses_a_model_without_one() -> None:
    inputs = keras.Input((BEAT_LENGTH, 1))
    plain = keras.Model(inputs, keras.layers.Flatten()(inputs))
    with pytest.raises(ValueError, match="encoder"):
        encoder_of(plain)


@pytest.mark.parametrize("n_classes", [5, 2])
def test_ensemble_averages_its_members(beats: np.ndarray, n_classes: int) -> None:
    members = [_classifier("mlp", n_classes), _classifier("cnn", n_classes), _classifier("lstm", n_classes)]
    expected = np.mean([predict_proba(m, beats, n_classes) for m in members], axis=0)
    ensemble = build_ensemble(members, n_classes)
    assert [layer.name for layer in ensemble.layers if layer.name.startswith("member_")] == [
        "member_0_classifier_mlp_encoder",
        "member_1_classifier_cnn_encoder",
        "member_2_classifier_lstm_encoder",
    ]
    np.testing.assert_allclose(predict_proba(ensemble, beats, n_classes), expected, rtol=1e-5, atol=1e-7)


def test_ensemble_of_same_backbone_members_is_trainable_and_saves(tmp_path, beats: np.ndarray) -> None:
    first, second = _classifier("cnn", 5, freeze=True), _classifier("cnn", 5)  # identical layer names inside
    ensemble = compile_classifier(build_ensemble([first, second], 5), 5, 1e-3)
    assert len(ensemble.trainable_weights) == len(first.weights) + len(second.weights)  # unfrozen
    labels = np.arange(20) % 5
    ensemble.fit(beats[:, :, None], labels, epochs=1, verbose=0)
    path = tmp_path / "ensemble.keras"
    ensemble.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(predict_proba(loaded, beats, 5), predict_proba(ensemble, beats, 5), rtol=1e-6)


def test_ensemble_refuses_members_with_the_wrong_width() -> None:
    with pytest.raises(ValueError, match="member 1"):
        build_ensemble([_classifier("mlp", 5), _classifier("cnn", 3)], 5)


def test_fewer_than_two_classes_is_refused() -> None:
    with pytest.raises(ValueError, match="n_classes"):
        build_classifier(build_encoder("cnn", SMALL["cnn"]), 1)


@pytest.mark.parametrize("backbone", ["mlp", "cnn", "lstm", "resnet"])
def test_every_backbone_takes_context_as_a_second_named_input(beats: np.ndarray, backbone: str) -> None:
    context = np.random.default_rng(0).uniform(0.5, 1.5, size=(len(beats), 3)).astype(np.float32)
    spec = ContextSpec.fit(("a", "b", "c"), context)
    encoder = build_encoder(backbone, SMALL[backbone])
    model = build_classifier(encoder, 5, context=spec)
    assert input_names(model) == ["beat", "rhythm"] and uses_context(model)
    assert encoder_of(model) is encoder  # the encoder is untouched: pretrained weights transfer unchanged
    probs = predict_proba(model, beats, 5, context=context)
    assert probs.shape == (len(beats), 5)
    with pytest.raises(ValueError, match="rhythm context"):
        predict_proba(model, beats, 5)
    # the context is normalised inside the model with the training statistics
    norm = model.get_layer("rhythm_normalise")
    np.testing.assert_allclose(np.ravel(norm.mean), spec.mean, rtol=1e-6)


@pytest.mark.parametrize("join", ["wide_deep", "deep"])
def test_the_context_join_decides_whether_the_head_sees_the_numbers_directly(beats: np.ndarray, join: str) -> None:
    context = np.random.default_rng(2).uniform(0.5, 1.5, size=(len(beats), 3)).astype(np.float32)
    model = build_classifier(build_encoder("mlp", SMALL["mlp"]), 5, context=ContextSpec.fit("abc", context, join))
    head_input = model.get_layer(HEAD).input
    assert head_input.shape[-1] == CONTEXT_UNITS + (3 if join == "wide_deep" else 0)  # plus the wide path
    assert predict_proba(model, beats, 5, context=context).shape == (len(beats), 5)


def test_ensemble_with_context_members_takes_both_inputs_and_saves(tmp_path, beats: np.ndarray) -> None:
    context = np.random.default_rng(1).uniform(0.5, 1.5, size=(len(beats), 4)).astype(np.float32)
    spec = ContextSpec.fit(("a", "b", "c", "d"), context)
    with_context = build_classifier(build_encoder("mlp", SMALL["mlp"]), 5, context=spec)
    plain = _classifier("cnn", 5)
    expected = (predict_proba(with_context, beats, 5, context=context) + predict_proba(plain, beats, 5)) / 2
    ensemble = compile_classifier(build_ensemble([with_context, plain], 5), 5, 1e-3)
    assert input_names(ensemble) == ["beat", "rhythm"]
    np.testing.assert_allclose(predict_proba(ensemble, beats, 5, context=context), expected, rtol=1e-5, atol=1e-7)
    path = tmp_path / "ensemble.keras"
    ensemble.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(
        predict_proba(loaded, beats, 5, context=context), predict_proba(ensemble, beats, 5, context=context), rtol=1e-6
    )


def test_ensemble_refuses_members_with_context_of_different_widths(beats: np.ndarray) -> None:
    def member(width: int) -> keras.Model:
        spec = ContextSpec.fit(tuple("abcdef"[:width]), np.ones((4, width)) + np.arange(4)[:, None])
        return build_classifier(build_encoder("mlp", SMALL["mlp"]), 5, context=spec)

    with pytest.raises(ValueError, match="different widths"):
        build_ensemble([member(2), member(3)], 5)
