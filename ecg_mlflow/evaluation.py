"""Test-split evaluation, identical for every step so one MLflow table compares them all.

Metric names: test_accuracy, test_macro_f1, test_weighted_f1, test_roc_auc
(one-vs-rest macro for more than two classes), and per class
test_precision_<c>, test_recall_<c>, test_f1_<c>. The measures ECG papers report (AAMI EC57)
come beside them: per class sensitivity test_se_<c> and positive predictivity test_ppv_<c>
(the same numbers as recall and precision, under the names the literature uses), and the
macro-F1 over the database's headline classes (test_macro_f1_nsv for N, S, V).
Artifacts under evaluation/: confusion_matrix.png/.json, confusion_dechazal.md (algorithm
labels as rows, reference labels as columns, as in de Chazal et al. 2004),
classification_report.txt/.json, curves.png.

Every recording, not just the average: where beats come with their recording, per_record.csv holds each
recording's figures, and three numbers summarise it beside the averages: how many recordings have fewer than
80 % of their normal beats right (test_records_n_se_below_80), and the median and the worst recording's normal
sensitivity (test_records_n_se_median, test_records_n_se_worst). A Holter analyst puts away a tool that calls
most normal beats of one patient abnormal, whatever its average.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    classification_report,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    roc_auc_score,
)

EVALUATION_DIR = "evaluation"
PER_RECORD_FILE = "per_record.csv"
NORMAL_SE_FLOOR = 0.8  # a recording whose normal beats are called normal less often than this is a failed one


@dataclass
class Evaluation:
    metrics: dict[str, float]
    confusion: np.ndarray
    report: dict
    class_names: tuple[str, ...]


def macro_f1(y_true: np.ndarray, proba: np.ndarray) -> float:
    """Macro-F1 over the classes present in y_true: the model-selection score.

    A class absent from the validation split (Q among the held-out MIT records) has no F1 to
    earn, so counting it as 0 would only add a constant; it is left out instead.
    """
    return float(f1_score(y_true, proba.argmax(axis=1), average="macro", labels=np.unique(y_true), zero_division=0))


def evaluate_predictions(
    y_true: np.ndarray,
    proba: np.ndarray,
    class_names: Sequence[str],
    prefix: str = "test_",
    headline_classes: Sequence[str] = (),
) -> Evaluation:
    """Metrics from integer labels and (n, n_classes) probabilities."""
    labels = np.arange(len(class_names))
    y_pred = proba.argmax(axis=1)
    precision, recall, f1, _ = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    metrics = {
        f"{prefix}accuracy": float(accuracy_score(y_true, y_pred)),
        f"{prefix}macro_f1": float(f1_score(y_true, y_pred, average="macro", labels=labels, zero_division=0)),
        f"{prefix}weighted_f1": float(f1_score(y_true, y_pred, average="weighted", labels=labels, zero_division=0)),
    }
    for name, p, r, f in zip(class_names, precision, recall, f1, strict=True):
        metrics[f"{prefix}precision_{name}"] = float(p)
        metrics[f"{prefix}recall_{name}"] = float(r)
        metrics[f"{prefix}f1_{name}"] = float(f)
        metrics[f"{prefix}se_{name}"] = float(r)
        metrics[f"{prefix}ppv_{name}"] = float(p)
    if headline_classes:
        headline = [list(class_names).index(c) for c in headline_classes]
        suffix = "".join(headline_classes).lower()
        metrics[f"{prefix}macro_f1_{suffix}"] = float(
            f1_score(y_true, y_pred, average="macro", labels=headline, zero_division=0)
        )
    auc = _roc_auc(y_true, proba, len(class_names))
    if auc is not None:
        metrics[f"{prefix}roc_auc"] = auc
    report = classification_report(
        y_true, y_pred, labels=labels, target_names=list(class_names), zero_division=0, output_dict=True
    )
    return Evaluation(
        metrics=metrics,
        confusion=confusion_matrix(y_true, y_pred, labels=labels),
        report=report,
        class_names=tuple(class_names),
    )


def _roc_auc(y_true: np.ndarray, proba: np.ndarray, n_classes: int) -> float | None:
    """ROC-AUC (binary) or one-vs-rest macro AUC over the classes present in y_true."""
    present = np.unique(y_true)
    if len(present) < 2:
        return None
    if n_classes == 2:
        return float(roc_auc_score(y_true, proba[:, 1]))
    scores = [roc_auc_score(y_true == c, proba[:, c]) for c in present]
    return float(np.mean(scores))


def log_evaluation(evaluation: Evaluation, history: Mapping[str, Sequence[float]] | None = None) -> None:
    """Log the metrics and the evaluation artifacts to the active run."""
    mlflow.log_metrics(evaluation.metrics)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        plot_confusion(evaluation, folder / "confusion_matrix.png")
        (folder / "confusion_matrix.json").write_text(
            json.dumps({"labels": list(evaluation.class_names), "matrix": evaluation.confusion.tolist()}, indent=2)
        )
        (folder / "confusion_dechazal.md").write_text(dechazal_table(evaluation))
        (folder / "classification_report.json").write_text(json.dumps(evaluation.report, indent=2))
        (folder / "classification_report.txt").write_text(format_report(evaluation))
        if history:
            plot_history(history, folder / "curves.png")
        mlflow.log_artifacts(str(folder), EVALUATION_DIR)


def dechazal_table(evaluation: Evaluation) -> str:
    """The confusion matrix as de Chazal et al. 2004 print it: algorithm label rows, reference label columns."""
    names = evaluation.class_names
    lines = [
        "| algorithm \\ reference | " + " | ".join(names) + " |",
        "| --- " * (len(names) + 1) + "|",
    ]
    for j, name in enumerate(names):
        lines.append(
            f"| {name.lower()} | " + " | ".join(str(int(evaluation.confusion[i, j])) for i in range(len(names))) + " |"
        )
    return "\n".join(lines) + "\n"


def format_report(evaluation: Evaluation) -> str:
    lines = [f"{'class':>10} {'precision':>10} {'recall':>10} {'f1':>10} {'support':>10}"]
    for name in evaluation.class_names:
        row = evaluation.report[name]
        scores = f"{row['precision']:>10.4f} {row['recall']:>10.4f} {row['f1-score']:>10.4f}"
        lines.append(f"{name:>10} {scores} {int(row['support']):>10d}")
    lines.append("")
    lines.extend(f"{key}: {value:.4f}" for key, value in sorted(evaluation.metrics.items()))
    return "\n".join(lines) + "\n"


def plot_confusion(evaluation: Evaluation, path: Path) -> Path:
    matrix = evaluation.confusion
    normalised = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.2 * len(evaluation.class_names) + 2, 1.2 * len(evaluation.class_names) + 1.5))
    ax.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    ticks = np.arange(len(evaluation.class_names))
    ax.set_xticks(ticks, evaluation.class_names)
    ax.set_yticks(ticks, evaluation.class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in ticks:
        for j in ticks:
            colour = "white" if normalised[i, j] > 0.5 else "black"
            ax.text(j, i, f"{matrix[i, j]}\n{normalised[i, j]:.2f}", ha="center", va="center", color=colour, fontsize=8)
    ax.set_title("confusion matrix (test split; counts, row-normalised)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_history(history: Mapping[str, Sequence[float]], path: Path) -> Path:
    """Train/validation curves: one panel per metric that has a val_ twin."""
    names = [k for k in history if not k.startswith("val_") and f"val_{k}" in history] or list(history)
    names = names[:6]
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3.2), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        ax.plot(range(1, len(history[name]) + 1), history[name], marker="o", label="train")
        if f"val_{name}" in history:
            ax.plot(range(1, len(history[f"val_{name}"]) + 1), history[f"val_{name}"], marker="o", label="validation")
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def per_record_table(
    y_true: np.ndarray,
    proba: np.ndarray,
    records: np.ndarray,
    class_names: Sequence[str],
    headline_classes: Sequence[str] = (),
) -> pd.DataFrame:
    """One row per recording: its beats per class and the EC57 figures on that recording alone."""
    rows = []
    for record in sorted(set(records.tolist())):
        mask = records == record
        evaluation = evaluate_predictions(y_true[mask], proba[mask], class_names, "", headline_classes)
        counts = np.bincount(y_true[mask], minlength=len(class_names))
        row: dict[str, object] = {"record": record, "beats": int(mask.sum())}
        row.update({f"n_{name}": int(c) for name, c in zip(class_names, counts, strict=True)})
        keep = ["accuracy", "macro_f1", *(k for k in evaluation.metrics if k.startswith(("se_", "ppv_", "macro_f1_")))]
        row.update({key: round(evaluation.metrics[key], 4) for key in keep})
        rows.append(row)
    return pd.DataFrame(rows)


def per_record_figures(table: pd.DataFrame, prefix: str = "test_") -> dict[str, float]:
    """The per-recording summary of the normal class (the first of the database's classes: N, or healthy) over
    the recordings that have normal beats: how many fall below NORMAL_SE_FLOOR, the median and the worst."""
    normal = next((c.removeprefix("n_") for c in table.columns if c.startswith("n_")), None)
    if normal is None or f"se_{normal}" not in table:
        return {}
    se = table.loc[table[f"n_{normal}"] > 0, f"se_{normal}"]
    if se.empty:
        return {}
    name = f"{prefix}records_{normal.lower()}_se"
    return {
        f"{prefix}records": float(len(table)),
        f"{name}_below_{round(NORMAL_SE_FLOOR * 100)}": float((se < NORMAL_SE_FLOOR).sum()),
        f"{name}_median": float(se.median()),
        f"{name}_worst": float(se.min()),
    }


def log_per_record(table: pd.DataFrame, prefix: str = "test_", folder: str = EVALUATION_DIR) -> dict[str, float]:
    """The per-recording table (<folder>/per_record.csv) and its summary metrics, on the active run."""
    figures = per_record_figures(table, prefix)
    mlflow.log_metrics(figures)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / PER_RECORD_FILE
        table.to_csv(path, index=False)
        mlflow.log_artifact(str(path), folder)
    return figures
