"""`classify`: run a trained classifier over a whole WFDB record, which is what a model is finally for.

The record is read at its own rate and lead (data/records.read_any_record); R peaks come from
its beat annotations when it has them, else from the QRS detector; beats and their rhythm
context are built exactly as for training (the model's input kind, beat_context). Outputs, in `out`:
- `<record>.<ANNOTATION_EXTENSION>`: a WFDB annotation file, one annotation per beat at its R
  peak, the AAMI class as the symbol (other class names as the aux note, symbol Q);
- `<record>_beats.csv`: sample, time, label and the probability of every class per beat (and the
  reference class when the record is annotated);
- `<record>_strip.png`: the first seconds of the ECG with each beat's label drawn above it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import wfdb
from sklearn.metrics import accuracy_score

from ecg_mlflow.config import ClassifyConfig
from ecg_mlflow.data.adaptation import context_matrix
from ecg_mlflow.data.context import CONTEXT_COLUMNS, beat_context
from ecg_mlflow.data.databases import get_database
from ecg_mlflow.data.errors import DataError
from ecg_mlflow.data.physionet import beats_from_signal, record_inputs
from ecg_mlflow.data.records import RecordSignal, has_annotations, read_any_record
from ecg_mlflow.models.served import ADAPTED_COLUMN, BEAT_INPUT, CONTEXT_INPUT, LABEL_COLUMN
from ecg_mlflow.models.test_time import MIN_BEATS
from ecg_mlflow.steps.result import StepResult
from ecg_mlflow.tracking.classifiers import load_served
from ecg_mlflow.tracking.runs import describe_run, step_run

ANNOTATION_EXTENSION = "cls"
CLASSIFY_EXPERIMENT = "ecg-classify"
CHUNK_BEATS = 2048  # beats per predict call: the unit of the progress bar
REFERENCE_COLUMN = "reference"
Progress = Callable[[int, int], None]  # (beats classified so far, beats in the record)
STRIP_COLOURS = {"N": "tab:green", "S": "tab:orange", "V": "tab:red", "F": "tab:purple", "Q": "tab:gray"}


@dataclass
class RecordLabels:
    """What classify found in one record: the beats' table and where the time went."""

    record: RecordSignal
    table: pd.DataFrame
    peaks_from: str  # "annotations (atr)" or "QRS detector"
    seconds: dict[str, float] = field(default_factory=dict)  # read, segment, classify
    adapt: str = "none"  # the model's adaptation to the record


def classify_signal(
    read: RecordSignal, classifier: Any, on_progress: Progress | None = None
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Cut every beat of `read`, add its rhythm context if the model takes it, and label it."""
    start = time.perf_counter()
    beats = beats_from_signal(np.nan_to_num(read.signal), read.fs, read.qrs)
    inputs: dict[str, np.ndarray] = {BEAT_INPUT: record_inputs(read, read.qrs, classifier.input_kind)}
    if classifier.context_names:
        every = np.ones(len(read.qrs), dtype=bool)
        context = beat_context(read.qrs, read.fs, every, beats)
        one_record = np.zeros(len(context), dtype=np.int64)  # an adaptation's columns come from this record alone
        inputs[CONTEXT_INPUT] = context_matrix(context, CONTEXT_COLUMNS, one_record, tuple(classifier.context_names))
    segmented = time.perf_counter()
    chunk_beats = max(len(beats), 1) if classifier.adapter else CHUNK_BEATS  # adapting sees the recording whole
    parts = []
    for first in range(0, len(beats), chunk_beats):
        chunk = {name: values[first : first + chunk_beats] for name, values in inputs.items()}
        parts.append(classifier.predict(None, chunk))
        if on_progress:
            on_progress(min(first + chunk_beats, len(beats)), len(beats))
    table = pd.concat(parts, ignore_index=True) if parts else _empty_table(classifier.class_names)
    table.insert(0, "time_s", np.round(read.qrs / read.fs, 4))
    table.insert(0, "sample", read.qrs)
    if (read.labels >= 0).any():
        reference_names = np.asarray((*get_database("wfdb").class_names, ""), dtype=object)
        table[REFERENCE_COLUMN] = reference_names[read.labels]
    seconds = {"segment": segmented - start, "classify": time.perf_counter() - segmented}
    return table, seconds


def _empty_table(class_names: list[str]) -> pd.DataFrame:
    return pd.DataFrame({LABEL_COLUMN: pd.Series(dtype=object), **{f"p_{c}": [] for c in class_names}})


def write_annotations(table: pd.DataFrame, record: str, fs: int, out: Path) -> Path:
    """The labels as a WFDB annotation file beside nothing else: `wfdb.rdann(out/record, 'cls')` reads it."""
    valid = set(wfdb.io.annotation.ann_label_table["symbol"])
    labels = table[LABEL_COLUMN].astype(str).tolist()
    symbols = [label if label in valid else "Q" for label in labels]
    wfdb.wrann(
        record,
        ANNOTATION_EXTENSION,
        table["sample"].to_numpy(dtype=np.int64),
        symbol=symbols,
        aux_note=[label if label not in valid else "" for label in labels],
        fs=fs,
        write_dir=str(out),
    )
    return out / f"{record}.{ANNOTATION_EXTENSION}"


def plot_strip(read: RecordSignal, table: pd.DataFrame, seconds: float, path: Path) -> Path:
    """The first `seconds` of the lead with each beat's label above its R peak."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = min(len(read.signal), int(seconds * read.fs))
    time_axis = np.arange(n) / read.fs
    fig, ax = plt.subplots(figsize=(max(8.0, seconds * 0.6), 3.0))
    ax.plot(time_axis, read.signal[:n], color="black", linewidth=0.7)
    top = float(np.nanmax(read.signal[:n])) if n else 1.0
    for sample, label in zip(table["sample"], table[LABEL_COLUMN], strict=True):
        if sample >= n:
            break
        colour = STRIP_COLOURS.get(str(label), "tab:blue")
        ax.axvline(sample / read.fs, color=colour, alpha=0.25, linewidth=1)
        ax.text(sample / read.fs, top, str(label), color=colour, ha="center", va="bottom", fontsize=9)
    ax.set(xlabel="time (s)", ylabel=f"{read.lead} (mV)", title=f"record {read.record}: predicted beat classes")
    ax.margins(x=0, y=0.15)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def summary_lines(result: RecordLabels, class_names: list[str]) -> list[str]:
    """Per-class counts and shares (and agreement with the reference annotations when there are any)."""
    read, table = result.record, result.table
    minutes, secs = divmod(int(len(read.signal) / read.fs), 60)
    lines = [
        f"record {read.record} ({read.lead}, {read.fs} Hz, {minutes}:{secs:02d}): {len(table)} beats, "
        f"R peaks from {result.peaks_from}"
    ]
    counts = table[LABEL_COLUMN].value_counts()
    for name in class_names:
        count = int(counts.get(name, 0))
        lines.append(f"  {name:<8} {count:>7}  {100 * count / max(len(table), 1):6.2f} %")
    if ADAPTED_COLUMN in table and len(table) and not table[ADAPTED_COLUMN].all():
        lines.append(
            f"  not adapted: {len(table)} beats are fewer than the {MIN_BEATS} adapt={result.adapt} needs; "
            "labelled by the model as trained"
        )
    if REFERENCE_COLUMN in table:
        known = table[table[REFERENCE_COLUMN] != ""]
        agreement = accuracy_score(known[REFERENCE_COLUMN], known[LABEL_COLUMN]) if len(known) else float("nan")
        lines.append(f"  agreement with the reference annotations: {100 * agreement:.2f} % of {len(known)} beats")
    return lines


def classify_record(config: ClassifyConfig, classifier: Any, on_progress: Progress | None = None) -> RecordLabels:
    """Read, segment and classify one record (no files written)."""
    start = time.perf_counter()
    read = read_any_record(Path(config.record), config.annotator)
    annotated = has_annotations(Path(config.record).with_suffix(""), config.annotator)
    read_seconds = time.perf_counter() - start
    peaks_from = f"annotations ({config.annotator})" if annotated else "QRS detector"
    if len(read.qrs) == 0:
        raise DataError(
            f"record {read.record}: no beat found (R peaks from the {peaks_from}, lead {read.lead}, {read.fs} Hz); "
            "check that the signal holds an ECG, or give its beat annotations (--annotator)"
        )
    table, seconds = classify_signal(read, classifier, on_progress)
    return RecordLabels(read, table, peaks_from, {"read": read_seconds, **seconds}, classifier.adapt)


def write_outputs(result: RecordLabels, out: Path, strip_seconds: float) -> list[Path]:
    """Annotation file, beats CSV and ECG strip into `out` (created)."""
    out.mkdir(parents=True, exist_ok=True)
    name = result.record.record
    csv = out / f"{name}_beats.csv"
    result.table.to_csv(csv, index=False, float_format="%.5f")
    return [
        write_annotations(result.table, name, result.record.fs, out),
        csv,
        plot_strip(result.record, result.table, strip_seconds, out / f"{name}_strip.png"),
    ]


def output_dir(config: ClassifyConfig) -> Path:
    return Path(config.out) if config.out else Path(f"{Path(config.record).name}-classified")


def run_classify(config: ClassifyConfig, on_progress: Progress | None = None) -> StepResult:
    """Classify a record and write the outputs; an MLflow run when asked (or under `mlflow run`).

    The result's text is the per-class summary and the files written.
    """
    classifier = load_served(config.model)
    if not (config.log_run or os.environ.get("MLFLOW_RUN_ID")):
        result = classify_record(config, classifier, on_progress)
        paths = write_outputs(result, output_dir(config), config.strip_seconds)
        text = _text(result, classifier.class_names, paths)
        return StepResult("", _metrics(result, classifier.class_names), config.model, text=text)
    params = {**vars(config), "record_name": Path(config.record).name}
    with step_run("classify", params, f"classify-{Path(config.record).name}", CLASSIFY_EXPERIMENT) as run:
        result = classify_record(config, classifier, on_progress)
        paths = write_outputs(result, output_dir(config), config.strip_seconds)
        metrics = _metrics(result, classifier.class_names)
        mlflow.log_metrics(metrics)
        for path in paths:
            mlflow.log_artifact(str(path), "classified")
        describe_run("\n".join(summary_lines(result, classifier.class_names)))
        text = _text(result, classifier.class_names, paths)
        return StepResult(run.info.run_id, metrics, config.model, text=text)


def _metrics(result: RecordLabels, class_names: list[str]) -> dict[str, float]:
    counts = result.table[LABEL_COLUMN].value_counts()
    metrics = {"beats": float(len(result.table))}
    metrics.update({f"beats_{name}": float(counts.get(name, 0)) for name in class_names})
    metrics.update({f"seconds_{phase}": value for phase, value in result.seconds.items()})
    return metrics


def _text(result: RecordLabels, class_names: list[str], paths: list[Path]) -> str:
    return "\n".join([*summary_lines(result, class_names), "wrote " + ", ".join(str(p) for p in paths)])
