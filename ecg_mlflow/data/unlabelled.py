"""Unlabelled ECG for self-supervised pretraining: beats of records whose labels are never opened.

Self-supervision needs no labels. Pretraining can therefore learn from more than the labelled
training records: the other MIT-BIH records, the SVDB, or any folder of WFDB records. A source is
written `DATABASE`, `DATABASE:SET` (a record set the database declares: `mitdb:DS1`, `mitdb:DS2`),
`DATABASE:REC+REC` (named records), or the path of a folder of WFDB records.

- Every beat of an unlabelled record comes from the QRS detector (data/qrs.py) and is cut the same
  way as a labelled beat (physionet.beats_from_signal).
- The record's annotation files are never opened, and they are not part of the cache key: deleting
  or scrambling them gives the identical pretraining set (tested).
- Built beats are cached like a dataset, keyed by the content of the .hea/.dat files they come from.

Protocols: pretraining on the labelled training records alone is *inductive*. Adding the unlabelled
signal of the patients to be classified (`mitdb:DS2`, or the SVDB a model is evaluated on) is
*transductive*, as a Holter system holds the whole recording before it labels it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ecg_mlflow.data import cache, physionet
from ecg_mlflow.data.beats import BEAT_LENGTH
from ecg_mlflow.data.databases import DATABASES, Database, get_database
from ecg_mlflow.data.errors import DataError
from ecg_mlflow.data.inputs import DEFAULT_INPUT
from ecg_mlflow.data.physionet import extraction_fingerprint
from ecg_mlflow.data.records import database_records, read_record_signal, record_paths, without_labels

UNLABELLED_FORMAT = 1
RECORD_SEPARATOR = "+"  # between named records: commas already separate the sources


@dataclass(frozen=True)
class UnlabelledSource:
    """Records to take unlabelled beats from: a declared database (or a folder read as `wfdb`) and which records."""

    spec: str
    database: Database  # its declaration with the annotations switched off
    folder: Path
    records: tuple[str, ...]

    def record_ids(self) -> list[str]:
        """`<folder>/<record>` (`svdb/800`): how the pretraining run names the records it saw."""
        return [f"{self.folder.name}/{record}" for record in self.records]


def _declared_sets(database: Database) -> dict[str, tuple[str, ...]]:
    """The record sets a database declares (`DS1`, `DS2` for MIT-BIH's inter-patient split)."""
    split = database.inter_split
    return {} if split is None else {"DS1": split.train_records, "DS2": split.test_records}


def parse_source(spec: str, data_dir: Path) -> UnlabelledSource:
    """`svdb`, `mitdb:DS2`, `svdb:800+802` or a folder path -> the records it names; DataError naming the fix."""
    name, _, selection = spec.partition(":")
    if name in DATABASES:
        database = get_database(name)
        folder = data_dir / database.directory
    elif Path(spec).expanduser().is_dir():
        database, folder, selection = get_database("wfdb"), Path(spec).expanduser(), ""
    else:
        raise DataError(
            f"unlabelled source {spec!r}: not a database ({', '.join(DATABASES)}) nor a folder; give e.g. "
            f"mitdb:DS2, svdb, svdb:800{RECORD_SEPARATOR}802 or the path of a folder of WFDB records"
        )
    if not folder.is_dir():
        raise DataError(
            f"unlabelled source {spec!r}: {folder} does not exist; run `ecg-mlflow data download {name} "
            f"--data-dir {data_dir}` or copy the records there"
        )
    declared = _declared_sets(database)
    if not selection:
        records = tuple(database_records(without_labels(database), folder))
    elif selection in declared:
        records = declared[selection]
    else:
        records = tuple(r for r in selection.split(RECORD_SEPARATOR) if r)
    missing = [r for r in records if not (folder / f"{r}.hea").is_file()]
    if missing or not records:
        sets = f" or a declared set ({', '.join(declared)})" if declared else ""
        raise DataError(
            f"unlabelled source {spec!r}: no record {' '.join(missing[:5]) or '(none named)'} in {folder}; "
            f"name records that are there{sets}"
        )
    return UnlabelledSource(spec, without_labels(database), folder, records)


def record_beats(source: UnlabelledSource, record: str, input_kind: str = DEFAULT_INPUT) -> np.ndarray:
    """Every detected beat of one record, cut as a labelled beat of `input_kind` is."""
    read = read_record_signal(source.database, source.folder, record)
    if read is None or len(read.qrs) == 0:
        return np.zeros((0, BEAT_LENGTH), dtype=np.float32)
    return physionet.record_inputs(read, read.qrs, input_kind).astype(np.float32)


def unlabelled_key(sources: list[UnlabelledSource], cache_dir: Path, input_kind: str) -> dict[str, Any]:
    """Everything the unlabelled beats depend on, the signal files' content included: the cache key, and
    what a run that read them records as its data (tracking/provenance.py)."""
    # the signal files the beats come from: header and samples, never an annotation file
    files = [path for s in sources for record in s.records for path in record_paths(s.database, s.folder, record)]
    digests = cache.content_digests(files, cache_dir)
    return {
        "format": UNLABELLED_FORMAT,
        "sources": [[s.spec, list(s.records)] for s in sources],
        "inputs": cache.stable_hash([digests[str(p.resolve())] for p in files]),
        "extraction": [extraction_fingerprint(s.database) for s in sources],  # the detector's settings too
        "input": input_kind,
    }


def unlabelled_digest(specs: tuple[str, ...], data_dir: Path, cache_dir: Path, input_kind: str) -> str:
    """The digest of `unlabelled_key` for these sources ("" for none)."""
    if not specs:
        return ""
    return cache.stable_hash(unlabelled_key([parse_source(spec, data_dir) for spec in specs], cache_dir, input_kind))


def unlabelled_beats(
    specs: tuple[str, ...], data_dir: Path, cache_dir: Path, input_kind: str = DEFAULT_INPUT
) -> tuple[np.ndarray, list[str]]:
    """(beats (n, 187) of `input_kind`, record ids) of every source; built once, then read from the cache."""
    sources = [parse_source(spec, data_dir) for spec in specs]
    params = unlabelled_key(sources, cache_dir, input_kind)

    def build() -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        parts = [record_beats(source, record, input_kind) for source in sources for record in source.records]
        beats = np.concatenate(parts) if parts else np.zeros((0, BEAT_LENGTH), np.float32)
        return {"x": beats}, {"sources": params["sources"], "parameters": params}

    beats = cache.read_or_build(cache_dir, "unlabelled", params, build)[0]["x"]
    return beats, [record for source in sources for record in source.record_ids()]
