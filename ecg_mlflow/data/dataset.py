"""load_dataset(DataConfig) -> BeatDataset, read as one path: records -> beats and context -> splits -> cache.

Each stage is one function with typed inputs and outputs, and none calls back into the one before:
1. `read_beats`: the declared source (data/sources.py) reads its files into a BeatTable;
2. `split_indices`: the table's rows for train / val / test (data/splits.py);
3. `split_arrays` + `cache.read_or_build`: the arrays of each split, stored atomically under a key of
   everything that decides them (`array_parameters`), so a second load reads the cache.
`max_beats` is applied after the cache (`cap_beats`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ecg_mlflow.data import cache, splits
from ecg_mlflow.data.beats import BEAT_LENGTH, BeatTable
from ecg_mlflow.data.context import CONTEXT_COLUMNS, select_context
from ecg_mlflow.data.databases import Database
from ecg_mlflow.data.errors import DataError
from ecg_mlflow.data.inputs import DEFAULT_INPUT
from ecg_mlflow.data.physionet import extraction_fingerprint, record_table
from ecg_mlflow.data.records import record_files
from ecg_mlflow.data.sealed import check_split_open
from ecg_mlflow.data.sources import SOURCES
from ecg_mlflow.data.spec import DataConfig, resolve_cache_dir, resolve_data_dir, timed_source

SPLIT_NAMES: tuple[str, ...] = ("train", "val", "test")
# Bump when the beat extraction changes, so old caches are not reused.
# 2: rhythm context (R-R features) per beat; inter-patient validation by whole records.
DATASET_FORMAT = 2


@dataclass(frozen=True)
class BeatDataset:
    """The beats of each split (float32 (n, 187), AAMI/diagnosis labels, records, context) with provenance."""

    train: BeatTable
    val: BeatTable
    test: BeatTable
    class_names: tuple[str, ...]
    context_names: tuple[str, ...] = ()  # the context columns; () without timing (the Kaggle CSVs)
    manifest: dict[str, Any] = field(default_factory=dict)
    digest: str = ""
    name: str = ""
    headline_classes: tuple[str, ...] = ()
    input_kind: str = DEFAULT_INPUT  # what x holds of each beat (data/inputs.py)

    def table(self, split: str) -> BeatTable:
        """'train', 'val' or 'test' (the test split not while it is sealed: data/sealed.py)."""
        check_split_open(split)
        return getattr(self, split)

    def split(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """(x, y) of a split."""
        table = self.table(split)
        return table.x, table.y

    def context(self, split: str, kind: str = "rr") -> np.ndarray | None:
        """The context columns of `kind` for a split (None for 'none').

        DataError when the source has no beat timing (the Kaggle CSVs are isolated beats).
        """
        if kind != "none" and not self.context_names:
            raise DataError(
                f"{self.name} has no rhythm context: its beats carry no R-peak times (the Kaggle CSVs are "
                f"isolated beats); use source={timed_source()} for context={kind}, or context=none"
            )
        return select_context(self.table(split).context, self.context_names, kind)

    def class_counts(self) -> dict[str, dict[str, int]]:
        """{"train": {"N": n, ...}, "val": {...}, "test": {...}}."""
        return {s: class_counts(self.split(s)[1], self.class_names) for s in SPLIT_NAMES}


def class_counts(y: np.ndarray, class_names: tuple[str, ...]) -> dict[str, int]:
    counts = np.bincount(np.asarray(y, dtype=np.int64), minlength=len(class_names))
    return {name: int(c) for name, c in zip(class_names, counts, strict=False)}


def dataset_name(config: DataConfig) -> str:
    return f"{config.dataset}-{config.source}-{config.split}" + (
        "" if config.input == DEFAULT_INPUT else f"-{config.input}"
    )


def input_sha256(files: list[Path], data_dir: Path, cache_dir: Path) -> dict[str, str]:
    """{path relative to DATA_DIR: sha256} of the input files (remembered per size and mtime in the cache)."""
    digests = cache.content_digests(files, cache_dir)
    return {p.relative_to(data_dir).as_posix(): digests[str(p.resolve())] for p in files}


def read_beats(config: DataConfig, data_dir: Path, progress: bool = False, workers: int = 1) -> BeatTable:
    """Stage 1, records -> beats and context: every beat the config's source holds of its dataset."""
    source = SOURCES[config.source]
    table = source.read(config.database, data_dir, input_kind=config.input, progress=progress, workers=workers)
    if (table.test_rows is not None) != source.fixes_test(config.database):  # the cache key trusts the declaration
        raise ValueError(f"source {source.name!r}: its fixes_test declaration and its reader's test_rows disagree")
    return table


def split_indices(table: BeatTable, config: DataConfig) -> splits.SplitIndices:
    """Stage 2, beats -> splits: patient-wise by the declared record sets, the test set the files fix, or
    stratified random beats (the paper's split)."""
    if config.split == "inter":
        inter = config.database.inter_split
        if not table.has_records or inter is None:
            raise DataError(
                f"split='inter' needs record ids, which the {config.source} beats of {config.dataset} do not have; "
                f"use source={timed_source()!r} for the de Chazal inter-patient split, or split='intra'"
            )
        return splits.split_inter(table.records, table.y, config.val_fraction, config.split_seed, inter)
    if table.test_rows is not None:
        return splits.split_given_test(table.y, table.test_rows, config.val_fraction, config.split_seed)
    return splits.split_intra(table.y, config.test_fraction, config.val_fraction, config.split_seed)


def split_arrays(table: BeatTable, indices: splits.SplitIndices) -> dict[str, np.ndarray]:
    """Stage 3, splits -> the arrays the cache stores: `<kind>_<split>` for each of ARRAY_KINDS."""
    return {k: v for split in SPLIT_NAMES for k, v in table.take(getattr(indices, split)).arrays(f"_{split}").items()}


def array_parameters(config: DataConfig, input_sha: dict[str, str]) -> dict[str, Any]:
    """Everything that changes the cached arrays (not max_beats: it is applied after the cache).

    The input fingerprint is the files' content: an edited record, or another data folder, is a new key.
    """
    source = SOURCES[config.source]
    params: dict[str, Any] = {
        "format": DATASET_FORMAT,
        "dataset": config.dataset,
        "source": config.source,
        "split": config.split,
        "val_fraction": config.val_fraction,
        "split_seed": config.split_seed,
        "context_columns": list(CONTEXT_COLUMNS),  # a new context column invalidates old caches by itself
        "inputs": cache.stable_hash(input_sha),
        **source.cache_key(config.database),
    }
    if config.input != DEFAULT_INPUT:  # the paper's beats keep the keys they were cached under
        params["input"] = config.input
    if not source.fixes_test(config.database):
        params["test_fraction"] = config.test_fraction
    return params


def table_manifest(table: BeatTable, params: dict[str, Any], data_dir: Path) -> dict[str, Any]:
    """What every cache entry of beats says about them: where they came from and how they were cut."""
    return {
        "data_dir": str(data_dir.resolve()),
        "parameters": params,
        "beat_length": BEAT_LENGTH,
        "leads": table.leads,
        "sampling_rates": table.rates,
        "context_names": list(CONTEXT_COLUMNS) if table.context.shape[1] else [],
    }


def load_dataset(config: DataConfig, progress: bool = False, *, workers: int = 1, rebuild: bool = False) -> BeatDataset:
    """The dataset of `config`: from the cache when built before, else built through the stages and cached."""
    data_dir = resolve_data_dir(config.data_dir or None)
    cache_dir = resolve_cache_dir(config.cache_dir or None)
    input_sha = input_sha256(SOURCES[config.source].files(config.database, data_dir), data_dir, cache_dir)
    params = array_parameters(config, input_sha)
    names = config.class_names

    def build() -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        table = read_beats(config, data_dir, progress, workers)
        arrays = split_arrays(table, split_indices(table, config))
        return arrays, table_manifest(table, params, data_dir) | {
            "name": dataset_name(config),
            "dataset": config.dataset,
            "source": config.source,
            "split": config.split,
            "class_names": list(names),
            "input_sha256": input_sha,
            "records": {s: sorted(set(arrays[f"records_{s}"].tolist()) - {""}) for s in SPLIT_NAMES},
            "class_counts": {s: class_counts(arrays[f"y_{s}"], names) for s in SPLIT_NAMES},
        }

    arrays, manifest, digest = cache.read_or_build(cache_dir, dataset_name(config), params, build, rebuild)
    ds = BeatDataset(
        *(BeatTable.from_arrays(arrays, f"_{split}") for split in SPLIT_NAMES),
        class_names=names,
        context_names=tuple(manifest.get("context_names", ())),
        manifest=manifest,
        digest=digest,
        name=dataset_name(config),
        headline_classes=config.database.headline_classes,
        input_kind=config.input,
    )
    return cap_beats(ds, config.max_beats, config.split_seed)


def cap_beats(ds: BeatDataset, max_beats: int, seed: int) -> BeatDataset:
    """A stratified, seeded cap: train to max_beats; val/test to max_beats // 4 only when larger than max_beats."""
    limits = {"train": max_beats, "val": max_beats // 4, "test": max_beats // 4}
    capped = {}
    for split in SPLIT_NAMES:
        table = getattr(ds, split)
        if 0 < max_beats < len(table.y):
            capped[split] = table.take(splits.stratified_sample(table.y, max(limits[split], 1), seed))
    if not capped:
        return ds
    ds = replace(ds, **capped, digest=cache.stable_hash({"digest": ds.digest, "max_beats": max_beats}))
    counts = {s: class_counts(getattr(ds, s).y, ds.class_names) for s in SPLIT_NAMES}
    return replace(ds, manifest={**ds.manifest, "max_beats": max_beats, "class_counts_capped": counts})


@dataclass(frozen=True, kw_only=True)
class DatabaseBeats(BeatTable):
    """Every labelled beat of one database (no split), with provenance: what a trained model is evaluated on."""

    database: Database
    context_names: tuple[str, ...]
    manifest: dict[str, Any]
    digest: str


def load_database_beats(
    database: Database,
    data_dir: Path,
    cache_dir: Path,
    progress: bool = False,
    records: list[str] | None = None,
    input_kind: str = DEFAULT_INPUT,
) -> DatabaseBeats:
    """All labelled beats (and rhythm context) of a database folder, cached like the training datasets."""
    files = record_files(database, data_dir, records)
    params = {
        "format": DATASET_FORMAT,
        "database": database.name,
        "records": sorted(records) if records is not None else "all",
        "context_columns": list(CONTEXT_COLUMNS),
        "extraction": extraction_fingerprint(database),
        "inputs": cache.stable_hash(input_sha256(files, data_dir, cache_dir)),
    }
    if input_kind != DEFAULT_INPUT:
        params["input"] = input_kind

    def build() -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        table = record_table(database, data_dir, progress=progress, records=records, input_kind=input_kind)
        counts = class_counts(table.y, database.class_names)
        return table.arrays(), table_manifest(table, params, data_dir) | {
            "database": database.name,
            "class_counts": counts,
        }

    arrays, manifest, digest = cache.read_or_build(cache_dir, f"eval-{database.name}", params, build)
    return DatabaseBeats(
        **arrays,
        database=database,
        context_names=tuple(manifest["context_names"]),
        manifest=manifest,
        digest=digest,
    )
