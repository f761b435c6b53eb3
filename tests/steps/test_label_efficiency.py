"""Label efficiency: one parent run, a nested transfer per point, reuse, and the table and plot it logs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from ecg_mlflow.config import ConfigError, LabelEfficiencyConfig
from ecg_mlflow.models.catalog import BACKBONES
from ecg_mlflow.params import config_from_params
from ecg_mlflow.steps.children import chain_parameters
from ecg_mlflow.steps.label_efficiency import as_chain, markdown_table, plot_curves, study_points, summarise

ROOT = Path(__file__).resolve().parents[2]
# As the "done when" runs it: a backbone, the paper profile cut to 1 epoch a step, a few beats.
PARAMS = {"backbone": "mlp", "fractions": "0.25,1.0", "seeds": "0,1", "max_beats": "200", "epochs": "1"}


def points_frame() -> pd.DataFrame:
    rows = []
    for fraction, (pre, scr) in {0.01: ((0.60, 0.64), (0.50, 0.52)), 1.0: ((0.90, 0.92), (0.91, 0.91))}.items():
        for seed in (0, 1):
            rows.append(("cnn", "pretrained", fraction, seed, pre[seed]))
            rows.append(("cnn", "scratch", fraction, seed, scr[seed]))
    frame = pd.DataFrame(rows, columns=["backbone", "init", "fraction", "seed", "test_macro_f1"])
    frame["learned_nothing"] = (frame["fraction"] == 0.01) & (frame["init"] == "scratch") & (frame["seed"] == 0)
    frame["train_beats"] = (frame["fraction"] * 1000).astype(int)
    return frame


def test_summary_pairs_seeds_and_gives_the_gain_of_pretraining() -> None:
    summary = summarise(points_frame()).set_index(["fraction", "init"])
    assert summary.loc[(0.01, "pretrained"), "mean"] == pytest.approx(0.62)
    assert summary.loc[(0.01, "pretrained"), "std"] == pytest.approx(np.std([0.60, 0.64], ddof=1))
    assert summary.loc[(0.01, "pretrained"), "gain"] == pytest.approx(0.11)  # (0.10 + 0.12) / 2
    assert summary.loc[(1.0, "scratch"), "gain"] == pytest.approx(0.0)
    assert summary.loc[(0.01, "scratch"), "learned_nothing"] == 1


def test_markdown_marks_runs_that_learned_nothing(tmp_path) -> None:
    config = LabelEfficiencyConfig(fractions=(0.01, 1.0), seeds=(0, 1))
    summary = summarise(points_frame())
    table = markdown_table(summary, config)
    assert "| cnn | 0.01 | 10 | 0.620 ± 0.028 | 0.510 ± 0.014 †1 | +0.110 |" in table
    assert plot_curves(summary, tmp_path / "curve.png").stat().st_size > 10_000


def test_points_run_small_fractions_first_with_inits_side_by_side() -> None:
    config = LabelEfficiencyConfig(backbone=("cnn",), fractions=(1.0, 0.1), seeds=(0, 1))
    points = study_points(config)
    assert points[:2] == [("cnn", 0.1, 0, "pretrained"), ("cnn", 0.1, 0, "scratch")] and len(points) == 8


def test_a_study_covers_one_backbone_several_or_all() -> None:
    assert config_from_params(LabelEfficiencyConfig, {"backbone": "lstm"}).backbones == ("lstm",)
    assert config_from_params(LabelEfficiencyConfig, {"backbone": "mlp,lstm"}).backbones == ("mlp", "lstm")
    assert config_from_params(LabelEfficiencyConfig, {"backbone": "all"}).backbones == tuple(BACKBONES)
    with pytest.raises(ConfigError, match="backbone='gru'"):
        config_from_params(LabelEfficiencyConfig, {"backbone": "gru"})


def test_epochs_cut_every_step_of_the_profile_for_a_quick_look() -> None:
    quick_look = config_from_params(LabelEfficiencyConfig, {"profile": "fast", "epochs": "1"})
    chain = as_chain(quick_look)
    for backbone in BACKBONES:
        params = chain_parameters(chain, backbone)
        assert params["pretrain"]["epochs"] == params["transfer"]["epochs"] == params["ensemble"]["epochs"] == 1
    assert chain_parameters(as_chain(LabelEfficiencyConfig(profile="fast")), "lstm")["transfer"]["epochs"] == 6
    with pytest.raises(ConfigError, match="epochs=0"):
        LabelEfficiencyConfig(epochs=0)


def test_bad_fractions_and_inits_name_the_field() -> None:
    with pytest.raises(ConfigError, match=r"fractions='0\.0': should be greater than 0"):
        config_from_params(LabelEfficiencyConfig, {"fractions": "0.0,0.5"})
    with pytest.raises(ConfigError, match="inits='random'"):
        config_from_params(LabelEfficiencyConfig, {"inits": "random"})


def _label_efficiency(env: dict[str, str]) -> subprocess.CompletedProcess:
    command = [str(Path(sys.executable).parent / "mlflow"), "run", str(ROOT), "-e", "label_efficiency"]
    command += ["--env-manager", "local", "--experiment-name", "efficiency"]
    for key, value in PARAMS.items():
        command += ["-P", f"{key}={value}"]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=1200)


@pytest.mark.slow
def test_label_efficiency_entry_point_nests_every_point_and_reuses_them(tracked, tmp_path, committed_package) -> None:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    first = _label_efficiency(env)
    assert first.returncode == 0, first.stderr[-4000:]
    assert "[1/9] pretrain mlp" in first.stderr and "[9/9] mlp scratch 1 of the labels, seed 1" in first.stderr
    second = _label_efficiency(env)
    assert second.returncode == 0 and second.stderr.count("reusing FINISHED") == 9, second.stderr[-4000:]
    client = MlflowClient()
    experiment = client.get_experiment_by_name("efficiency")
    parents = client.search_runs([experiment.experiment_id], "tags.`ecg_mlflow.step` = 'label_efficiency'")
    assert len(parents) == 2 and all(p.info.status == "FINISHED" for p in parents)
    folder = mlflow.artifacts.download_artifacts(
        run_id=parents[0].info.run_id, artifact_path="label_efficiency", dst_path=str(tmp_path)
    )
    points = pd.read_csv(Path(folder) / "points.csv")
    assert len(points) == 8 and set(points["init"]) == {"pretrained", "scratch"}
    quarter = points[points["fraction"] == 0.25]["train_beats"].iloc[0]
    full = points[points["fraction"] == 1.0]["train_beats"].iloc[0]
    assert abs(quarter - 0.25 * full) <= 5  # a stratified quarter (every class keeps at least one beat)
    for run_id in points["run_id"]:
        child = client.get_run(run_id)
        assert child.info.status == "FINISHED"
        assert child.data.tags["mlflow.parentRunId"] in {p.info.run_id for p in parents}
    paired = points.pivot_table(index=["fraction", "seed"], columns="init", values="train_beats")
    assert (paired["pretrained"] == paired["scratch"]).all()  # both inits see the same labels at a seed
    assert (Path(folder) / "label_efficiency.png").stat().st_size > 10_000
    assert "gain (pretrained - scratch)" in (Path(folder) / "label_efficiency.md").read_text()
    assert any(key.startswith("gain_mlp_f0.25") for key in parents[0].data.metrics)
