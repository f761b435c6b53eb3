"""load_dataset(DataConfig) -> BeatDataset: build (once, cached) the beats and their splits."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from ecg_mlflow.config import BEAT_LENGTH, DataConfig, resolve_cache_dir, resolve_data_dir
from ecg_mlflow.data import cache, kaggle, physionet, qrs, splits
from ecg_mlflow.data.context import CONTEXT_COLUMNS, select_context
from ecg_mlflow.data.databases import Database, get_database
from ecg_mlflow.data.errors import DataError
from ecg_mlflow.data.sealed import check_split_open
from ecg_mlflow.progress import bar

SPLIT_NAMES: tuple[str, ...] = ("train", "val", "test")
# Bump when the beat extraction changes, so old caches are not reused.
# 2: rhythm context (R-R features) per beat; inter-patient validation by whole records.
DATASET_FORMAT = 2
ARRAY_KINDS: tuple[str, ...] = ("x", "y", "records", "positions", "context")


@dataclass(frozen=True)
class BeatDataset:
    """Beats (float32 (n, 187)) and AAMI/diagnosis labels (int64) per split, with provenance."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    records_train: np.ndarray
    records_val: np.ndarray
    records_test: np.ndarray
    positions_train: np.ndarray
    positions_val: np.ndarray
    positions_test: np.ndarray
    context_train: np.ndarray  # float32 (n, len(context_names)): rhythm.rr_features; (n, 0) without timing
    context_val: np.ndarray
    context_test: np.ndarray
    class_names: tuple[str, ...]
    context_names: tuple[str, ...] = ()
    manifest: dict[str, Any] = field(default_factory=dict)
    digest: str = ""
    name: str = ""
    headline_classes: tuple[str, ...] = ()
    input_kind: str = "kachuee"  # what x holds of each beat (data/inputs.py)

    def split(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """(x, y) of 'train', 'val' or 'test' (the test split not while it is sealed: data/sealed.py)."""
        check_split_open(split)
        return getattr(self, f"x_{split}"), getattr(self, f"y_{split}")

    def context(self, split: str, kind: str = "rr") -> np.ndarray | None:
        """The context columns of `kind` for a split (None for 'none').

        DataError when the source has no beat timing (the Kaggle CSVs are isolated beats).
        """
        if kind != "none" and not self.context_names:
            raise DataError(
                f"{self.name} has no rhythm context: its beats carry no R-peak times (the Kaggle CSVs are "
                f"isolated beats); use source=physionet for context={kind}, or context=none"
            )
        check_split_open(split)
        return select_context(getattr(self, f"context_{split}"), self.context_names, kind)

    def class_counts(self) -> dict[str, dict[str, int]]:
        """{"train": {"N": n, ...}, "val": {...}, "test": {...}}."""
        return {s: class_counts(self.split(s)[1], self.class_names) for s in SPLIT_NAMES}


def class_counts(y: np.ndarray, class_names: tuple[str, ...]) -> dict[str, int]:
    counts = np.bincount(np.asarray(y, dtype=np.int64), minlength=len(class_names))
    return {name: int(c) for name, c in zip(class_names, counts, strict=False)}


def dataset_name(config: DataConfig) -> str:
    return f"{config.dataset}-{config.source}-{config.split}" + (
        "" if config.input == "kachuee" else f"-{config.input}"
    )


def database_dir(database: Database, data_dir: Path) -> Path:
    """DATA_DIR/<database folder>; DataError saying how to get the records when it is missing."""
    db_dir = data_dir / database.directory
    if not db_dir.is_dir():
        raise DataError(
            f"{db_dir} does not exist: put the PhysioNet {database.name} files there, set --data-dir / "
            f"$ECG_DATA_DIR, or run `ecg-mlflow data download {database.name} --data-dir {data_dir}`"
        )
    return db_dir


def record_files(database: Database, data_dir: Path, records: list[str] | None = None) -> list[Path]:
    """Every file the beats of `database` (or of `records` of it) are built from; DataError naming one missing."""
    db_dir = database_dir(database, data_dir)
    files = []
    for record in records if records is not None else physionet.database_records(database, db_dir):
        for suffix in database.record_suffixes:
            path = db_dir / f"{record}{suffix}"
            if not path.is_file():
                raise DataError(
                    f"record {record}: {path} is missing; run `ecg-mlflow data download {database.name} "
                    f"--data-dir {data_dir}` or copy the PhysioNet files there"
                )
            files.append(path)
    return files


def input_files(config: DataConfig, data_dir: Path) -> list[Path]:
    """The raw files the arrays are built from; DataError (saying where to put them) when missing."""
    if config.source == "kaggle":
        return kaggle.kaggle_paths(data_dir / "kaggle", config.dataset)
    return record_files(get_database(config.dataset), data_dir)


def extraction_fingerprint(database: Database) -> str:
    """What decides the beats besides the input files: the database's declaration, the QRS detector and
    the rules that choose validation records. Part of every cache key, so changing any of them rebuilds."""
    described = ("title", "citation", "paper_accuracy")  # words and references, not how beats are made
    declaration = {f.name: _stable(getattr(database, f.name)) for f in fields(database) if f.name not in described}
    return cache.stable_hash(
        {
            "database": declaration,
            "qrs": [
                qrs.DEFAULT_DETECTOR,
                qrs.GQRS_AMPLITUDE,
                qrs.SNAP_RADIUS_S,
                qrs.SNAP_SMOOTH_S,
                qrs.FLAT_WINDOW_FRACTION,
            ],
            "validation": [splits.MIN_VAL_RECORDS, splits.VAL_RECORD_DRAWS, splits.REQUIRED_SHARE],
        }
    )


def _stable(value: Any) -> Any:
    """A value as the same text in every process: a function by its qualified name, not its address."""
    return f"{value.__module__}.{value.__qualname__}" if callable(value) else value


def input_sha256(files: list[Path], data_dir: Path, cache_dir: Path) -> dict[str, str]:
    """{path relative to DATA_DIR: sha256} of the input files (remembered per size and mtime in the cache)."""
    digests = cache.content_digests(files, cache_dir)
    return {p.relative_to(data_dir).as_posix(): digests[str(p.resolve())] for p in files}


def array_parameters(config: DataConfig, data_dir: Path, cache_dir: Path) -> dict[str, Any]:
    """Everything that changes the cached arrays (not max_beats: it is applied after the cache).

    The input fingerprint is the files' content: an edited record, or another data folder, is a new key.
    """
    files = input_files(config, data_dir)
    params: dict[str, Any] = {
        "format": DATASET_FORMAT,
        "dataset": config.dataset,
        "source": config.source,
        "split": config.split,
        "val_fraction": config.val_fraction,
        "split_seed": config.split_seed,
        "context_columns": list(CONTEXT_COLUMNS),  # a new context column invalidates old caches by itself
        "inputs": cache.stable_hash(input_sha256(files, data_dir, cache_dir)),
    }
    if config.source != "kaggle":
        params["extraction"] = extraction_fingerprint(get_database(config.dataset))
    if config.input != "kachuee":  # the paper's beats keep the keys they were cached under
        params["input"] = config.input
    if not (config.source == "kaggle" and config.dataset == "mit"):  # the Kaggle MIT files fix the test set
        params["test_fraction"] = config.test_fraction
    return params


def record_table(
    database: Database,
    data_dir: Path,
    progress: bool = False,
    workers: int = 1,
    records: list[str] | None = None,
    input_kind: str = "kachuee",
) -> dict[str, Any]:
    """All labelled beats of a PhysioNet-style database, concatenated over records, with per-record leads."""
    db_dir = database_dir(database, data_dir)
    records = records if records is not None else physionet.database_records(database, db_dir)
    what = f"building {database.name} beats"
    with bar(what, len(records), enabled=progress) as update:
        parts = physionet.build_beats(
            db_dir,
            records,
            workers=workers,
            on_record=lambda record: update(advance=1, description=f"{what} {record}"),
            database=database,
            input_kind=input_kind,
        )
    if not parts or sum(len(p.labels) for p in parts) == 0:
        raise DataError(f"no labelled beats found in {db_dir} (for ptbdb: no healthy-control or MI records)")
    return {
        "x": np.concatenate([p.beats for p in parts]),
        "y": np.concatenate([p.labels for p in parts]),
        "records": np.concatenate([np.full(len(p.labels), p.record) for p in parts]).astype(str),
        "positions": np.concatenate([p.positions for p in parts]).astype(np.int64),
        "context": np.concatenate([p.context for p in parts]).astype(np.float32),
        "leads": {p.record: p.lead for p in parts},
        "rates": {p.record: p.fs for p in parts},
    }


def _take(table: dict[str, Any], idx: splits.SplitIndices) -> dict[str, np.ndarray]:
    arrays = {}
    for split in SPLIT_NAMES:
        rows = getattr(idx, split)
        for kind in ARRAY_KINDS:
            arrays[f"{kind}_{split}"] = table[kind][rows]
    return arrays


def _kaggle_table(x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Isolated beats: no record, no position, no rhythm context (shape (n, 0))."""
    n = len(y)
    return {
        "x": x,
        "y": y,
        "records": np.full(n, ""),
        "positions": np.full(n, -1, np.int64),
        "context": np.zeros((n, 0), np.float32),
        "leads": {},
        "rates": {},
    }


def build_arrays(config: DataConfig, data_dir: Path, progress: bool = False, workers: int = 1) -> dict[str, Any]:
    """Beats -> split arrays (x_/y_/records_/positions_ per split) plus per-record leads."""
    if config.source == "kaggle" and config.split == "inter":
        raise DataError(
            "split='inter' needs record ids, which the Kaggle CSVs do not have; use source='physionet' "
            "for the de Chazal inter-patient split, or split='intra' with source='kaggle'"
        )
    seed = config.split_seed
    if config.source == "kaggle" and config.dataset == "mit":
        (x_tr, y_tr), (x_te, y_te) = kaggle.read_kaggle_mit(data_dir / "kaggle")
        table = _kaggle_table(np.concatenate([x_tr, x_te]), np.concatenate([y_tr, y_te]))
        train, val = splits.split_train_test(y_tr, config.val_fraction, seed)
        idx = splits.SplitIndices(train, val, np.arange(len(y_tr), len(y_tr) + len(y_te)))
    else:
        database = get_database(config.dataset)
        if config.source == "kaggle":
            table = _kaggle_table(*kaggle.read_kaggle_ptb(data_dir / "kaggle"))
        else:
            table = record_table(database, data_dir, progress, workers, input_kind=config.input)
        if config.split == "inter":
            if database.inter_split is None:
                raise DataError(f"split='inter' is not declared for {database.name}; use split='intra'")
            idx = splits.split_inter(table["records"], table["y"], config.val_fraction, seed, database.inter_split)
        else:
            idx = splits.split_intra(table["y"], config.test_fraction, config.val_fraction, seed)
    return {"arrays": _take(table, idx), "leads": table["leads"], "rates": table["rates"]}


def _manifest(
    config: DataConfig, data_dir: Path, cache_dir: Path, params: dict[str, Any], built: dict[str, Any]
) -> dict[str, Any]:
    arrays = built["arrays"]
    names = get_database(config.dataset).class_names
    files = input_files(config, data_dir)
    return {
        "name": dataset_name(config),
        "dataset": config.dataset,
        "source": config.source,
        "split": config.split,
        "data_dir": str(data_dir.resolve()),
        "parameters": params,
        "class_names": list(names),
        "beat_length": BEAT_LENGTH,
        "records": {s: sorted(set(arrays[f"records_{s}"].tolist()) - {""}) for s in SPLIT_NAMES},
        "leads": built["leads"],
        "sampling_rates": built["rates"],
        "context_names": list(CONTEXT_COLUMNS) if arrays["context_train"].shape[1] else [],
        "class_counts": {s: class_counts(arrays[f"y_{s}"], names) for s in SPLIT_NAMES},
        "input_sha256": input_sha256(files, data_dir, cache_dir),
    }


def load_dataset(config: DataConfig, progress: bool = False, *, workers: int = 1, rebuild: bool = False) -> BeatDataset:
    """The dataset of `config`: from the cache when built before, else built and cached; then max_beats."""
    data_dir = resolve_data_dir(config.data_dir or None)
    cache_dir = resolve_cache_dir(config.cache_dir or None)
    params = array_parameters(config, data_dir, cache_dir)
    entry = cache.entry_dir(cache_dir, dataset_name(config), cache.stable_hash(params))
    cached = None if rebuild else cache.read_entry(entry)
    if cached is None:
        built = build_arrays(config, data_dir, progress=progress, workers=workers)
        manifest = cache.write_entry(entry, built["arrays"], _manifest(config, data_dir, cache_dir, params, built))
        arrays = built["arrays"]
    else:
        arrays, manifest = cached
    manifest = {**manifest, "cache_dir": str(entry)}
    database = get_database(config.dataset)
    ds = BeatDataset(
        **{k: arrays[k] for k in _array_fields()},
        class_names=database.class_names,
        context_names=tuple(manifest.get("context_names", ())),
        manifest=manifest,
        digest=cache.stable_hash({"checksums": manifest["checksums"], "parameters": params}),
        name=dataset_name(config),
        headline_classes=database.headline_classes,
        input_kind=config.input,
    )
    return cap_beats(ds, config.max_beats, config.split_seed)


def _array_fields() -> list[str]:
    return [f"{kind}_{s}" for s in SPLIT_NAMES for kind in ARRAY_KINDS]


def cap_beats(ds: BeatDataset, max_beats: int, seed: int) -> BeatDataset:
    """A stratified, seeded cap: train to max_beats; val/test to max_beats // 4 only when larger than max_beats."""
    if max_beats <= 0:
        return ds
    changes: dict[str, np.ndarray] = {}
    limits = {"train": max_beats, "val": max_beats // 4, "test": max_beats // 4}
    for split, limit in limits.items():
        y = getattr(ds, f"y_{split}")
        if (split == "train" and len(y) > max_beats) or (split != "train" and len(y) > max_beats):
            rows = splits.stratified_sample(y, max(limit, 1), seed)
            for kind in ARRAY_KINDS:
                changes[f"{kind}_{split}"] = getattr(ds, f"{kind}_{split}")[rows]
    if not changes:
        return ds
    manifest = {**ds.manifest, "max_beats": max_beats}
    manifest["class_counts_capped"] = {
        s: class_counts(changes.get(f"y_{s}", getattr(ds, f"y_{s}")), ds.class_names) for s in SPLIT_NAMES
    }
    digest = cache.stable_hash({"digest": ds.digest, "max_beats": max_beats})
    return replace(ds, **changes, manifest=manifest, digest=digest)


@dataclass(frozen=True)
class DatabaseBeats:
    """Every labelled beat of one database (no split): what a trained model is evaluated on."""

    database: Database
    x: np.ndarray
    y: np.ndarray
    records: np.ndarray
    positions: np.ndarray
    context: np.ndarray
    context_names: tuple[str, ...]
    manifest: dict[str, Any]
    digest: str


def load_database_beats(
    database: Database,
    data_dir: Path,
    cache_dir: Path,
    progress: bool = False,
    records: list[str] | None = None,
    input_kind: str = "kachuee",
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
    if input_kind != "kachuee":
        params["input"] = input_kind
    entry = cache.entry_dir(cache_dir, f"eval-{database.name}", cache.stable_hash(params))
    cached = cache.read_entry(entry)
    if cached is None:
        table = record_table(database, data_dir, progress=progress, records=records, input_kind=input_kind)
        arrays = {kind: table[kind] for kind in ARRAY_KINDS}
        manifest = {
            "database": database.name,
            "data_dir": str(data_dir.resolve()),
            "parameters": params,
            "leads": table["leads"],
            "sampling_rates": table["rates"],
            "context_names": list(CONTEXT_COLUMNS),
            "class_counts": class_counts(table["y"], database.class_names),
        }
        manifest = cache.write_entry(entry, arrays, manifest)
    else:
        arrays, manifest = cached
    return DatabaseBeats(
        database=database,
        **{kind: arrays[kind] for kind in ARRAY_KINDS},
        context_names=tuple(manifest["context_names"]),
        manifest={**manifest, "cache_dir": str(entry)},
        digest=cache.stable_hash({"checksums": manifest["checksums"], "parameters": params}),
    )
