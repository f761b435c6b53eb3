"""Benchmark: tune workers under load on a fresh team server, and the server's faults mid-study (issue 29).

Every repetition starts its own team server (`ecg-mlflow server start` in a new folder: a new PostgreSQL cluster, a
new MLflow server, empty databases), so the first writes of every worker meet on fresh tables as they would for a new
team. The trials are real and quick: `ecg-mlflow tune run studies/mlp.yaml` from scratch on a few hundred MIT-BIH
beats, one epoch (the CLI a user runs, with its step runs, dataset inputs and tags).

- load: W workers (`--workers W`) and N = W x T trials, repeated R times.
- faults: 3 workers, 9 trials, heartbeat 5 s, grace 20 s (the issue's command); once the study has a COMPLETE and a
  RUNNING trial, one of: the tracking server's process group SIGKILLed, then `server start` again (which restarts
  PostgreSQL too); PostgreSQL stopped for 30 s (longer than the grace period), then started; one worker SIGKILLed,
  then the same command run again to resume.

Per row: trials in the study against N, COMPLETE and FAIL trials, trials with other than one FINISHED MLflow run,
runs left RUNNING on the server, tracebacks and outage lines in the workers' output, exit codes, seconds per trial.

.venv/bin/python benchmarks/bench_team_load.py --workers 1,4,8,16 --trials-per-worker 2 --repeats 3 \
    --faults sigkill-tracking-server,restart-postgresql,sigkill-worker --out team_load.json
(needs PostgreSQL, and MIT-BIH under $ECG_DATA_DIR/mitdb)
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mlflow
import optuna
import psutil

from ecg_mlflow.tracking import server
from ecg_mlflow.tuning.storage import open_storage

REPO = Path(__file__).resolve().parents[1]
QUICK = ["--set", "init=scratch", "--set", "max_beats=300", "--set", "epochs=1"]
FAULT_WORKERS, FAULT_TRIALS, PG_DOWNTIME = 3, 9, 30.0


def start_server() -> tuple[Path, dict[str, str]]:
    folder = Path(tempfile.mkdtemp(prefix="ecg-load-"))
    server.start(folder)
    lines = server.export_lines(folder).splitlines()
    return folder, dict(line.removeprefix("export ").split("=", 1) for line in lines)


def tune_command(name: str, n_trials: int, workers: int) -> list[str]:
    command = [sys.executable, "-m", "ecg_mlflow", "tune", "run", str(REPO / "studies" / "mlp.yaml")]
    command += ["--n-trials", str(n_trials), "--workers", str(workers), "--study-name", name]
    return [*command, "--heartbeat-interval", "5", "--grace-period", "20", *QUICK]


def study_states(name: str, storage: str) -> list[str]:
    """Each trial's state, by trial number."""
    try:
        return [t.state.name for t in optuna.load_study(study_name=name, storage=open_storage(storage).storage).trials]
    except KeyError:  # not created yet
        return []


def wait_mid_study(name: str, storage: str, process: subprocess.Popen, timeout: float = 900) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        states = study_states(name, storage)
        if "COMPLETE" in states and "RUNNING" in states:
            return
        time.sleep(1)
    raise RuntimeError(f"study {name} never got mid-study")


def sigkill_tracking_server(folder: Path, process: subprocess.Popen) -> None:
    os.killpg(server.read_state(folder).mlflow_pid, signal.SIGKILL)
    time.sleep(5)
    server.start(folder)


def restart_postgresql(folder: Path, process: subprocess.Popen) -> None:
    state, user = server.read_state(folder), server.service_user()
    server.stop_postgres(folder, user)
    time.sleep(PG_DOWNTIME)
    server.start_postgres(folder, state.host, state.pg_port, user)


def sigkill_worker(folder: Path, process: subprocess.Popen) -> None:
    workers = psutil.Process(process.pid).children()
    os.kill(workers[0].pid, signal.SIGKILL)


FAULTS: dict[str, Callable[[Path, subprocess.Popen], None]] = {
    "sigkill-tracking-server": sigkill_tracking_server,
    "restart-postgresql": restart_postgresql,
    "sigkill-worker": sigkill_worker,
}


def run_tune(env: dict[str, str], name: str, n_trials: int, workers: int, fault: str, folder: Path) -> dict[str, Any]:
    started = time.monotonic()
    process = subprocess.Popen(
        tune_command(name, n_trials, workers), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    output: list[str] = []
    reader = _drain(process, output)
    if fault:
        wait_mid_study(name, env["ECG_OPTUNA_STORAGE"], process)
        FAULTS[fault](folder, process)
    codes = [process.wait()]
    reader.join()
    if fault == "sigkill-worker":  # the user's next step: the same command, which resumes (and tidies up)
        again = subprocess.run(tune_command(name, n_trials, 1), env=env, capture_output=True, text=True)
        codes.append(again.returncode)
        output.append(again.stdout + again.stderr)
    return {"seconds": time.monotonic() - started, "codes": codes, "output": "".join(output)}


def _drain(process: subprocess.Popen, into: list[str]) -> threading.Thread:
    """Read the workers' output as it comes (a full pipe would stop them)."""
    thread = threading.Thread(target=lambda: into.append(process.stdout.read()), daemon=True)
    thread.start()
    return thread


def measure(env: dict[str, str], name: str, n_trials: int, outcome: dict[str, Any]) -> dict[str, Any]:
    states = study_states(name, env["ECG_OPTUNA_STORAGE"])
    client = mlflow.MlflowClient(env["MLFLOW_TRACKING_URI"])
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()], max_results=5000)
    trial_runs = collections.defaultdict(list)
    for run in runs:
        if run.data.tags.get("ecg_mlflow.kind") == "trial":
            trial_runs[int(run.data.tags["optuna.trial_number"])].append(run.info.status)
    expected = {"COMPLETE": ["FINISHED"], "FAIL": ["FAILED"], "PRUNED": ["KILLED"]}
    output = outcome["output"]
    return {
        "n_trials": n_trials,
        "trials": len(states),
        "complete": states.count("COMPLETE"),
        "failed": states.count("FAIL"),
        "trials_without_their_one_run": sum(trial_runs[n] != expected.get(s) for n, s in enumerate(states)),
        "other_states": {n: s for n, s in enumerate(states) if s not in ("COMPLETE", "FAIL")},
        "running_runs": sum(r.info.status == "RUNNING" for r in runs),
        "tracebacks": output.count("Traceback"),
        "outage_lines": sum(" is away" in line for line in output.splitlines()),
        "exit_codes": outcome["codes"],
        "seconds_per_trial": round(outcome["seconds"] / n_trials, 1),
    }


def _error_lines(output: str) -> list[str]:
    """The lines that name an exception (`SomeError: message`) in a worker's output."""
    return [line for line in output.splitlines() if re.match(r"^[\w.]+(Error|Exception|Exit)\b", line.strip())][:20]


def repetition(workers: int, n_trials: int, fault: str, label: str) -> dict[str, Any]:
    folder, exports = start_server()
    env = {**os.environ, **exports, "TF_CPP_MIN_LOG_LEVEL": "3"}
    try:
        name = f"load-{label}"
        outcome = run_tune(env, name, n_trials, workers, fault, folder)
        row = {"scenario": fault or "load", "workers": workers, **measure(env, name, n_trials, outcome)}
        if row["tracebacks"]:  # where it started and what it said (a rich traceback ends with the error's line)
            trace = outcome["output"][outcome["output"].index("Traceback") :]
            row["first_traceback"] = trace[:1500] + "\n...\n" + "\n".join(_error_lines(trace))
        return row
    finally:
        server.stop(folder)
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,4,8,16")
    parser.add_argument("--trials-per-worker", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--faults", default=",".join(FAULTS), help="comma-separated, or '' for none")
    parser.add_argument("--out", type=Path, default=Path("team_load.json"))
    args = parser.parse_args()
    if not (Path(os.environ.get("ECG_DATA_DIR", "data")) / "mitdb" / "100.hea").is_file():
        sys.exit("error: MIT-BIH is not under $ECG_DATA_DIR/mitdb; set ECG_DATA_DIR")
    plan = [(int(w), int(w) * args.trials_per_worker, "") for w in args.workers.split(",") if w]
    plan = [item for item in plan for _ in range(args.repeats)]
    plan += [(FAULT_WORKERS, FAULT_TRIALS, fault) for fault in filter(None, args.faults.split(","))]
    rows = []
    for index, (workers, n_trials, fault) in enumerate(plan):
        row = repetition(workers, n_trials, fault, f"{index}")
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "first_traceback"}), flush=True)
        args.out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
