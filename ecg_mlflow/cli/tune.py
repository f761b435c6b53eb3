"""`ecg-mlflow tune ...`: Optuna studies from studies/*.yaml, tracked as nested MLflow runs."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer

from ecg_mlflow.cli.errors import fail, reported_errors
from ecg_mlflow.errors import EXIT_INTERRUPTED
from ecg_mlflow.tuning.storage import DEFAULT_STORAGE, ENV_STORAGE, SQLITE_WARNING

app = typer.Typer(
    help=(
        "Optuna hyperparameter studies (studies/*.yaml): run trials, list and inspect studies, "
        "re-run the best trial, open the dashboard."
    ),
    no_args_is_help=True,
)

STORAGE_HELP = (
    f"Optuna storage URL. Default: ${ENV_STORAGE} or {DEFAULT_STORAGE} (a file of its own, not mlflow.db). "
    "journal:///path/study.log for several workers on one machine; postgresql://... (any SQLAlchemy URL) "
    "for a team. SQLite locks under parallel workers."
)
StorageOption = Annotated[str | None, typer.Option("--storage", help=STORAGE_HELP, show_default=False)]


@contextmanager
def _errors() -> Iterator[None]:
    """Known errors -> one line on stderr and a non-zero exit, never a traceback."""
    try:
        with reported_errors():
            yield
    except KeyboardInterrupt:
        fail("interrupted; the running trial is marked FAIL and the study can be resumed", EXIT_INTERRUPTED)
    except Exception as error:  # optuna's and SQLAlchemy's own errors about a storage or a study
        if type(error).__module__.startswith(("optuna", "sqlalchemy")):
            fail(f"{type(error).__name__}: {error}")
        raise


def _handle(storage: str | None) -> Any:
    from ecg_mlflow.tuning.storage import open_storage

    return open_storage(storage)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


NTrialsOption = Annotated[
    int,
    typer.Option(
        "--n-trials",
        min=1,
        help="The study's TOTAL number of trials: stop when the study holds N (any state, all workers together). "
        "Resuming a study with 10 trials and --n-trials 15 runs 5 more.",
    ),
]
TimeoutOption = Annotated[
    float | None,
    typer.Option(
        "--timeout", help="Ask for no new trial after S seconds (a running trial finishes).", show_default=False
    ),
]
SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        help="key=value: fix a parameter for every trial (repeatable), e.g. --set max_beats=2000 --set epochs=1. "
        "Scoped keys (transfer.epochs) target one step.",
        show_default=False,
    ),
]
StudyNameOption = Annotated[
    str | None, typer.Option("--study-name", help="Study name (default: the file's name:).", show_default=False)
]
ExperimentOption = Annotated[
    str | None,
    typer.Option(
        "--experiment",
        help="MLflow experiment for the parent and trial runs (default: tune-<study>).",
        show_default=False,
    ),
]
HeartbeatOption = Annotated[
    int,
    typer.Option(
        "--heartbeat-interval",
        min=1,
        help="Seconds between a running trial's heartbeats (Optuna's heartbeat, on SQLite/PostgreSQL/MySQL storages).",
    ),
]
GraceOption = Annotated[
    int | None,
    typer.Option(
        "--grace-period",
        min=2,
        help="A RUNNING trial with no heartbeat for this long is marked FAIL "
        "(default: 4 x heartbeat interval). Dead workers on this machine are detected at once, on any storage.",
        show_default=False,
    ),
]
OutageOption = Annotated[
    float | None,
    typer.Option(
        "--outage-limit",
        min=1,
        help="Seconds a worker waits for the Optuna storage or the MLflow server while it is away (a restart), "
        "with backoff and one line per outage; past it the worker stops, saying how to resume "
        "(default: $ECG_OUTAGE_LIMIT or 300).",
        show_default=False,
    ),
]


WorkersOption = Annotated[
    int,
    typer.Option(
        "--workers",
        min=1,
        help="Start N local worker processes on the study (a journal or PostgreSQL storage); "
        "workers on other machines join with the same command and --storage.",
    ),
]


def _run_local_workers(workers: int, options: dict[str, Any]) -> None:
    """`tune run ... --workers N`: N copies of this command with --workers 1; exits with the worst code."""
    from ecg_mlflow.processes import run_copies
    from ecg_mlflow.tuning.storage import resolve_storage_url, storage_kind

    with _errors():
        url = resolve_storage_url(options["storage"])
        if storage_kind(url) == "sqlite":
            fail(f"--workers {workers} needs a storage several processes can share: {SQLITE_WARNING}", 2)
    # The storage URL (maybe with a password) is passed on only when given: else the copies read the env.
    command = [sys.executable, "-m", "ecg_mlflow", "tune", "run", options["study_file"]]
    if options["storage"]:
        command += ["--storage", options["storage"]]
    for name in (
        "n_trials",
        "timeout",
        "study_name",
        "experiment",
        "heartbeat_interval",
        "grace_period",
        "outage_limit",
    ):
        if options[name] is not None:
            command += [f"--{name.replace('_', '-')}", str(options[name])]
    for item in options["set_"] or []:
        command += ["--set", item]
    raise typer.Exit(run_copies(command, workers))


@app.command("run")
def run_command(
    study_file: Annotated[str, typer.Argument(help="A study file, e.g. studies/cnn.yaml.", show_default=False)],
    n_trials: NTrialsOption,
    timeout: TimeoutOption = None,
    storage: StorageOption = None,
    set_: SetOption = None,
    study_name: StudyNameOption = None,
    experiment: ExperimentOption = None,
    heartbeat_interval: HeartbeatOption = 30,
    grace_period: GraceOption = None,
    outage_limit: OutageOption = None,
    workers: WorkersOption = 1,
) -> None:
    """Run trials of STUDY_FILE until the study holds N trials; start it again (or in parallel) to resume."""
    if workers > 1:
        options = dict(study_file=study_file, n_trials=n_trials, timeout=timeout, storage=storage, set_=set_,
                       study_name=study_name, experiment=experiment, heartbeat_interval=heartbeat_interval,
                       grace_period=grace_period, outage_limit=outage_limit)  # fmt: skip
        _run_local_workers(workers, options)
    with _errors():
        from ecg_mlflow.tuning.runner import run_study
        from ecg_mlflow.tuning.storage import resolve_storage_url, storage_kind
        from ecg_mlflow.tuning.study_files import load_study_file, parse_set

        spec = load_study_file(study_file, parse_set(set_ or []))
        if study_name:
            spec = spec.model_copy(update={"name": study_name})
        url = resolve_storage_url(storage)
        if storage_kind(url) == "sqlite":
            typer.echo(f"note: {SQLITE_WARNING}", err=True)
        summary = run_study(
            spec,
            n_trials=n_trials,
            timeout=timeout,
            storage=url,
            experiment=experiment,
            heartbeat_interval=heartbeat_interval,
            grace_period=grace_period,
            outage_limit_s=outage_limit,
        )
        _print_summary(summary, spec.metric)


def _print_summary(summary: Any, metric: str) -> None:
    """One line per trial this worker ran, then the study's count, its best trial and the parent run."""
    for trial in summary.trials:
        typer.echo(
            f"trial {trial.number:>4}  {trial.state:<8} {_fmt(trial.value):>8}  run {trial.mlflow_run_id}"
            + (f"  ({trial.error})" if trial.error else "")
        )
    if summary.recovered:
        typer.echo(f"marked FAIL (abandoned by a dead worker): trials {summary.recovered}")
    typer.echo(
        f"study '{summary.study_name}' in {summary.storage}: {summary.total}/{summary.n_trials} trials; "
        f"stopped: {summary.stopped or 'done'}"
    )
    if summary.best_trial is not None:
        typer.echo(f"best: trial {summary.best_trial}, {metric}={_fmt(summary.best_value)}")
    typer.echo(f"MLflow parent run: {summary.parent_run_id} (experiment {summary.experiment_id})")


@app.command("list")
def list_command(storage: StorageOption = None) -> None:
    """List the studies in the storage with their trial counts and best value."""
    with _errors():
        from ecg_mlflow.tuning.report import list_studies

        handle = _handle(storage)
        rows = list_studies(handle)
        if not rows:
            typer.echo(f"no studies in {handle.display}")
            return
        typer.echo(
            f"{'study':<24} {'dir':<9} {'trials':>6} {'done':>5} {'pruned':>6} {'fail':>5} {'run':>4} {'best':>8}"
        )
        for r in rows:
            typer.echo(
                f"{r['name']:<24} {r['direction'][:8]:<9} {r['trials']:>6} {r['complete']:>5} {r['pruned']:>6} "
                f"{r['fail']:>5} {r['running']:>4} {_fmt(r['best_value']):>8}"
            )


@app.command("show")
def show_command(
    study: Annotated[str, typer.Argument(help="Study name (see `tune list`).", show_default=False)],
    storage: StorageOption = None,
    top: Annotated[int, typer.Option("--top", min=1, help="How many of the best trials to list.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """The best trial, the top trials and the parameter importances of STUDY."""
    with _errors():
        from ecg_mlflow.tuning.report import show_study

        info = show_study(_handle(storage), study, top=top)
        if as_json:
            typer.echo(json.dumps(info, indent=2, default=str))
            return
        c = info["counts"]
        typer.echo(f"study '{info['name']}' ({info['direction']} {info['metric']}) in {info['storage']}")
        typer.echo(
            f"trials: {info['trials']} = {c['complete']} complete, {c['pruned']} pruned, {c['fail']} failed, "
            f"{c['running']} running"
        )
        best = info["best"]
        if best is None:
            typer.echo("no completed trial yet")
            return
        typer.echo(f"best: trial {best['number']}, value {_fmt(best['value'])}, MLflow run {best['mlflow_run_id']}")
        for key, value in best["params"].items():
            typer.echo(f"  {key} = {_fmt(value)}")
        typer.echo("top trials:")
        for row in info["top"]:
            params = ", ".join(f"{k}={_fmt(v)}" for k, v in row["params"].items())
            typer.echo(f"  {row['number']:>4}  {_fmt(row['value']):>8}  {params}")
        if info["importances"]:
            typer.echo("parameter importances:")
            for key, value in info["importances"].items():
                typer.echo(f"  {key:<28} {value:.3f}")
        else:
            typer.echo("parameter importances: need at least 2 completed trials")


@app.command("best")
def best_command(
    study: Annotated[str, typer.Argument(help="Study name (see `tune list`).", show_default=False)],
    storage: StorageOption = None,
    apply: Annotated[
        bool,
        typer.Option(
            "--apply",
            help="Run the normal pretrain/transfer steps with the best parameters; the models are "
            "registered like any other run.",
        ),
    ] = False,
) -> None:
    """Print the best trial's parameters per step; with --apply, train and register them."""
    with _errors():
        from ecg_mlflow.tuning.report import apply_best, best_trial

        best = best_trial(_handle(storage), study)
        typer.echo(f"study '{best.study}': best trial {best.number}, {best.spec.metric}={_fmt(best.value)}")
        for step, params in best.step_params.items():
            options = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in sorted(params.items()))
            typer.echo(f"  {step}: {options}")
        if not apply:
            typer.echo("re-run with --apply to train these as normal (registered) runs")
            return
        info = apply_best(best)
        for key in (
            "pretrain_run_id",
            "transfer_run_id",
            "crossval_run_id",
            "transfer_model_uri",
            "crossval_model_uri",
            "registered_version",
        ):
            if info.get(key):
                typer.echo(f"{key}: {info[key]}")
        for key, value in sorted(info.get("metrics", {}).items()):
            typer.echo(f"  {key} = {value:.4f}")


@app.command("dashboard")
def dashboard_command(
    storage: StorageOption = None,
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port on 127.0.0.1.")] = 8080,
    host: Annotated[
        str,
        typer.Option("--host", help="Interface to listen on; keep 127.0.0.1 unless you know the network is trusted."),
    ] = "127.0.0.1",
) -> None:
    """Serve optuna-dashboard for the storage (Ctrl-C to stop)."""
    with _errors():
        handle = _handle(storage)
        typer.echo(f"optuna-dashboard for {handle.display} on http://{host}:{port}/ (Ctrl-C to stop)")
        serve_dashboard(handle, host=host, port=port)


def serve_dashboard(handle: Any, *, host: str, port: int) -> None:
    from optuna_dashboard import run_server

    run_server(handle.storage, host=host, port=port)
