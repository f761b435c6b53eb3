"""The `patientwise` step: choose on cross-validation alone the model a user takes to a new patient, then test it.

The candidates are finished cross-validations (`crossval` networks, `features` models) of one dataset
that share their folds. Each is scored on its out-of-fold probabilities: the mean over folds of
macro-F1(N,S,V) on each fold's held-out records. The average of the networks is scored too: averaging
their out-of-fold probabilities is exactly what the averaged model would have answered. The best score
wins. No test figure is read to choose.

The winner, a single model or the networks averaged, is then:
- tested once on the test records;
- logged as the same served model as any classifier;
- registered as ecg-<dataset>-patientwise with the alias `current` (what `classify RECORD --model
  models:/ecg-mit-patientwise@current` takes to a new patient);
- evaluated on every external database whose records are in DATA_DIR (`external`, default the SVDB),
  each as a nested `evaluate` run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import mlflow
import numpy as np

from ecg_mlflow.config import DataConfig, EvaluateConfig, PatientwiseConfig
from ecg_mlflow.data.databases import get_database
from ecg_mlflow.data.dataset import load_dataset
from ecg_mlflow.data.spec import resolve_data_dir
from ecg_mlflow.models.classifier import build_ensemble
from ecg_mlflow.models.served import BEAT_INPUT, CONTEXT_INPUT, BeatClassifier
from ecg_mlflow.params import flatten_config
from ecg_mlflow.steps.folds import OutOfFold, load_out_of_fold
from ecg_mlflow.steps.result import StepResult
from ecg_mlflow.steps.supervised import headline, log_classifier, log_test_evaluation, split_beats
from ecg_mlflow.tracking.classifiers import load_classifier, load_served, recording_adapter
from ecg_mlflow.tracking.registry import CURRENT_ALIAS, patientwise_model_name
from ecg_mlflow.tracking.runs import describe_run, experiment_name, step_run
from ecg_mlflow.tracking.upstream import UpstreamError, UpstreamRun, resolve_upstream_run

log = logging.getLogger(__name__)

STEP = "patientwise"
CANDIDATE_STEPS = ("crossval", "features")
NETWORK_STEP = "crossval"
# What every candidate must share: the same beats, the same folds, the same inputs.
SHARED_PARAMS = ("dataset", "source", "split", "split_seed", "val_fraction", "folds", "max_beats")
INPUT_PARAMS = ("context", "adapt")
ENSEMBLE = "average of the networks"


@dataclass(frozen=True)
class Candidate:
    """A model the step may choose: one cross-validated run, or several averaged."""

    name: str
    runs: tuple[UpstreamRun, ...]
    scores: tuple[float, ...]  # macro-F1(N,S,V) of each fold's held-out records

    @property
    def score(self) -> float:
        return float(np.mean(self.scores))


def resolve_candidates(config: PatientwiseConfig) -> list[UpstreamRun]:
    """The candidate runs, checked: FINISHED cross-validations of this dataset that share folds and inputs."""
    if not config.candidates:
        raise UpstreamError("no candidates: give the run IDs of finished crossval or features runs (candidates=...)")
    runs = [resolve_upstream_run(step=CANDIDATE_STEPS, run_id=run_id) for run_id in config.candidates]
    first = runs[0]
    for run in runs:
        if int(float(run.params.get("folds", "0"))) < 2:
            raise UpstreamError(
                f"run {run.run_id} was not cross-validated (folds={run.params.get('folds')}); give K >= 2"
            )
        if run.params.get("dataset") != config.dataset or run.params.get("split") != "inter":
            raise UpstreamError(
                f"run {run.run_id} is a cross-validation of {run.params.get('dataset')} ({run.params.get('split')} "
                f"split); give patient-wise cross-validations of {config.dataset}"
            )
        for name in SHARED_PARAMS + INPUT_PARAMS:
            if run.params.get(name) != first.params.get(name):
                raise UpstreamError(
                    f"runs {first.run_id} and {run.run_id} differ in {name} ({first.params.get(name)} against "
                    f"{run.params.get(name)}): candidates must share their beats, folds and inputs"
                )
    return runs


def score_candidates(
    runs: list[UpstreamRun], class_names: tuple[str, ...], headline: tuple[str, ...]
) -> list[Candidate]:
    """Each run alone and, with two or more networks of one input kind, the networks averaged: scored on
    out-of-fold beats."""
    folds = {run.run_id: load_out_of_fold(run.run_id) for run in runs}
    reference = folds[runs[0].run_id]
    for run in runs[1:]:
        other = folds[run.run_id]
        if not (np.array_equal(other.fold, reference.fold) and np.array_equal(other.records, reference.records)):
            raise UpstreamError(f"runs {runs[0].run_id} and {run.run_id} were cross-validated on different folds")
    candidates = [
        Candidate(candidate_name(run), (run,), tuple(folds[run.run_id].fold_scores(class_names, headline)))
        for run in runs
    ]
    networks = [run for run in runs if run.step == NETWORK_STEP]
    if len(networks) > 1 and len({run.params.get("input", "kachuee") for run in networks}) == 1:
        averaged = np.mean([folds[run.run_id].proba for run in networks], axis=0)
        oof = OutOfFold(averaged, reference.y, reference.fold, reference.records)
        candidates.append(Candidate(ENSEMBLE, tuple(networks), tuple(oof.fold_scores(class_names, headline))))
    return candidates


def candidate_name(run: UpstreamRun) -> str:
    """cnn (scratch), features logistic: what the table calls a run."""
    if run.step == NETWORK_STEP:
        return f"{run.params.get('backbone')} ({run.params.get('init')})"
    return f"features {run.params.get('estimator')}"


def chosen_model(candidate: Candidate, class_names: tuple[str, ...]) -> tuple[Any, list[str]]:
    """The winner as a model to log and serve (a Keras network, an average of them, or a features model),
    and its context columns."""
    if len(candidate.runs) == 1:
        served = load_served(candidate.runs[0].model_uri)
        model = served.keras_model if served.features_model is None else served.features_model
        return model, list(served.context_names)
    served = [load_served(run.model_uri) for run in candidate.runs]
    networks = [load_classifier(run.model_uri) for run in candidate.runs]
    return build_ensemble(networks, len(class_names)), list(served[0].context_names)


def candidates_table(candidates: list[Candidate], chosen: Candidate) -> str:
    lines = ["| candidate | runs | CV macro-F1 (N,S,V) | sd over folds | chosen |", "| --- | --- | --- | --- | --- |"]
    for c in sorted(candidates, key=lambda c: -c.score):
        runs = ", ".join(run.run_id[:8] for run in c.runs)
        mark = "**yes**" if c is chosen else ""
        lines.append(f"| {c.name} | {runs} | {c.score:.3f} | {np.std(c.scores):.3f} | {mark} |")
    return "\n".join(lines) + "\n"


def evaluate_externally(config: PatientwiseConfig, model_uri: str, own_run: UpstreamRun) -> dict[str, float]:
    """The chosen model on each external database whose records are here (nested `evaluate` runs)."""
    from ecg_mlflow.steps.evaluate import run_evaluate

    figures: dict[str, float] = {}
    data_dir = resolve_data_dir(config.data_dir or None)
    for name in config.external:
        folder = data_dir / get_database(name).directory
        if not any(folder.glob("*.hea")):
            log.warning("no %s records in %s: the chosen model is not evaluated on %s", name, folder, name)
            mlflow.set_tag(f"ecg_mlflow.external_skipped.{name}", f"no records in {folder}")
            continue
        evaluate = EvaluateConfig(
            model_uri=model_uri, database=name, data_dir=config.data_dir, cache_dir=config.cache_dir
        )
        result = run_evaluate(evaluate, verbose=0, model_run=own_run)
        figures |= {f"{name}_{k.removeprefix('test_')}": v for k, v in result.metrics.items()}
        mlflow.set_tag(f"ecg_mlflow.external.{name}", result.run_id)
    mlflow.log_metrics(figures)
    return figures


def run_patientwise(config: PatientwiseConfig, *, register: bool = True, verbose: int = 1) -> StepResult:
    params = flatten_config(config)
    with step_run(STEP, params, run_name=f"patientwise-{config.dataset}", experiment=experiment_name(config.dataset)):
        run_id = mlflow.active_run().info.run_id
        runs = resolve_candidates(config)
        first = runs[0].params
        declared = get_database(config.dataset)
        candidates = score_candidates(runs, declared.class_names, declared.headline_classes)
        chosen = max(candidates, key=lambda c: c.score)
        data = DataConfig(
            dataset=config.dataset,
            split="inter",
            data_dir=config.data_dir,
            cache_dir=config.cache_dir,
            split_seed=int(first["split_seed"]),
            val_fraction=float(first["val_fraction"]),
            max_beats=int(first.get("max_beats", 0)),
            input=chosen.runs[0].params.get("input", "kachuee"),  # the beats the chosen model takes
        )
        dataset = load_dataset(data, progress=verbose > 0)
        mlflow.log_metrics({"cv_macro_f1_nsv_mean": chosen.score, "cv_macro_f1_nsv_std": float(np.std(chosen.scores))})
        mlflow.log_params({"chosen": chosen.name, "chosen_run_ids": ",".join(r.run_id for r in chosen.runs)})
        table = candidates_table(candidates, chosen)
        mlflow.log_text(table, "patientwise/candidates.md")

        model, context_names = chosen_model(chosen, dataset.class_names)
        adapt = first.get("adapt", "none")
        test = split_beats(dataset, "test", first["context"], adapt)
        served = BeatClassifier.around(
            model, list(dataset.class_names), context_names, data.input, (adapt, recording_adapter(model, adapt))
        )
        inputs = {BEAT_INPUT: test.x} | ({} if test.context is None else {CONTEXT_INPUT: test.context})
        majority = int(np.bincount(load_out_of_fold(runs[0].run_id).y).argmax())
        metrics = log_test_evaluation(served.probabilities(inputs, test.records), test, dataset, None, majority)
        sample = test.subset(np.arange(min(8, len(test.y))))
        name = patientwise_model_name(config.dataset)
        model_uri, version = log_classifier(
            model, sample, dataset.class_names, name, CURRENT_ALIAS, register, run_id, adapt
        )
        own_run = UpstreamRun(run_id, model_uri, STEP, {"dataset": config.dataset, **first})
        metrics |= evaluate_externally(config, model_uri, own_run)
        describe_run(
            f"The model for new patients, chosen on patient-wise cross-validation alone: {chosen.name} (CV macro-F1"
            f"(N,S,V) {chosen.score:.3f} ± {np.std(chosen.scores):.3f} over folds; every candidate in "
            f"patientwise/candidates.md). Tested once: {headline(metrics)}."
        )
        return StepResult(
            run_id=run_id,
            metrics={**metrics, "cv_macro_f1_nsv_mean": chosen.score},
            model_uri=model_uri,
            registered_version=version,
            text=table,
        )
