"""The `main` chain: the whole study for one dataset in one command, the protocol of its split.

- split=intra, the paper's study: pretrain (per backbone) -> transfer (per backbone, from that
  pretrain run) and the scratch baselines -> ensemble of the transfer runs.
- split=inter, the patient-wise study (main_patientwise.py): cross-validated classifiers and the
  features baseline, the model for new patients chosen on CV, tested once, evaluated on the SVDB.
Each child is an `mlflow run` of this project's own entry point in the current environment
(steps/children.py), reused when a FINISHED run with the same entry point, parameters and git
commit exists, as in MLflow's multistep workflow example.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import mlflow

from ecg_mlflow.config import MainConfig
from ecg_mlflow.data.databases import get_database
from ecg_mlflow.params import flatten_config
from ecg_mlflow.steps import main_patientwise
from ecg_mlflow.steps.children import Chain, MainResult, chain_parameters, parent_metric
from ecg_mlflow.steps.progress import Progress
from ecg_mlflow.tracking.runs import experiment_name, step_run

log = logging.getLogger(__name__)

STEP = "main"


def paper_chain(config: MainConfig, chain: Chain) -> str:
    """The paper's study: per backbone pretrain -> transfer and the scratch baseline; the ensemble of the
    transfer runs. -> the reproduction table."""
    transfer_ids = []
    for backbone in config.backbones:
        own = chain_parameters(config, backbone)
        pretrain = chain.child(f"pretrain/{backbone}", "pretrain", {"backbone": backbone, **own["pretrain"]})
        transfer = chain.child(
            f"pretrained/{backbone}",
            "transfer",
            {"backbone": backbone, "pretrain_run_id": pretrain.info.run_id, **own["transfer"]},
        )
        transfer_ids.append(transfer.info.run_id)
        chain.child(f"scratch/{backbone}", "baseline", {"backbone": backbone, **own["transfer"]})
    ensemble = chain_parameters(config)["ensemble"]
    members = {"members": ",".join(config.backbones), "run_ids": ",".join(transfer_ids)}
    chain.child("pretrained/ensemble", "ensemble", {**members, **ensemble})
    return results_table(config, chain.result)


def paper_chain_steps(config: MainConfig) -> int:
    return 3 * len(config.backbones) + 1


@dataclass(frozen=True)
class Protocol:
    """What `main` runs on a split: the chain, and how many children it starts (for progress)."""

    chain: Callable[[MainConfig, Chain], str]
    steps: Callable[[MainConfig], int]


def protocols() -> dict[str, Protocol]:
    """The chain of each split, declared once: the paper's study (intra), the patient-wise one (inter)."""
    return {
        "intra": Protocol(paper_chain, paper_chain_steps),
        "inter": Protocol(main_patientwise.patientwise_chain, main_patientwise.chain_steps),
    }


def run_main(config: MainConfig, *, reuse: bool = True) -> MainResult:
    result = MainResult()
    protocol = protocols()[config.split]
    run_name = f"main-{config.dataset}-{config.profile}" + ("" if config.split == "intra" else f"-{config.split}")
    with step_run(
        STEP, flatten_config(config), run_name=run_name, experiment=experiment_name(config.dataset)
    ) as parent:
        result.run_id = parent.info.run_id
        progress = Progress(total=protocol.steps(config))
        chain = Chain(parent.info.experiment_id, parent.info.run_id, progress, result, reuse)
        result.table = protocol.chain(config, chain)
        mlflow.set_tags({f"ecg_mlflow.child.{key}": run_id for key, run_id in result.run_ids.items()})
        log.info("main: %s", progress.summary())
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            (folder / "results.md").write_text(result.table)
            (folder / "results.json").write_text(
                json.dumps({"run_ids": result.run_ids, "reused": result.reused, "metrics": result.metrics}, indent=2)
            )
            mlflow.log_artifacts(str(folder), "results")
        for key, metrics in result.metrics.items():
            for name in ("test_accuracy", "test_macro_f1", "test_macro_f1_nsv", "cv_macro_f1_nsv_mean"):
                if name in metrics:
                    mlflow.log_metric(parent_metric(key, name), metrics[name])
    return result


# AAMI EC57 columns, shown when the runs logged them (MIT-BIH): the figures patient-wise papers report.
EC57_COLUMNS: dict[str, str] = {
    "test_macro_f1_nsv": "macro-F1 (N,S,V)",
    "test_se_S": "S Se",
    "test_ppv_S": "S +P",
    "test_se_V": "V Se",
    "test_ppv_V": "V +P",
}


def results_table(config: MainConfig, result: MainResult) -> str:
    """Tables 1 and 2 of the paper in one: ours (accuracy, macro-F1, EC57) beside the paper's accuracy.

    A row whose run learned nothing (no better than always answering the majority class) says so.
    """
    paper = get_database(config.dataset).paper_accuracy  # the paper's Tables 1 and 2, declared with the data
    ec57 = [name for name in EC57_COLUMNS if any(name in m for m in result.metrics.values())]
    header = ["model", "init", "test accuracy", "test macro-F1", *(EC57_COLUMNS[n] for n in ec57), "paper accuracy"]
    lines = [
        f"## {config.dataset.upper()} ({config.split} split, context={config.chosen('context')}, "
        f"profile={config.profile})",
        "",
        "| " + " | ".join([*header, "run", "note"]) + " |",
        "| --- " * (len(header) + 2) + "|",
    ]
    for backbone in (*config.backbones, "ensemble"):
        for init in ("scratch", "pretrained"):
            key = f"{init}/{backbone}"
            if key not in result.metrics:
                continue
            metrics = result.metrics[key]
            cells = [backbone, init, *(_pct(metrics.get(n)) for n in ("test_accuracy", "test_macro_f1", *ec57))]
            note = "**learned nothing** (no better than the majority class)" if result.learned_nothing.get(key) else ""
            cells += [_pct(paper.get(init, {}).get(backbone)), result.run_ids[key][:8], note]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.2f}%"
