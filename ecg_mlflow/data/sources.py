"""Where a training dataset's beats come from, declared once: PhysioNet records or the Kaggle CSVs.

A `Source` says what it can provide (which databases, whether beats carry R-peak times, hence
context columns, inputs cut from the signal and patient-wise splits), which raw files the beats are
built from, and how to read them into a BeatTable: the first stage of the data path
(data/dataset.py: records -> beats and context -> splits -> cache). `DataConfig.source`, its checks
and the cache key read this table; a new source is one `register_source(Source(...))`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ecg_mlflow.checks import declare
from ecg_mlflow.data import kaggle, physionet
from ecg_mlflow.data.beats import BeatTable
from ecg_mlflow.data.databases import Database
from ecg_mlflow.data.records import record_files


class Reader(Protocol):
    """Stage 1 of the data path: every beat a source holds of a database, as a BeatTable."""

    def __call__(
        self, database: Database, data_dir: Path, *, input_kind: str, progress: bool, workers: int
    ) -> BeatTable: ...


@dataclass(frozen=True)
class Source:
    """Where beats come from: what it provides, its files, how to read them, what goes into the cache key."""

    name: str
    help: str
    timing: bool  # beats carry R-peak times and records: context columns, inputs cut from the signal, split=inter
    provides: Callable[[Database], bool]  # whether it holds this training database's beats
    files: Callable[[Database, Path], list[Path]]  # the raw files under DATA_DIR (DataError: where to get them)
    read: Reader
    cache_key: Callable[[Database], dict[str, Any]]  # what decides the beats besides the files
    # Whether the files set the test beats apart (then test_fraction is no part of the key); its reader must
    # return those rows as BeatTable.test_rows exactly when this holds (checked by dataset.read_beats).
    fixes_test: Callable[[Database], bool]


SOURCES: dict[str, Source] = {}


def register_source(source: Source) -> Source:
    """Add a source to the table DataConfig, the data path and the CLI read; a name may be declared once."""
    return declare(SOURCES, source, "source")


def read_csvs(database: Database, data_dir: Path, *, input_kind: str, progress: bool, workers: int) -> BeatTable:
    """Every row of the database's Kaggle CSVs: isolated beats (the paper's input only, checked by DataConfig)."""
    return kaggle.read_table(database, data_dir)


register_source(
    Source(
        name="physionet",
        help="build beats from WFDB records",
        timing=True,
        provides=lambda database: True,
        files=record_files,
        read=physionet.record_table,
        cache_key=lambda database: {"extraction": physionet.extraction_fingerprint(database)},
        fixes_test=lambda database: False,
    )
)
register_source(
    Source(
        name="kaggle",
        help="import the Kaggle CSVs",
        timing=False,
        provides=lambda database: database.kaggle is not None,
        files=kaggle.kaggle_paths,
        read=read_csvs,
        cache_key=lambda database: {},
        fixes_test=lambda database: bool(kaggle.kaggle_files(database).test),
    )
)
