"""The `evaluate` step: a trained classifier on every beat of a database it was (usually) never trained on.

The model is found by URI (registry alias or version, or runs:/), its training run is checked
(a FINISHED transfer or ensemble run whose classes are the database's), the database's records are
read the way training read them (the database declaration: rate, lead rule, annotation symbols,
rhythm context from the record's own R peaks), downloaded with wfdb when the folder is empty, and
one MLflow run records the EC57 figures overall and per record, linked to the model's run.
"""

from __future__ import annotations

import logging
from pathlib import Path

import mlflow
import numpy as np

from ecg_mlflow.config import EvaluateConfig
from ecg_mlflow.data.adaptation import context_matrix
from ecg_mlflow.data.databases import Database, get_database
from ecg_mlflow.data.dataset import DatabaseBeats, load_database_beats
from ecg_mlflow.data.errors import DataError
from ecg_mlflow.data.spec import resolve_cache_dir, resolve_data_dir
from ecg_mlflow.evaluation import evaluate_predictions, log_evaluation, log_per_record, per_record_table
from ecg_mlflow.models.served import BEAT_INPUT, CONTEXT_INPUT, BeatClassifier
from ecg_mlflow.params import flatten_config
from ecg_mlflow.steps.result import StepResult
from ecg_mlflow.steps.supervised import headline
from ecg_mlflow.tracking.classifiers import load_served
from ecg_mlflow.tracking.runs import describe_run, step_run
from ecg_mlflow.tracking.upstream import UpstreamError, UpstreamRun, resolve_model_run

log = logging.getLogger(__name__)

STEP = "evaluate"
MODEL_STEPS = ("transfer", "crossval", "features", "ensemble", "patientwise")  # every step that logs a model
UPSTREAM_RUN_TAG = "ecg_mlflow.upstream_run_id"
UPSTREAM_URI_TAG = "ecg_mlflow.upstream_model_uri"


def check_classes(model_run: UpstreamRun, database: Database) -> None:
    """The model must predict the classes the database's annotations are mapped to."""
    dataset = model_run.params.get("dataset", "")
    try:
        trained_on = get_database(dataset)
    except DataError:
        raise UpstreamError(f"run {model_run.run_id} names no known training dataset (dataset={dataset!r})") from None
    if trained_on.class_names != database.class_names:
        predicts, labelled = ", ".join(trained_on.class_names), ", ".join(database.class_names)
        raise UpstreamError(
            f"the model of run {model_run.run_id} predicts {predicts} ({trained_on.name}) but {database.name} beats "
            f"are labelled {labelled}; evaluate a model of the same classes"
        )


def ensure_database(database: Database, data_dir: Path, download: bool) -> None:
    """Download the database with wfdb when its folder is missing or holds no record."""
    folder = data_dir / database.directory
    if folder.is_dir() and any(folder.rglob("*.hea") if database.nested_records else folder.glob("*.hea")):
        return
    if not download or not database.downloadable:
        raise DataError(
            f"{folder} holds no WFDB records: copy the {database.name} files there"
            + (
                f" or run `ecg-mlflow data download {database.name} --data-dir {data_dir}`"
                if database.downloadable
                else ""
            )
        )
    from ecg_mlflow.data.download import download_database

    log.info("%s is empty: downloading %s from PhysioNet", folder, database.name)
    download_database(database.name, data_dir)


def model_context(classifier: BeatClassifier, model_run: UpstreamRun, beats: DatabaseBeats) -> np.ndarray | None:
    """The context columns the model takes, by the names it was logged with (an adaptation's computed from each
    record's own beats); None for a beat-only model."""
    if not classifier.context_names:
        return None
    try:
        return context_matrix(beats.context, beats.context_names, beats.records, tuple(classifier.context_names))
    except DataError as error:
        raise UpstreamError(f"run {model_run.run_id}: {error}; evaluate a model trained with this version") from None


def run_evaluate(config: EvaluateConfig, *, verbose: int = 1, model_run: UpstreamRun | None = None) -> StepResult:
    """`model_run`: the run that logged the model, when the caller vouches for it (`patientwise` evaluates the
    model its own, still running, run logged); else the model URI's run is resolved and checked."""
    database = get_database(config.database)
    params = flatten_config(config)
    with step_run(STEP, params, run_name=f"evaluate-{database.name}", experiment="ecg-evaluate") as run:
        model_run = model_run or resolve_model_run(config.model_uri, steps=MODEL_STEPS)
        check_classes(model_run, database)
        mlflow.set_tags({UPSTREAM_RUN_TAG: model_run.run_id, UPSTREAM_URI_TAG: config.model_uri})
        mlflow.log_params(
            {"upstream_run_id": model_run.run_id, "model_backbone": model_run.params.get("backbone", "ensemble")}
        )
        classifier = load_served(config.model_uri)
        data_dir = resolve_data_dir(config.data_dir or None)
        ensure_database(database, data_dir, config.download)
        beats = load_database_beats(
            database,
            data_dir,
            resolve_cache_dir(config.cache_dir or None),
            progress=verbose > 0,
            records=list(config.records) or None,
            input_kind=classifier.input_kind,
        )
        mlflow.log_params({"beats": len(beats.y), "records_evaluated": len(set(beats.records.tolist()))})
        mlflow.set_tag("ecg_mlflow.dataset_digest", beats.digest)
        context = model_context(classifier, model_run, beats)
        inputs = {BEAT_INPUT: beats.x} | ({} if context is None else {CONTEXT_INPUT: context})
        proba = classifier.probabilities(inputs, beats.records)  # a model that adapts: to each recording
        evaluation = evaluate_predictions(
            beats.y, proba, database.class_names, "test_", headline_classes=database.headline_classes
        )
        log_evaluation(evaluation)
        table = per_record_table(beats.y, proba, beats.records, database.class_names, database.headline_classes)
        evaluation.metrics.update(log_per_record(table, "test_"))
        describe_run(
            f"{config.model_uri} (run {model_run.run_id}) on every labelled beat of {database.title} "
            f"({len(beats.y)} beats, {len(table)} records). {headline(evaluation.metrics)}."
        )
        return StepResult(run_id=run.info.run_id, metrics=evaluation.metrics, model_uri=config.model_uri)
