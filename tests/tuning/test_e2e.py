"""Real tiny studies through the real pretrain/transfer steps (synthetic MIT-BIH, 1 epoch) and the CLI.

Asserts: trials never compute a test figure (the split is sealed), the applied best does; trials complete
with the transfer step's validation macro-F1 as value; the step runs nest under the trial's run; trial
models are not registered; a pruned trial is PRUNED in Optuna and KILLED in MLflow (trial run and transfer
step run); `tune best --apply` registers the models.
"""

from __future__ import annotations

import mlflow
import optuna
import pytest
from optuna.trial import TrialState
from typer.testing import CliRunner

from ecg_mlflow.cli.tune import app
from ecg_mlflow.tuning.storage import open_storage

from .helpers import runs_of, write_study

TINY = ["--set", "epochs=1", "--set", "max_beats=120", "--set", "batch_size=32"]


def cli(*args: str):
    result = CliRunner().invoke(app, list(args))
    return result


@pytest.fixture
def data(synthetic_mitdb, monkeypatch):
    monkeypatch.setenv("ECG_DATA_DIR", str(synthetic_mitdb))
    return synthetic_mitdb


def step_runs_under(parent_run_id: str) -> list[mlflow.entities.Run]:
    client = mlflow.MlflowClient()
    ids = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(ids, filter_string=f"tags.`mlflow.parentRunId` = '{parent_run_id}'")


@pytest.mark.slow
def test_real_study_pretrain_transfer_prune_and_apply_best(tmp_path, tracking, data):
    storage = f"journal:///{tmp_path}/study.log"
    space = {
        "transfer.learning_rate": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True},
        "freeze": {"type": "categorical", "choices": [False, True]},
    }
    study_file = write_study(
        tmp_path,
        "real",
        steps=["pretrain", "transfer"],
        fixed={"backbone": "mlp", "units": 16, "depth": 2, "dense_units": 8},
        search_space=space,
    )
    result = cli("run", str(study_file), "--n-trials", "2", "--storage", storage, *TINY)
    assert result.exit_code == 0, result.output
    study = optuna.load_study(study_name="real", storage=open_storage(storage).storage)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2

    client = mlflow.MlflowClient()
    for run in runs_of("real", "trial"):
        trial = study.trials[int(run.data.tags["optuna.trial_number"])]
        steps = {r.data.tags.get("ecg_mlflow.step"): r for r in step_runs_under(run.info.run_id)}
        assert set(steps) == {"pretrain", "transfer"}, "both step runs nest under the trial's run"
        assert all(r.info.status == "FINISHED" for r in steps.values())
        assert trial.user_attrs["pretrain_run_id"] == steps["pretrain"].info.run_id
        assert steps["transfer"].data.params["upstream_run_id"] == steps["pretrain"].info.run_id
        transfer_metrics = steps["transfer"].data.metrics
        assert trial.value == pytest.approx(transfer_metrics["best_val_macro_f1"])  # validation, not test
        assert run.data.metrics["best_val_macro_f1"] == pytest.approx(trial.value)
        assert not any(k.startswith("test") for k in run.data.metrics)
        assert not any(k.startswith("test") for k in transfer_metrics), "a trial never computes a test figure"
        assert steps["transfer"].data.tags["ecg_mlflow.test_split"] == "sealed (an Optuna trial)"
        assert run.info.experiment_id == runs_of("real", "tune")[0].info.experiment_id
    assert client.search_registered_models() == [], "trial models are not registered"

    # Pruning through the Keras callback: ThresholdPruner(lower=2) prunes after the first epoch.
    pruned_file = write_study(
        tmp_path,
        "real-pruned",
        steps=["transfer"],
        fixed={"backbone": "mlp", "init": "scratch", "units": 16, "depth": 2, "dense_units": 8},
        pruner={"type": "threshold", "lower": 2.0},
        search_space={"learning_rate": space["transfer.learning_rate"]},
    )
    result = cli("run", str(pruned_file), "--n-trials", "1", "--storage", storage, *TINY)
    assert result.exit_code == 0, result.output
    pruned = optuna.load_study(study_name="real-pruned", storage=open_storage(storage).storage).trials[0]
    assert pruned.state == TrialState.PRUNED and list(pruned.intermediate_values) == [0]
    (trial_run,) = runs_of("real-pruned", "trial")
    assert trial_run.info.status == "KILLED" and trial_run.data.tags["optuna.state"] == "PRUNED"
    (transfer_run,) = step_runs_under(trial_run.info.run_id)
    assert transfer_run.info.status == "KILLED"

    # list / show / best --apply
    listing = cli("list", "--storage", storage)
    assert listing.exit_code == 0 and "real-pruned" in listing.output
    shown = cli("show", "real", "--storage", storage)
    assert shown.exit_code == 0 and "best: trial" in shown.output, shown.output
    applied = cli("best", "real", "--storage", storage, "--apply")
    assert applied.exit_code == 0, applied.output
    assert "transfer_run_id" in applied.output
    final = client.search_runs(
        [e.experiment_id for e in client.search_experiments()], "tags.`ecg_mlflow.test_split` = 'evaluated'"
    )
    assert [r.data.tags["ecg_mlflow.step"] for r in final] == ["transfer"], "only the applied best is tested"
    assert "test_macro_f1" in final[0].data.metrics
    names = {m.name for m in client.search_registered_models()}
    assert any("mlp" in name for name in names) and len(names) == 2, names


@pytest.mark.slow
def test_a_cross_validation_study_runs_with_workers_prunes_on_folds_and_never_tests(
    tmp_path, tracking, synthetic_patientwise_mitdb, monkeypatch
):
    """Trials are 3-fold patient-wise cross-validations run by two worker processes; the value is the mean over
    folds; the running mean after each fold is the intermediate value a pruner stops a trial on."""
    monkeypatch.setenv("ECG_DATA_DIR", str(synthetic_patientwise_mitdb))
    storage = f"journal:///{tmp_path}/study.log"
    tiny = {"backbone": "mlp", "init": "scratch", "units": 16, "depth": 2, "dense_units": 8, "split": "inter"}
    quick = {"folds": 3, "epochs": 1, "min_epochs": 0, "batch_size": 16, "context": "rr", "class_weight": "balanced"}
    objective = {"metric": "cv_macro_f1_nsv_mean", "monitor": "val_macro_f1_nsv_selected"}
    space = {"adapt": {"type": "categorical", "choices": ["none", "prior"]}}
    study_file = write_study(
        tmp_path, "cv", steps=["crossval"], fixed=tiny | quick, objective=objective, search_space=space
    )
    result = cli("run", str(study_file), "--n-trials", "2", "--workers", "2", "--storage", storage)
    assert result.exit_code == 0, result.output
    study = optuna.load_study(study_name="cv", storage=open_storage(storage).storage)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2
    for run in runs_of("cv", "trial"):
        trial = study.trials[int(run.data.tags["optuna.trial_number"])]
        (crossval,) = step_runs_under(run.info.run_id)
        folds = step_runs_under(crossval.info.run_id)
        assert len(folds) == 3 and list(trial.intermediate_values) == [1, 2, 3]
        assert trial.value == pytest.approx(crossval.data.metrics["cv_macro_f1_nsv_mean"])
        assert trial.intermediate_values[3] == pytest.approx(trial.value, abs=1e-6)  # the mean over the 3 folds
        for one in (run, crossval, *folds):
            assert not any(k.startswith("test") for k in one.data.metrics), "a trial never computes a test figure"

    pruned_file = write_study(
        tmp_path,
        "cv-pruned",
        steps=["crossval"],
        fixed=tiny | quick,
        objective=objective,
        pruner={"type": "threshold", "lower": 2.0},
        search_space=space,
    )
    result = cli("run", str(pruned_file), "--n-trials", "1", "--storage", storage)
    assert result.exit_code == 0, result.output
    pruned = optuna.load_study(study_name="cv-pruned", storage=open_storage(storage).storage).trials[0]
    assert pruned.state == TrialState.PRUNED and list(pruned.intermediate_values) == [1]  # after the first fold
    (trial_run,) = runs_of("cv-pruned", "trial")
    (crossval,) = step_runs_under(trial_run.info.run_id)
    assert trial_run.info.status == crossval.info.status == "KILLED"
