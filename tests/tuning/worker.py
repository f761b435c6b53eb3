"""`python tests/tuning/worker.py STUDY_FILE STORAGE N_TRIALS TRACKING_URI`: a tune worker with the toy objective.

The study runner is the real one (ecg_mlflow.tuning.runner.run_study); only the objective is the toy.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import mlflow
from toy_objective import evaluate

from ecg_mlflow.tuning.runner import run_study
from ecg_mlflow.tuning.study_files import load_study_file


def main() -> None:
    study_file, storage, n_trials, tracking_uri = sys.argv[1:5]
    mlflow.set_tracking_uri(tracking_uri)
    spec = load_study_file(study_file)
    summary = run_study(
        spec, n_trials=int(n_trials), storage=storage, evaluate=evaluate, heartbeat_interval=1, grace_period=60
    )
    print(f"WORKER-DONE {[t.number for t in summary.trials]}", flush=True)


if __name__ == "__main__":
    main()
