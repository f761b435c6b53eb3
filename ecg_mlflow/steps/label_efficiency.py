"""`label_efficiency`: does self-supervised pretraining pay where labels are scarce?

For each backbone, one pretraining (reused when a FINISHED one with the same parameters exists),
then a `transfer` run per (label fraction, init, seed): the same stratified label subset for
both inits at a seed (every class keeps at least one beat), so pretrained and scratch are paired.
Every point is an `mlflow run` nested under one parent run and reused when it already finished
(as the `main` chain does). The parent logs the table (CSV and Markdown), a plot of test
macro-F1 against the label fraction (log x, mean and spread over seeds per init) and the gain
of pretraining per fraction as metrics (`gain_<backbone>_f<fraction>`).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from ecg_mlflow.config import LabelEfficiencyConfig, MainConfig
from ecg_mlflow.params import flatten_config
from ecg_mlflow.steps.children import chain_parameters, run_entry_point
from ecg_mlflow.steps.progress import Progress
from ecg_mlflow.steps.supervised import LEARNED_NOTHING_TAG
from ecg_mlflow.tracking.runs import experiment_name, step_run

STEP = "label_efficiency"
SCORE = "test_macro_f1"
RESULTS_DIR = "label_efficiency"


@dataclass(frozen=True)
class LabelEfficiencyResult:
    run_id: str
    points: pd.DataFrame  # one row per run: backbone, init, fraction, seed, run_id, reused, scores
    summary: pd.DataFrame  # mean and spread per backbone, fraction, init; the gain of pretraining
    text: str  # the Markdown table


def study_points(config: LabelEfficiencyConfig) -> list[tuple[str, float, int, str]]:
    """(backbone, fraction, seed, init) in the order they run: small fractions first, inits side by side."""
    return [
        (backbone, fraction, seed, init)
        for backbone in config.backbones
        for fraction in sorted(config.fractions)
        for seed in config.seeds
        for init in config.inits
    ]


def as_chain(config: LabelEfficiencyConfig, seed: int = 0) -> MainConfig:
    """The chain config whose children's parameters a point uses (same profile, split, context, data)."""
    return MainConfig(
        dataset=config.dataset,
        profile=config.profile,
        backbones=config.backbones,
        split=config.split,
        context=config.chosen("context"),
        class_weight=config.chosen("class_weight"),
        seed=seed,
        data_dir=config.data_dir,
        cache_dir=config.cache_dir,
        max_beats=config.max_beats,
        epochs=config.epochs,
    )


def run_label_efficiency(config: LabelEfficiencyConfig, *, reuse: bool = True) -> LabelEfficiencyResult:
    points = study_points(config)
    pretrained = "pretrained" in config.inits
    progress = Progress(total=len(points) + (len(config.backbones) if pretrained else 0))
    rows = []
    name = f"label-efficiency-{config.dataset}-{config.split}"
    with step_run(STEP, flatten_config(config), run_name=name, experiment=experiment_name(config.dataset)) as parent:
        ids = {"experiment_id": parent.info.experiment_id, "parent_run_id": parent.info.run_id, "reuse": reuse}
        pretrain_ids = {}
        if pretrained:
            for backbone in config.backbones:
                progress.begin(f"pretrain {backbone}")
                pretrain = chain_parameters(as_chain(config), backbone)["pretrain"]
                run, reused = run_entry_point("pretrain", {"backbone": backbone, **pretrain}, **ids)
                progress.end(reused)
                pretrain_ids[backbone] = run.info.run_id
        for backbone, fraction, seed, init in points:
            transfer = chain_parameters(as_chain(config, seed), backbone)["transfer"]
            params = {**transfer, "backbone": backbone, "label_fraction": fraction, "init": init}
            if init == "pretrained":
                params["pretrain_run_id"] = pretrain_ids[backbone]
            progress.begin(f"{backbone} {init} {fraction:g} of the labels, seed {seed}")
            run, reused = run_entry_point("transfer", params, **ids)
            progress.end(reused)
            rows.append(
                {
                    "backbone": backbone,
                    "init": init,
                    "fraction": fraction,
                    "seed": seed,
                    "train_beats": int(float(run.data.params.get("train_beats", "nan"))),
                    SCORE: run.data.metrics.get(SCORE, np.nan),
                    "test_accuracy": run.data.metrics.get("test_accuracy", np.nan),
                    "learned_nothing": run.data.tags.get(LEARNED_NOTHING_TAG) == "true",
                    "run_id": run.info.run_id,
                    "reused": reused,
                }
            )
        table = pd.DataFrame(rows)
        summary = summarise(table)
        markdown = markdown_table(summary, config)
        log_results(table, summary, markdown)
        print(progress.summary(), flush=True)
        return LabelEfficiencyResult(parent.info.run_id, table, summary, markdown)


def summarise(points: pd.DataFrame) -> pd.DataFrame:
    """Mean, standard deviation and count of test macro-F1 per (backbone, fraction, init); runs that
    learned nothing are counted; `gain` is pretrained minus scratch (mean over paired seeds)."""
    grouped = points.groupby(["backbone", "fraction", "init"])
    summary = grouped[SCORE].agg(["mean", "std", "count"]).reset_index()
    summary["learned_nothing"] = grouped["learned_nothing"].sum().to_numpy()
    summary["train_beats"] = grouped["train_beats"].first().to_numpy()
    wide = points.pivot_table(index=["backbone", "fraction", "seed"], columns="init", values=SCORE)
    if {"pretrained", "scratch"} <= set(wide.columns):
        gains = (wide["pretrained"] - wide["scratch"]).groupby(level=["backbone", "fraction"]).mean()
        summary = summary.merge(gains.rename("gain").reset_index(), on=["backbone", "fraction"], how="left")
    return summary


def markdown_table(summary: pd.DataFrame, config: LabelEfficiencyConfig) -> str:
    """One row per (backbone, fraction): each init's mean ± sd over seeds, and the gain of pretraining."""
    inits = list(config.inits)
    header = ["backbone", "labels", "train beats", *[f"{i} macro-F1" for i in inits]]
    has_gain = "gain" in summary
    header += ["gain (pretrained - scratch)"] if has_gain else []
    lines = [
        f"Test macro-F1, mean ± sd over seeds {', '.join(map(str, config.seeds))} ({config.dataset}, "
        f"split={config.split}, profile={config.profile}); † = runs that learned nothing (majority answer).",
        "",
        "| " + " | ".join(header) + " |",
        "| " + " | ".join(["---"] * 3 + ["---:"] * (len(header) - 3)) + " |",
    ]
    for (backbone, fraction), rows in summary.groupby(["backbone", "fraction"], sort=True):
        by_init = rows.set_index("init")
        cells = [backbone, f"{fraction:g}", str(int(rows["train_beats"].iloc[0]))]
        for init in inits:
            row = by_init.loc[init]
            spread = 0.0 if np.isnan(row["std"]) else row["std"]
            mark = f" †{int(row['learned_nothing'])}" if row["learned_nothing"] else ""
            cells.append(f"{row['mean']:.3f} ± {spread:.3f}{mark}")
        if has_gain:
            cells.append(f"{rows['gain'].iloc[0]:+.3f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_curves(summary: pd.DataFrame, path: Path) -> Path:
    """Test macro-F1 against the label fraction (log x): mean line and ± sd band per init, a panel per backbone."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    backbones = sorted(summary["backbone"].unique())
    fig, axes = plt.subplots(1, len(backbones), figsize=(5 * len(backbones), 4), squeeze=False)
    for ax, backbone in zip(axes[0], backbones, strict=True):
        for init, rows in summary[summary["backbone"] == backbone].groupby("init"):
            rows = rows.sort_values("fraction")
            spread = rows["std"].fillna(0.0)
            ax.plot(rows["fraction"], rows["mean"], marker="o", label=init)
            ax.fill_between(rows["fraction"], rows["mean"] - spread, rows["mean"] + spread, alpha=0.2)
        ax.set(xscale="log", xlabel="share of training labels", ylabel="test macro-F1", title=backbone)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def log_results(points: pd.DataFrame, summary: pd.DataFrame, markdown: str) -> None:
    """Artefacts (points.csv, summary.csv, label_efficiency.md, label_efficiency.png) and gain metrics."""
    with tempfile.TemporaryDirectory(prefix="ecg-label-efficiency-") as tmp:
        folder = Path(tmp)
        points.to_csv(folder / "points.csv", index=False)
        summary.to_csv(folder / "summary.csv", index=False)
        (folder / "label_efficiency.md").write_text(markdown)
        plot_curves(summary, folder / "label_efficiency.png")
        mlflow.log_artifacts(str(folder), RESULTS_DIR)
    if "gain" in summary:
        gains = summary.drop_duplicates(["backbone", "fraction"])
        measured = gains.dropna(subset=["gain"])
        mlflow.log_metrics({f"gain_{row.backbone}_f{row.fraction:g}": float(row.gain) for row in measured.itertuples()})
