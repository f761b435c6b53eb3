"""Benchmark: why the paper's LSTM stalled, and how fast it pretrains on a CPU.

    # validation macro-F1 per epoch, LSTM(64) read forwards / with Masking / backwards (12,000 beats)
    .venv/bin/python benchmarks/bench_lstm.py direction --data-dir ../shared/data forwards mask backwards
    # SSL pretraining samples/s of LSTM(64) (24,000 samples an epoch): Keras' loop as before, unrolled,
    # unrolled with autotuning off, batch 256, bfloat16; the fused two-core kernel with and without autotuning
    .venv/bin/python benchmarks/bench_lstm.py speed --data-dir ../shared/data unroll unroll-untuned fused-tuned fused

Both use the real MIT training beats (intra split) and stratified subsets, seed 0. Run on an idle
machine and compare variants within one run (docs/models.md has the figures).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras

from ecg_mlflow.config import DEFAULT_HEAD_WEIGHTS, DataConfig, TransformConfig
from ecg_mlflow.data.dataset import load_dataset
from ecg_mlflow.data.splits import stratified_sample
from ecg_mlflow.evaluation import macro_f1
from ecg_mlflow.models import lstm_kernel
from ecg_mlflow.models.ssl import build_ssl_model, compile_ssl_model
from ecg_mlflow.steps.pretrain import RepresentationBatches
from ecg_mlflow.steps.training import STEPS_PER_EXECUTION, batches_dataset


def lstm_encoder(*, backwards: bool, mask: bool = False, unroll: bool = False) -> keras.Model:
    """The paper's LSTM(64) encoder with the reading direction, masking and unrolling as variables."""
    beat = keras.Input((187, 1), name="beat")
    x = keras.layers.Masking(0.0)(beat) if mask else beat
    x = keras.layers.LSTM(64, go_backwards=backwards, unroll=unroll, name="enc_lstm1")(x)
    x = keras.layers.Dropout(0.1)(x)
    x = keras.layers.Dense(64, activation="relu", name="enc_dense1")(x)
    return keras.Model(beat, x, name="lstm_encoder")


def direction(data_dir: str, variants: list[str], epochs: int = 8) -> None:
    ds = load_dataset(DataConfig(data_dir=data_dir))
    rows, val = stratified_sample(ds.train.y, 12000, 0), stratified_sample(ds.val.y, 4000, 0)
    x, y, xv, yv = ds.train.x[rows][:, :, None], ds.train.y[rows], ds.val.x[val][:, :, None], ds.val.y[val]
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


SPEED_VARIANTS = {
    # name: (kernel, unroll, input pipeline, batch, dtype policy)
    "base": ("keras", False, "keras", 64, "float32"),
    "unroll": ("keras", True, "keras", 64, "float32"),
    "unroll-untuned": ("keras", True, "untuned", 64, "float32"),
    "b256": ("keras", False, "keras", 256, "float32"),
    "unroll-bf16": ("keras", True, "keras", 64, "mixed_bfloat16"),
    "fused-tuned": ("fused", True, "keras", 64, "float32"),
    "fused": ("fused", True, "untuned", 64, "float32"),  # what pretrain runs
}


def speed(data_dir: str, variants: list[str], repeats: int = 2) -> None:
    """Pretraining samples/s of the LSTM(64) SSL model per variant, `repeats` epochs of 24,000 samples each.

    The kernel is Keras' own loop or the fused two-core one (models/lstm_kernel.py); the input pipeline
    is Keras' (tf.data autotuned) or the steps' (steps/training.py: batches_dataset, autotuning off).
    """
    ds = load_dataset(DataConfig(data_dir=data_dir))
    beats = ds.train.x[stratified_sample(ds.train.y, 3000, 0)]
    for variant in variants:
        kernel, unroll, pipeline, batch, policy = SPEED_VARIANTS[variant]
        (lstm_kernel.install if kernel == "fused" else lstm_kernel.uninstall)()
        keras.utils.set_random_seed(0)
        keras.mixed_precision.set_global_policy(policy)
        model = build_ssl_model(lstm_encoder(backwards=True, unroll=unroll))
        compile_ssl_model(model, 1e-3, DEFAULT_HEAD_WEIGHTS, steps_per_execution=STEPS_PER_EXECUTION)
        batches = RepresentationBatches(beats, TransformConfig(), batch, 0)
        data = batches_dataset(batches) if pipeline == "untuned" else batches
        start = time.perf_counter()
        model.fit(data, epochs=1, verbose=0, steps_per_epoch=64)
        building = time.perf_counter() - start
        rates = []
        for _ in range(repeats):
            usage, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
            model.fit(data, epochs=1, verbose=0)
            wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF)
            cpu = after.ru_utime - usage.ru_utime + after.ru_stime - usage.ru_stime
            rates.append(f"{len(batches.x) / wall:,.0f} (CPU/wall {cpu / wall:.2f})")
        summary = f"samples/s per epoch {' / '.join(rates)}; first call incl. graph building {building:.1f} s"
        print(f"{variant}: {summary}", flush=True)


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
