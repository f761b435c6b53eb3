"""Parameter checks whose failure names the parameter (ConfigError): shared by the configs and the catalogs."""

from __future__ import annotations

from ecg_mlflow.errors import ConfigError


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{name}={value!r} is not one of {', '.join(choices)}")


def check_range(name: str, value: float, low: float, high: float, *, low_open: bool = False) -> None:
    ok = (value > low if low_open else value >= low) and value <= high
    if not ok:
        bracket = "(" if low_open else "["
        raise ConfigError(f"{name}={value!r} must lie in {bracket}{low}, {high}]")
