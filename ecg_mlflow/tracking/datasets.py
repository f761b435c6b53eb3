"""Record which dataset a run used, as an MLflow dataset input (metadata only, never the arrays)."""

from __future__ import annotations

import mlflow
import mlflow.data

from ecg_mlflow.data.cache import stable_hash
from ecg_mlflow.data.dataset import SPLIT_NAMES, BeatDataset
from ecg_mlflow.data.sealed import TEST_SPLIT_TAG, open_splits, seal_tag
from ecg_mlflow.tracking.first_writes import write_once
from ecg_mlflow.tracking.provenance import DATA_DIGEST_TAG, data_digest

CONTEXT_SPLITS: dict[str, str] = {"train": "train", "training": "train", "test": "test", "testing": "test"}
CONTEXT_SPLITS |= dict.fromkeys(("val", "validation", "eval"), "val")


def split_digest(ds: BeatDataset, split: str) -> str:
    """Digest of the dataset and the split name: MLflow keeps one input per (name, digest) and run, so the
    train and the test split need different digests to both show up on a run."""
    return stable_hash({"dataset": ds.digest, "split": split})


def log_dataset_input(ds: BeatDataset, context: str = "train") -> mlflow.data.dataset.Dataset:
    """mlflow.log_input of the split named by `context` (train/val/test) in the active run: name, digest, source
    (the cache entry), schema and a small profile; the beat arrays stay in the cache."""
    split = CONTEXT_SPLITS.get(context.lower())
    if split is None:
        raise ValueError(f"context={context!r} must be one of {', '.join(sorted(CONTEXT_SPLITS))}")
    x, y = ds.split(split)
    source = str(ds.manifest.get("cache_dir", ds.name))
    dataset = mlflow.data.from_numpy(x, targets=y, source=source, name=ds.name, digest=split_digest(ds, split))
    tags = {"ecg_mlflow.split": split, "ecg_mlflow.dataset_digest": ds.digest, "ecg_mlflow.beats": str(len(y))}
    mlflow.set_tag(DATA_DIGEST_TAG, data_digest(ds.digest))  # what reuse compares (tracking/provenance.py)
    # MLflow checks for the row, then inserts it: of two workers at once one hits a duplicate key; again, it finds it.
    write_once(mlflow.log_input, dataset, context=context, tags=tags)
    return dataset


def log_dataset_inputs(ds: BeatDataset) -> None:
    """Every split a supervised run may read, and the tag saying whether the test split was one: under a seal
    (data/sealed.py: a trial, a fold) it is neither read nor logged (`sealed (...)`); a final model's: `evaluated`."""
    mlflow.set_tag(TEST_SPLIT_TAG, seal_tag())
    for split in open_splits(SPLIT_NAMES):
        log_dataset_input(ds, context=split)
