"""Encoders: output shapes, layer names and exact parameter counts from the architecture formulas."""

from __future__ import annotations

from dataclasses import replace
from itertools import pairwise

import keras
import numpy as np
import pytest

from ecg_mlflow.config import BACKBONE_DEFAULTS, BACKBONES, BackboneConfig, ConfigError
from ecg_mlflow.data.beats import BEAT_LENGTH
from ecg_mlflow.models.backbones import as_model_input, build_encoder, transfer_encoder_weights


@pytest.fixture(autouse=True)
def _seed() -> None:
    keras.utils.set_random_seed(0)


def _dense(n_in: int, n_out: int) -> int:
    return n_in * n_out + n_out


def _conv(kernel: int, c_in: int, c_out: int) -> int:
    return kernel * c_in * c_out + c_out


def mlp_params(c: BackboneConfig, length: int = BEAT_LENGTH) -> int:
    widths = [length] + [c.units] * (c.depth - 2) + [c.dense_units]
    return sum(_dense(a, b) for a, b in pairwise(widths))


def cnn_params(c: BackboneConfig, length: int = BEAT_LENGTH) -> int:
    convs = _conv(c.kernel_size, 1, c.units) + (c.depth - 1) * _conv(c.kernel_size, c.units, c.units)
    flat = (length // 2**c.depth) * c.units
    return convs + _dense(flat, c.dense_units) + _dense(c.dense_units, c.dense_units)


def cnn_bn_params(c: BackboneConfig, length: int = BEAT_LENGTH) -> int:
    """The CNN's, and 4 numbers per filter per BatchNormalization (scale, shift, moving mean and variance)."""
    return cnn_params(c, length) + c.depth * 4 * c.units


def lstm_params(c: BackboneConfig) -> int:
    first = 4 * (1 * c.units + c.units * c.units + c.units)
    rest = (c.depth - 1) * 4 * (2 * c.units * c.units + c.units)
    return first + rest + _dense(c.units, c.dense_units)


def resnet_params(c: BackboneConfig, length: int = BEAT_LENGTH) -> int:
    for _ in range(c.depth):
        length = (length - 5) // 2 + 1
    blocks = c.depth * 2 * _conv(c.kernel_size, c.units, c.units)
    return _conv(c.kernel_size, 1, c.units) + blocks + _dense(length * c.units, c.dense_units)


FORMULAS = {
    "mlp": mlp_params,
    "cnn": cnn_params,
    "cnn_bn": cnn_bn_params,
    "lstm": lstm_params,
    "resnet": resnet_params,
}
SMALL = {
    "mlp": BackboneConfig(units=32, depth=4, dense_units=16, dropout=0.0, kernel_size=1),
    "cnn": BackboneConfig(units=8, depth=2, dense_units=16, dropout=0.0, kernel_size=3),
    "cnn_bn": BackboneConfig(units=8, depth=2, dense_units=16, dropout=0.0, kernel_size=3),
    "lstm": BackboneConfig(units=8, depth=2, dense_units=16, dropout=0.2, kernel_size=1),
    "resnet": BackboneConfig(units=8, depth=2, dense_units=16, dropout=0.1, kernel_size=3),
}


@pytest.mark.parametrize("backbone", BACKBONES)
def test_default_encoder_shape_name_and_parameter_count(backbone: str) -> None:
    config = BACKBONE_DEFAULTS[backbone]
    encoder = build_encoder(backbone, config)
    assert encoder.name == f"{backbone}_encoder"
    assert encoder.input_shape == (None, BEAT_LENGTH, 1)
    assert encoder.output_shape == (None, config.dense_units)
    assert encoder.count_params() == FORMULAS[backbone](config)


def test_default_parameter_counts_documented_in_docs_models_md() -> None:
    counts = {b: build_encoder(b, BACKBONE_DEFAULTS[b]).count_params() for b in BACKBONES}
    assert counts == {"mlp": 327_744, "cnn": 30_464, "cnn_bn": 30_656, "lstm": 21_056, "resnet": 53_792}


@pytest.mark.parametrize("backbone", BACKBONES)
def test_small_configs_follow_the_formula_and_run(backbone: str) -> None:
    config = SMALL[backbone]
    encoder = build_encoder(backbone, config)
    assert encoder.count_params() == FORMULAS[backbone](config)
    features = encoder.predict(np.zeros((3, BEAT_LENGTH, 1), dtype=np.float32), verbose=0)
    assert features.shape == (3, config.dense_units)


def test_mlp_has_depth_dense_layers_including_the_task_head() -> None:
    encoder = build_encoder("mlp", BACKBONE_DEFAULTS["mlp"])
    dense = [layer for layer in encoder.layers if isinstance(layer, keras.layers.Dense)]
    assert len(dense) == BACKBONE_DEFAULTS["mlp"].depth - 1  # the 7th is the head
    assert all(layer.activation.__name__ == "relu" for layer in dense)
    assert sum(isinstance(layer, keras.layers.Dropout) for layer in encoder.layers) == len(dense) - 1


def test_mlp_refuses_depth_below_2() -> None:
    with pytest.raises(ConfigError, match="depth"):
        build_encoder("mlp", BackboneConfig(units=8, depth=1, dense_units=8, dropout=0.0, kernel_size=1))


def test_cnn_layout_is_conv_leakyrelu_pool_blocks() -> None:
    encoder = build_encoder("cnn", BACKBONE_DEFAULTS["cnn"])
    kinds = [type(layer).__name__ for layer in encoder.layers[1:10]]
    assert kinds == ["Conv1D", "LeakyReLU", "MaxPooling1D"] * 3
    assert [layer.name for layer in encoder.layers if layer.weights] == [
        "enc_conv1",
        "enc_conv2",
        "enc_conv3",
        "enc_dense1",
        "enc_dense2",
    ]


def test_unknown_backbone_is_refused() -> None:
    with pytest.raises(ConfigError, match="backbone"):
        build_encoder("transformer", BACKBONE_DEFAULTS["cnn"])


def test_other_input_length() -> None:
    encoder = build_encoder("cnn", BACKBONE_DEFAULTS["cnn"], input_length=100)
    assert encoder.count_params() == cnn_params(BACKBONE_DEFAULTS["cnn"], length=100)


def test_as_model_input_adds_a_channel_without_copying() -> None:
    beats = np.ones((4, BEAT_LENGTH), dtype=np.float32)
    x = as_model_input(beats)
    assert x.shape == (4, BEAT_LENGTH, 1) and np.shares_memory(x, beats)
    assert as_model_input(x) is x


@pytest.mark.parametrize("backbone", BACKBONES)
def test_weight_transfer_roundtrip(backbone: str) -> None:
    config = SMALL[backbone]
    source = build_encoder(backbone, config)
    target = build_encoder(backbone, config)
    x = np.random.default_rng(0).random((5, BEAT_LENGTH, 1), dtype=np.float32)
    assert not np.allclose(source.predict(x, verbose=0), target.predict(x, verbose=0))
    transfer_encoder_weights(source, target)
    np.testing.assert_allclose(source.predict(x, verbose=0), target.predict(x, verbose=0), rtol=1e-6)


def test_weight_transfer_names_the_layer_and_shapes_on_mismatch() -> None:
    wide = BackboneConfig(units=32, depth=3, dense_units=64, dropout=0.1, kernel_size=5)
    source = build_encoder("cnn", wide)
    target = build_encoder("cnn", replace(wide, units=16))
    before = [w.copy() for w in target.get_weights()]
    with pytest.raises(ValueError, match=r"don't fit the backbone: layer 'enc_conv1'.*\(5, 1, 32\).*\(5, 1, 16\)"):
        transfer_encoder_weights(source, target)
    for old, new in zip(before, target.get_weights(), strict=True):  # nothing half-copied
        np.testing.assert_array_equal(old, new)


def test_weight_transfer_between_backbones_is_refused() -> None:
    with pytest.raises(ValueError, match=r"don't fit the backbone.*enc_lstm1"):
        transfer_encoder_weights(build_encoder("cnn", SMALL["cnn"]), build_encoder("lstm", SMALL["lstm"]))
