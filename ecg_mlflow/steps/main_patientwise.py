"""`main --split inter`: the patient-wise study, with the configuration patient-wise cross-validation chose.

Per backbone a `crossval` child (pretraining first when the chosen init needs one encoder for every
fold; a pretraining per fold when it is inductive), the features baseline as `features` children
with the same folds, then `patientwise`: the model for new patients chosen on CV alone among them
(the networks averaged too), tested once on DS2, registered as ecg-<dataset>-patientwise@current
and evaluated on the SVDB when DATA_DIR has its records. The configuration is profiles.PATIENTWISE
(docs/results.md has the CV table that chose it); `context` and `class_weight` may override it.
"""

from __future__ import annotations

from typing import Any

from ecg_mlflow.config import MainConfig
from ecg_mlflow.profiles import PATIENTWISE
from ecg_mlflow.steps.children import Chain, MainResult, chain_parameters

# Figures of the patient-wise table: what chose (CV), then the test records, then the external database.
COLUMNS = {
    "cv_macro_f1_nsv_mean": "CV macro-F1 (N,S,V)",
    "cv_macro_f1_nsv_std": "sd over folds",
    "test_macro_f1_nsv": "DS2 macro-F1 (N,S,V)",
    "test_se_S": "S Se",
    "test_ppv_S": "S +P",
    "test_se_V": "V Se",
    "test_ppv_V": "V +P",
    "test_records_n_se_below_80": "DS2 recordings with N Se < 80 %",
    "test_records_n_se_worst": "DS2 worst N Se",
    "svdb_macro_f1_nsv": "SVDB macro-F1 (N,S,V)",
    "svdb_se_S": "SVDB S Se",
    "svdb_ppv_S": "SVDB S +P",
    "svdb_records_n_se_below_80": "SVDB recordings with N Se < 80 %",
}
COUNTS = ("test_records_n_se_below_80", "svdb_records_n_se_below_80")  # numbers of recordings, not shares


def chain_steps(config: MainConfig) -> int:
    pretrainings = len(config.backbones) if PATIENTWISE.init == "pretrained" and not PATIENTWISE.fold_pretraining else 0
    return pretrainings + len(config.backbones) + len(PATIENTWISE.features) + 1


def shared_parameters(config: MainConfig) -> dict[str, Any]:
    """What every cross-validation of the chain shares: the beats, the folds and the inputs."""
    profile = config.settings
    return {
        "dataset": config.dataset,
        "context": config.chosen("context"),
        "class_weight": config.chosen("class_weight"),
        "adapt": PATIENTWISE.adapt,
        "folds": PATIENTWISE.folds,
        "seed": config.seed,
        "data_dir": config.data_dir,
        "cache_dir": config.cache_dir,
        "max_beats": profile.max_beats,
    }


def crossval_parameters(config: MainConfig, backbone: str) -> dict[str, Any]:
    own = chain_parameters(config, backbone)
    transfer = {k: v for k, v in own["transfer"].items() if k not in ("split", "context", "class_weight")}
    pretraining = {"fold_pretraining": PATIENTWISE.fold_pretraining, "unlabelled": ",".join(PATIENTWISE.unlabelled)}
    if PATIENTWISE.fold_pretraining:
        pretraining["pretrain_epochs"] = own["pretrain"]["epochs"]
    networks = {"backbone": backbone, "init": PATIENTWISE.init, "input": PATIENTWISE.input}
    return {**networks, **transfer, **pretraining, **shared_parameters(config)}


def patientwise_chain(config: MainConfig, chain: Chain) -> str:
    """Cross-validate every backbone and the features baseline, then choose, test and register. -> the table."""
    candidates = []
    for backbone in config.backbones:
        parameters = crossval_parameters(config, backbone)
        if PATIENTWISE.init == "pretrained" and not PATIENTWISE.fold_pretraining:
            own = {**chain_parameters(config, backbone)["pretrain"], "input": PATIENTWISE.input}
            unlabelled = ",".join(PATIENTWISE.unlabelled)
            pretrain = chain.child(
                f"pretrain/{backbone}", "pretrain", {"backbone": backbone, **own, "unlabelled": unlabelled}
            )
            parameters = {**parameters, "pretrain_run_id": pretrain.info.run_id, "unlabelled": ""}
        candidates.append(chain.child(f"crossval/{backbone}", "crossval", parameters).info.run_id)
    for estimator in PATIENTWISE.features:
        features = {"estimator": estimator, "split": "inter", **shared_parameters(config)}
        candidates.append(chain.child(f"features/{estimator}", "features", features).info.run_id)
    where = {"dataset": config.dataset, "data_dir": config.data_dir, "cache_dir": config.cache_dir}
    chain.child("patientwise", "patientwise", {"candidates": ",".join(candidates), **where})
    return patientwise_table(config, chain.result)


def patientwise_table(config: MainConfig, result: MainResult) -> str:
    """Every candidate's CV and test figures, and the chosen model's (with the external database)."""
    header = ["model", *COLUMNS.values(), "run"]
    lines = [
        f"## {config.dataset.upper()}, patients never seen (DS1 -> DS2; context={config.chosen('context')}, "
        f"class_weight={config.chosen('class_weight')}, profile={config.profile})",
        "",
        "| " + " | ".join(header) + " |",
        "| --- " * len(header) + "|",
    ]
    for key, metrics in result.metrics.items():
        if key.startswith("pretrain/"):
            continue
        name = "**chosen for new patients**" if key == "patientwise" else key.replace("/", " ")
        cells = [_count(metrics.get(c)) if c in COUNTS else _pct(metrics.get(c)) for c in COLUMNS]
        lines.append("| " + " | ".join([name, *cells, result.run_ids[key][:8]]) + " |")
    return "\n".join(lines) + "\n"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def _count(value: float | None) -> str:
    return "–" if value is None else str(int(value))
