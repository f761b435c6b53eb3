"""Pretraining throughput per backbone, and a full-size CNN SSL run against the time/memory budget.

    # samples/s per backbone on the 8x representation set (20k samples, 1 epoch each)
    python benchmarks/bench_pretrain.py --samples 20000 --out bench.json
    # the budget check: CNN, 5 epochs on ~79k MIT training beats x 8, batch 64
    python benchmarks/bench_pretrain.py --full --beats 79000 --epochs 5 --out full.json

Beats are synthetic Kaggle-like beats unless --data-dir points at the data (then the
MIT training split from load_dataset). Peak RSS is the process high-water mark
(resource.getrusage), so in the per-backbone mode it is cumulative over the backbones.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

from ecg_mlflow.config import (
    BACKBONE_DEFAULTS,
    BACKBONES,
    DEFAULT_HEAD_WEIGHTS,
    BackboneConfig,
    DataConfig,
    TransformConfig,
)
from ecg_mlflow.models.backbones import build_encoder
from ecg_mlflow.models.ssl import build_ssl_model, compile_ssl_model, ssl_targets
from ecg_mlflow.transforms import N_TRANSFORMS, build_representation_set, synthetic_beats

WARMUP_BATCHES = 5


def peak_rss_mb() -> float:
    """Process high-water resident memory in MB (ru_maxrss is KB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class SteadyRate(keras.callbacks.Callback):
    """Samples/s after the first few batches, so graph tracing is not counted."""

    def __init__(self, batch_size: int) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.start: float | None = None
        self.first = self.last = 0
        self.batches = 0
        self.seconds = 0.0

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        # With steps_per_execution > 1 this is called every that many batches; count by index.
        if self.start is None and batch >= WARMUP_BATCHES - 1:
            self.start, self.first = time.perf_counter(), batch
        self.last = batch

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.start is not None:
            self.seconds += time.perf_counter() - self.start
            self.batches += self.last - self.first
            self.start = None

    @property
    def samples_per_s(self) -> float:
        return self.batches * self.batch_size / self.seconds if self.seconds else float("nan")


def load_beats(n_beats: int, data_dir: str, seed: int) -> tuple[np.ndarray, str]:
    """MIT training beats from load_dataset when data_dir is given, else synthetic ones."""
    if data_dir:
        from ecg_mlflow.data.dataset import load_dataset

        ds = load_dataset(DataConfig(dataset="mit", data_dir=data_dir))
        beats = ds.train.x if n_beats <= 0 else ds.train.x[:n_beats]
        return np.ascontiguousarray(beats, dtype=np.float32), ds.name
    return synthetic_beats(n_beats, np.random.default_rng(seed)), "synthetic"


def ssl_model(backbone: str, config: BackboneConfig, steps_per_execution: int = 1) -> keras.Model:
    model = build_ssl_model(build_encoder(backbone, config))
    return compile_ssl_model(model, 1e-3, DEFAULT_HEAD_WEIGHTS, steps_per_execution=steps_per_execution)


def bench_backbone(
    backbone: str, config: BackboneConfig, beats: np.ndarray, epochs: int, batch_size: int, spe: int = 1
) -> dict:
    """Train the SSL model on the 8x representation set of beats; samples/s and wall time."""
    keras.utils.set_random_seed(0)
    x, y = build_representation_set(beats, TransformConfig(), np.random.default_rng(0))
    model = ssl_model(backbone, config, spe)
    rate = SteadyRate(batch_size)
    start = time.perf_counter()
    model.fit(x[:, :, None], ssl_targets(y), epochs=epochs, batch_size=batch_size, callbacks=[rate], verbose=0)
    wall = time.perf_counter() - start
    result = {
        "backbone": backbone,
        "config": config.__dict__,
        "params": model.get_layer(f"{backbone}_encoder").count_params(),
        "samples": len(x),
        "epochs": epochs,
        "steps_per_execution": spe,
        "wall_s": round(wall, 2),
        "samples_per_s": round(rate.samples_per_s, 1),
        "samples_per_s_incl_tracing": round(len(x) * epochs / wall, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }
    keras.backend.clear_session()
    return result


def full_run(
    beats: np.ndarray, config: BackboneConfig, epochs: int, batch_size: int, val_fraction: float, spe: int = 1
) -> dict:
    """The pretrain step's shape: 4:1 split by beat, train set regenerated every epoch, validation each epoch."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    transforms = TransformConfig()
    n_val = round(len(beats) * val_fraction)
    train_beats, val_beats = beats[n_val:], beats[:n_val]
    start = time.perf_counter()
    x_val, y_val = build_representation_set(val_beats, transforms, rng)
    val = (x_val[:, :, None], ssl_targets(y_val))
    x_train, y_train = build_representation_set(train_beats, transforms, rng)
    train_targets = ssl_targets(y_train)
    model = ssl_model("cnn", config, spe)
    epoch_s, transform_s, history = [], [], {}
    for epoch in range(epochs):
        if epoch:
            t = time.perf_counter()
            build_representation_set(train_beats, transforms, rng, out=x_train)  # fresh noise/shuffle
            transform_s.append(round(time.perf_counter() - t, 2))
        t = time.perf_counter()
        h = model.fit(
            x_train[:, :, None], train_targets, validation_data=val, batch_size=batch_size, epochs=1, verbose=0
        )
        epoch_s.append(round(time.perf_counter() - t, 1))
        history = {k: round(v[-1], 4) for k, v in h.history.items() if "accuracy" in k and k.startswith("val_")}
        print(f"epoch {epoch + 1}/{epochs}: {epoch_s[-1]} s, peak RSS {peak_rss_mb():.0f} MB", file=sys.stderr)
    wall = time.perf_counter() - start
    return {
        "mode": "full",
        "backbone": "cnn",
        "config": config.__dict__,
        "beats": len(beats),
        "train_samples_per_epoch": len(x_train),
        "val_samples": len(x_val),
        "epochs": epochs,
        "batch_size": batch_size,
        "steps_per_execution": spe,
        "wall_s": round(wall, 1),
        "epoch_s": epoch_s,
        "regenerate_transforms_s": transform_s,
        "train_samples_per_s": round(len(x_train) * epochs / sum(epoch_s), 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "last_val_accuracy": history,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=20000, help="8x samples per backbone (per-backbone mode)")
    parser.add_argument("--backbones", default=",".join(BACKBONES))
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--full", action="store_true", help="the CNN budget run instead of the per-backbone rates")
    parser.add_argument("--beats", type=int, default=79000, help="beats for --full (0 = all with --data-dir)")
    parser.add_argument("--val-fraction", type=float, default=0.2)
    parser.add_argument("--units", type=int, default=None, help="CNN filters for --full (default: config)")
    parser.add_argument("--steps-per-execution", type=int, default=1)
    parser.add_argument("--data-dir", default="")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    info = {
        "python": platform.python_version(),
        "keras": keras.__version__,
        "cpus": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
        "machine": platform.machine(),
    }
    if args.full:
        config = BACKBONE_DEFAULTS["cnn"]
        if args.units:
            config = BackboneConfig(**{**config.__dict__, "units": args.units})
        beats, source = load_beats(args.beats, args.data_dir, args.seed)
        report: dict[str, Any] = {
            **info,
            "data": source,
            **full_run(beats, config, args.epochs, args.batch_size, args.val_fraction, args.steps_per_execution),
        }
    else:
        beats, source = load_beats(max(args.samples // N_TRANSFORMS, 1), args.data_dir, args.seed)
        results = []
        for backbone in args.backbones.split(","):
            result = bench_backbone(
                backbone, BACKBONE_DEFAULTS[backbone], beats, args.epochs, args.batch_size, args.steps_per_execution
            )
            print(json.dumps(result), file=sys.stderr)
            results.append(result)
        report = {**info, "mode": "per-backbone", "data": source, "batch_size": args.batch_size, "results": results}
    text = json.dumps(report, indent=2)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    print(text)
    return report


if __name__ == "__main__":
    main()
