"""A study's sampler and pruner: Optuna's own keyword arguments, checked when the file loads.

Each `type:` is a model whose fields are the keyword arguments of the Optuna class it names
(`optuna_class`), so `build()` passes them on unchanged; Optuna's own checks (a percentile
outside [0, 100], a threshold pruner with no bound) run when the study file loads, not mid-study.
"""

from __future__ import annotations

import warnings
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, Field, model_validator

from ecg_mlflow.checks import Schema


def _default_type(default: str) -> BeforeValidator:
    """A mapping without `type:` gets the default one (`sampler: {seed: 1}` is a seeded TPE)."""
    return BeforeValidator(lambda raw: {"type": default, **raw} if isinstance(raw, dict) else raw)


class _Sampler(Schema):
    seed: int = 0

    def build(self, seed_offset: int = 0) -> Any:
        """The Optuna sampler; seed_offset (the trial number) gives every trial its own seed."""
        import optuna

        seed = (self.seed * 1_000_003 + seed_offset) % (2**32)
        kwargs = self.model_dump(exclude={"type", "seed"}, exclude_none=True)
        return getattr(optuna.samplers, self.optuna_class)(seed=seed, **kwargs)

    @model_validator(mode="after")
    def _optuna_accepts_it(self) -> _Sampler:
        with warnings.catch_warnings():  # the experimental options' warnings belong to the study, not the file
            warnings.simplefilter("ignore")
            try:
                self.build()  # e.g. TPE's group without multivariate, refused when the file loads, not at study start
            except TypeError as exc:
                raise ValueError(str(exc)) from None
        return self


class TPESampler(_Sampler):
    type: Literal["tpe"] = "tpe"
    optuna_class: ClassVar[str] = "TPESampler"
    n_startup_trials: Annotated[int, Field(ge=1)] | None = None
    n_ei_candidates: Annotated[int, Field(ge=1)] | None = None
    multivariate: bool | None = None
    group: bool | None = None
    constant_liar: bool | None = None


class RandomSampler(_Sampler):
    type: Literal["random"]
    optuna_class: ClassVar[str] = "RandomSampler"


class _Pruner(Schema):
    def build(self) -> Any:
        import optuna

        return getattr(optuna.pruners, self.optuna_class)(**self.model_dump(exclude={"type"}, exclude_unset=True))

    @model_validator(mode="after")
    def _optuna_accepts_it(self) -> _Pruner:
        try:
            self.build()  # Optuna's own checks (e.g. percentile in [0, 100]) at load time, not mid-study
        except TypeError as exc:
            raise ValueError(str(exc)) from None
        return self


class _Stepwise(_Pruner):
    n_warmup_steps: Annotated[int, Field(ge=0)] = 0
    interval_steps: Annotated[int, Field(ge=1)] = 1


class MedianPruner(_Stepwise):
    type: Literal["median"] = "median"
    optuna_class: ClassVar[str] = "MedianPruner"
    n_startup_trials: Annotated[int, Field(ge=0)] = 5
    n_min_trials: Annotated[int, Field(ge=1)] = 1


class PercentilePruner(MedianPruner):
    type: Literal["percentile"]  # type: ignore[assignment]
    optuna_class: ClassVar[str] = "PercentilePruner"
    percentile: float


class ThresholdPruner(_Stepwise):
    type: Literal["threshold"]
    optuna_class: ClassVar[str] = "ThresholdPruner"
    lower: float | None = None
    upper: float | None = None


class HyperbandPruner(_Pruner):
    type: Literal["hyperband"]
    optuna_class: ClassVar[str] = "HyperbandPruner"
    # Optuna checks these bounds only when the first trial is pruned (ZeroDivisionError, math domain error).
    min_resource: Annotated[int, Field(ge=1)] = 1
    max_resource: Annotated[int, Field(ge=1)] | Literal["auto"] = "auto"
    reduction_factor: Annotated[int, Field(ge=2)] = 3
    bootstrap_count: Annotated[int, Field(ge=0)] = 0


class SuccessiveHalvingPruner(_Pruner):
    type: Literal["successive_halving"]
    optuna_class: ClassVar[str] = "SuccessiveHalvingPruner"
    min_resource: int | Literal["auto"] = "auto"
    reduction_factor: int = 4
    min_early_stopping_rate: int = 0
    bootstrap_count: int = 0


class NoPruner(_Pruner):
    type: Literal["none"]
    optuna_class: ClassVar[str] = "NopPruner"


Sampler = Annotated[TPESampler | RandomSampler, Field(discriminator="type"), _default_type("tpe")]
Pruner = Annotated[
    MedianPruner | PercentilePruner | HyperbandPruner | SuccessiveHalvingPruner | ThresholdPruner | NoPruner,
    Field(discriminator="type"),
    _default_type("median"),
]
