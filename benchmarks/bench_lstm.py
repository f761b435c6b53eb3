"""Benchmark: why the paper's LSTM stalled, and how fast it pretrains on a CPU.

    # validation macro-F1 per epoch, LSTM(64) read forwards / with Masking / backwards (12,000 beats)
    .venv/bin/python benchmarks/bench_lstm.py direction --data-dir ../shared/data forwards mask backwards
    # SSL pretraining samples/s of LSTM(64): as before, unrolled, XLA, batch 256, bfloat16 (24,000 samples)
    .venv/bin/python benchmarks/bench_lstm.py speed --data-dir ../shared/data base unroll jit b256 unroll-bf16
    # TensorFlow's fused CPU kernel (BlockLSTMV2), whole batch or the batch in two halves, one per core
    .venv/bin/python benchmarks/bench_lstm.py speed --data-dir ../shared/data unroll fused fused2

Both use the real MIT training beats (intra split) and stratified subsets, seed 0. Run on an idle
machine and compare variants within one run (docs/models.md has the figures).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np

from ecg_mlflow.config import DEFAULT_HEAD_WEIGHTS, DataConfig, TransformConfig
from ecg_mlflow.data.dataset import load_dataset
from ecg_mlflow.data.splits import stratified_sample
from ecg_mlflow.evaluation import macro_f1
from ecg_mlflow.models.ssl import build_ssl_model, compile_ssl_model, ssl_targets
from ecg_mlflow.transforms import build_representation_set


class FusedLSTM(keras.layers.Layer):
    """LSTM(units) on TensorFlow's fused CPU kernel (BlockLSTMV2: the whole 187-step loop in one op).

    Same weights and gate order (i, f, c, o) as keras.layers.LSTM. The batch is cut into `shards`
    that are independent ops, so TensorFlow may run them on different cores: the same maths as one
    batch. TensorFlow registers the V1 gradient for BlockLSTMV2 (wrong gate order), so the gradient
    here calls BlockLSTMGradV2 itself. A benchmark prototype, not a backbone.
    """

    def __init__(self, units: int, shards: int = 1, **kwargs) -> None:
        super().__init__(**kwargs)
        self.units, self.shards = units, shards

    def build(self, shape: tuple) -> None:
        u = self.units
        self.kernel = self.add_weight(shape=(shape[-1], 4 * u), initializer="glorot_uniform", name="kernel")
        self.recurrent_kernel = self.add_weight(shape=(u, 4 * u), initializer="orthogonal", name="recurrent_kernel")
        self.bias = self.add_weight(shape=(4 * u,), initializer="zeros", name="bias")

    def call(self, beats):
        import tensorflow as tf
        from tensorflow.python.ops import gen_rnn_ops

        x = tf.reverse(tf.transpose(beats, [1, 0, 2]), [0])  # time-major, read backwards
        steps, batch, u = tf.shape(x)[0], tf.shape(x)[1], self.units
        weights = tf.concat([self.kernel, self.recurrent_kernel], 0)
        bias = tf.convert_to_tensor(self.bias)

        @tf.custom_gradient
        def run(x, weights, bias):
            common = dict(
                seq_len_max=tf.cast(steps, tf.int64),
                w=weights,
                b=bias,
                use_peephole=False,
                wci=tf.zeros([u]),
                wcf=tf.zeros([u]),
                wco=tf.zeros([u]),
            )
            xs = tf.split(x, self.shards, axis=1)
            zeros = tf.split(tf.zeros([batch, u]), self.shards, axis=0)
            pairs = zip(xs, zeros, strict=True)
            outs = [gen_rnn_ops.block_lstmv2(x=xi, cs_prev=z, h_prev=z, cell_clip=0.0, **common) for xi, z in pairs]

            def grad(last_grad):
                h_grads = tf.split(tf.pad(last_grad[None], [[steps - 1, 0], [0, 0], [0, 0]]), self.shards, axis=1)
                cs_grads = tf.split(tf.zeros([steps, batch, u]), self.shards, axis=1)
                grads = [
                    gen_rnn_ops.block_lstm_grad_v2(
                        x=xi,
                        cs_prev=z,
                        h_prev=z,
                        i=o[0],
                        cs=o[1],
                        f=o[2],
                        o=o[3],
                        ci=o[4],
                        co=o[5],
                        h=o[6],
                        cs_grad=cg,
                        h_grad=hg,
                        **common,
                    )
                    for xi, z, o, cg, hg in zip(xs, zeros, outs, cs_grads, h_grads, strict=True)
                ]
                return (
                    tf.concat([g[0] for g in grads], 1),
                    tf.add_n([g[3] for g in grads]),
                    tf.add_n([g[7] for g in grads]),
                )

            return tf.concat([o[6][-1] for o in outs], 0), grad

        return run(x, weights, bias)


def lstm_encoder(*, backwards: bool, mask: bool = False, unroll: bool = False, fused_shards: int = 0) -> keras.Model:
    """The paper's LSTM(64) encoder with the reading direction, masking, unrolling and the kernel as variables."""
    beat = keras.Input((187, 1), name="beat")
    x = keras.layers.Masking(0.0)(beat) if mask else beat
    if fused_shards:
        x = FusedLSTM(64, shards=fused_shards, name="enc_lstm1")(x)
    else:
        x = keras.layers.LSTM(64, go_backwards=backwards, unroll=unroll, name="enc_lstm1")(x)
    x = keras.layers.Dropout(0.1)(x)
    x = keras.layers.Dense(64, activation="relu", name="enc_dense1")(x)
    return keras.Model(beat, x, name="lstm_encoder")


def direction(data_dir: str, variants: list[str], epochs: int = 8) -> None:
    ds = load_dataset(DataConfig(data_dir=data_dir))
    rows, val = stratified_sample(ds.y_train, 12000, 0), stratified_sample(ds.y_val, 4000, 0)
    x, y, xv, yv = ds.x_train[rows][:, :, None], ds.y_train[rows], ds.x_val[val][:, :, None], ds.y_val[val]
    for variant in variants:
        keras.utils.set_random_seed(0)
        encoder = lstm_encoder(backwards=variant == "backwards", mask=variant == "mask")
        head = keras.layers.Dense(5, activation="softmax")(encoder.output)
        model = keras.Model(encoder.input, head)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", steps_per_execution=32)
        scores = []
        for _ in range(epochs):
            model.fit(x, y, batch_size=64, epochs=1, verbose=0)
            scores.append(macro_f1(yv, model.predict(xv, batch_size=1024, verbose=0)))
        print(f"{variant}: " + " ".join(f"{s:.3f}" for s in scores), flush=True)


def speed(data_dir: str, variants: list[str]) -> None:
    ds = load_dataset(DataConfig(data_dir=data_dir))
    beats = ds.x_train[stratified_sample(ds.y_train, 3000, 0)]
    x8, y8 = build_representation_set(beats, TransformConfig(), np.random.default_rng(0))
    x8, targets = x8[:, :, None].astype("float32"), ssl_targets(y8)
    for variant in variants:
        keras.utils.set_random_seed(0)
        keras.mixed_precision.set_global_policy("mixed_bfloat16" if "bf16" in variant else "float32")
        shards = {"fused": 1, "fused2": 2}.get(variant, 0)
        model = build_ssl_model(lstm_encoder(backwards=True, unroll="unroll" in variant, fused_shards=shards))
        compile_ssl_model(model, 1e-3, DEFAULT_HEAD_WEIGHTS, steps_per_execution=32)
        if "jit" in variant:
            model.compile(optimizer=model.optimizer, loss=model.loss, steps_per_execution=32, jit_compile=True)
        batch = 256 if "b256" in variant else 64
        warm = 64 * 32 * 2
        start = time.perf_counter()
        model.fit(x8[:warm], {k: v[:warm] for k, v in targets.items()}, batch_size=batch, epochs=1, verbose=0)
        building = time.perf_counter() - start
        start = time.perf_counter()
        model.fit(x8, targets, batch_size=batch, epochs=1, verbose=0)
        rate = len(x8) / (time.perf_counter() - start)
        print(f"{variant}: {rate:.0f} samples/s (first call incl. graph building {building:.1f} s)", flush=True)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("direction", "speed"))
    parser.add_argument("variants", nargs="+")
    parser.add_argument("--data-dir", default="")
    args = parser.parse_args(argv)
    (direction if args.mode == "direction" else speed)(args.data_dir, args.variants)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
