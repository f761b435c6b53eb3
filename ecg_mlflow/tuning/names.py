"""Parameter names in a study file, and which step each goes to.

Names are the flat names of params.parameter_names(PretrainConfig / TransferConfig / CrossValConfig). An
unscoped name goes to every step of the study that accepts it (so `epochs: 1` shortens both
pretraining and transfer); `pretrain.NAME` / `transfer.NAME` targets one step and wins over the
unscoped name. Exception: unscoped `dataset` goes to the supervised step only (pretraining is on
MIT-BIH by definition). `head_weights.<transform>` sets one of the 8 pretraining head weights.
"""

from __future__ import annotations

from typing import Any

from ecg_mlflow.config import DEFAULT_HEAD_WEIGHTS, CrossValConfig, PretrainConfig, TransferConfig
from ecg_mlflow.errors import UsageError
from ecg_mlflow.params import parameter_defaults, parameter_names
from ecg_mlflow.transforms import TRANSFORM_NAMES

STEP_CONFIGS: dict[str, type] = {"pretrain": PretrainConfig, "transfer": TransferConfig, "crossval": CrossValConfig}
# What one trial may run: a transfer (validated on held-out DS1 records), a pretraining then a transfer, or a
# patient-wise cross-validation (each fold's score an intermediate value; its own pretraining per fold if asked).
STEP_ORDERS: tuple[tuple[str, ...], ...] = (("transfer",), ("pretrain", "transfer"), ("crossval",))
# The function that runs each step ("module:function"), imported when a trial runs it.
STEP_RUNNERS: dict[str, str] = {
    "pretrain": "ecg_mlflow.steps.pretrain:run_pretrain",
    "transfer": "ecg_mlflow.steps.transfer:run_transfer",
    "crossval": "ecg_mlflow.steps.crossval:run_crossval",
}
# Identify the run that feeds the transfer step; set by the study runner, never searched.
UPSTREAM_NAMES = ("pretrain_run_id", "pretrain_model")
# Where the files live and storage/tracking details are a command's business, not a study's.
NOT_TUNABLE = ("data_dir", "cache_dir", *UPSTREAM_NAMES)
# Flat name -> its kind (int, float, bool, str; tuples are str) as MLproject and the CLI expose it.
KINDS: dict[str, str] = {
    name: kind for cls in STEP_CONFIGS.values() for name, (kind, _) in parameter_defaults(cls).items()
}


class StudySpecError(UsageError, ValueError):
    """A study file (or --set override) that cannot be used; the message names the key."""


def split_key(key: str, steps: tuple[str, ...]) -> tuple[str | None, str, str | None]:
    """'transfer.epochs' -> ('transfer', 'epochs', None); 'head_weights.noise' -> (None, 'head_weights', 'noise').

    Raises StudySpecError naming the key when the name is unknown to every step of the study.
    """
    scope: str | None = None
    rest = key
    head, _, tail = key.partition(".")
    if tail and head in STEP_CONFIGS:
        scope, rest = head, tail
    name, _, element = rest.partition(".")
    known = set().union(*(parameter_names(STEP_CONFIGS[s]) for s in steps))
    if scope is not None and scope not in steps:
        raise StudySpecError(f"{key}: this study runs {'/'.join(steps)} only, so '{scope}.' parameters do not apply")
    if scope is not None and name not in parameter_names(STEP_CONFIGS[scope]):
        raise StudySpecError(f"{key}: '{name}' is not a parameter of the {scope} step")
    if name not in known:
        close = sorted(k for k in known if k.startswith(name[:3]))
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise StudySpecError(f"{key}: unknown parameter '{name}'{hint}")
    if element:
        if name != "head_weights":
            raise StudySpecError(f"{key}: only head_weights takes a '.<transform>' suffix")
        if element not in TRANSFORM_NAMES:
            raise StudySpecError(f"{key}: '{element}' is not a transform ({', '.join(TRANSFORM_NAMES)})")
    return scope, name, element or None


def _targets(scope: str | None, name: str, steps: tuple[str, ...]) -> list[str]:
    if scope is not None:
        return [scope]
    if name == "dataset" and "pretrain" in steps:
        return [s for s in steps if s != "pretrain"]
    return [s for s in steps if name in parameter_names(STEP_CONFIGS[s])]


def resolve_step_params(steps: tuple[str, ...], values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Flat study values (possibly scoped / per-transform) -> {step: flat params}; scoped keys win."""
    out: dict[str, dict[str, Any]] = {s: {} for s in steps}
    elements: dict[str, dict[str, Any]] = {s: {} for s in steps}
    parsed = [(split_key(k, steps), v) for k, v in values.items()]
    # Unscoped first, then scoped, so `transfer.epochs` overrides `epochs`.
    for (scope, name, element), value in sorted(parsed, key=lambda item: item[0][0] is not None):
        for step in _targets(scope, name, steps):
            if element is None:
                out[step][name] = value
            else:
                elements[step][element] = value
    for step, per_transform in elements.items():
        if per_transform:
            base = out[step].get("head_weights", DEFAULT_HEAD_WEIGHTS)
            weights = list(base.split(",") if isinstance(base, str) else base)
            if len(weights) != len(TRANSFORM_NAMES):
                raise StudySpecError(f"head_weights needs {len(TRANSFORM_NAMES)} numbers, got {base!r}")
            for element, value in per_transform.items():
                weights[TRANSFORM_NAMES.index(element)] = value
            out[step]["head_weights"] = ",".join(str(w) for w in weights)
    return out


def same_parameter(key: str, other: str, steps: tuple[str, ...]) -> bool:
    """Does setting `key` (e.g. --set epochs=1) cover `other` (e.g. transfer.epochs)?"""
    scope, name, element = split_key(key, steps)
    o_scope, o_name, o_element = split_key(other, steps)
    return o_name == name and scope in (None, o_scope) and element in (None, o_element)
