"""Benchmark: how Optuna storages and MLflow tracking scale with concurrent workers.

    # PostgreSQL from `ecg-mlflow server start --dir /tmp/bench-team` (the export lines in the env)
    eval "$(.venv/bin/ecg-mlflow server start --dir /tmp/bench-team)"
    .venv/bin/python benchmarks/bench_storage.py optuna --workers 1 2 4 8 16 --trials 160
    .venv/bin/python benchmarks/bench_storage.py mlflow --metrics 200
    .venv/bin/ecg-mlflow server stop --dir /tmp/bench-team

`optuna`: N worker processes (a fresh Python each) share one study with trivial trials (two
suggested parameters, `--reports` intermediate values, no computation), exactly `--trials` in
total (Optuna's MaxTrialsCallback), on SQLite, a journal file and PostgreSQL ($ECG_OPTUNA_STORAGE).
Trials/s is over the span from the first trial's start to the last one's end across workers, so
Python start-up is not counted; the cost per trial and per reported value are per worker.
`mlflow`: the wall time of one `log_metric` call against an SQLite store and against the tracking
server ($MLFLOW_TRACKING_URI), and of the same metrics sent in batches of 100 (`log_batch`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def worker(storage: str, study: str, total: int, reports: int) -> None:
    """One worker: trials until the study holds `total`; prints its first start and last end times."""
    import optuna
    from optuna.study import MaxTrialsCallback

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    from ecg_mlflow.tuning.storage import open_storage

    handle = open_storage(storage)
    target = optuna.load_study(study_name=study, storage=handle.storage)
    times: list[float] = []

    def objective(trial: optuna.Trial) -> float:
        times.append(time.time())
        x = trial.suggest_float("x", -1.0, 1.0)
        trial.suggest_int("n", 1, 8)
        for step in range(reports):
            trial.report(x * step, step)
        times.append(time.time())
        return x * x

    target.optimize(objective, callbacks=[MaxTrialsCallback(total, states=None)])
    print(json.dumps({"start": times[0] if times else None, "end": times[-1] if times else None,
                      "trials": len(times) // 2}))  # fmt: skip


def run_workers(storage: str, workers: int, total: int, reports: int) -> dict[str, float]:
    import optuna

    from ecg_mlflow.tuning.storage import open_storage

    study = f"bench-{workers}-{reports}-{time.time_ns()}"
    optuna.create_study(study_name=study, storage=open_storage(storage).storage)
    command = [sys.executable, __file__, "worker", storage, study, str(total), str(reports)]
    processes = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(workers)]
    outputs = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in processes]
    started = min(o["start"] for o in outputs if o["start"])
    ended = max(o["end"] for o in outputs if o["end"])
    done = sum(o["trials"] for o in outputs)
    return {
        "trials": done,
        "trials_per_s": done / (ended - started),
        "ms_per_trial_per_worker": 1000 * (ended - started) * workers / done,
    }


def bench_optuna(args: argparse.Namespace) -> None:
    folder = Path(tempfile.mkdtemp(prefix="bench-storage-"))
    storages = {"sqlite": f"sqlite:///{folder}/optuna.db", "journal": f"journal:///{folder}/optuna.log"}
    if os.environ.get("ECG_OPTUNA_STORAGE", "").startswith("postgresql"):
        storages["postgresql"] = os.environ["ECG_OPTUNA_STORAGE"]
    print("| storage | workers | trials | trials/s | ms per trial (per worker) | ms per reported value |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for kind, url in storages.items():
        for workers in args.workers:
            try:
                with_reports = run_workers(url, workers, args.trials, args.reports)
                bare = run_workers(url, workers, args.trials, 0)
            except Exception as error:  # a storage that breaks under load is a result too
                print(f"| {kind} | {workers} | failed: {type(error).__name__} | | | |", flush=True)
                continue
            per_report = (with_reports["ms_per_trial_per_worker"] - bare["ms_per_trial_per_worker"]) / args.reports
            print(f"| {kind} | {workers} | {with_reports['trials']} | {with_reports['trials_per_s']:.1f} | "
                  f"{with_reports['ms_per_trial_per_worker']:.1f} | {per_report:.2f} |", flush=True)  # fmt: skip


def bench_mlflow(args: argparse.Namespace) -> None:
    import mlflow
    from mlflow.entities import Metric

    folder = Path(tempfile.mkdtemp(prefix="bench-mlflow-"))
    targets = {"sqlite": f"sqlite:///{folder}/mlflow.db"}
    if os.environ.get("MLFLOW_TRACKING_URI", "").startswith("http"):
        targets["tracking server"] = os.environ["MLFLOW_TRACKING_URI"]
    print("| tracking store | ms per log_metric | ms per metric in log_batch(100) |")
    print("| --- | ---: | ---: |")
    for kind, uri in targets.items():
        client = mlflow.MlflowClient(uri)
        experiment = client.create_experiment(f"bench-{time.time_ns()}")
        run = client.create_run(experiment)
        start = time.perf_counter()
        for step in range(args.metrics):
            client.log_metric(run.info.run_id, "loss", 1.0 / (step + 1), step=step)
        single = 1000 * (time.perf_counter() - start) / args.metrics
        start = time.perf_counter()
        now = int(time.time() * 1000)
        for first in range(0, args.metrics, 100):
            batch = [Metric("val", 1.0, now, s) for s in range(first, min(first + 100, args.metrics))]
            client.log_batch(run.info.run_id, metrics=batch)
        batched = 1000 * (time.perf_counter() - start) / args.metrics
        client.set_terminated(run.info.run_id)
        print(f"| {kind} | {single:.2f} | {batched:.3f} |", flush=True)


def main(argv: list[str]) -> int:
    if argv[:1] == ["worker"]:
        worker(argv[1], argv[2], int(argv[3]), int(argv[4]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    optuna_parser = sub.add_parser("optuna")
    optuna_parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    optuna_parser.add_argument("--trials", type=int, default=160)
    optuna_parser.add_argument("--reports", type=int, default=10)
    mlflow_parser = sub.add_parser("mlflow")
    mlflow_parser.add_argument("--metrics", type=int, default=200)
    args = parser.parse_args(argv)
    (bench_optuna if args.mode == "optuna" else bench_mlflow)(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
