"""Benchmark: label-free adaptation to each recording (issue 30), scored on a finished patient-wise cross-validation.

For a `crossval` run (its fold networks are logged in its fold runs: steps/folds.log_fold_model) and each
adaptation of data/adaptation.py that changes the model per recording:
- CV (what an adaptation is chosen on): each fold's network adapts to each of its held-out DS1 recordings, then
  labels that recording's beats. The mean over folds of macro-F1(N,S,V), the pooled S and V Se/+P, and per
  recording: recordings with N Se < 80 %, the median and the worst N Se.
- seconds per recording (every MIT-BIH and SVDB recording is 30 min long), timed in this process.
- then, reported after the choice and never used for it: the run's averaged fold networks adapted to each DS2
  recording (the test split: these figures are looked at), and to each SVDB recording in DATA_DIR/svdb.
No training: every adaptation meets the same trained networks, so the rows differ by the adaptation alone.

.venv/bin/python benchmarks/bench_adaptation.py --crossval RUN_ID --adapts none,prior,self_train,dominant,ssl \
    --data-dir ../shared/data --out adaptation.json
(MLFLOW_TRACKING_URI must reach the crossval run; a cnn_bn run also takes adabn,tent)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from ecg_mlflow.config import DataConfig
from ecg_mlflow.data.adaptation import context_matrix
from ecg_mlflow.data.databases import get_database
from ecg_mlflow.data.dataset import load_database_beats, load_dataset
from ecg_mlflow.data.spec import resolve_cache_dir, resolve_data_dir
from ecg_mlflow.evaluation import evaluate_predictions, per_record_figures, per_record_table
from ecg_mlflow.models.classifier import build_ensemble
from ecg_mlflow.models.test_time import adapted_probabilities
from ecg_mlflow.steps.folds import OutOfFold, development_beats, load_fold_models, load_out_of_fold
from ecg_mlflow.steps.supervised import LabelledBeats, split_beats
from ecg_mlflow.tracking.upstream import resolve_upstream_run

FIGURES = ("macro_f1_nsv", "se_S", "ppv_S", "se_V", "ppv_V")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crossval", required=True, help="run ID of a finished crossval run (5 folds, inter split)")
    parser.add_argument("--adapts", default="none,prior,self_train,dominant,ssl")
    parser.add_argument("--data-dir", default="")
    parser.add_argument("--external", default="svdb", help="database to report beside DS2 ('' to skip)")
    parser.add_argument("--no-test", action="store_true", help="CV only: leave DS2 and the external database alone")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-record", default="", help="folder for each adaptation's per-recording tables (CSV)")
    parser.add_argument("--out", default="")
    return parser.parse_args(argv)


def figures(
    y: np.ndarray, proba: np.ndarray, records: np.ndarray, dataset, table_path: Path | None = None
) -> dict[str, float]:
    """The pooled EC57 figures and the per-recording summary of one set of adapted answers (and its per-recording
    table written to `table_path`)."""
    class_names, headline = dataset.class_names, dataset.headline_classes
    metrics = evaluate_predictions(y, proba, class_names, "", headline_classes=headline).metrics
    pooled = {name: metrics[name] for name in FIGURES if name in metrics}
    table = per_record_table(y, proba, records, class_names, headline)
    if table_path is not None:
        table_path.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(table_path, index=False)
    return pooled | per_record_figures(table, "")


def timed(fn, recordings: int) -> tuple[Any, float]:
    start = time.perf_counter()
    result = fn()
    return result, (time.perf_counter() - start) / max(recordings, 1)


def cross_validated(
    adapt: str, models: list, beats: LabelledBeats, oof: OutOfFold, dataset, seed: int, tables: Path | None
) -> dict:
    """Each fold's network adapted to each of its held-out recordings: the figures an adaptation is chosen on."""
    n_classes = len(dataset.class_names)
    proba = np.zeros((len(beats.y), n_classes), dtype=np.float32)

    def run() -> None:
        for fold, model in enumerate(models):
            rows = np.flatnonzero(oof.fold == fold)
            held = beats.subset(rows)
            inputs = (held.x, held.context, held.context_names)
            proba[rows] = adapted_probabilities(model, inputs, held.records, adapt, n_classes, seed + fold).proba

    _, seconds = timed(run, len(set(beats.records.tolist())))
    scores = OutOfFold(proba, beats.y, oof.fold, beats.records).fold_scores(
        dataset.class_names, dataset.headline_classes
    )
    row = {"cv_macro_f1_nsv_mean": float(np.mean(scores)), "cv_macro_f1_nsv_std": float(np.std(scores))}
    pooled = figures(beats.y, proba, beats.records, dataset, tables and tables / f"{adapt}_cv.csv")
    return row | {f"cv_{k}": v for k, v in pooled.items()} | {"seconds_per_recording": seconds}


def reported(adapt: str, averaged, sets: dict[str, tuple], dataset, seed: int, tables: Path | None) -> dict[str, float]:
    """The averaged networks adapted to each DS2 and external recording: reported, never chosen on."""
    row = {}
    for prefix, (x, y, context, names, records) in sets.items():
        answers = adapted_probabilities(averaged, (x, context, names), records, adapt, len(dataset.class_names), seed)
        scored = figures(y, answers.proba, records, dataset, tables and tables / f"{adapt}_{prefix}.csv")
        row |= {f"{prefix}_{k}": v for k, v in scored.items()}
    return row


def external_set(name: str, data_dir: Path, input_kind: str, names: tuple[str, ...]) -> tuple:
    beats = load_database_beats(get_database(name), data_dir, resolve_cache_dir(None), input_kind=input_kind)
    context = context_matrix(beats.context, beats.context_names, beats.records, names) if names else None
    return beats.x, beats.y, context, names, beats.records


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    run = resolve_upstream_run(step="crossval", run_id=args.crossval)
    params = run.params
    data = DataConfig(
        dataset=params["dataset"],
        split="inter",
        data_dir=args.data_dir,
        split_seed=int(params["split_seed"]),
        val_fraction=float(params["val_fraction"]),
        max_beats=int(params.get("max_beats", 0)),
        input=params.get("input", "kachuee"),
    )
    dataset = load_dataset(data)
    beats, records = development_beats(dataset, params["context"], params.get("adapt", "none"))
    oof = load_out_of_fold(args.crossval)
    if not np.array_equal(oof.records.astype(str), records.astype(str)):
        raise SystemExit(f"run {args.crossval} was cross-validated on other beats than this data gives")
    models = load_fold_models(args.crossval)
    sets = {}
    if not args.no_test:
        test = split_beats(dataset, "test", params["context"], params.get("adapt", "none"))
        sets["ds2"] = (test.x, test.y, test.context, test.context_names, test.records)
        if args.external:
            sets[args.external] = external_set(
                args.external, resolve_data_dir(args.data_dir or None), dataset.input_kind, beats.context_names
            )
    averaged = build_ensemble(models, len(dataset.class_names))
    rows = []
    for adapt in args.adapts.split(","):
        row = {"adapt": adapt, "crossval": args.crossval, "backbone": params.get("backbone")}
        tables = Path(args.per_record) if args.per_record else None
        row |= cross_validated(adapt, models, beats, oof, dataset, args.seed, tables)
        row |= reported(adapt, averaged, sets, dataset, args.seed, tables)
        rows.append(row)
        print(json.dumps(row), flush=True)
        if args.out:
            Path(args.out).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
