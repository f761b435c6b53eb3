"""Benchmark: the patient-wise protocol (MIT-BIH DS1 -> DS2) over context, class weight, init and seeds.

Every configuration is a real `transfer` run (tracked in MLflow, so each row can be opened in the UI);
the model is chosen on the held-out DS1 records only and DS2 is evaluated once. Prints a Markdown table
of AAMI EC57 figures (mean ± sd over seeds) and writes the per-run numbers as JSON.

.venv/bin/python benchmarks/bench_inter.py --data-dir ../shared/data --backbones cnn \
    --contexts none,rr,rr_template --class-weights none,balanced --seeds 0,1,2 --out bench_inter.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from ecg_mlflow.config import DataConfig, TransferConfig

COLUMNS = (
    ("test_accuracy", "accuracy"),
    ("test_macro_f1_nsv", "macro-F1 (N,S,V)"),
    ("test_se_S", "S Se"),
    ("test_ppv_S", "S +P"),
    ("test_se_V", "V Se"),
    ("test_ppv_V", "V +P"),
    ("val_macro_f1_nsv_selected", "val macro-F1 (N,S,V)"),
)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="")
    parser.add_argument("--split", default="inter", choices=("inter", "intra"))
    parser.add_argument("--backbones", default="cnn")
    parser.add_argument("--inits", default="scratch")
    parser.add_argument("--contexts", default="none,rr,rr_template")
    parser.add_argument("--class-weights", default="none,balanced")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--patience", type=int, default=5)
    parser.add_argument("--experiment", default="bench-inter")
    parser.add_argument("--out", default="")
    return parser.parse_args(argv)


def grid(args: argparse.Namespace) -> list[TransferConfig]:
    data = DataConfig(split=args.split, data_dir=args.data_dir)
    axes = [args.backbones, args.inits, args.contexts, args.class_weights, args.seeds]
    configs = []
    for backbone, init, context, class_weight, seed in itertools.product(*(a.split(",") for a in axes)):
        configs.append(
            TransferConfig(
                backbone=backbone,
                init=init,
                context=context,
                class_weight=class_weight,
                seed=int(seed),
                epochs=args.epochs,
                patience=args.patience,
                data=data,
            )
        )
    return configs


def summarise(rows: list[dict]) -> str:
    """Mean ± sd over seeds per (backbone, init, context, class_weight)."""
    header = "| backbone | init | context | class weight | seeds | " + " | ".join(label for _, label in COLUMNS) + " |"
    lines = [header, "| --- " * (5 + len(COLUMNS)) + "|"]
    key = ("backbone", "init", "context", "class_weight")
    for group, members in itertools.groupby(
        sorted(rows, key=lambda r: [r[k] for k in key]), lambda r: [r[k] for k in key]
    ):
        members = list(members)
        cells = []
        for metric, _ in COLUMNS:
            values = np.array([m["metrics"].get(metric, np.nan) for m in members])
            cells.append(
                f"{100 * values.mean():.1f} ± {100 * values.std():.1f}" if len(values) > 1 else f"{100 * values[0]:.1f}"
            )
        lines.append(f"| {' | '.join(group)} | {len(members)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import mlflow

    from ecg_mlflow.steps.transfer import run_transfer

    mlflow.set_experiment(args.experiment)
    rows = []
    for config in grid(args):
        start = time.perf_counter()
        result = run_transfer(config, register=False, verbose=0)
        rows.append(
            {
                "run_id": result.run_id,
                "backbone": config.backbone,
                "init": config.init,
                "context": config.context,
                "class_weight": config.class_weight,
                "seed": config.seed,
                "seconds": round(time.perf_counter() - start, 1),
                "metrics": result.metrics,
            }
        )
        print(
            f"{rows[-1]['run_id'][:8]} {config.backbone} {config.context} {config.class_weight} seed {config.seed}: "
            f"macro-F1(N,S,V) {result.metrics.get('test_macro_f1_nsv', float('nan')):.3f} in {rows[-1]['seconds']} s",
            file=sys.stderr,
        )
    table = summarise(rows)
    print(table)
    if args.out:
        Path(args.out).write_text(json.dumps({"argv": argv, "rows": rows, "table": table}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
