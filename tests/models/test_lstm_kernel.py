"""The fused two-core LSTM kernel computes what Keras' own loop computes, and is what training runs."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from ecg_mlflow.models import lstm_kernel
from ecg_mlflow.models.backbones import build_encoder
from ecg_mlflow.models.catalog import BackboneConfig


@pytest.fixture
def keras_loop():
    """Keras' own LSTM loop for the test's duration; the fused kernel back afterwards."""
    lstm_kernel.uninstall()
    yield
    lstm_kernel.install()


def _lstm_model(go_backwards: bool, return_sequences: bool, seed: int) -> keras.Model:
    keras.utils.set_random_seed(seed)
    beats = keras.Input((11, 3))
    out = keras.layers.LSTM(8, go_backwards=go_backwards, return_sequences=return_sequences, unroll=True)(beats)
    model = keras.Model(beats, out)
    cell = model.layers[1].cell
    cell.bias.assign(np.random.default_rng(seed).normal(size=cell.bias.shape).astype("float32"))
    return model


def _outputs_and_gradients(model: keras.Model, x: np.ndarray) -> list[np.ndarray]:
    @tf.function
    def run(x):
        with tf.GradientTape() as tape:
            y = model(x, training=True)
            loss = tf.reduce_sum(tf.sin(3.0 * y))
        return [y, *tape.gradient(loss, model.trainable_variables)]

    return [t.numpy() for t in run(tf.constant(x))]


def _graph_ops(model: keras.Model, x: np.ndarray) -> set[str]:
    return {op.type for op in tf.function(model).get_concrete_function(tf.constant(x)).graph.get_operations()}


@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("batch", [5, 1])  # odd; smaller than the two shards
def test_fused_kernel_matches_keras_loop(go_backwards, return_sequences, batch, keras_loop):
    x = np.random.default_rng(batch).normal(size=(batch, 11, 3)).astype("float32")
    reference = _lstm_model(go_backwards, return_sequences, seed=1)
    expected = _outputs_and_gradients(reference, x)
    assert "BlockLSTMV2" not in _graph_ops(reference, x)

    lstm_kernel.install()
    fused = _lstm_model(go_backwards, return_sequences, seed=1)
    fused.set_weights(reference.get_weights())
    got = _outputs_and_gradients(fused, x)
    assert "BlockLSTMV2" in _graph_ops(fused, x)
    for want, have in zip(expected, got, strict=True):
        np.testing.assert_allclose(have, want, rtol=1e-4, atol=2e-5)


def test_the_lstm_backbone_trains_on_the_fused_kernel_and_saves_as_stock_keras(tmp_path):
    encoder = build_encoder("lstm", BackboneConfig(units=8, depth=2, dense_units=4, dropout=0.1, kernel_size=1))
    x = np.random.default_rng(0).normal(size=(3, 187, 1)).astype("float32")
    assert "BlockLSTMV2" in _graph_ops(encoder, x)
    fused_features = encoder.predict(x, verbose=0)
    encoder.save(tmp_path / "encoder.keras")
    lstm_kernel.uninstall()
    try:
        loaded = keras.saving.load_model(tmp_path / "encoder.keras")
        assert type(loaded.get_layer("enc_lstm1")) is keras.layers.LSTM
        np.testing.assert_allclose(loaded.predict(x, verbose=0), fused_features, atol=1e-5)
    finally:
        lstm_kernel.install()


def test_a_mask_falls_back_to_keras_loop():
    beats = keras.Input((11, 1))
    out = keras.layers.LSTM(4)(keras.layers.Masking(0.0)(beats))
    model = keras.Model(beats, out)
    assert "BlockLSTMV2" not in _graph_ops(model, np.ones((2, 11, 1), dtype="float32"))


def test_mixed_precision_falls_back_to_keras_loop():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        beats = keras.Input((11, 1))
        model = keras.Model(beats, keras.layers.LSTM(4)(beats))
        assert "BlockLSTMV2" not in _graph_ops(model, np.ones((2, 11, 1), dtype="float32"))
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_a_missing_private_symbol_leaves_keras_own_lstm_with_one_warning(keras_loop, monkeypatch, caplog) -> None:
    """A Keras/TensorFlow release without a hooked symbol: no kernel, Keras' loop, one warning line."""
    from keras.src import backend
    from tensorflow.python.ops import gen_rnn_ops

    monkeypatch.delattr(gen_rnn_ops, "block_lstmv2")
    with caplog.at_level("WARNING", logger="ecg_mlflow.models.lstm_kernel"):
        assert lstm_kernel.install() is False
    (record,) = caplog.records
    assert "gen_rnn_ops.block_lstmv2" in record.getMessage() and "\n" not in record.getMessage()
    assert not hasattr(backend.lstm, "fused_shards"), "Keras' own hook stays in place"
    model = _lstm_model(go_backwards=False, return_sequences=False, seed=0)
    assert np.isfinite(model(np.ones((2, 11, 3), "float32"))).all()
