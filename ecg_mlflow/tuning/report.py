"""`tune list`, `tune show`, `tune best`: read studies back, and re-run the best trial as normal steps."""

from __future__ import annotations

import contextlib
import math
import warnings
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from ecg_mlflow.errors import UserError
from ecg_mlflow.tuning.spec import StudySpec, parse_study
from ecg_mlflow.tuning.storage import StorageHandle

STATES = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING, TrialState.WAITING)


class StudyNotFoundError(UserError, LookupError):
    pass


def _counts(trials: list[FrozenTrial]) -> dict[str, int]:
    return {s.name.lower(): sum(t.state == s for t in trials) for s in STATES}


def list_studies(handle: StorageHandle) -> list[dict[str, Any]]:
    out = []
    for summary in optuna.get_all_study_summaries(handle.storage, include_best_trial=True):
        study = optuna.load_study(study_name=summary.study_name, storage=handle.storage)
        trials = study.get_trials(deepcopy=False)
        best = summary.best_trial
        out.append(
            {
                "name": summary.study_name,
                "direction": summary.direction.name.lower(),
                "trials": len(trials),
                **_counts(trials),
                "best_value": best.value if best is not None else None,
                "best_trial": best.number if best is not None else None,
                "started": summary.datetime_start.isoformat(timespec="seconds") if summary.datetime_start else "",
            }
        )
    return out


def load_study(handle: StorageHandle, name: str) -> optuna.Study:
    names = optuna.get_all_study_names(handle.storage)
    if name not in names:
        known = ", ".join(sorted(names)) or "none"
        raise StudyNotFoundError(f"no study '{name}' in {handle.display} (studies there: {known})")
    return optuna.load_study(study_name=name, storage=handle.storage)


def study_spec(study: optuna.Study) -> StudySpec:
    """The study file as `tune run` recorded it in the study."""
    raw = study.user_attrs.get("spec")
    if not raw:
        raise StudyNotFoundError(f"study '{study.study_name}' was not created by `ecg-mlflow tune run` (no spec)")
    return parse_study(raw, source=f"study '{study.study_name}'", default_name=study.study_name)


def importances(study: optuna.Study) -> dict[str, float]:
    """Parameter importances (Optuna's default evaluator) over the completed trials; {} when too few."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < 2:
        return {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return dict(optuna.importance.get_param_importances(study))
    except (RuntimeError, ValueError, ZeroDivisionError):
        return {}


def _trial_row(trial: FrozenTrial) -> dict[str, Any]:
    return {
        "number": trial.number,
        "value": trial.value,
        "state": trial.state.name,
        "params": dict(trial.params),
        "mlflow_run_id": trial.user_attrs.get("mlflow_run_id", ""),
    }


def show_study(handle: StorageHandle, name: str, top: int = 10) -> dict[str, Any]:
    study = load_study(handle, name)
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    reverse = study.direction == optuna.study.StudyDirection.MAXIMIZE
    ranked = sorted(complete, key=lambda t: t.value, reverse=reverse)
    spec = study.user_attrs.get("spec") or {}
    return {
        "name": name,
        "storage": handle.display,
        "direction": study.direction.name.lower(),
        "metric": spec.get("objective", {}).get("metric", "value"),
        "trials": len(trials),
        "counts": _counts(trials),
        "best": _trial_row(ranked[0]) if ranked else None,
        "top": [_trial_row(t) for t in ranked[:top]],
        "importances": importances(study),
        "failed": [
            {"number": t.number, "reason": str(t.user_attrs.get("fail_reason", ""))}
            for t in trials
            if t.state == TrialState.FAIL
        ],
    }


@dataclass
class BestTrial:
    study: str
    number: int
    value: float
    values: dict[str, Any]  # fixed + sampled, as in the study file
    step_params: dict[str, dict[str, Any]]
    spec: StudySpec


def best_trial(handle: StorageHandle, name: str) -> BestTrial:
    study = load_study(handle, name)
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        raise StudyNotFoundError(f"study '{name}' has no completed trial yet")
    best = study.best_trial
    spec = study_spec(study)
    fixed = best.user_attrs.get("fixed_params", spec.fixed)
    values = {**fixed, **best.params}
    return BestTrial(name, best.number, float(best.value), values, spec.step_params(values), spec)


def apply_best(best: BestTrial) -> dict[str, Any]:
    """Run the normal pretrain/transfer steps (registered like any run) with the best parameters."""
    import mlflow

    from ecg_mlflow.tuning.objective import run_steps

    info: dict[str, Any] = {}
    result = run_steps(best.spec, best.values, register=True, info=info)
    client = mlflow.MlflowClient()
    for key in ("pretrain_run_id", "transfer_run_id", "crossval_run_id"):
        if key in info:
            with contextlib.suppress(Exception):
                client.set_tag(info[key], "optuna.study_name", best.study)
                client.set_tag(info[key], "optuna.best_trial", str(best.number))
    info["metrics"] = {k: v for k, v in result.metrics.items() if isinstance(v, float) and math.isfinite(v)}
    info["registered_version"] = getattr(result, "registered_version", "")
    return info


def log_study_report(study: optuna.Study) -> None:
    """On the active (parent) run: Optuna's optimisation-history plot, and the importances as
    `importance_<param>` metrics and importances.json (when enough trials completed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mlflow
    from optuna.visualization.matplotlib import plot_optimization_history

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the matplotlib backend is "experimental" in Optuna
        axes = plot_optimization_history(study)
    mlflow.log_figure(axes.figure, "optimization_history.png")
    plt.close(axes.figure)
    found = importances(study)
    if found:
        mlflow.log_dict(found, "importances.json")
        mlflow.log_metrics({f"importance_{name.replace('.', '_')}": value for name, value in found.items()})
