"""Feature extractors (encoders) shared by the SSL model, the classifiers and the ensemble.

Every encoder maps a beat of shape (input_length, 1) to a flat feature vector. Layers
carry fixed names ("enc_conv1", "enc_dense2", ...) so that pretrained weights can be
matched layer by layer (transfer_encoder_weights) and read in MLflow artifacts.
"""

from __future__ import annotations

import keras
import numpy as np

from ecg_mlflow.checks import check_choice
from ecg_mlflow.data.beats import BEAT_LENGTH
from ecg_mlflow.errors import ConfigError, UserError
from ecg_mlflow.models import lstm_kernel
from ecg_mlflow.models.catalog import BACKBONES, BackboneConfig

Tensor = keras.KerasTensor

# Every keras.layers.LSTM trained in a process that builds or loads encoders runs the fused,
# two-core kernel where it can (models/lstm_kernel.py); the saved models stay stock Keras.
lstm_kernel.install()


def build_encoder(backbone: str, config: BackboneConfig, input_length: int = BEAT_LENGTH) -> keras.Model:
    """A Keras functional encoder named f"{backbone}_encoder": (input_length, 1) -> (features,)."""
    check_choice("backbone", backbone, tuple(BACKBONES))
    inputs = keras.Input(shape=(input_length, 1), name="beat")
    features = BACKBONES[backbone].load_builder()(inputs, config)
    return keras.Model(inputs, features, name=f"{backbone}_encoder")


def as_model_input(beats: np.ndarray) -> np.ndarray:
    """(n, length) beats -> (n, length, 1) as the encoders expect; a view, no copy."""
    beats = np.asarray(beats, dtype=np.float32)
    return beats if beats.ndim == 3 else beats[:, :, None]


class WeightsMismatchError(UserError, ValueError):
    """Pretrained weights that do not fit the encoder being built (other sizes or another backbone)."""


def transfer_encoder_weights(source_encoder: keras.Model, target_encoder: keras.Model) -> None:
    """Copy weights layer by layer (matched by name) after checking every shape fits.

    Raises WeightsMismatchError naming the layer and both shapes when the weights don't fit the
    backbone (a pretrained run with other sizes), before anything is overwritten.
    """
    source = _weighted_layers(source_encoder)
    target = _weighted_layers(target_encoder)
    if set(source) != set(target):
        missing = sorted(set(target) - set(source))
        extra = sorted(set(source) - set(target))
        raise WeightsMismatchError(
            f"weights that don't fit the backbone: {source_encoder.name} -> {target_encoder.name}: "
            f"layers missing from the source: {missing or 'none'}; layers the target lacks: {extra or 'none'}"
        )
    for name, layer in target.items():
        src_shapes = [tuple(w.shape) for w in source[name].weights]
        dst_shapes = [tuple(w.shape) for w in layer.weights]
        if src_shapes != dst_shapes:
            raise WeightsMismatchError(
                f"weights that don't fit the backbone: layer {name!r} has weight shapes {src_shapes} "
                f"in {source_encoder.name} but {dst_shapes} in {target_encoder.name}"
            )
    for name, layer in target.items():
        layer.set_weights(source[name].get_weights())


def _weighted_layers(model: keras.Model) -> dict[str, keras.Layer]:
    return {layer.name: layer for layer in model.layers if layer.weights}


def _dropout(x: Tensor, rate: float, name: str) -> Tensor:
    return keras.layers.Dropout(rate, name=name)(x) if rate > 0 else x


def mlp_features(x: Tensor, c: BackboneConfig) -> Tensor:
    """The paper's MLP: 7 Dense layers incl. the task head -> depth - 1 Dense in the encoder.

    (depth - 2) x [Dense(units, relu) + Dropout], then Dense(dense_units, relu) as the features.
    """
    if c.depth < 2:
        raise ConfigError(f"depth={c.depth}: the mlp needs depth >= 2 (depth counts the task head's Dense layer)")
    x = keras.layers.Flatten(name="enc_flatten")(x)
    for i in range(1, c.depth - 1):
        x = keras.layers.Dense(c.units, activation="relu", name=f"enc_dense{i}")(x)
        x = _dropout(x, c.dropout, f"enc_dropout{i}")
    return keras.layers.Dense(c.dense_units, activation="relu", name=f"enc_dense{c.depth - 1}")(x)


def cnn_features(x: Tensor, c: BackboneConfig, batch_norm: bool = False) -> Tensor:
    """The paper's CNN: depth x (Conv1D + LeakyReLU + MaxPool1D(2)), Flatten, 2 Dense + LeakyReLU;
    with `batch_norm`, a BatchNormalization between each Conv1D and its activation."""
    for i in range(1, c.depth + 1):
        x = keras.layers.Conv1D(c.units, c.kernel_size, padding="same", name=f"enc_conv{i}")(x)
        if batch_norm:
            x = keras.layers.BatchNormalization(name=f"enc_bn{i}")(x)
        x = keras.layers.LeakyReLU(name=f"enc_lrelu_conv{i}")(x)
        if x.shape[1] is None or x.shape[1] >= 2:
            x = keras.layers.MaxPooling1D(2, name=f"enc_pool{i}")(x)
    x = keras.layers.Flatten(name="enc_flatten")(x)
    for i in (1, 2):
        x = _dropout(x, c.dropout, f"enc_dropout{i}")
        x = keras.layers.Dense(c.dense_units, name=f"enc_dense{i}")(x)
        x = keras.layers.LeakyReLU(name=f"enc_lrelu_dense{i}")(x)
    return x


def cnn_bn_features(x: Tensor, c: BackboneConfig) -> Tensor:
    """The CNN with batch normalisation: statistics that test-time adaptation (AdaBN, Tent) re-estimates per
    recording. Its layers keep the CNN's names, so a CNN's pretrained weights do not fit it (the enc_bn layers)."""
    return cnn_features(x, c, batch_norm=True)


def lstm_features(x: Tensor, c: BackboneConfig) -> Tensor:
    """The paper's LSTM(64) (depth stacked layers), then Dense(dense_units, relu) as the features.

    The first layer reads the beat backwards (go_backwards): a beat starts at its R peak and ends
    in zeros (up to half of its 187 samples are padding), so read forwards the last state comes
    after a long run of zeros and the gradient must cross it; the LSTM then sat at the majority
    answer for many epochs (docs/models.md). Read backwards, the padding comes first and the QRS
    last. Same layers, same weights, same size.

    Training runs TensorFlow's fused kernel (models/lstm_kernel.py). unroll=True is for Keras' own
    loop, which a served model runs: unrolled it was 1.2-1.9x faster on a CPU than the step loop.
    """
    for i in range(1, c.depth + 1):
        x = keras.layers.LSTM(
            c.units, return_sequences=i < c.depth, go_backwards=i == 1, unroll=True, name=f"enc_lstm{i}"
        )(x)
    x = _dropout(x, c.dropout, "enc_dropout1")
    return keras.layers.Dense(c.dense_units, activation="relu", name="enc_dense1")(x)


def resnet_features(x: Tensor, c: BackboneConfig) -> Tensor:
    """Kachuee et al. 2018: Conv1D, depth residual blocks with MaxPool1D(5, 2), Dense(dense_units, relu)."""
    x = keras.layers.Conv1D(c.units, c.kernel_size, padding="same", name="enc_conv0")(x)
    for i in range(1, c.depth + 1):
        skip = x
        x = keras.layers.Conv1D(c.units, c.kernel_size, padding="same", name=f"enc_block{i}_conv1")(x)
        x = keras.layers.ReLU(name=f"enc_block{i}_relu1")(x)
        x = keras.layers.Conv1D(c.units, c.kernel_size, padding="same", name=f"enc_block{i}_conv2")(x)
        x = keras.layers.Add(name=f"enc_block{i}_add")([x, skip])
        x = keras.layers.ReLU(name=f"enc_block{i}_relu2")(x)
        if x.shape[1] is None or x.shape[1] >= 5:
            x = keras.layers.MaxPooling1D(5, strides=2, name=f"enc_block{i}_pool")(x)
    x = keras.layers.Flatten(name="enc_flatten")(x)
    x = _dropout(x, c.dropout, "enc_dropout1")
    return keras.layers.Dense(c.dense_units, activation="relu", name="enc_dense1")(x)
