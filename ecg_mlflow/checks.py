"""Validation by pydantic, with failures as one line that names the field (ConfigError).

`validated` turns a dataclass into a frozen pydantic dataclass: field annotations coerce the
strings MLproject and the CLI pass ("3", "true", "0.1,0.5"), constraints such as
`Annotated[float, Field(gt=0, le=1)]` check ranges, and `one_of(...)` checks a choice against a
registry read when the check runs (so a backbone or database registered later is a valid choice).
The result is still a standard dataclass: `fields`, `asdict` and `replace` (which validates) work.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any, Protocol, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, ValidationError
from pydantic.dataclasses import dataclass as pydantic_dataclass

from ecg_mlflow.errors import ConfigError

T = TypeVar("T")


def validated(cls: type[T]) -> type[T]:
    """A frozen dataclass validated by pydantic; a bad value raises ConfigError naming its field."""
    model = pydantic_dataclass(frozen=True, config=ConfigDict(extra="forbid", arbitrary_types_allowed=True))(cls)
    pydantic_init = model.__init__

    @functools.wraps(pydantic_init)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        try:
            pydantic_init(self, *args, **kwargs)
        except ValidationError as error:
            raise ConfigError(describe(error)) from None

    model.__init__ = __init__  # type: ignore[method-assign]
    return model


def describe(error: ValidationError) -> str:
    """The first problem as `name=value what is wrong` (or the message of a cross-field check)."""
    first = error.errors(include_url=False)[0]
    message = first["msg"].removeprefix("Value error, ").removeprefix("Input ")
    if not first["loc"]:
        return message
    name = str(first["loc"][0])
    if first["type"] == "unexpected_keyword_argument":
        return f"unknown parameter {name!r}"
    if first["type"] == "missing_argument":
        return f"{name} is required"
    return f"{name}={first['input']!r}: {message[0].lower()}{message[1:]}"


def check_choice(name: str, value: str, choices: Iterable[str]) -> None:
    choices = tuple(choices)
    if value not in choices:
        raise ConfigError(f"{name}={value!r} is not one of {', '.join(choices)}")


def one_of(choices: Callable[[], Iterable[str]]) -> AfterValidator:
    """A field check: the value must be one of `choices()` (read when checked, not when declared)."""

    def check(value: str) -> str:
        allowed = tuple(choices())
        if value not in allowed:
            raise ValueError(f"is not one of {', '.join(allowed)}")
        return value

    return AfterValidator(check)


def _split_commas(value: Any) -> Any:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


# A tuple field that also takes "a,b,c" (how MLproject and the CLI pass lists).
comma_separated = BeforeValidator(_split_commas)


def _whole_number(value: Any) -> Any:
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return value
        if number.is_integer():
            return int(number)
    return value


# An int field that also takes "2e4" and "20.0" (MLproject declares ints as float; YAML reads 2e4 as a string).
whole_number = BeforeValidator(_whole_number)


class Schema(BaseModel):
    """A file section validated by pydantic: unknown keys are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Named(Protocol):
    name: str


N = TypeVar("N", bound=Named)


def declare(table: dict[str, N], item: N, kind: str) -> N:
    """Add `item` to the table of its kind (a database, an input kind, ...); a name may be declared once."""
    if item.name in table:
        raise ValueError(f"{kind} {item.name!r} is declared twice")
    table[item.name] = item
    return item
