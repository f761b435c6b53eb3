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
from typing import Any

from ecg_mlflow.checks import declare
from ecg_mlflow.data import kaggle, physionet
from ecg_mlflow.data.beats import BeatTable
from ecg_mlflow.data.databases import Database
from ecg_mlflow.data.records import record_files

# (database, DATA_DIR, input kind, progress bar, worker processes) -> every beat of the source
Reader = Callable[[Database, Path, str, bool, int], BeatTable]


@dataclass(frozen=True)
class Source:
    name: str
    help: str
    timing: bool  # beats carry R-peak times and records: context columns, inputs cut from the signal, split=inter
    provides: Callable[[Database], bool]  # whether it holds this training database's beats
    files: Callable[[Database, Path], list[Path]]  # the raw files under DATA_DIR (DataError: where to get them)
    read: Reader
    key: Callable[[Database], dict[str, Any]]  # what decides the beats besides the files (part of the cache key)
    fixes_test: Callable[[Database], bool]  # whether the files set the test beats apart (then no test_fraction)


SOURCES: dict[str, Source] = {}


def register_source(source: Source) -> Source:
    return declare(SOURCES, source, "source")


register_source(
    Source(
        name="physionet",
        help="build beats from WFDB records",
        timing=True,
        provides=lambda database: True,
        files=lambda database, data_dir: record_files(database, data_dir),
        read=lambda database, data_dir, input_kind, progress, workers: physionet.record_table(
            database, data_dir, progress, workers, input_kind=input_kind
        ),
        key=lambda database: {"extraction": physionet.extraction_fingerprint(database)},
        fixes_test=lambda database: False,
    )
)
register_source(
    Source(
        name="kaggle",
        help="import the Kaggle CSVs",
        timing=False,
        provides=lambda database: database.kaggle is not None,
        files=lambda database, data_dir: kaggle.kaggle_paths(data_dir, database.kaggle),  # type: ignore[arg-type]
        read=lambda database, data_dir, input_kind, progress, workers: kaggle.read_table(database, data_dir),
        key=lambda database: {},
        fixes_test=lambda database: bool(database.kaggle and database.kaggle.test),
    )
)
