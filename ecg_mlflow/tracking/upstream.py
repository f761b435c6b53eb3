"""Find and check the run a downstream step builds on.

A wrong run ID, a run that did not finish, a run of another step, or one trained
for another backbone or dataset must stop the downstream step before it trains,
with a message that says what was found and what to do.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlflow.entities import RunStatus
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from ecg_mlflow.errors import UserError
from ecg_mlflow.tracking.runs import STEP_TAG

MODEL_URI_TAG = "ecg_mlflow.model_uri"


class UpstreamError(UserError, ValueError):
    """The upstream run or model cannot be used; the message names it."""


@dataclass(frozen=True)
class UpstreamRun:
    run_id: str
    model_uri: str
    step: str
    params: dict[str, str]


def same_value(found: str, expected: str) -> bool:
    """Param strings equal as numbers where both are numbers ("0.20" == "0.2"), else as text."""
    try:
        return float(found) == float(expected)
    except (TypeError, ValueError):
        return str(found) == str(expected)


def run_id_from_model_uri(model_uri: str) -> str:
    """`models:/name@alias`, `models:/name/version` or `runs:/<id>/...` -> the source run ID."""
    client = MlflowClient()
    if model_uri.startswith("runs:/"):
        return model_uri.removeprefix("runs:/").split("/", 1)[0]
    if not model_uri.startswith("models:/"):
        raise UpstreamError(f"{model_uri!r} is not a models:/ or runs:/ URI (e.g. models:/ecg-ssl-cnn@current)")
    ref = model_uri.removeprefix("models:/")
    if ref.startswith("m-") and "/" not in ref and "@" not in ref:  # an MLflow 3 logged model's own ID
        try:
            return client.get_logged_model(ref).source_run_id
        except MlflowException as error:
            raise UpstreamError(f"{model_uri} is not a logged model here ({error.message.splitlines()[0]})") from None
    try:
        if "@" in ref:
            name, alias = ref.split("@", 1)
            version = client.get_model_version_by_alias(name, alias)
        elif "/" in ref:
            name, number = ref.split("/", 1)
            version = client.get_model_version(name, number)
        else:
            raise UpstreamError(f"{model_uri!r} names no version or alias; use models:/{ref}@current")
    except MlflowException as error:
        raise UpstreamError(f"{model_uri} is not in the Model Registry ({error.message.splitlines()[0]})") from None
    if not version.run_id:
        raise UpstreamError(f"{model_uri} (version {version.version}) has no source run to check")
    return version.run_id


def resolve_upstream_run(
    *,
    step: str | tuple[str, ...],
    run_id: str = "",
    model_uri: str = "",
    expect_params: dict[str, str] | None = None,
) -> UpstreamRun:
    """Resolve a run ID or models:/ URI and check it is a FINISHED `step` run with `expect_params`.

    `step` may name several kinds of run that are all acceptable (a transfer or an ensemble).
    """
    steps = (step,) if isinstance(step, str) else tuple(step)
    named = [repr(s) for s in steps]
    step = named[0] if len(named) == 1 else f"{', '.join(named[:-1])} or {named[-1]}"
    if not run_id and not model_uri:
        raise UpstreamError(f"no upstream {step} run given: pass a run ID or a models:/ URI")
    if model_uri and not run_id:
        run_id = run_id_from_model_uri(model_uri)
    client = MlflowClient()
    try:
        run = client.get_run(run_id)
    except MlflowException:
        raise UpstreamError(
            f"run {run_id!r} does not exist on this tracking server; copy the run ID of a finished "
            f"{step} run from the MLflow UI (or `mlflow runs list`)"
        ) from None
    status = run.info.status
    if status != RunStatus.to_string(RunStatus.FINISHED):
        raise UpstreamError(f"run {run_id} is {status}, not FINISHED; use a {step} run that completed")
    found_step = run.data.tags.get(STEP_TAG, "")
    if found_step not in steps:
        kind = f"a {found_step!r} run" if found_step else "not a run of this project's steps"
        raise UpstreamError(f"run {run_id} is {kind}; expected a {step} run")
    params = dict(run.data.params)
    for name, expected in (expect_params or {}).items():
        found = params.get(name)
        if found is not None and not same_value(found, expected):
            raise UpstreamError(
                f"run {run_id} was trained with {name}={found}, but this step needs {name}={expected}; "
                f"pass a {step} run with {name}={expected}"
            )
    return UpstreamRun(
        run_id=run_id,
        model_uri=model_uri or run.data.tags.get(MODEL_URI_TAG, f"runs:/{run_id}/model"),
        step=found_step,
        params=params,
    )


def resolve_model_run(model_uri: str, steps: tuple[str, ...]) -> UpstreamRun:
    """The FINISHED run (of one of `steps`) that logged the model at `model_uri`."""
    return resolve_upstream_run(step=steps, model_uri=model_uri)
