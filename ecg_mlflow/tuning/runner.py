"""`tune run`: a worker that runs trials of a study until the study has N trials.

Semantics of --n-trials N: N is the study's *total* number of trials (COMPLETE, PRUNED, FAIL, and
those RUNNING in other workers), not "N more". Every worker stops when the study holds N trials,
so two workers started with --n-trials 10 on one journal/RDB storage finish exactly 10 trials
between them (trial numbers 0..9), and running `tune run --n-trials 10` again on a finished
study does nothing; ask for more with a larger N (e.g. --n-trials 20 for 10 more). A trial that
failed (its worker was killed, or it raised) counts, so a broken setup cannot loop forever.

The trials run in Optuna's own loop (`Study.optimize`, with its heartbeat on RDB storages); our
callback mirrors each finished trial in MLflow and reserves the next (`_TrialLoop.reserve`).

MLflow: one parent run per `tune run` (tag ecg_mlflow.kind=tune) and, nested under it in the same
experiment, one run per trial (ecg_mlflow.kind=trial) with the trial's parameters, the per-epoch
monitored value (metric with step = epoch), the final value and tag optuna.state; its status is
FINISHED (COMPLETE), KILLED (PRUNED) or FAILED (FAIL). The step runs nest under the trial's run.
"""

from __future__ import annotations

import contextlib
import logging
import math
import secrets
import time
import traceback
from dataclasses import dataclass, field

import mlflow
import optuna
from mlflow import MlflowClient
from optuna.trial import FrozenTrial, TrialState

from ecg_mlflow.errors import UserError
from ecg_mlflow.processes import process_identity, process_is_dead
from ecg_mlflow.tracking.outages import (
    ServerLost,
    budget_mlflow_retries,
    mlflow_gave_up,
    outage_limit,
    server_lost,
    stop_waiting_for_mlflow,
)
from ecg_mlflow.tuning.mlflow_runs import (
    RUN_STATUS,
    TAG_FAIL_REASON,
    TAG_KIND,
    TAG_STATE,
    TAG_STORAGE,
    TAG_STUDY,
    TAG_TRIAL,
    TAG_WORKER,
    RunSummary,
    TrialOutcome,
    abandon_runs,
    close_orphaned_runs,
    end_runs_above,
    finish_parent_run,
    start_parent_run,
    tagged_experiment,
)
from ecg_mlflow.tuning.objective import Evaluate, PruningReporter, TrialContext, evaluate_steps
from ecg_mlflow.tuning.spec import StudySpec
from ecg_mlflow.tuning.storage import (
    RESUME,
    SQLITE_WARNING,
    WORKER_ATTR,
    StorageHandle,
    fail_abandoned_trials,
    open_storage,
)

_logger = optuna.logging.get_logger("optuna.ecg_mlflow.tuning")
RESERVATION_ATTR = "reservation"  # a WAITING trial's reservation token (_TrialLoop.reserve)
MAX_CONSECUTIVE_FAILURES = 3  # a worker stops after this many trials in a row failed


class TuningError(UserError, RuntimeError):
    """A study that cannot run (wrong direction, storage locked, every trial failing, ...)."""


class TrialFailed(Exception):
    """The objective raised. The only exception `Study.optimize` catches (the trial FAILs, the loop goes
    on); anything else (a search space that no longer fits, a storage error) stops the worker."""


def _without_traceback(record: logging.LogRecord) -> bool:
    """Optuna logs a failed trial with its traceback; the traceback is in the trial's MLflow run (error.txt),
    so the worker's log keeps the one line that says which trial failed and why (a lost server: the worker's own)."""
    error = record.exc_info[1] if record.exc_info else None
    if error is not None and (isinstance(error, TrialFailed | ServerLost) or mlflow_gave_up(error)):
        record.exc_info = None
    return True


logging.getLogger("optuna.study._optimize").addFilter(_without_traceback)  # the logger of Optuna's trial loop


def create_or_load_study(spec: StudySpec, handle: StorageHandle) -> optuna.Study:
    """Create the study or load it (resume); refuse a study whose direction differs from the file's
    (Optuna's load_if_exists keeps the stored direction without a word)."""
    options = {"sampler": spec.sampler.build(), "pruner": spec.pruner.build(), "load_if_exists": True}
    try:
        study = optuna.create_study(study_name=spec.name, storage=handle.storage, direction=spec.direction, **options)
    except Exception as exc:
        _explain_locked_database(exc, handle)
        raise
    if study.direction.name.lower() != spec.direction:
        raise TuningError(
            f"study '{spec.name}' in {handle.display} is {study.direction.name.lower()}d but the file says "
            f"{spec.direction}; use another --study-name"
        )
    return study


def _explain_a_trial_failed_by_another(exc: Exception, handle: StorageHandle) -> None:
    """Optuna's "Cannot tell a FAIL trial": another worker found this worker's trial stale and failed it."""
    if isinstance(exc, ValueError) and str(exc).startswith("Cannot tell a FAIL trial"):
        grace = getattr(handle.storage, "grace_period", None)
        raise TuningError(
            f"{exc} Another worker failed the trial this worker ran: no heartbeat of it reached the storage for "
            f"longer than the grace period ({grace} s). Give --grace-period more than the longest outage between "
            "this worker and the storage, and resume with the same command"
        ) from None


def _explain_locked_database(exc: Exception, handle: StorageHandle) -> None:
    if "database is locked" in str(exc):
        raise TuningError(f"{handle.display}: database is locked. {SQLITE_WARNING}") from exc


@dataclass
class _TrialLoop:
    """The objective and the after-trial callback given to `Study.optimize`, and what they share."""

    study: optuna.Study
    spec: StudySpec
    handle: StorageHandle
    evaluate: Evaluate
    summary: RunSummary
    timeout: float | None
    outage_limit: float
    started: float = field(default_factory=time.monotonic)
    ctx: TrialContext | None = None  # of the trial running now
    failures: int = 0

    def reserve(self) -> bool:
        """Under the storage lock: while the study holds fewer than N trials (WAITING ones included),
        enqueue a WAITING trial for Optuna's next `ask` to pop; else False, stop.

        Why not MaxTrialsCallback(N, states=None): it counts after a trial finished and `ask` takes no
        lock, so two workers that both see 9 of 10 trials create one each and the study ends with 11.
        A reservation whose worker on this host died before running it is taken over, not counted twice.
        The timeout is checked here, not by optimize(timeout=), which could stop after a reservation."""
        if self.timeout is not None and time.monotonic() - self.started >= self.timeout:
            self.summary.stopped = f"timeout ({self.timeout:g}s)"
            return False
        token = secrets.token_hex(8)  # names this reservation, so an attempt cut off by an outage is not made twice

        def under_a_live_lock() -> bool:  # a lock that died with its connection is taken again, and the count with it
            with self.handle.watch.strict() if self.handle.watch else contextlib.nullcontext():
                return self._reserve_locked(token)

        return self.handle.call(under_a_live_lock)

    def _reserve_locked(self, token: str) -> bool:
        with self.handle.lock():
            trials = self.study.get_trials(deepcopy=False)
            if any(t.user_attrs.get(RESERVATION_ATTR) == token for t in trials):
                return True  # an earlier attempt enqueued it, and then lost the database before it heard so
            for orphan in trials:  # Optuna's next `ask` pops the oldest WAITING trial: this one or a newer
                if orphan.state != TrialState.WAITING:
                    continue
                holder = str(orphan.user_attrs.get(WORKER_ATTR, ""))
                if holder == process_identity():  # never stop while holding a reservation nobody else will run
                    _logger.warning(f"Trial {orphan.number}, reserved by this worker, was still WAITING: it runs now")
                if holder == process_identity() or process_is_dead(holder):
                    self.handle.storage.set_trial_user_attr(orphan._trial_id, WORKER_ATTR, process_identity())
                    self.study.sampler = self.spec.sampler.build(seed_offset=orphan.number)
                    return True
            if len(trials) >= self.summary.n_trials:
                self.summary.stopped = f"the study has {len(trials)} of {self.summary.n_trials} trials"
                return False
            running = [t.user_attrs.get(WORKER_ATTR) for t in trials if t.state == TrialState.RUNNING]
            if self.handle.kind == "sqlite" and set(running) - {process_identity()}:
                _logger.warning(f"Another worker is running trials on {self.handle.display}. {SQLITE_WARNING}")
            # A seed per trial number: reproducible in one worker, never shared by two workers.
            self.study.sampler = self.spec.sampler.build(seed_offset=len(trials))
            self.study.enqueue_trial({}, user_attrs={WORKER_ATTR: process_identity(), RESERVATION_ATTR: token})
        return True

    def objective(self, trial: optuna.Trial) -> float:
        """Sample, run the steps in the trial's nested MLflow run; an exception becomes TrialFailed."""
        spec = self.spec
        trial.set_user_attr(WORKER_ATTR, process_identity())  # first: a worker killed from here on is detectable
        try:
            values = {**spec.fixed, **spec.suggest(trial)}
        except Exception as exc:  # e.g. a choice list changed incompatibly since the study began
            raise TuningError(
                f"cannot sample trial {trial.number}: {exc}. The study's search space changed incompatibly; "
                "run the changed file as a new study (--study-name NAME)"
            ) from None
        trial.set_user_attr("fixed_params", dict(spec.fixed))
        tags = {TAG_KIND: "trial", TAG_STUDY: spec.name, TAG_TRIAL: str(trial.number), TAG_STATE: "RUNNING"}
        tags |= {TAG_STORAGE: self.handle.display, TAG_WORKER: process_identity()}
        run_id = mlflow.start_run(run_name=f"{spec.name}-trial-{trial.number}", nested=True, tags=tags).info.run_id
        trial.set_user_attr("mlflow_run_id", run_id)
        mlflow.log_params({k: str(v)[:6000] for k, v in values.items()})
        reporter = PruningReporter(trial, spec.monitor, mlflow_run_id=run_id)
        self.ctx = TrialContext(trial=trial, spec=spec, values=values, reporter=reporter, mlflow_run_id=run_id)
        try:
            try:
                value = float(self.evaluate(self.ctx))
            finally:  # the step runs an exception left open (a failure to end them fails the trial)
                end_runs_above(run_id, "FAILED")
            if not math.isfinite(value):
                raise ValueError(f"the objective returned {value}")
            return value
        except optuna.TrialPruned as exc:
            trial.set_user_attr("pruned_reason", str(exc)[:2000])
            raise
        except Exception as exc:
            if lost := server_lost(exc, self.outage_limit, RESUME):  # not TrialFailed: Optuna fails the trial if
                with contextlib.suppress(Exception):  # it can, and the worker stops (run_study)
                    trial.set_user_attr("fail_reason", str(lost)[:2000])
                raise lost from None
            error = f"{type(exc).__name__}: {exc}"
            trial.set_user_attr("fail_reason", error[:2000])
            with contextlib.suppress(Exception):  # the trial's outcome matters more than its log
                MlflowClient().set_tag(run_id, TAG_FAIL_REASON, error[:5000])
                MlflowClient().log_text(run_id, traceback.format_exc(), "error.txt")
            raise TrialFailed(error) from exc
        except BaseException:  # Ctrl-C: Optuna fails the trial and stops; run_study ends the run KILLED
            trial.set_user_attr("fail_reason", "interrupted")  # (a SystemExit leaves the trial RUNNING,
            MlflowClient().set_tag(run_id, TAG_STATE, TrialState.FAIL.name)  # for the next worker here to fail)
            raise
        finally:
            for key, item in self.ctx.info.items():  # the step runs' IDs etc.
                with contextlib.suppress(Exception):
                    trial.set_user_attr(key, item)
                    if isinstance(item, str):
                        MlflowClient().set_tag(run_id, f"ecg_mlflow.{key}", item)

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        """After Optuna told the trial's state: end its MLflow run, then reserve the next trial or stop."""
        assert self.ctx is not None
        mlflow.set_tag(TAG_STATE, trial.state.name)
        if trial.state == TrialState.COMPLETE:
            mlflow.log_metrics({**self.ctx.info.get("validation_metrics", {}), self.spec.metric: trial.value})
        if self.ctx.reporter.reported:
            mlflow.log_metric("last_epoch", max(self.ctx.reporter.reported))
        mlflow.end_run(status=RUN_STATUS[trial.state])
        value = trial.value if trial.state == TrialState.COMPLETE else None
        run_id, self.ctx = self.ctx.mlflow_run_id, None
        error = trial.user_attrs.get("fail_reason") or trial.user_attrs.get("pruned_reason", "")
        self.summary.trials.append(TrialOutcome(trial.number, trial.state.name, value, run_id, error))
        self.failures = self.failures + 1 if trial.state == TrialState.FAIL else 0
        if self.failures >= MAX_CONSECUTIVE_FAILURES:
            raise TuningError(
                f"{self.failures} trials in a row failed; last error: {error} "
                f"(see the trial's MLflow run {run_id}, error.txt)"
            )
        fail_abandoned_trials(study, self.handle, heartbeat=False)  # Optuna's loop checks heartbeats itself
        if len(self.handle.abandoned) > len(self.summary.recovered):
            self.summary.recovered = list(self.handle.abandoned)
            close_orphaned_runs(study)
        if not self.reserve():
            study.stop()


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
    outage_limit_s: float | None = None,
) -> RunSummary:
    """Run trials until the study holds n_trials trials (see the module doc), or timeout seconds passed. A server
    away for up to `outage_limit_s` (tracking/outages.py) is waited for; past it the worker stops with ServerLost."""
    if n_trials < 1:
        raise TuningError(f"--n-trials {n_trials} must be >= 1")
    if timeout is not None and timeout <= 0:
        raise TuningError(f"--timeout {timeout} must be > 0 seconds")
    limit = outage_limit(outage_limit_s)
    budget_mlflow_retries(limit)
    handle = open_storage(storage, heartbeat_interval=heartbeat_interval, grace_period=grace_period, outage_limit=limit)
    try:
        return _run(spec, handle, n_trials, experiment, evaluate or evaluate_steps, timeout, limit)
    except Exception as exc:  # a lost server, wherever it was met: one line (Optuna may raise another error on it)
        if lost := server_lost(exc, limit, RESUME):
            raise lost from None
        raise


def _run(
    spec: StudySpec,
    handle: StorageHandle,
    n_trials: int,
    experiment: str | None,
    evaluate: Evaluate,
    timeout: float | None,
    limit: float,
) -> RunSummary:
    """Load the study, tidy what dead workers left, then Optuna's loop under this worker's parent run."""
    study = create_or_load_study(spec, handle)
    with contextlib.suppress(Exception):
        study.set_user_attr("spec", spec.to_dict())
        study.set_user_attr("study_file", spec.path)
    exp = handle.call(lambda: tagged_experiment(experiment or f"tune-{spec.name}", handle))
    fail_abandoned_trials(study, handle)
    close_orphaned_runs(study)
    parent = start_parent_run(spec, handle, n_trials, timeout)
    summary = RunSummary(spec.name, handle.display, exp.experiment_id, parent.info.run_id, n_trials)
    summary.recovered = list(handle.abandoned)
    loop = _TrialLoop(study, spec, handle, evaluate, summary, timeout, limit)
    status, lost = "FAILED", None
    try:
        if loop.reserve():
            study.optimize(loop.objective, callbacks=[loop], catch=(TrialFailed,))
        status = "FINISHED"
    except Exception as exc:
        _explain_locked_database(exc, handle)
        if lost := server_lost(exc, limit, RESUME):
            raise lost from None
        _explain_a_trial_failed_by_another(exc, handle)
        raise
    except BaseException:  # Ctrl-C, SystemExit: the runs are ended at once, not after waiting for an absent server
        status = "KILLED"
        stop_waiting_for_mlflow()
        raise
    finally:
        if lost is not None:
            abandon_runs()
        else:
            end_runs_above(parent.info.run_id, status)  # the trial's run, if the loop broke before its callback
            finish_parent_run(study, summary, status)
            with contextlib.suppress(Exception):  # a duplicate run a retried request made, a dead worker's
                close_orphaned_runs(study)
    return summary
