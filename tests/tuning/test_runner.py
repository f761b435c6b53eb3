"""The study runner with a small real objective: storage, resume, nested MLflow runs, pruning, failures."""

from __future__ import annotations

import socket
import time
import warnings

import mlflow
import optuna
import pytest
from optuna.trial import TrialState

from ecg_mlflow.tuning.runner import TuningError, run_study
from ecg_mlflow.tuning.storage import StorageError, open_storage, redact
from ecg_mlflow.tuning.study_files import load_study_file, parse_set

from .helpers import runs_of, write_study
from .toy_objective import evaluate


def test_default_storage_is_its_own_sqlite_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ECG_OPTUNA_STORAGE", raising=False)
    handle = open_storage()
    assert handle.kind == "sqlite" and handle.url == "sqlite:///optuna.db"
    with pytest.raises(StorageError, match=r"mlflow\.db"):
        open_storage("sqlite:///mlflow.db")
    with pytest.raises(StorageError, match="not a URL"):
        open_storage("/some/file.db")
    assert redact("postgresql://me:secret@db/optuna") == "postgresql://me:***@db/optuna"
    monkeypatch.setenv("ECG_OPTUNA_STORAGE", f"journal:///{tmp_path}/j.log")
    assert open_storage().kind == "journal"


@pytest.mark.parametrize("kind", ["journal", "sqlite"])
def test_study_runs_resumes_and_nests_mlflow_runs(tmp_path, tracking, kind):
    storage = f"journal:///{tmp_path}/study.log" if kind == "journal" else f"sqlite:///{tmp_path}/optuna.db"
    spec = load_study_file(write_study(tmp_path, f"toy-{kind}"))
    first = run_study(spec, n_trials=3, storage=storage, evaluate=evaluate)
    assert [t.number for t in first.trials] == [0, 1, 2]
    assert all(t.state == "COMPLETE" for t in first.trials)

    # Resume: N is the study's total; a second run adds 2, a third adds none.
    second = run_study(spec, n_trials=5, storage=storage, evaluate=evaluate)
    assert [t.number for t in second.trials] == [3, 4]
    third = run_study(spec, n_trials=5, storage=storage, evaluate=evaluate)
    assert third.trials == [] and "5 of 5" in third.stopped

    study = optuna.load_study(study_name=spec.name, storage=open_storage(storage).storage)
    assert len(study.trials) == 5
    assert all(t.state == TrialState.COMPLETE for t in study.trials)

    parents = runs_of(spec.name, "tune")
    trials = runs_of(spec.name, "trial")
    assert len(parents) == 3 and len(trials) == 5
    assert {r.info.status for r in parents + trials} == {"FINISHED"}
    assert {r.info.experiment_id for r in parents + trials} == {first.experiment_id}
    children = {r.data.tags["mlflow.parentRunId"] for r in trials}
    assert children == {first.parent_run_id, second.parent_run_id}
    # Optuna's history plot and the importances on each parent run (over the study so far).
    client = mlflow.MlflowClient()
    artifacts = {a.path for a in client.list_artifacts(second.parent_run_id)}
    assert {"optimization_history.png", "importances.json", "study.yaml"} <= artifacts
    metrics = client.get_run(second.parent_run_id).data.metrics
    assert {k for k in metrics if k.startswith("importance_")} == {"importance_learning_rate", "importance_dropout"}

    by_number = {int(r.data.tags["optuna.trial_number"]): r for r in trials}
    for trial in study.trials:
        run = by_number[trial.number]
        assert run.data.tags["optuna.state"] == "COMPLETE"
        assert run.data.metrics["best_val_macro_f1"] == pytest.approx(trial.value)
        assert float(run.data.params["learning_rate"]) == pytest.approx(trial.params["learning_rate"])
        assert run.data.params["backbone"] == "cnn"
        history = mlflow.MlflowClient().get_metric_history(run.info.run_id, "val_macro_f1")
        assert [(m.step, m.value) for m in history] == [
            (s, pytest.approx(v)) for s, v in sorted(trial.intermediate_values.items())
        ]
        assert trial.user_attrs["mlflow_run_id"] == run.info.run_id


def test_same_seed_same_trials_and_set_fixes_a_parameter(tmp_path, tracking):
    path = write_study(tmp_path, "seeded")
    values = []
    for i in range(2):
        spec = load_study_file(path)
        run_study(spec, n_trials=3, storage=f"journal:///{tmp_path}/s{i}.log", evaluate=evaluate)
        study = optuna.load_study(study_name="seeded", storage=open_storage(f"journal:///{tmp_path}/s{i}.log").storage)
        values.append([t.params for t in study.trials])
    assert values[0] == values[1]

    spec = load_study_file(path, parse_set(["dropout=0.2"]))
    run_study(
        spec.__class__(**{**spec.__dict__, "name": "fixed"}),
        n_trials=2,
        storage=f"journal:///{tmp_path}/f.log",
        evaluate=evaluate,
    )
    study = optuna.load_study(study_name="fixed", storage=open_storage(f"journal:///{tmp_path}/f.log").storage)
    assert all(set(t.params) == {"learning_rate"} for t in study.trials)
    assert all(t.user_attrs["fixed_params"]["dropout"] == 0.2 for t in study.trials)


def test_pruned_trials_show_as_pruned_in_optuna_and_mlflow(tmp_path, tracking):
    # ThresholdPruner(lower=2): every reported value is below 2, so every trial is pruned at epoch 0.
    spec = load_study_file(write_study(tmp_path, "pruned", pruner={"type": "threshold", "lower": 2.0}))
    summary = run_study(spec, n_trials=2, storage=f"journal:///{tmp_path}/p.log", evaluate=evaluate)
    assert [t.state for t in summary.trials] == ["PRUNED", "PRUNED"]
    study = optuna.load_study(study_name="pruned", storage=open_storage(f"journal:///{tmp_path}/p.log").storage)
    assert [t.state for t in study.trials] == [TrialState.PRUNED] * 2
    assert all(list(t.intermediate_values) == [0] for t in study.trials)
    runs = runs_of("pruned", "trial")
    assert {r.info.status for r in runs} == {"KILLED"}
    assert {r.data.tags["optuna.state"] for r in runs} == {"PRUNED"}


def test_failing_trials_are_failed_and_stop_the_worker(tmp_path, tracking, monkeypatch):
    monkeypatch.setenv("TOY_FAIL", "1")
    spec = load_study_file(write_study(tmp_path, "failing"))
    with pytest.raises(TuningError, match=r"3 trials in a row failed.*on purpose"):
        run_study(spec, n_trials=10, storage=f"journal:///{tmp_path}/f.log", evaluate=evaluate)
    study = optuna.load_study(study_name="failing", storage=open_storage(f"journal:///{tmp_path}/f.log").storage)
    assert [t.state for t in study.trials] == [TrialState.FAIL] * 3
    assert "on purpose" in study.trials[0].user_attrs["fail_reason"]
    trial_runs = runs_of("failing", "trial")
    assert {r.info.status for r in trial_runs} == {"FAILED"}
    assert {r.data.tags["optuna.state"] for r in trial_runs} == {"FAIL"}
    assert runs_of("failing", "tune")[0].info.status == "FAILED"


def test_direction_mismatch_is_refused(tmp_path, tracking):
    storage = f"journal:///{tmp_path}/d.log"
    run_study(load_study_file(write_study(tmp_path, "dir")), n_trials=1, storage=storage, evaluate=evaluate)
    flipped = write_study(tmp_path, "dir", objective={"metric": "best_val_macro_f1", "direction": "minimize"})
    with pytest.raises(TuningError, match="direction"):
        run_study(load_study_file(flipped), n_trials=2, storage=storage, evaluate=evaluate)


def test_abandoned_trials_are_failed_live_ones_kept(tmp_path, tracking):
    """A RUNNING trial whose worker process on this host is gone is failed at once, one whose Optuna
    heartbeat stopped (a worker on another machine) after the grace period; a live one is kept."""
    storage = f"sqlite:///{tmp_path}/stale.db"
    # The live trial's heartbeat must still be fresh when run_study looks: a grace period well above the
    # few seconds a loaded machine may take to start the worker. SQLite keeps heartbeats to the second, so
    # the silent one is made older than grace + 1 s.
    handle = open_storage(storage, heartbeat_interval=1, grace_period=8)
    study = optuna.create_study(study_name="stale", storage=handle.storage, direction="maximize")
    mlflow.set_experiment("tune-stale")
    with warnings.catch_warnings():  # "Heartbeat of storage is supposed to be used with Study.optimize"
        warnings.simplefilter("ignore")
        dead_local, silent_remote, live_remote = (study.ask() for _ in range(3))
    dead_local.set_user_attr("worker", f"{socket.gethostname()}:999999:1")
    silent_remote.set_user_attr("worker", "other-host:1:1")
    handle.storage.record_heartbeat(silent_remote._trial_id)
    time.sleep(9.5)
    live_remote.set_user_attr("worker", "other-host:2:2")
    handle.storage.record_heartbeat(live_remote._trial_id)
    spec = load_study_file(write_study(tmp_path, "stale"))
    summary = run_study(spec, n_trials=3, storage=storage, evaluate=evaluate, heartbeat_interval=1, grace_period=8)
    assert sorted(summary.recovered) == [dead_local.number, silent_remote.number] and summary.trials == []
    states = {t.number: t.state for t in study.trials}
    assert states == {dead_local.number: TrialState.FAIL, silent_remote.number: TrialState.FAIL,
                      live_remote.number: TrialState.RUNNING}  # fmt: skip
    assert "abandoned" in study.trials[dead_local.number].user_attrs["fail_reason"]


def test_a_reservation_whose_worker_died_is_run_not_left_waiting(tmp_path, tracking):
    """A worker killed between reserving its trial and starting it leaves a WAITING trial: the next worker
    runs that one instead of counting it, so the study still ends with N trials, all finished."""
    storage = f"journal:///{tmp_path}/study.log"
    spec = load_study_file(write_study(tmp_path, "orphan"))
    study = optuna.create_study(study_name="orphan", storage=open_storage(storage).storage, direction="maximize")
    study.enqueue_trial({}, user_attrs={"worker": f"{socket.gethostname()}:999999:1"})
    summary = run_study(spec, n_trials=2, storage=storage, evaluate=evaluate)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE, TrialState.COMPLETE]
    assert [t.number for t in summary.trials] == [0, 1]
