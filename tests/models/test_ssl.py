"""The self-supervised model: 8 named sigmoid heads, weighted BCE, history keys as ssl_metric_names says."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from ecg_mlflow.config import BACKBONE_DEFAULTS, TRANSFORM_NAMES, BackboneConfig, TransformConfig
from ecg_mlflow.data.beats import BEAT_LENGTH
from ecg_mlflow.models.backbones import build_encoder
from ecg_mlflow.models.classifier import encoder_of
from ecg_mlflow.models.ssl import (
    build_ssl_model,
    compile_ssl_model,
    rename_ssl_history,
    ssl_loss_names,
    ssl_metric_names,
    ssl_targets,
)
from ecg_mlflow.transforms import build_representation_set, synthetic_beats

SMALL_CNN = BackboneConfig(units=4, depth=2, dense_units=8, dropout=0.0, kernel_size=3)


@pytest.fixture(autouse=True)
def _seed() -> None:
    keras.utils.set_random_seed(0)


@pytest.fixture(scope="module")
def representation() -> tuple[np.ndarray, np.ndarray]:
    beats = synthetic_beats(16, np.random.default_rng(0))
    x, y = build_representation_set(beats, TransformConfig(), np.random.default_rng(0))
    return x[:, :, None], y


def test_heads_are_named_by_transform_in_order() -> None:
    model = build_ssl_model(build_encoder("cnn", BACKBONE_DEFAULTS["cnn"]))
    assert model.output_names == list(TRANSFORM_NAMES)
    assert [tuple(o.shape) for o in model.outputs] == [(None, 1)] * 8
    for name in TRANSFORM_NAMES:
        assert model.get_layer(name).activation.__name__ == "sigmoid"
    features = BACKBONE_DEFAULTS["cnn"].dense_units
    assert model.count_params() == build_encoder("cnn", BACKBONE_DEFAULTS["cnn"]).count_params() + 8 * (features + 1)


def test_encoder_of_finds_the_shared_encoder() -> None:
    encoder = build_encoder("lstm", BACKBONE_DEFAULTS["lstm"])
    assert encoder_of(build_ssl_model(encoder)) is encoder


def test_ssl_targets_split_the_one_hot_per_head() -> None:
    y = np.eye(8, dtype=np.float32)[[0, 3, 3, 7]]
    targets = ssl_targets(y)
    assert list(targets) == list(TRANSFORM_NAMES)
    np.testing.assert_array_equal(targets["noise"], [0, 1, 1, 0])
    assert all(t.flags.c_contiguous and t.dtype == np.float32 for t in targets.values())
    with pytest.raises(ValueError, match="y_onehot"):
        ssl_targets(np.zeros((4, 7)))


def test_history_keys_are_the_ones_ssl_metric_names_gives(representation) -> None:
    x, y = representation
    model = compile_ssl_model(build_ssl_model(build_encoder("cnn", SMALL_CNN)), 1e-3, [1.0] * 8)
    history = model.fit(x, ssl_targets(y), validation_data=(x, ssl_targets(y)), epochs=1, batch_size=32, verbose=0)
    for prefix in ("", "val_"):
        assert set(ssl_metric_names(prefix).values()) <= set(history.history)
        assert set(ssl_loss_names(prefix).values()) <= set(history.history)
    renamed = rename_ssl_history(history.history)
    assert {"loss", "val_loss", "acc_noise", "val_acc_noise", "loss_shuffle", "val_loss_scale"} <= set(renamed)
    assert len(renamed) == 2 * (1 + 8 + 8)


def test_head_weights_weight_the_total_loss(representation) -> None:
    x, y = representation
    targets = ssl_targets(y)
    weights = [0.0, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0, 0.0]  # only the noise head, doubled
    model = compile_ssl_model(build_ssl_model(build_encoder("cnn", SMALL_CNN)), 1e-3, weights)
    results = model.evaluate(x, targets, batch_size=len(x), return_dict=True, verbose=0)
    assert results["loss"] == pytest.approx(2.0 * results["noise_loss"], rel=1e-5)


def test_compile_refuses_wrong_number_of_head_weights() -> None:
    model = build_ssl_model(build_encoder("cnn", SMALL_CNN))
    with pytest.raises(ValueError, match="head_weights"):
        compile_ssl_model(model, 1e-3, [1.0] * 7)


def test_input_shape_follows_the_encoder() -> None:
    model = build_ssl_model(build_encoder("mlp", BACKBONE_DEFAULTS["mlp"]))
    assert model.input_shape == (None, BEAT_LENGTH, 1)
