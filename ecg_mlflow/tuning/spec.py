"""Study files (studies/*.yaml): schema, validation and the per-step parameters of a trial.

A study file names
  name          the Optuna study name (default: the file's stem)
  steps         [pretrain, transfer] or [transfer]: what one trial runs
  objective     metric (a validation metric of the transfer step's result), the pruning
                monitor (a per-epoch validation metric) and the direction
  sampler       TPE (seeded) or random
  pruner        median, percentile, hyperband, successive_halving, threshold or none
  fixed         parameters every trial uses
  search_space  the tuned parameters: float/int ranges (log, step) or categorical choices

Parameter names are the flat names of config.parameter_names(PretrainConfig / TransferConfig).
An unscoped name goes to every step of the study that accepts it (so `epochs: 1` shortens both
pretraining and transfer); `pretrain.NAME` / `transfer.NAME` targets one step and wins over the
unscoped name. Exception: unscoped `dataset` goes to the transfer step only (pretraining is on
MIT-BIH by definition). `head_weights.<transform>` sets one of the 8 pretraining head weights;
`head_weights: {type: float, ..., per_transform: true}` tunes all 8.
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from ecg_mlflow.config import (
    DEFAULT_HEAD_WEIGHTS,
    TRANSFORM_NAMES,
    BackboneConfig,
    ConfigError,
    DataConfig,
    PretrainConfig,
    TransferConfig,
    TransformConfig,
    config_from_params,
    parameter_names,
)
from ecg_mlflow.errors import UsageError

STEP_CONFIGS: dict[str, type] = {"pretrain": PretrainConfig, "transfer": TransferConfig}
STEP_ORDERS: tuple[tuple[str, ...], ...] = (("transfer",), ("pretrain", "transfer"))
TOP_LEVEL_KEYS = ("name", "description", "steps", "objective", "sampler", "pruner", "fixed", "search_space")
OBJECTIVE_KEYS = ("metric", "monitor", "direction")
SAMPLER_KEYS: dict[str, tuple[str, ...]] = {
    "tpe": ("type", "seed", "n_startup_trials", "n_ei_candidates", "multivariate", "group", "constant_liar"),
    "random": ("type", "seed"),
}
PRUNER_KEYS: dict[str, tuple[str, ...]] = {
    "median": ("type", "n_startup_trials", "n_warmup_steps", "interval_steps", "n_min_trials"),
    "percentile": ("type", "percentile", "n_startup_trials", "n_warmup_steps", "interval_steps", "n_min_trials"),
    "hyperband": ("type", "min_resource", "max_resource", "reduction_factor", "bootstrap_count"),
    "successive_halving": ("type", "min_resource", "reduction_factor", "min_early_stopping_rate", "bootstrap_count"),
    "threshold": ("type", "lower", "upper", "n_warmup_steps", "interval_steps"),
    "none": ("type",),
}
PARAM_KEYS = ("type", "low", "high", "log", "step", "choices", "per_transform")
PARAM_TYPES = ("float", "int", "categorical")
# Identify the run that feeds the transfer step; set by the study runner, never searched.
UPSTREAM_NAMES = ("pretrain_run_id", "pretrain_model")
# Where the files live and storage/tracking details are a command's business, not a study's.
NOT_TUNABLE = ("data_dir", "cache_dir", *UPSTREAM_NAMES)
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class StudySpecError(UsageError, ValueError):
    """A study file (or --set override) that cannot be used; the message names the key."""


@dataclass(frozen=True)
class ParamSpec:
    """One searched parameter (key as written in the file, e.g. 'learning_rate', 'head_weights.noise')."""

    key: str
    type: str
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: Any) -> Any:
        if self.type == "float":
            return trial.suggest_float(self.key, self.low, self.high, log=self.log, step=self.step)
        if self.type == "int":
            return trial.suggest_int(self.key, self.low, self.high, log=self.log, step=self.step or 1)
        return trial.suggest_categorical(self.key, list(self.choices))

    def ends(self) -> tuple[Any, ...]:
        """The values that must be valid for the whole range to be valid."""
        return (self.low, self.high) if self.type in ("float", "int") else self.choices


@dataclass(frozen=True)
class StudySpec:
    name: str
    steps: tuple[str, ...]
    metric: str = "best_val_macro_f1"
    monitor: str = "val_macro_f1"
    direction: str = "maximize"
    sampler: dict[str, Any] = field(default_factory=lambda: {"type": "tpe", "seed": 0})
    pruner: dict[str, Any] = field(default_factory=lambda: {"type": "median"})
    fixed: dict[str, Any] = field(default_factory=dict)
    search_space: dict[str, ParamSpec] = field(default_factory=dict)
    description: str = ""
    path: str = ""

    def step_params(self, values: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """fixed + the trial's values -> {step: flat params for config_from_params}."""
        return resolve_step_params(self.steps, {**self.fixed, **values})

    def configs(self, values: dict[str, Any]) -> dict[str, Any]:
        """fixed + the trial's values -> {step: validated step config}."""
        return {step: config_from_params(STEP_CONFIGS[step], p) for step, p in self.step_params(values).items()}

    def to_dict(self) -> dict[str, Any]:
        """The normalised study file (what a study records about itself)."""
        space: dict[str, Any] = {}
        for key, p in self.search_space.items():
            entry: dict[str, Any] = {"type": p.type}
            if p.type == "categorical":
                entry["choices"] = list(p.choices)
            else:
                entry.update(low=p.low, high=p.high)
                if p.log:
                    entry["log"] = True
                if p.step is not None:
                    entry["step"] = p.step
            space[key] = entry
        return {
            "name": self.name,
            "description": self.description,
            "steps": list(self.steps),
            "objective": {"metric": self.metric, "monitor": self.monitor, "direction": self.direction},
            "sampler": dict(self.sampler),
            "pruner": dict(self.pruner),
            "fixed": dict(self.fixed),
            "search_space": space,
        }


# --------------------------------------------------------------------------- names


def _kinds() -> dict[str, str]:
    """Flat parameter name -> declared type string ('int', 'float', 'bool', 'str', 'tuple[...]')."""
    kinds: dict[str, str] = {}
    for cls in (DataConfig, TransformConfig, BackboneConfig, TransferConfig, PretrainConfig):
        for f in fields(cls):
            if f.name not in ("transforms", "data", "model"):
                kinds.setdefault(f.name, str(f.type))
    return kinds


KINDS = _kinds()


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
    if name == "dataset" and "transfer" in steps:
        return ["transfer"]
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


# --------------------------------------------------------------------------- parsing


def _number(where: str, value: Any, integer: bool) -> float | int:
    # PyYAML reads 1e-4 (no dot) as a string; accept it.
    if isinstance(value, bool) or value is None:
        raise StudySpecError(f"{where}={value!r} is not a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise StudySpecError(f"{where}={value!r} is not a number") from None
    if not math.isfinite(number):
        raise StudySpecError(f"{where}={value!r} is not a finite number")
    if integer:
        if number != int(number):
            raise StudySpecError(f"{where}={value!r} must be an integer")
        return int(number)
    return number


def _check_keys(where: str, mapping: Any, allowed: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(mapping, dict):
        raise StudySpecError(f"{where}: expected a mapping, got {type(mapping).__name__}")
    for key in mapping:
        if key not in allowed:
            raise StudySpecError(f"{where}.{key}: unknown key (allowed: {', '.join(allowed)})")
    return mapping


def _parse_param(key: str, name: str, element: str | None, raw: Any) -> list[ParamSpec]:
    where = f"search_space.{key}"
    if not isinstance(raw, dict):
        # A bare list is shorthand for categorical choices.
        if isinstance(raw, list):
            raw = {"type": "categorical", "choices": raw}
        else:
            raise StudySpecError(f"{where}: expected a mapping with type/low/high or choices, got {raw!r}")
    _check_keys(where, raw, PARAM_KEYS)
    kind = raw.get("type")
    if kind not in PARAM_TYPES:
        raise StudySpecError(f"{where}.type: {kind!r} is not one of {', '.join(PARAM_TYPES)}")
    declared = KINDS[name]
    per_transform = bool(raw.get("per_transform", False))
    if per_transform and (name != "head_weights" or element is not None):
        raise StudySpecError(f"{where}.per_transform: only head_weights (as a whole) takes per_transform")
    if name == "head_weights" and kind != "categorical" and not per_transform and element is None:
        raise StudySpecError(
            f"{where}: head_weights is a list of {len(TRANSFORM_NAMES)} weights; search it with "
            "per_transform: true, per transform (head_weights.noise), or as categorical 'a,b,...' strings"
        )
    element_kind = "float" if name == "head_weights" and (element or per_transform) else declared
    if kind == "categorical":
        spec = _categorical(key, raw, name, declared)
    else:
        spec = _numeric(key, raw, kind, element_kind, name, declared)
    if per_transform:
        return [ParamSpec(**{**spec.__dict__, "key": f"{key}.{t}"}) for t in TRANSFORM_NAMES]
    return [spec]


def _categorical(key: str, raw: dict[str, Any], name: str, declared: str) -> ParamSpec:
    """type: categorical -> a ParamSpec with checked choices."""
    where = f"search_space.{key}"
    for k in ("low", "high", "log", "step"):
        if k in raw:
            raise StudySpecError(f"{where}.{k}: a categorical parameter takes choices only")
    choices = raw.get("choices")
    if not isinstance(choices, list) or not choices:
        raise StudySpecError(f"{where}.choices: needs a non-empty list")
    for choice in choices:
        if not (choice is None or isinstance(choice, bool | int | float | str)):
            raise StudySpecError(f"{where}.choices: {choice!r} is not a number, string or boolean")
    if len({repr(c) for c in choices}) != len(choices):
        raise StudySpecError(f"{where}.choices: duplicate choices in {choices}")
    if declared == "bool" and not all(isinstance(c, bool) for c in choices):
        raise StudySpecError(f"{where}.choices: {name} is a boolean; use true/false")
    return ParamSpec(key=key, type="categorical", choices=tuple(choices))


def _numeric(key: str, raw: dict[str, Any], kind: str, element_kind: str, name: str, declared: str) -> ParamSpec:
    """type: int | float -> a ParamSpec with a checked range, log scale and step."""
    where = f"search_space.{key}"
    if "choices" in raw:
        raise StudySpecError(f"{where}.choices: a {kind} parameter takes low/high, not choices")
    if element_kind not in ("int", "float"):
        raise StudySpecError(f"{where}.type: {name} is a {declared} parameter; use type: categorical")
    if kind == "float" and element_kind == "int":
        raise StudySpecError(f"{where}.type: {name} is an integer parameter; use type: int")
    for k in ("low", "high"):
        if k not in raw:
            raise StudySpecError(f"{where}.{k}: missing")
    integer = kind == "int"
    low = _number(f"{where}.low", raw["low"], integer)
    high = _number(f"{where}.high", raw["high"], integer)
    if not low < high:
        raise StudySpecError(f"{where}: bad range, low={low} must be < high={high}")
    log = raw.get("log", False)
    if not isinstance(log, bool):
        raise StudySpecError(f"{where}.log: must be true or false")
    if log and low <= 0:
        raise StudySpecError(f"{where}: bad range, log scale needs low > 0 (got low={low})")
    step = raw.get("step")
    if step is not None:
        step = _number(f"{where}.step", step, integer)
        if step <= 0:
            raise StudySpecError(f"{where}.step: must be > 0 (got {step})")
        if log and (kind == "float" or step != 1):
            raise StudySpecError(f"{where}: step and log cannot be combined")
        if step > high - low:
            raise StudySpecError(f"{where}.step: {step} is larger than the range {low}..{high}")
    return ParamSpec(key=key, type=kind, low=low, high=high, log=log, step=step)


def _parse_sampler(raw: Any) -> dict[str, Any]:
    raw = {"type": "tpe", "seed": 0} if raw is None else raw
    if not isinstance(raw, dict):
        raise StudySpecError(f"sampler: expected a mapping, got {raw!r}")
    kind = raw.get("type", "tpe")
    if kind not in SAMPLER_KEYS:
        raise StudySpecError(f"sampler.type: {kind!r} is not one of {', '.join(SAMPLER_KEYS)}")
    _check_keys("sampler", raw, SAMPLER_KEYS[kind])
    out = {"type": kind, **{k: v for k, v in raw.items() if k != "type"}}
    out["seed"] = _number("sampler.seed", out.get("seed", 0), True)
    for k in ("n_startup_trials", "n_ei_candidates"):
        if k in out and _number(f"sampler.{k}", out[k], True) < 1:
            raise StudySpecError(f"sampler.{k}: must be >= 1")
    for k in ("multivariate", "group", "constant_liar"):
        if k in out and not isinstance(out[k], bool):
            raise StudySpecError(f"sampler.{k}: must be true or false")
    return out


def _parse_pruner(raw: Any) -> dict[str, Any]:
    raw = {"type": "median"} if raw is None else raw
    if not isinstance(raw, dict):
        raise StudySpecError(f"pruner: expected a mapping, got {raw!r}")
    kind = raw.get("type", "median")
    if kind not in PRUNER_KEYS:
        raise StudySpecError(f"pruner.type: {kind!r} is not one of {', '.join(PRUNER_KEYS)}")
    _check_keys("pruner", raw, PRUNER_KEYS[kind])
    out = {"type": kind, **{k: v for k, v in raw.items() if k != "type"}}
    try:
        build_pruner(out)
    except (TypeError, ValueError) as exc:
        raise StudySpecError(f"pruner: {exc}") from None
    return out


def build_pruner(pruner: dict[str, Any]) -> Any:
    import optuna

    kwargs = {k: v for k, v in pruner.items() if k != "type"}
    kind = pruner.get("type", "median")
    for key, value in kwargs.items():
        if key not in ("max_resource",) and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise ValueError(f"{key}={value!r} is not a number")
    classes = {
        "median": optuna.pruners.MedianPruner,
        "percentile": optuna.pruners.PercentilePruner,
        "hyperband": optuna.pruners.HyperbandPruner,
        "successive_halving": optuna.pruners.SuccessiveHalvingPruner,
        "threshold": optuna.pruners.ThresholdPruner,
        "none": optuna.pruners.NopPruner,
    }
    if kind == "percentile" and "percentile" not in kwargs:
        raise ValueError("percentile: missing (e.g. 25.0)")
    if kind == "threshold" and "lower" not in kwargs and "upper" not in kwargs:
        raise ValueError("threshold needs lower and/or upper")
    return classes[kind](**kwargs)


def build_sampler(sampler: dict[str, Any], seed_offset: int = 0) -> Any:
    """The study's sampler; seed_offset (the trial number) gives every trial its own seed."""
    import optuna

    kwargs = {k: v for k, v in sampler.items() if k not in ("type", "seed")}
    seed = (int(sampler.get("seed", 0)) * 1_000_003 + seed_offset) % (2**32)
    if sampler.get("type", "tpe") == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, **kwargs)


def _parse_objective(raw: Any) -> dict[str, str]:
    raw = {} if raw is None else raw
    if isinstance(raw, str):
        raw = {"metric": raw}
    _check_keys("objective", raw, OBJECTIVE_KEYS)
    metric = str(raw.get("metric", "best_val_macro_f1"))
    monitor = str(raw.get("monitor", "val_macro_f1"))
    direction = str(raw.get("direction", "maximize"))
    if "test" in metric or not (metric.startswith("val_") or metric.startswith("best_val_")):
        raise StudySpecError(
            f"objective.metric: {metric!r} is not a validation metric; the objective must be measured on "
            "the validation split (e.g. best_val_macro_f1), never on the test split"
        )
    if "test" in monitor or not monitor.startswith("val_"):
        raise StudySpecError(
            f"objective.monitor: {monitor!r} must be a per-epoch validation metric (e.g. val_macro_f1)"
        )
    if direction not in ("maximize", "minimize"):
        raise StudySpecError(f"objective.direction: {direction!r} is not maximize or minimize")
    return {"metric": metric, "monitor": monitor, "direction": direction}


def parse_set(items: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """--set key=value ... -> {key: value}; values are read as YAML scalars (1, 0.5, true, cnn)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise StudySpecError(f"--set {item!r}: expected key=value")
        try:
            parsed = yaml.safe_load(value) if value.strip() else ""
        except yaml.YAMLError:
            parsed = value
        if isinstance(parsed, list):
            parsed = ",".join(str(v) for v in parsed)
        elif parsed is not None and not isinstance(parsed, bool | int | float | str):
            parsed = value
        out[key] = value if parsed is None else parsed
    return out


def parse_study(
    raw: Any, *, source: str = "<study>", default_name: str = "study", overrides: dict[str, Any] | None = None
) -> StudySpec:
    """A loaded YAML document (+ --set overrides) -> a validated StudySpec."""
    try:
        return _parse_study(raw, default_name=default_name, overrides=overrides or {}, source=source)
    except StudySpecError as exc:
        raise StudySpecError(f"{source}: {exc}") from None


def _parse_study(raw: Any, *, default_name: str, overrides: dict[str, Any], source: str) -> StudySpec:
    if raw is None:
        raise StudySpecError("the file is empty")
    _check_keys("study", raw, TOP_LEVEL_KEYS)
    raw = copy.deepcopy(raw)
    study_name = str(raw.get("name", default_name))
    if not _NAME_RE.match(study_name):
        raise StudySpecError(f"name: {study_name!r} may contain letters, digits, '_', '-' and '.' only")
    steps_raw = raw.get("steps", ["transfer"])
    if isinstance(steps_raw, str):
        steps_raw = [steps_raw]
    steps = tuple(str(s) for s in steps_raw or ())
    if steps not in STEP_ORDERS:
        raise StudySpecError(f"steps: {list(steps)} must be [transfer] or [pretrain, transfer]")
    objective = _parse_objective(raw.get("objective"))
    sampler = _parse_sampler(raw.get("sampler"))
    pruner = _parse_pruner(raw.get("pruner"))

    fixed = _parse_fixed(raw.get("fixed") or {}, steps)
    space = _parse_space(raw.get("search_space") or {}, steps, fixed)
    _apply_overrides(overrides, steps, fixed, space)

    spec = StudySpec(
        name=study_name,
        steps=steps,
        metric=objective["metric"],
        monitor=objective["monitor"],
        direction=objective["direction"],
        sampler=sampler,
        pruner=pruner,
        fixed=fixed,
        search_space=space,
        description=str(raw.get("description", "")),
        path=source,
    )
    _check_against_configs(spec)
    return spec


def _parse_fixed(fixed_raw: Any, steps: tuple[str, ...]) -> dict[str, Any]:
    """`fixed:` -> {key: value}; lists become "a,b,c" (how the CLI takes tuples)."""
    if not isinstance(fixed_raw, dict):
        raise StudySpecError("fixed: expected a mapping of parameter: value")
    fixed: dict[str, Any] = {}
    for key, value in fixed_raw.items():
        split_key(str(key), steps)  # names the key when unknown
        if isinstance(value, list):
            value = ",".join(str(v) for v in value)
        if isinstance(value, dict):
            raise StudySpecError(f"fixed.{key}: expected a single value, got a mapping")
        fixed[str(key)] = value
    return fixed


def _parse_space(space_raw: Any, steps: tuple[str, ...], fixed: dict[str, Any]) -> dict[str, ParamSpec]:
    """`search_space:` -> {key: ParamSpec}; a key is either fixed or searched, never both."""
    if not isinstance(space_raw, dict):
        raise StudySpecError("search_space: expected a mapping of parameter: range")
    space: dict[str, ParamSpec] = {}
    for key, value in space_raw.items():
        key = str(key)
        try:
            _, name, element = split_key(key, steps)
        except StudySpecError as exc:
            raise StudySpecError(f"search_space.{exc}") from None
        if name in NOT_TUNABLE:
            raise StudySpecError(f"search_space.{key}: {name} cannot be searched; fix it instead")
        if key in fixed:
            raise StudySpecError(f"search_space.{key}: is also under fixed; a parameter is either fixed or searched")
        for p in _parse_param(key, name, element, value):
            space[p.key] = p
    return space


def _apply_overrides(
    overrides: dict[str, Any], steps: tuple[str, ...], fixed: dict[str, Any], space: dict[str, ParamSpec]
) -> None:
    """--set wins over the file: it replaces the fixed value and takes the parameter out of the search
    space, in every step it covers (so --set epochs=1 also beats `transfer.epochs: 20`)."""
    for key, value in overrides.items():
        try:
            scope, name, element = split_key(key, steps)
        except StudySpecError as exc:
            raise StudySpecError(f"--set {exc}") from None
        for existing in [*fixed, *space]:
            e_scope, e_name, e_element = split_key(existing, steps)
            if e_name == name and scope in (None, e_scope) and element in (None, e_element):
                fixed.pop(existing, None)
                space.pop(existing, None)
        fixed[key] = value


def _check_against_configs(spec: StudySpec) -> None:
    """Build the step configs with the fixed values and at every range end; name the key on failure."""
    try:
        spec.configs({})
    except (ConfigError, StudySpecError) as exc:
        bad = [k for k in spec.fixed if _mentions(str(exc), k)]
        where = f"fixed.{bad[0]}" if bad else "fixed"
        raise StudySpecError(f"{where}: {exc}") from None
    for key, p in spec.search_space.items():
        for label, value in zip(
            ("low", "high") if p.type != "categorical" else ("choice",) * len(p.choices), p.ends(), strict=True
        ):
            try:
                spec.configs({key: value})
            except (ConfigError, StudySpecError) as exc:
                raise StudySpecError(f"search_space.{key}: bad {label}={value!r}: {exc}") from None


def _mentions(message: str, key: str) -> bool:
    name = key.split(".")[-1] if key.split(".")[0] in STEP_CONFIGS else key.split(".")[0]
    return re.search(rf"\b{re.escape(name)}\b", message) is not None


def load_study_file(path: str | Path, overrides: dict[str, Any] | None = None) -> StudySpec:
    """Read and validate studies/NAME.yaml (with its `base:` chain); StudySpecError names the file and key."""
    path = Path(path)
    raw = _read_with_base(path, seen=())
    return parse_study(raw, source=str(path), default_name=path.stem, overrides=overrides)


def _read_yaml(path: Path) -> Any:
    if not path.is_file():
        raise StudySpecError(f"{path}: no such study file")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise StudySpecError(f"{path}: not valid YAML: {exc}") from None


def _read_with_base(path: Path, seen: tuple[Path, ...]) -> Any:
    """A study file with `base: other.yaml` (relative to it) is that file with its own keys laid over.

    `fixed` and `search_space` merge key by key (a key fixed here leaves the base's search space and
    the other way round, since a parameter is either fixed or searched; `key: null` drops the base's
    key); other keys replace the base's; `name` is never inherited (the file's own, else its stem).
    """
    raw = _read_yaml(path)
    if not isinstance(raw, dict) or "base" not in raw:
        return raw
    base_path = (path.parent / str(raw["base"])).resolve()
    if base_path in seen or base_path == path.resolve():
        raise StudySpecError(f"{path}: base: {raw['base']} leads back to itself")
    base = _read_with_base(base_path, (*seen, path.resolve()))
    if not isinstance(base, dict):
        raise StudySpecError(f"{path}: base: {raw['base']} is not a study file")
    merged = {k: v for k, v in base.items() if k != "name"}
    own = {k: v for k, v in raw.items() if k != "base"}
    fixed = {**(base.get("fixed") or {}), **(own.pop("fixed", None) or {})}
    space = {**(base.get("search_space") or {}), **(own.pop("search_space", None) or {})}
    own_fixed, own_space = set(raw.get("fixed") or {}), set(raw.get("search_space") or {})
    merged.update(own)
    merged["fixed"] = {k: v for k, v in fixed.items() if k not in own_space and v is not None}
    merged["search_space"] = {k: v for k, v in space.items() if k not in own_fixed and v is not None}
    return merged
