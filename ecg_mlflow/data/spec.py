"""DataConfig: which beats a step asks for, checked against what the declared sources can provide.

The step configs (ecg_mlflow/config.py) embed it; the data path (data/dataset.py) builds from it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from pydantic import Field

from ecg_mlflow.checks import one_of, validated, whole_number
from ecg_mlflow.data.adaptation import ADAPTATIONS
from ecg_mlflow.data.databases import Database, training_datasets
from ecg_mlflow.data.inputs import DEFAULT_INPUT, INPUT_KINDS
from ecg_mlflow.data.sources import SOURCES
from ecg_mlflow.errors import ConfigError

SPLITS: tuple[str, ...] = ("intra", "inter")
ENV_DATA_DIR, ENV_CACHE_DIR = "ECG_DATA_DIR", "ECG_CACHE_DIR"

Dataset = Annotated[str, one_of(lambda: tuple(training_datasets()))]
Split = Annotated[str, one_of(lambda: SPLITS)]
Fraction = Annotated[float, Field(gt=0.0, le=0.9)]
Int = Annotated[int, whole_number]
Count = Annotated[int, Field(ge=0), whole_number]


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """--data-dir wins, then $ECG_DATA_DIR, then ./data."""
    if data_dir:
        return Path(data_dir).expanduser()
    env = os.environ.get(ENV_DATA_DIR)
    return Path(env).expanduser() if env else Path("data")


def resolve_cache_dir(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The built-dataset cache lives apart from the raw data, which may be read-only."""
    if cache_dir:
        return Path(cache_dir).expanduser()
    env = os.environ.get(ENV_CACHE_DIR)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "ecg-mlflow"


def check_inter_split(dataset: str, split: str) -> None:
    """The patient-wise split needs the database's declared record sets (de Chazal DS1/DS2 for MIT)."""
    if split == "inter" and training_datasets()[dataset].inter_split is None:
        raise ConfigError(
            f"split='inter' is not defined for {dataset} (no patient-wise record sets are declared); use split='intra'"
        )


def timed_source() -> str:
    """The first declared source with beat timing: what an error tells a Kaggle user to use instead."""
    return next(name for name, declared in SOURCES.items() if declared.timing)


def check_context(context: str, source: str) -> None:
    """Context columns need beat timing, which isolated beats (the Kaggle CSVs) do not have."""
    if context != "none" and not SOURCES[source].timing:
        raise ConfigError(
            f"context={context!r} needs beat timing, which source={source!r} does not have (isolated beats "
            f"with no R peaks or records); use source={timed_source()!r}, or context='none'"
        )


def check_adapt(adapt: str, context: str, source: str = "physionet") -> None:
    """An adaptation of the context numbers needs some; one to each recording needs beats that come in recordings."""
    if ADAPTATIONS[adapt].recording and not SOURCES[source].timing:
        raise ConfigError(
            f"adapt={adapt!r} adapts the model to each recording, and source={source!r} holds isolated beats with no "
            f"recordings; use source={timed_source()!r}, or adapt='none'"
        )
    if ADAPTATIONS[adapt].needs_context and context == "none":
        raise ConfigError(
            f"adapt={adapt!r} adapts the context numbers to each record: give context='rr' or 'rr_template'"
        )


@validated
class DataConfig:
    """Which beats a step trains and tests on."""

    dataset: Dataset = "mit"
    source: Annotated[str, one_of(lambda: SOURCES)] = "physionet"
    split: Split = "intra"
    data_dir: str = ""
    cache_dir: str = ""
    test_fraction: Fraction = 0.2
    val_fraction: Fraction = 0.1
    split_seed: Int = 42
    max_beats: Count = 0  # 0: all beats
    input: Annotated[str, one_of(lambda: INPUT_KINDS)] = DEFAULT_INPUT  # what the network sees of each beat

    def __post_init__(self) -> None:
        check_inter_split(self.dataset, self.split)
        if not SOURCES[self.source].provides(self.database):
            raise ConfigError(f"source={self.source!r} holds no {self.dataset} beats; use source={timed_source()!r}")
        if self.input != DEFAULT_INPUT and not SOURCES[self.source].timing:
            raise ConfigError(
                f"input={self.input!r} is cut from the records' signal, which source={self.source!r} does not have "
                f"(isolated beats); use source={timed_source()!r}, or input={DEFAULT_INPUT!r}"
            )

    @property
    def database(self) -> Database:
        """The declaration of the dataset's database."""
        return training_datasets()[self.dataset]

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.database.class_names
