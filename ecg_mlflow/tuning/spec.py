"""Study files (studies/*.yaml): their schema, validated by pydantic, and the parameters of a trial.

A study file names
  name          the Optuna study name (default: the file's stem)
  steps         [pretrain, transfer], [transfer] or [crossval]: what one trial runs
  objective     metric (a validation metric of the supervised step's result, or a cross-validation figure
                cv_*), the pruning monitor (a per-epoch validation metric; for [crossval], a fold's
                selection figure, reported as the running mean over folds) and the direction
  sampler       TPE (seeded) or random, with Optuna's own keyword arguments
  pruner        median, percentile, hyperband, successive_halving, threshold or none, likewise
  fixed         parameters every trial uses
  search_space  the tuned parameters: float/int ranges (log, step) or categorical choices

The schema (models below) checks shapes, types and keys; the names and values are then checked
against the step configs themselves (tuning/names.py, and every range end builds a config), so a
study that loads runs. `head_weights: {type: float, ..., per_transform: true}` tunes all 8 weights.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, get_args

from pydantic import BeforeValidator, Field, ValidationError, field_validator

from ecg_mlflow.checks import Schema
from ecg_mlflow.errors import ConfigError
from ecg_mlflow.params import config_from_params
from ecg_mlflow.transforms import TRANSFORM_NAMES
from ecg_mlflow.tuning.algorithms import MedianPruner, Pruner, Sampler, TPESampler
from ecg_mlflow.tuning.names import (
    KINDS,
    NOT_TUNABLE,
    STEP_CONFIGS,
    STEP_ORDERS,
    StudySpecError,
    resolve_step_params,
    same_parameter,
    split_key,
)
from ecg_mlflow.tuning.space import CategoricalParam, Param


class Objective(Schema):
    metric: str = "best_val_macro_f1"
    monitor: str = "val_macro_f1"
    direction: Literal["maximize", "minimize"] = "maximize"

    @field_validator("metric")
    @classmethod
    def _validation_metric(cls, metric: str) -> str:
        if "test" in metric or not metric.startswith(("val_", "best_val_", "cv_")):
            raise ValueError(
                "not a validation metric; the objective must be measured on the validation split "
                "(e.g. best_val_macro_f1) or by cross-validation (cv_macro_f1_nsv_mean), never on the test split"
            )
        return metric

    @field_validator("monitor")
    @classmethod
    def _per_epoch_metric(cls, monitor: str) -> str:
        if "test" in monitor or not monitor.startswith("val_"):
            raise ValueError("must be a per-epoch validation metric (e.g. val_macro_f1)")
        return monitor


# `fixed:` values are scalars (null: the default, e.g. a backbone size inherited); a YAML list is how
# a tuple parameter is written ("a,b,c" on the CLI).
Scalar = Annotated[
    bool | int | float | str | None,
    BeforeValidator(lambda v: ",".join(str(i) for i in v) if isinstance(v, list) else v),
]


def _as_steps(value: Any) -> Any:
    """`steps: transfer` is `[transfer]`; null is none; anything but a list is left for the schema to refuse."""
    if isinstance(value, str):
        return (value,)
    if value is None:
        return ()
    return tuple(value) if isinstance(value, list | tuple) else value


class StudyFile(Schema):
    """The schema of a study file; what a study records about itself (`to_dict`)."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")] = "study"
    description: str = ""
    steps: Annotated[tuple[str, ...], BeforeValidator(_as_steps)] = ("transfer",)
    objective: Annotated[Objective, BeforeValidator(lambda v: {"metric": v} if isinstance(v, str) else v or {})] = (
        Objective()
    )
    sampler: Annotated[Sampler, BeforeValidator(lambda v: {"type": "tpe"} if v is None else v)] = TPESampler()
    pruner: Annotated[Pruner, BeforeValidator(lambda v: {"type": "median"} if v is None else v)] = MedianPruner()
    fixed: Annotated[dict[str, Scalar], BeforeValidator(lambda v: v or {})] = Field(default_factory=dict)
    search_space: Annotated[dict[str, Param], BeforeValidator(lambda v: v or {})] = Field(default_factory=dict)

    @field_validator("steps")
    @classmethod
    def _known_order(cls, steps: tuple[str, ...]) -> tuple[str, ...]:
        if steps not in STEP_ORDERS:
            raise ValueError(f"{list(steps)} must be one of {', '.join(str(list(o)) for o in STEP_ORDERS)}")
        return steps


class StudySpec(StudyFile):
    """A validated study: its file, with per_transform expanded, --set applied and checked against the configs."""

    path: str = ""

    @property
    def metric(self) -> str:
        return self.objective.metric

    @property
    def monitor(self) -> str:
        return self.objective.monitor

    @property
    def direction(self) -> str:
        return self.objective.direction

    def step_params(self, values: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """fixed + the trial's values -> {step: flat params for config_from_params}."""
        return resolve_step_params(self.steps, {**self.fixed, **values})

    def configs(self, values: dict[str, Any]) -> dict[str, Any]:
        """fixed + the trial's values -> {step: validated step config}."""
        return {step: config_from_params(STEP_CONFIGS[step], p) for step, p in self.step_params(values).items()}

    def suggest(self, trial: Any) -> dict[str, Any]:
        """One value per searched parameter, from the trial."""
        return {key: param.suggest(trial, key) for key, param in self.search_space.items()}

    def to_dict(self) -> dict[str, Any]:
        """The normalised study file (what a study records about itself)."""
        return self.model_dump(mode="json", exclude={"path"}, exclude_none=True)


def parse_study(
    raw: Any, *, source: str = "<study>", default_name: str = "study", overrides: dict[str, Any] | None = None
) -> StudySpec:
    """A loaded YAML document (+ --set overrides) -> a validated StudySpec; StudySpecError names the key."""
    try:
        if raw is None:
            raise StudySpecError("the file is empty")
        if not isinstance(raw, dict):
            raise StudySpecError(f"expected a mapping of study keys, got {type(raw).__name__}")
        _check_text_keys(raw)
        try:
            study = StudyFile.model_validate({"name": default_name, **raw})
        except ValidationError as error:
            raise StudySpecError(_describe(error)) from None
        fixed = _checked_fixed(study)
        space = _checked_space(study, fixed)
        _apply_overrides(overrides or {}, study.steps, fixed, space)
        spec = StudySpec(**{**dict(study), "fixed": fixed, "search_space": space, "path": source})
        _check_against_configs(spec)
        return spec
    except StudySpecError as exc:
        raise StudySpecError(f"{source}: {exc}") from None


def _check_text_keys(value: Any, where: str = "") -> None:
    """Keys YAML read as something else (no, on, 1, null: booleans, numbers, None) are named as read,
    where the schema would name a boolean key by its index; a blank key or one with a line break or
    other control character (a quoted YAML key) is refused before any message prints it."""
    for key, item in value.items() if isinstance(value, dict) else ():
        if not isinstance(key, str):
            raise StudySpecError(f"{where}{key!r}: keys must be text; YAML read this one as {type(key).__name__}")
        if not key.strip() or not key.isprintable():
            raise StudySpecError(f"{where}{key!r}: not a key (blank, or with a line break or control character)")
        _check_text_keys(item, f"{where}{key}.")


def _union_tags(*unions: Any) -> set[str]:
    """The `type:` values of the models in tagged unions (Param, Sampler, Pruner)."""
    return {get_args(m.model_fields["type"].annotation)[0] for u in unions for m in get_args(get_args(u)[0])}


_TAGS = _union_tags(Param, Sampler, Pruner) | {"bool", "str"}  # and the members of plain unions


def _describe(error: ValidationError) -> str:
    """`search_space.dropout.lo: extra inputs are not permitted` (the union's tag left out of the path)."""
    first = error.errors(include_url=False)[0]
    path = ".".join(str(part) for part in first["loc"] if part not in _TAGS or part == first["loc"][0])
    if first["type"] == "union_tag_invalid":
        path += ".type"
    message = first["msg"].removeprefix("Value error, ")
    return f"{path or 'study'}: {message[0].lower()}{message[1:]}"


def _checked_fixed(study: StudyFile) -> dict[str, Any]:
    for key in study.fixed:
        try:
            split_key(key, study.steps)
        except StudySpecError as exc:
            raise StudySpecError(f"fixed.{exc}") from None
    return dict(study.fixed)


def _checked_space(study: StudyFile, fixed: dict[str, Any]) -> dict[str, Any]:
    """Each searched key names a tunable parameter of the right kind; per_transform expands to 8 keys."""
    space: dict[str, Any] = {}
    for key, param in study.search_space.items():
        where = f"search_space.{key}"
        try:
            _, name, element = split_key(key, study.steps)
        except StudySpecError as exc:
            raise StudySpecError(f"search_space.{exc}") from None
        if name in NOT_TUNABLE:
            raise StudySpecError(f"{where}: {name} cannot be searched; fix it instead")
        if key in fixed:
            raise StudySpecError(f"{where}: is also under fixed; a parameter is either fixed or searched")
        _check_kind(where, name, element, param)
        keys = [f"{key}.{t}" for t in TRANSFORM_NAMES] if param.per_transform else [key]
        space.update(dict.fromkeys(keys, param.model_copy(update={"per_transform": False})))
    return space


def _check_kind(where: str, name: str, element: str | None, param: Any) -> None:
    """The searched type fits the parameter: numbers for numbers, true/false for booleans."""
    declared = KINDS[name]
    whole_weights = name == "head_weights" and element is None and not param.per_transform
    if param.per_transform and (name != "head_weights" or element is not None):
        raise StudySpecError(f"{where}.per_transform: only head_weights (as a whole) takes per_transform")
    if isinstance(param, CategoricalParam):
        if declared == "bool" and not all(isinstance(c, bool) for c in param.choices):
            raise StudySpecError(f"{where}.choices: {name} is a boolean; use true/false")
        return
    if whole_weights:
        raise StudySpecError(
            f"{where}: head_weights is a list of {len(TRANSFORM_NAMES)} weights; search it with "
            "per_transform: true, per transform (head_weights.noise), or as categorical 'a,b,...' strings"
        )
    kind = "float" if name == "head_weights" else declared
    if kind not in ("int", "float"):
        raise StudySpecError(f"{where}.type: {name} is a {declared} parameter; use type: categorical")
    if param.type == "float" and kind == "int":
        raise StudySpecError(f"{where}.type: {name} is an integer parameter; use type: int")


def _apply_overrides(overrides: dict[str, Any], steps: tuple[str, ...], fixed: dict, space: dict) -> None:
    """--set wins over the file: it replaces the fixed value and takes the parameter out of the search
    space, in every step it covers (so --set epochs=1 also beats `transfer.epochs: 20`)."""
    for key, value in overrides.items():
        try:
            split_key(key, steps)
        except StudySpecError as exc:
            raise StudySpecError(f"--set {exc}") from None
        for existing in [k for k in [*fixed, *space] if same_parameter(key, k, steps)]:
            fixed.pop(existing, None)
            space.pop(existing, None)
        fixed[key] = value


def _check_against_configs(spec: StudySpec) -> None:
    """Build the step configs with the fixed values and at every range end; name the key on failure."""
    try:
        spec.configs({})
    except (ConfigError, StudySpecError) as exc:
        bad = [k for k in spec.fixed if _mentions(str(exc), k)]
        raise StudySpecError(f"fixed.{bad[0]}: {exc}" if bad else f"fixed: {exc}") from None
    for key, param in spec.search_space.items():
        for value in param.ends():
            try:
                spec.configs({key: value})
            except (ConfigError, StudySpecError) as exc:
                raise StudySpecError(f"search_space.{key}: bad value {value!r}: {exc}") from None


def _mentions(message: str, key: str) -> bool:
    name = key.split(".")[-1] if key.split(".")[0] in STEP_CONFIGS else key.split(".")[0]
    return re.search(rf"\b{re.escape(name)}\b", message) is not None
