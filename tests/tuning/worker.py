"""`python tests/tuning/worker.py STUDY_FILE STORAGE N_TRIALS TRACKING_URI`: a tune worker with the toy objective.

The study runner is the real one (ecg_mlflow.tuning.runner.run_study) and errors end as the CLI ends them (one line,
the error's exit code); only the objective is the toy. The fault tests set TOY_HEARTBEAT, TOY_GRACE and
TOY_OUTAGE_LIMIT (seconds).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import mlflow
import typer
from toy_objective import evaluate

from ecg_mlflow.cli.errors import reported_errors
from ecg_mlflow.tuning.runner import run_study
from ecg_mlflow.tuning.study_files import load_study_file


def main() -> None:
    study_file, storage, n_trials, tracking_uri = sys.argv[1:5]
    mlflow.set_tracking_uri(tracking_uri)
    spec = load_study_file(study_file)
    limit = os.environ.get("TOY_OUTAGE_LIMIT")
    with reported_errors():
        summary = run_study(
            spec,
            n_trials=int(n_trials),
            storage=storage,
            evaluate=evaluate,
            heartbeat_interval=int(os.environ.get("TOY_HEARTBEAT", "1")),
            grace_period=int(os.environ.get("TOY_GRACE", "60")),
            outage_limit_s=float(limit) if limit else None,
        )
        print(f"WORKER-DONE {[t.number for t in summary.trials]}", flush=True)


if __name__ == "__main__":
    try:
        main()
    except typer.Exit as done:
        sys.exit(done.exit_code)
