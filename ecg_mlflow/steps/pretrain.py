"""The `pretrain` step: learn ECG features by recognising which of 8 transforms was applied.

The representation set comes from the MIT training split (never val/test), less any records a
cross-validation holds out (`exclude_records`), plus the beats of unlabelled records
(`unlabelled`: data/unlabelled.py, whose annotations are never opened): every beat in all 8
versions, split 4:1 by beat (all 8 versions of a beat on the same side). The training side's random transforms are drawn
afresh every epoch; the validation side is drawn once, seeded, so epochs compare.
"""

from __future__ import annotations

import logging
import math
import tempfile
from collections.abc import Sequence
from pathlib import Path

import keras
import mlflow
import numpy as np
from mlflow.models import infer_signature

from ecg_mlflow.config import TRANSFORM_NAMES, PretrainConfig, TransformConfig
from ecg_mlflow.data.databases import get_database
from ecg_mlflow.data.dataset import BeatDataset, load_dataset
from ecg_mlflow.data.spec import resolve_cache_dir, resolve_data_dir
from ecg_mlflow.data.unlabelled import parse_source, unlabelled_beats, unlabelled_digest
from ecg_mlflow.models.backbones import as_model_input, build_encoder
from ecg_mlflow.models.ssl import build_ssl_model, compile_ssl_model, rename_ssl_history, ssl_targets
from ecg_mlflow.params import flatten_config
from ecg_mlflow.steps.result import StepResult
from ecg_mlflow.steps.training import STEPS_PER_EXECUTION, MlflowEpochLogger, batches_dataset, seed_everything
from ecg_mlflow.tracking.datasets import log_dataset_input
from ecg_mlflow.tracking.encoder import encoder_params, log_encoder, weights_digest
from ecg_mlflow.tracking.provenance import DATA_DIGEST_TAG, data_digest
from ecg_mlflow.tracking.registry import CURRENT_ALIAS, register_with_alias, ssl_model_name
from ecg_mlflow.tracking.runs import REGISTERED_TAG, describe_run, experiment_name, log_new_params, step_run
from ecg_mlflow.tracking.upstream import MODEL_URI_TAG
from ecg_mlflow.transforms import build_representation_set, plot_transforms

log = logging.getLogger(__name__)

STEP = "pretrain"
PROTOCOL_TAG = "ecg_mlflow.pretraining_protocol"  # inductive (training records only) or transductive
FIGURE_PATH = "figures/transforms.png"


VALIDATION_BATCH = 1024


class RepresentationBatches(keras.utils.PyDataset):
    """Batches of the 8x representation set, re-transformed with fresh randomness every epoch."""

    def __init__(self, beats: np.ndarray, transforms: TransformConfig, batch_size: int, seed: int) -> None:
        super().__init__()
        self.beats, self.transforms, self.batch_size, self.seed = beats, transforms, batch_size, seed
        self.epoch = 0
        self.x: np.ndarray | None = None
        self._draw()

    def _draw(self) -> None:
        rng = np.random.default_rng([self.seed, 0, self.epoch])
        self.x, self.y = build_representation_set(self.beats, self.transforms, rng, out=self.x)
        self.order = rng.permutation(len(self.x))

    def __len__(self) -> int:
        return math.ceil(len(self.order) / self.batch_size)

    def __getitem__(self, index: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        rows = np.sort(self.order[index * self.batch_size : (index + 1) * self.batch_size])
        return as_model_input(self.x[rows]), ssl_targets(self.y[rows])

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self._draw()


def split_beats(beats: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split beats (not their 8 versions) so no beat appears on both sides."""
    order = np.random.default_rng(seed).permutation(len(beats))
    n_val = max(1, round(len(beats) * val_fraction))
    return beats[np.sort(order[n_val:])], beats[np.sort(order[:n_val])]


def pretraining_beats(config: PretrainConfig, dataset: BeatDataset) -> np.ndarray:
    """The training split's beats (less `exclude_records`), then every beat of the `unlabelled` sources.

    Logs which patients the encoder saw: `pretrain_records` (the labelled dataset's records; a
    cross-validation reads it), the full list as an artefact, and the tag PROTOCOL_TAG: transductive
    when the unlabelled records include the dataset's test records (the patients to be classified),
    else inductive.
    """
    keep = ~np.isin(dataset.train.records, list(config.exclude_records))
    beats, records = dataset.train.x[keep], sorted(set(dataset.train.records[keep].tolist()) - {""})
    log_new_params({"pretrain_records": ",".join(records)})
    extra_records: list[str] = []
    if config.unlabelled:
        data_dir, cache_dir = resolve_data_dir(config.data.data_dir), resolve_cache_dir(config.data.cache_dir)
        extra, extra_records = unlabelled_beats(config.unlabelled, data_dir, cache_dir, config.data.input)
        beats = np.concatenate([beats, extra])
        log_new_params({"unlabelled_beats": len(extra), "unlabelled_records": len(extra_records)})
        key = unlabelled_digest(config.unlabelled, data_dir, cache_dir, config.data.input)
        mlflow.set_tag(DATA_DIGEST_TAG, data_digest(dataset.digest, key))
    test_records = {f"{get_database(config.data.dataset).directory}/{r}" for r in dataset.test.records.tolist()}
    mlflow.set_tag(PROTOCOL_TAG, "transductive" if test_records & set(extra_records) else "inductive")
    mlflow.log_text("\n".join([*records, *extra_records]) + "\n", "pretraining/records.txt")
    return beats


def _rename_epoch_logs(logs: dict[str, float]) -> dict[str, float]:
    return {key: values[0] for key, values in rename_ssl_history({k: [v] for k, v in logs.items()}).items()}


def run_pretrain(
    config: PretrainConfig,
    *,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    register: bool = True,
    verbose: int = 2,
) -> StepResult:
    params = flatten_config(config)
    run_name = f"pretrain-{config.backbone}"
    with step_run(STEP, params, run_name=run_name, experiment=experiment_name(config.data.dataset)) as run:
        run_id = run.info.run_id
        for source in config.unlabelled:  # a wrong source fails before the labelled beats are built
            parse_source(source, resolve_data_dir(config.data.data_dir))
        seed_everything(config.seed)
        dataset = load_dataset(config.data, progress=verbose > 0)
        log_dataset_input(dataset, context="train")
        beats = pretraining_beats(config, dataset)
        train_beats, val_beats = split_beats(beats, config.rep_val_fraction, config.seed)
        log_new_params({"rep_train_beats": len(train_beats), "rep_val_beats": len(val_beats)})
        log_new_params(encoder_params(config.model))

        train_batches = RepresentationBatches(train_beats, config.transforms, config.batch_size, config.seed)
        x_val, y_val = build_representation_set(val_beats, config.transforms, np.random.default_rng([config.seed, 1]))
        encoder = build_encoder(config.backbone, config.model)
        model = build_ssl_model(encoder)
        compile_ssl_model(model, config.learning_rate, config.head_weights, STEPS_PER_EXECUTION)

        history = model.fit(
            batches_dataset(train_batches),
            shuffle=False,  # RepresentationBatches draws its own order
            validation_data=(as_model_input(x_val), ssl_targets(y_val)),
            validation_batch_size=VALIDATION_BATCH,  # forward only: large batches, same numbers, less overhead
            epochs=config.epochs,
            callbacks=[MlflowEpochLogger(_rename_epoch_logs), *callbacks],
            verbose=verbose,
        )
        final = {k: float(v[-1]) for k, v in rename_ssl_history(history.history).items()}
        val_accs = [final[f"val_acc_{name}"] for name in TRANSFORM_NAMES if f"val_acc_{name}" in final]
        if val_accs:
            final["val_mean_task_accuracy"] = float(np.mean(val_accs))
            mlflow.log_metric("val_mean_task_accuracy", final["val_mean_task_accuracy"])

        model_uri, version = _log_models(config, model, encoder, val_beats, x_val, run_id, register)
        unlabelled = f" and unlabelled {', '.join(config.unlabelled)}" if config.unlabelled else ""
        describe_run(
            f"Self-supervised {config.backbone} encoder: recognises which of 8 transforms was applied to "
            f"{config.data.dataset} training beats ({config.data.split} split){unlabelled}, {config.epochs} epochs. "
            "Mean "
            f"validation accuracy over the heads {final.get('val_mean_task_accuracy', float('nan')):.4f}."
        )
        return StepResult(run_id=run_id, metrics=final, model_uri=model_uri, registered_version=version)


def _log_models(
    config: PretrainConfig,
    model: keras.Model,
    encoder: keras.Model,
    val_beats: np.ndarray,
    x_val: np.ndarray,
    run_id: str,
    register: bool,
) -> tuple[str, str]:
    """The transforms figure, the encoder transfer reads, the whole model with its signature, and the
    registered version (ecg-ssl-<backbone>@current); returns (model URI, version or "")."""
    with tempfile.TemporaryDirectory() as tmp:
        figure = plot_transforms(val_beats[0], config.transforms, Path(tmp) / "transforms.png", seed=config.seed)
        mlflow.log_artifact(str(figure), "figures")
    log_encoder(encoder, config.backbone, config.model)
    mlflow.set_tag("ecg_mlflow.encoder_digest", weights_digest(encoder))
    sample = as_model_input(x_val[:8])
    outputs = model.predict(sample, verbose=0)
    signature = infer_signature(sample, {k: np.asarray(v) for k, v in zip(TRANSFORM_NAMES, outputs, strict=True)})
    info = mlflow.keras.log_model(model, name="model", signature=signature)
    mlflow.set_tag(MODEL_URI_TAG, info.model_uri)
    if not register:
        return info.model_uri, ""
    name = ssl_model_name(config.backbone)
    registered = register_with_alias(info.model_uri, name, CURRENT_ALIAS, tags={"run_id": run_id})
    mlflow.set_tag(REGISTERED_TAG, f"{name}/{registered.version}")
    return info.model_uri, str(registered.version)
