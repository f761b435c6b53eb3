"""Benchmark: samples/s of every backbone in pretraining and in supervised training, on real beats.

    .venv/bin/python benchmarks/bench_throughput.py --data-dir ../shared/data
    .venv/bin/python benchmarks/bench_throughput.py --data-dir ../shared/data --backbones lstm --samples 48000

The steps' own code path: the encoder of each backbone at its defaults, batch 64, the steps'
steps_per_execution and input pipelines (pretraining: RepresentationBatches through
batches_dataset, a fresh draw of the 8 transforms per epoch; supervised: the 5-class classifier
through shuffled_batches), the LSTM on its fused kernel. MIT training beats (intra split),
stratified. One warm-up epoch (graph building), then `--epochs` timed epochs of `--samples`
samples each; CPU/wall says whether both cores worked. Run it on an idle machine: two trainings
at once slow each other.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from collections.abc import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras

from ecg_mlflow.config import BACKBONE_DEFAULTS, BACKBONES, DEFAULT_HEAD_WEIGHTS, DataConfig, TransformConfig
from ecg_mlflow.data.dataset import load_dataset
from ecg_mlflow.data.splits import stratified_sample
from ecg_mlflow.models.backbones import as_model_input, build_encoder
from ecg_mlflow.models.classifier import build_classifier, compile_classifier
from ecg_mlflow.models.ssl import build_ssl_model, compile_ssl_model
from ecg_mlflow.steps.pretrain import RepresentationBatches
from ecg_mlflow.steps.supervised import targets
from ecg_mlflow.steps.training import STEPS_PER_EXECUTION, batches_dataset, shuffled_batches

BATCH = 64


def timed_epochs(fit_one_epoch: Callable[[], None], samples: int, epochs: int) -> str:
    """'rate (CPU/wall)' per timed epoch, after one warm-up epoch."""
    fit_one_epoch()
    rates = []
    for _ in range(epochs):
        usage, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        fit_one_epoch()
        wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF)
        cpu = after.ru_utime - usage.ru_utime + after.ru_stime - usage.ru_stime
        rates.append(f"{samples / wall:,.0f} ({cpu / wall:.2f})")
    return " / ".join(rates)


def pretraining(backbone: str, beats, epochs: int) -> str:
    keras.utils.set_random_seed(0)
    model = build_ssl_model(build_encoder(backbone, BACKBONE_DEFAULTS[backbone]))
    compile_ssl_model(model, 1e-3, DEFAULT_HEAD_WEIGHTS, STEPS_PER_EXECUTION)
    data = batches_dataset(RepresentationBatches(beats, TransformConfig(), BATCH, 0))
    return timed_epochs(lambda: model.fit(data, shuffle=False, verbose=0), 8 * len(beats), epochs)


def supervised(backbone: str, beats, labels, epochs: int) -> str:
    keras.utils.set_random_seed(0)
    encoder = build_encoder(backbone, BACKBONE_DEFAULTS[backbone])
    model = compile_classifier(build_classifier(encoder, 5), 5, 1e-3, STEPS_PER_EXECUTION)
    data = shuffled_batches(as_model_input(beats), targets(labels, 5), BATCH, 0)
    return timed_epochs(lambda: model.fit(data, shuffle=False, verbose=0), len(beats), epochs)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--backbones", default=",".join(BACKBONES))
    parser.add_argument("--samples", type=int, default=24000, help="samples per timed epoch (pretraining: 8 per beat)")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per measurement")
    args = parser.parse_args(argv)
    dataset = load_dataset(DataConfig(data_dir=args.data_dir))
    pretrain_beats = dataset.train.x[stratified_sample(dataset.train.y, args.samples // 8, 0)]
    rows = stratified_sample(dataset.train.y, args.samples, 0)
    print(f"load average at start {os.getloadavg()[0]:.2f}; samples/s per timed epoch (CPU/wall)", flush=True)
    print("| backbone | pretraining | supervised training |\n| --- | --- | --- |", flush=True)
    for backbone in args.backbones.split(","):
        ssl = pretraining(backbone, pretrain_beats, args.epochs)
        fit = supervised(backbone, dataset.train.x[rows], dataset.train.y[rows], args.epochs)
        print(f"| {backbone} | {ssl} | {fit} |", flush=True)
        keras.backend.clear_session()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
