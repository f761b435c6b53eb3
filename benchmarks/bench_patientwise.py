"""Benchmark: configurations of the patient-wise protocol, each cross-validated on DS1, tested on DS2 and SVDB.

For every configuration and seed:
- a real `crossval` run (or a `features` run with folds) gives the CV figures, which are what the
  configuration is chosen on;
- its averaged final model is tested once on DS2 (inside the run);
- `evaluate` runs it on the SVDB half in DATA_DIR/svdb.
Prints a Markdown table (mean ± sd over seeds; the CV column is the mean over folds, with the sd over
folds averaged over seeds beside it). It also prints the Spearman rank correlation between CV and DS2
macro-F1(N,S,V) over the configurations, which shows whether choosing on CV is honest. The per-run
numbers go to JSON after each run, so an interrupted sweep keeps what it measured.

.venv/bin/python benchmarks/bench_patientwise.py --data-dir ../shared/data --backbones cnn --inits scratch \
    --contexts rr_template --class-weights balanced,none --features logistic,boosting --seeds 0 --out pw.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from ecg_mlflow.config import CrossValConfig, DataConfig, EvaluateConfig, FeaturesConfig

FIGURES = ("macro_f1_nsv", "se_S", "ppv_S", "se_V", "ppv_V")
KEY = ("model", "init", "input", "context", "context_join", "class_weight", "adapt")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="")
    parser.add_argument("--backbones", default="cnn", help="networks to cross-validate ('' for none)")
    parser.add_argument("--inits", default="scratch")
    parser.add_argument("--pretrain-model", default="", help="models:/ URI of the encoder for init=pretrained")
    parser.add_argument("--contexts", default="rr_template")
    parser.add_argument("--context-joins", default="wide_deep", help="networks' context joins (wide_deep,deep)")
    parser.add_argument("--class-weights", default="balanced")
    parser.add_argument("--adapts", default="none", help="label-free adaptations to compare (none,record_norm)")
    parser.add_argument("--inputs", default="kachuee", help="input kinds to compare (kachuee,window,three_beats,...)")
    parser.add_argument("--fold-pretraining", action="store_true", help="init=pretrained: pretrain in every fold")
    parser.add_argument("--pretrain-epochs", type=int, default=5)
    parser.add_argument("--unlabelled", default="", help="sources for each fold's pretraining (mitdb:DS2,svdb)")
    parser.add_argument("--features", default="", help="features models to cross-validate (logistic,boosting)")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--svdb", default="svdb", help="database to evaluate every model on ('' to skip)")
    parser.add_argument("--experiment", default="bench-patientwise")
    parser.add_argument("--out", default="")
    parser.add_argument(
        "--report", nargs="*", default=None, help="only print the table and rank correlation of these JSONs"
    )
    return parser.parse_args(argv)


def configs(args: argparse.Namespace) -> list[tuple[dict[str, str], Any]]:
    """(row key, step config) for every configuration and seed."""
    out: list[tuple[dict[str, str], Any]] = []
    axes = [args.inputs, args.contexts, args.class_weights, args.adapts, args.seeds]
    for kind, context, class_weight, adapt, seed in itertools.product(*(a.split(",") for a in axes)):
        data = DataConfig(split="inter", data_dir=args.data_dir, input=kind)
        inputs = {"context": context, "class_weight": class_weight, "adapt": adapt}
        networks = filter(None, args.backbones.split(","))
        for backbone, init, join in itertools.product(networks, args.inits.split(","), args.context_joins.split(",")):
            config = CrossValConfig(
                backbone=backbone, init=init, seed=int(seed), epochs=args.epochs, folds=args.folds, data=data,
                context_join=join, **inputs, **pretraining(args, init),
            )  # fmt: skip
            label = init + ("-per-fold" if init == "pretrained" and args.fold_pretraining else "")
            label += f"+{args.unlabelled}" if init == "pretrained" and args.unlabelled else ""
            out.append(({"model": backbone, "init": label, "input": kind, "context_join": join, **inputs}, config))
        if kind != args.inputs.split(",")[0]:
            continue  # a features model reads no beat samples: one row whatever the input kind
        for estimator in filter(None, args.features.split(",")):
            paper_beats = DataConfig(split="inter", data_dir=args.data_dir)  # it reads the context numbers only
            config = FeaturesConfig(estimator=estimator, seed=int(seed), folds=args.folds, data=paper_beats, **inputs)
            out.append(({"model": estimator, "init": "-", "input": "-", "context_join": "-", **inputs}, config))
    return out


def pretraining(args: argparse.Namespace, init: str) -> dict[str, Any]:
    """How a pretrained configuration gets its encoders: one given model, or a pretraining in every fold."""
    if init != "pretrained":
        return {}
    if args.fold_pretraining:
        unlabelled = tuple(filter(None, args.unlabelled.split(",")))
        return {"fold_pretraining": True, "pretrain_epochs": args.pretrain_epochs, "unlabelled": unlabelled}
    return {"pretrain_model": args.pretrain_model} if args.pretrain_model else {}


def run_one(config: Any, args: argparse.Namespace) -> dict[str, Any]:
    """The configuration's run, then `evaluate` of its model on the external database."""
    from ecg_mlflow.steps.crossval import run_crossval
    from ecg_mlflow.steps.evaluate import run_evaluate
    from ecg_mlflow.steps.features import run_features

    start = time.perf_counter()
    step = run_features if isinstance(config, FeaturesConfig) else run_crossval
    result = step(config, register=False, verbose=0)
    row: dict[str, Any] = {"run_id": result.run_id, "seconds": round(time.perf_counter() - start, 1)}
    row |= {k: v for k, v in result.metrics.items() if k.startswith(("cv_", "test_"))}
    if args.svdb:
        evaluation = run_evaluate(
            EvaluateConfig(model_uri=result.model_uri, database=args.svdb, data_dir=args.data_dir, download=False),
            verbose=0,
        )
        row |= {f"svdb_{k.removeprefix('test_')}": v for k, v in evaluation.metrics.items()}
        row["svdb_run_id"] = evaluation.run_id
    return row


def cell(values: list[float]) -> str:
    values = [v for v in values if v == v]
    if not values:
        return "–"
    return f"{100 * np.mean(values):.1f}" + (f" ± {100 * np.std(values):.1f}" if len(values) > 1 else "")


def configuration(row: dict[str, Any]) -> tuple[str, ...]:
    network = row.get("init") != "-"  # rows written before these axes existed
    defaults = {"input": "kachuee" if network else "-", "context_join": "wide_deep" if network else "-"}
    return tuple(str(row.get(k, defaults.get(k, "none"))) for k in KEY)


def grouped(rows: list[dict[str, Any]]) -> Any:
    return itertools.groupby(sorted(rows, key=configuration), configuration)


def summarise(rows: list[dict[str, Any]], svdb: bool) -> str:
    """Mean ± sd over seeds per configuration; CV first (what chooses), then DS2 and SVDB."""
    labels = ["CV macro-F1 (N,S,V)", "sd over folds"] + [f"DS2 {f}" for f in FIGURES]
    labels += [f"SVDB {f}" for f in ("macro_f1_nsv", "se_S", "ppv_S")] if svdb else []
    lines = ["| model | init | input | context | join | class weight | adapt | seeds | " + " | ".join(labels) + " |"]
    lines.append("| --- " * (7 + len(labels)) + "|")
    for group, members in grouped(rows):
        members = list(members)
        cells = [cell([m["cv_macro_f1_nsv_mean"] for m in members]), cell([m["cv_macro_f1_nsv_std"] for m in members])]
        cells += [cell([m.get(f"test_{f}", float("nan")) for m in members]) for f in FIGURES]
        if svdb:
            cells += [
                cell([m.get(f"svdb_{f}", float("nan")) for m in members]) for f in ("macro_f1_nsv", "se_S", "ppv_S")
            ]
        lines.append("| " + " | ".join([*group, str(len(members)), *cells]) + " |")
    return "\n".join(lines)


def rank_correlation(rows: list[dict[str, Any]]) -> str:
    """Spearman's rho between CV and DS2 macro-F1(N,S,V) over configurations (seed means)."""
    from scipy.stats import spearmanr

    means = {}
    for group, members in grouped(rows):
        members = list(members)
        means[group] = (
            np.mean([m["cv_macro_f1_nsv_mean"] for m in members]),
            np.mean([m["test_macro_f1_nsv"] for m in members]),
        )
    if len(means) < 3:
        return f"rank correlation: needs 3 or more configurations, have {len(means)}"
    cv, ds2 = zip(*means.values(), strict=True)
    rho, p = spearmanr(cv, ds2)
    return (
        f"Spearman rank correlation of CV and DS2 macro-F1(N,S,V) over {len(means)} configurations: "
        f"{rho:.2f} (p={p:.2f})"
    )


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.report is not None:
        rows = [row for path in args.report for row in json.loads(Path(path).read_text())]
        print(summarise(rows, any("svdb_macro_f1_nsv" in row for row in rows)))
        print(rank_correlation(rows))
        return 0
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("MLFLOW_EXPERIMENT_NAME", args.experiment)
    out = Path(args.out) if args.out else None
    rows: list[dict[str, Any]] = json.loads(out.read_text()) if out and out.is_file() else []
    for key, config in configs(args):
        row = {**key, "seed": config.seed, **run_one(config, args)}
        rows.append(row)
        print(json.dumps({k: row[k] for k in (*KEY, "seed", "seconds", "cv_macro_f1_nsv_mean")}), flush=True)
        if out:
            out.write_text(json.dumps(rows, indent=1))
    print(summarise(rows, bool(args.svdb)))
    print(rank_correlation(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
