"""`tune run`: a worker that runs trials of a study until the study has N trials.

Semantics of --n-trials N: N is the study's *total* number of trials (COMPLETE, PRUNED, FAIL, and
those RUNNING in other workers), not "N more". Every worker stops when the study holds N trials,
so two workers started with --n-trials 10 on one journal/RDB storage finish exactly 10 trials
between them (trial numbers 0..9), and running `tune run --n-trials 10` again on a finished
study does nothing; ask for more with a larger N (e.g. --n-trials 20 for 10 more). A trial that
failed (its worker was killed, or it raised) counts, so a broken setup cannot loop forever.
"Count the trials, then ask for one" is done under a file lock, which makes N exact for workers
on one machine; workers on different machines (PostgreSQL) may overshoot by at most one trial each.

MLflow: one parent run per `tune run` (tag ecg_mlflow.kind=tune) and, nested under it in the same
experiment, one run per trial (ecg_mlflow.kind=trial) with the trial's parameters, the per-epoch
monitored value (metric with step = epoch), the final value and tag optuna.state; its status is
FINISHED (COMPLETE), KILLED (PRUNED) or FAILED (FAIL). The step runs nest under the trial's run.
"""

from __future__ import annotations

import contextlib
import math
import time
import traceback
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import mlflow
import optuna
from mlflow import MlflowClient
from optuna.trial import TrialState

from ecg_mlflow.errors import UserError
from ecg_mlflow.tuning.objective import Evaluate, PruningReporter, TrialContext, evaluate_steps
from ecg_mlflow.tuning.report import log_study_report
from ecg_mlflow.tuning.spec import StudySpec
from ecg_mlflow.tuning.storage import (
    SQLITE_WARNING,
    WORKER_ATTR,
    Heartbeat,
    StorageHandle,
    open_storage,
    stale_reason,
    worker_id,
    worker_is_dead,
)

TAG_KIND = "ecg_mlflow.kind"
TAG_STUDY = "optuna.study_name"
TAG_TRIAL = "optuna.trial_number"
TAG_STATE = "optuna.state"
TAG_STORAGE = "optuna.storage"
TAG_WORKER = "ecg_mlflow.worker"
TAG_FAIL_REASON = "ecg_mlflow.fail_reason"
RUN_STATUS = {TrialState.COMPLETE: "FINISHED", TrialState.PRUNED: "KILLED", TrialState.FAIL: "FAILED"}
FINISHED_STATES = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)

_logger = optuna.logging.get_logger("optuna.ecg_mlflow.tuning")


class TuningError(UserError, RuntimeError):
    """A study that cannot run (wrong direction, storage locked, every trial failing, ...)."""


@dataclass
class TrialOutcome:
    number: int
    state: str
    value: float | None
    mlflow_run_id: str
    error: str = ""


@dataclass
class RunSummary:
    study_name: str
    storage: str
    experiment_id: str
    parent_run_id: str
    n_trials: int
    trials: list[TrialOutcome] = field(default_factory=list)
    recovered: list[int] = field(default_factory=list)
    total: int = 0
    best_value: float | None = None
    best_trial: int | None = None
    stopped: str = ""


def default_experiment(spec: StudySpec) -> str:
    return f"tune-{spec.name}"


def create_or_load_study(spec: StudySpec, handle: StorageHandle) -> optuna.Study:
    """Create the study or load it (resume); refuse a study whose direction differs from the file's."""
    try:
        study = optuna.create_study(
            study_name=spec.name,
            storage=handle.storage,
            direction=spec.direction,
            sampler=spec.sampler.build(),
            pruner=spec.pruner.build(),
            load_if_exists=True,
        )
    except ValueError as exc:  # optuna: "Cannot overwrite study direction ..."
        raise TuningError(f"study '{spec.name}' exists in {handle.display} with another direction: {exc}") from None
    except Exception as exc:
        raise _storage_error(exc, handle) from None
    expected = (
        optuna.study.StudyDirection.MAXIMIZE if spec.direction == "maximize" else optuna.study.StudyDirection.MINIMIZE
    )
    if study.direction != expected:
        raise TuningError(
            f"study '{spec.name}' in {handle.display} is {study.direction.name.lower()}d but the file says "
            f"{spec.direction}; use another --study-name"
        )
    return study


def _storage_error(exc: Exception, handle: StorageHandle) -> Exception:
    text = str(exc)
    if "database is locked" in text:
        return TuningError(f"{handle.display}: database is locked. {SQLITE_WARNING}")
    return exc


# --------------------------------------------------------------------------- crash recovery


def recover_stale_trials(study: optuna.Study, handle: StorageHandle) -> list[int]:
    """Fail RUNNING trials whose worker died (same host) or whose heartbeat stopped; returns their numbers."""
    failed: list[int] = []
    if handle.kind in ("sqlite", "rdb"):
        # Optuna's own RDB heartbeat (covers a worker killed before it recorded its identity).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            before = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
            optuna.storages.fail_stale_trials(study)
            after = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
        failed.extend(sorted(before - after))
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if trial.number in failed:
            continue
        reason = stale_reason(trial, grace_period=handle.grace_period)
        if reason is None:
            continue
        with contextlib.suppress(Exception):
            study._storage.set_trial_user_attr(trial._trial_id, "fail_reason", f"abandoned: {reason}")
        try:
            study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another worker got there first
        _logger.warning(f"Trial {trial.number} of study '{study.study_name}' marked FAIL: {reason}")
        failed.append(trial.number)
    return failed


def _all_experiment_ids(client: MlflowClient) -> list[str]:
    return [e.experiment_id for e in client.search_experiments()]


def _fail_descendants(client: MlflowClient, run_id: str, experiment_ids: list[str], status: str) -> None:
    children = client.search_runs(
        experiment_ids, filter_string=f"tags.`mlflow.parentRunId` = '{run_id}' and attributes.status = 'RUNNING'"
    )
    for child in children:
        _fail_descendants(client, child.info.run_id, experiment_ids, status)
        client.set_terminated(child.info.run_id, status=status)


def close_orphaned_runs(study: optuna.Study) -> list[str]:
    """End MLflow runs left RUNNING by a dead worker: trial runs whose Optuna trial is finished (with
    the matching status), the dead worker's parent run, and the step runs under either. Returns run IDs."""
    client = MlflowClient()
    experiment_ids = _all_experiment_ids(client)
    if not experiment_ids:
        return []
    name = study.study_name.replace("'", "\\'")
    runs = client.search_runs(
        experiment_ids, filter_string=f"tags.`{TAG_STUDY}` = '{name}' and attributes.status = 'RUNNING'"
    )
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    closed: list[str] = []
    for run in runs:
        tags = run.data.tags
        kind = tags.get(TAG_KIND)
        status = None
        if kind == "trial":
            trial = trials.get(int(tags.get(TAG_TRIAL, -1)))
            if trial is not None and trial.state in FINISHED_STATES:
                status = RUN_STATUS[trial.state]
                client.set_tag(run.info.run_id, TAG_STATE, trial.state.name)
                if trial.state == TrialState.FAIL and trial.user_attrs.get("fail_reason"):
                    client.set_tag(run.info.run_id, TAG_FAIL_REASON, str(trial.user_attrs["fail_reason"])[:5000])
        elif kind == "tune" and worker_is_dead(tags.get(TAG_WORKER, "")):
            status = "FAILED"
        if status is not None:
            _fail_descendants(client, run.info.run_id, experiment_ids, "FAILED" if status != "FINISHED" else status)
            client.set_terminated(run.info.run_id, status=status)
            closed.append(run.info.run_id)
    return closed


# --------------------------------------------------------------------------- one trial


def _flat_params(values: dict[str, Any]) -> dict[str, str]:
    return {k: str(v)[:6000] for k, v in values.items()}


@contextlib.contextmanager
def _unwind_to(run_id: str, status: str) -> Iterator[None]:
    """Whatever happens inside, leave the trial's run as the active one (end stray step runs)."""
    try:
        yield
    finally:
        while (active := mlflow.active_run()) is not None and active.info.run_id != run_id:
            mlflow.end_run(status=status)


def run_trial(
    study: optuna.Study, trial: optuna.Trial, spec: StudySpec, handle: StorageHandle, evaluate: Evaluate
) -> TrialOutcome:
    """Sample, run the steps in a nested MLflow run, tell Optuna; never leaves the trial RUNNING."""
    values = {**spec.fixed, **_sample(study, trial, spec)}
    trial.set_user_attr("fixed_params", dict(spec.fixed))
    run_id = _start_trial_run(spec, trial, handle, values)
    reporter = PruningReporter(trial, spec.monitor, mlflow_run_id=run_id)
    ctx = TrialContext(trial=trial, spec=spec, values=values, reporter=reporter, mlflow_run_id=run_id)
    state, value, error, run_status = TrialState.FAIL, None, "", "FAILED"
    try:
        with Heartbeat(handle, trial):
            try:
                with _unwind_to(run_id, "FAILED"):
                    value = float(evaluate(ctx))
                if not math.isfinite(value):
                    raise ValueError(f"the objective returned {value}")
                state, run_status = TrialState.COMPLETE, "FINISHED"
            except optuna.TrialPruned as exc:
                state, run_status, error = TrialState.PRUNED, "KILLED", str(exc)
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                _logger.warning(f"Trial {trial.number} failed: {error}")
                mlflow.set_tag(TAG_FAIL_REASON, error[:5000])
                with contextlib.suppress(Exception):
                    mlflow.log_text(traceback.format_exc(), "error.txt")
            except BaseException:  # Ctrl-C / SystemExit: record the trial as failed, then stop
                error = "interrupted"
                run_status = "KILLED"
                raise
    finally:
        try:
            _record_outcome(study, trial, ctx, (state, value, error))
        finally:
            mlflow.end_run(status=run_status)
    return TrialOutcome(trial.number, state.name, value, run_id, error)


def _sample(study: optuna.Study, trial: optuna.Trial, spec: StudySpec) -> dict[str, Any]:
    """The trial's values of the search space; a space that no longer fits the study fails the trial."""
    try:
        return spec.suggest(trial)
    except Exception as exc:  # e.g. a choice list changed incompatibly since the study began
        study.tell(trial, state=TrialState.FAIL)
        raise TuningError(
            f"cannot sample trial {trial.number}: {exc}. The study's search space changed incompatibly; "
            "run the changed file as a new study (--study-name NAME)"
        ) from None


def _start_trial_run(spec: StudySpec, trial: optuna.Trial, handle: StorageHandle, values: dict[str, Any]) -> str:
    """The trial's nested MLflow run, tagged with its study, number, state and worker; returns its ID."""
    tags = {
        TAG_KIND: "trial",
        TAG_STUDY: spec.name,
        TAG_TRIAL: str(trial.number),
        TAG_STATE: TrialState.RUNNING.name,
        TAG_STORAGE: handle.display,
        TAG_WORKER: worker_id(),
    }
    run = mlflow.start_run(run_name=f"{spec.name}-trial-{trial.number}", nested=True, tags=tags)
    trial.set_user_attr("mlflow_run_id", run.info.run_id)
    mlflow.log_params(_flat_params(values))
    return run.info.run_id


def _record_outcome(
    study: optuna.Study, trial: optuna.Trial, ctx: TrialContext, outcome: tuple[TrialState, float | None, str]
) -> None:
    """Tell Optuna the outcome and mirror it in the trial's run: state tag, objective, last epoch."""
    state, value, error = outcome
    for key, item in ctx.info.items():
        with contextlib.suppress(Exception):
            trial.set_user_attr(key, item)
            if isinstance(item, str):
                mlflow.set_tag(f"ecg_mlflow.{key}", item)
    if error:
        with contextlib.suppress(Exception):
            trial.set_user_attr("fail_reason" if state == TrialState.FAIL else "pruned_reason", error[:2000])
    study.tell(trial, value if state == TrialState.COMPLETE else None, state=state)
    mlflow.set_tag(TAG_STATE, state.name)
    if state == TrialState.COMPLETE:
        mlflow.log_metric(ctx.spec.metric, value)
        client = MlflowClient()
        for name, metric in ctx.info.get("validation_metrics", {}).items():
            if name != ctx.spec.metric:
                client.log_metric(ctx.mlflow_run_id, name, metric)
    if ctx.reporter.reported:
        mlflow.log_metric("last_epoch", max(ctx.reporter.reported))


# --------------------------------------------------------------------------- the worker


def run_study(
    spec: StudySpec,
    *,
    n_trials: int,
    timeout: float | None = None,
    storage: str | None = None,
    experiment: str | None = None,
    evaluate: Evaluate | None = None,
    heartbeat_interval: int = 30,
    grace_period: int | None = None,
    max_consecutive_failures: int = 3,
) -> RunSummary:
    """Run trials until the study holds n_trials trials (see the module doc), or timeout seconds passed."""
    _check_budget(n_trials, timeout)
    evaluate = evaluate or evaluate_steps
    handle = open_storage(storage, heartbeat_interval=heartbeat_interval, grace_period=grace_period)
    study = create_or_load_study(spec, handle)
    with contextlib.suppress(Exception):
        study.set_user_attr("spec", spec.to_dict())
        study.set_user_attr("study_file", spec.path)
    with handle.lock():
        # Under the lock: two workers creating a fresh sqlite MLflow store (or the experiment) at once collide.
        exp = mlflow.set_experiment(experiment or default_experiment(spec))
        recovered = recover_stale_trials(study, handle)
    close_orphaned_runs(study)

    start = time.monotonic()
    parent = _start_parent_run(spec, handle, n_trials, timeout)
    summary = RunSummary(
        spec.name, handle.display, exp.experiment_id, parent.info.run_id, n_trials, recovered=recovered
    )
    status = "FAILED"
    consecutive_failures = 0
    try:
        while True:
            if timeout is not None and time.monotonic() - start >= timeout:
                summary.stopped = f"timeout ({timeout:g}s)"
                break
            trial = _ask(study, spec, handle, n_trials, summary)
            if trial is None:
                break
            outcome = run_trial(study, trial, spec, handle, evaluate)
            summary.trials.append(outcome)
            _logger.info(
                f"Trial {outcome.number} {outcome.state}"
                + (f" value={outcome.value:.4f}" if outcome.value is not None else "")
            )
            consecutive_failures = consecutive_failures + 1 if outcome.state == "FAIL" else 0
            if consecutive_failures >= max_consecutive_failures:
                raise TuningError(
                    f"{consecutive_failures} trials in a row failed; last error: {outcome.error} "
                    f"(see the trial's MLflow run {outcome.mlflow_run_id}, error.txt)"
                )
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    except Exception as exc:
        converted = _storage_error(exc, handle)
        if converted is exc:
            raise
        raise converted from exc
    finally:
        _finish_parent(study, summary, status)
    return summary


def _check_budget(n_trials: int, timeout: float | None) -> None:
    if n_trials < 1:
        raise TuningError(f"--n-trials {n_trials} must be >= 1")
    if timeout is not None and timeout <= 0:
        raise TuningError(f"--timeout {timeout} must be > 0 seconds")


def _start_parent_run(spec: StudySpec, handle: StorageHandle, n_trials: int, timeout: float | None) -> mlflow.ActiveRun:
    """This worker's parent run: the study's settings as params, the spec as study.yaml."""
    tags = {TAG_KIND: "tune", TAG_STUDY: spec.name, TAG_STORAGE: handle.display, TAG_WORKER: worker_id()}
    parent = mlflow.start_run(run_name=f"tune-{spec.name}", nested=mlflow.active_run() is not None, tags=tags)
    mlflow.log_params(
        {
            "study_name": spec.name,
            "n_trials": n_trials,
            "timeout": timeout or "",
            "storage": handle.display,
            "steps": ",".join(spec.steps),
            "metric": spec.metric,
            "direction": spec.direction,
            "study_file": spec.path or "",
        }
    )
    with contextlib.suppress(Exception):
        mlflow.log_dict(spec.to_dict(), "study.yaml")
    return parent


def _ask(
    study: optuna.Study, spec: StudySpec, handle: StorageHandle, n_trials: int, summary: RunSummary
) -> optuna.trial.Trial | None:
    """The next trial, or None when the study already holds n_trials (counted under the storage lock)."""
    with handle.lock():
        newly = recover_stale_trials(study, handle)
        trials = study.get_trials(deepcopy=False)
        if len(trials) >= n_trials:
            summary.stopped = f"the study has {len(trials)} of {n_trials} trials"
            return None
        _warn_if_sqlite_shared(handle, trials)
        # A seed per trial number: reproducible in one worker, never shared by two workers.
        study.sampler = spec.sampler.build(seed_offset=len(trials))
        with warnings.catch_warnings():
            # We run the heartbeat ourselves (storage.Heartbeat), not through Study.optimize.
            warnings.filterwarnings("ignore", message="Heartbeat of storage")
            trial = study.ask()
    if newly:
        summary.recovered.extend(newly)
        close_orphaned_runs(study)
    return trial


def _warn_if_sqlite_shared(handle: StorageHandle, trials: list[optuna.trial.FrozenTrial]) -> None:
    if handle.kind != "sqlite":
        return
    others = [t for t in trials if t.state == TrialState.RUNNING and t.user_attrs.get(WORKER_ATTR) != worker_id()]
    if others:
        _logger.warning(f"Another worker is running trials on {handle.display}. {SQLITE_WARNING}")


def _finish_parent(study: optuna.Study, summary: RunSummary, status: str) -> None:
    with contextlib.suppress(Exception):
        trials = study.get_trials(deepcopy=False)
        summary.total = len(trials)
        counts = {s: sum(t.state == s for t in trials) for s in (*FINISHED_STATES, TrialState.RUNNING)}
        for state, count in counts.items():
            mlflow.log_metric(f"trials_{state.name.lower()}", count)
        mlflow.log_metric("trials_this_worker", len(summary.trials))
        if counts[TrialState.COMPLETE]:
            best = study.best_trial
            summary.best_value, summary.best_trial = best.value, best.number
            mlflow.log_metric("best_value", best.value)
            mlflow.set_tag("optuna.best_trial", str(best.number))
    try:
        log_study_report(study)
    except Exception as error:  # a report that cannot be drawn must not fail the study
        _logger.warning(f"no study report on the parent run: {type(error).__name__}: {error}")
    with contextlib.suppress(Exception):
        mlflow.end_run(status=status)
