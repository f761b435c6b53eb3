"""A study's search space: float and int ranges (log scale, step) and categorical choices."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from ecg_mlflow.checks import Schema, whole_number


class _Param(Schema):
    per_transform: bool = False  # head_weights only: one parameter per transform head

    def ends(self) -> tuple[Any, ...]:
        """The values that must be valid for the whole range to be valid."""
        return (self.low, self.high)  # type: ignore[attr-defined]


class _Range(_Param):
    log: bool = False

    @model_validator(mode="after")
    def _sound_range(self) -> _Range:
        low, high, step = self.low, self.high, self.step  # type: ignore[attr-defined]
        if not low < high:
            raise ValueError(f"bad range, low={low} must be < high={high}")
        if self.log and low <= 0:
            raise ValueError(f"bad range, log scale needs low > 0 (got low={low})")
        if step is not None and (step <= 0 or step > high - low):
            raise ValueError(f"step={step} must be > 0 and at most the range {low}..{high}")
        if step is not None and self.log and (isinstance(step, float) or step != 1):
            raise ValueError("step and log cannot be combined")
        return self


class FloatParam(_Range):
    type: Literal["float"]
    low: float = Field(allow_inf_nan=False)
    high: float = Field(allow_inf_nan=False)
    step: Annotated[float, Field(allow_inf_nan=False)] | None = None

    def suggest(self, trial: Any, key: str) -> Any:
        return trial.suggest_float(key, self.low, self.high, log=self.log, step=self.step)


class IntParam(_Range):
    type: Literal["int"]
    low: Annotated[int, whole_number]
    high: Annotated[int, whole_number]
    step: Annotated[int, whole_number] | None = None

    def suggest(self, trial: Any, key: str) -> Any:
        return trial.suggest_int(key, self.low, self.high, log=self.log, step=self.step or 1)


class CategoricalParam(_Param):
    type: Literal["categorical"]
    choices: Annotated[list[bool | int | float | str | None], Field(min_length=1)]

    @field_validator("choices")
    @classmethod
    def _distinct(cls, choices: list[Any]) -> list[Any]:
        if len({repr(c) for c in choices}) != len(choices):
            raise ValueError(f"duplicate choices in {choices}")
        return choices

    def suggest(self, trial: Any, key: str) -> Any:
        return trial.suggest_categorical(key, self.choices)

    def ends(self) -> tuple[Any, ...]:
        return tuple(self.choices)


# A bare list is shorthand for categorical choices.
Param = Annotated[
    FloatParam | IntParam | CategoricalParam,
    Field(discriminator="type"),
    BeforeValidator(lambda raw: {"type": "categorical", "choices": raw} if isinstance(raw, list) else raw),
]
