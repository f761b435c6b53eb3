"""Typer commands generated from the step configs, so CLI options never drift from the defaults.

Every flat parameter of a config (config.parameter_defaults) becomes `--name`, with
the same default and help text the MLproject file shows. Booleans take a value
(`--freeze true`) so MLproject can pass them through unchanged.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import typer

from ecg_mlflow.cli.errors import reported_errors
from ecg_mlflow.entry_points import exposed_parameters, positional_parameters
from ecg_mlflow.params import config_from_params, parameter_help

_PY_TYPES: dict[str, type] = {"int": int, "float": float, "str": str, "bool": str}


def config_command(
    config_cls: type, run: Callable[[Any], None], doc: str, fixed: dict[str, Any] | None = None
) -> Callable[..., None]:
    """A function typer can register whose options are the config's parameters (less the `fixed` ones)."""
    fixed = fixed or {}
    parameters = []
    positional = positional_parameters(config_cls)
    for name, (kind, default) in exposed_parameters(config_cls, fixed).items():
        value = str(default).lower() if kind == "bool" else default
        if name in positional:
            option = typer.Argument(
                ..., help=parameter_help(config_cls, name), show_default=False, metavar=name.upper()
            )
        else:
            option = typer.Option(value, f"--{name.replace('_', '-')}", help=parameter_help(config_cls, name))
        parameters.append(
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=_PY_TYPES[kind])
        )

    def command(**kwargs: Any) -> None:
        with reported_errors():
            config = config_from_params(config_cls, {**kwargs, **fixed})
        run(config)

    command.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in parameters}
    command.__doc__ = doc
    return command
