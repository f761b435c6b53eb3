"""The encoder artifact: the part of a pretrained model that transfers.

Layout inside a pretrain run (documented in README):
  encoder/encoder.weights.h5   Keras weights of the encoder sub-model
  encoder/encoder.json         {"backbone": ..., "model": {BackboneConfig fields}}
Rebuilding from the JSON and loading the weights gives the same encoder in any
later step, without unpickling a whole model.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import asdict
from pathlib import Path

import keras
import mlflow
import numpy as np

from ecg_mlflow.config import BackboneConfig
from ecg_mlflow.tracking.upstream import UpstreamError

ENCODER_DIR = "encoder"
WEIGHTS_FILE = "encoder.weights.h5"
SPEC_FILE = "encoder.json"


def log_encoder(encoder: keras.Model, backbone: str, model_config: BackboneConfig) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        encoder.save_weights(folder / WEIGHTS_FILE)
        spec = {"backbone": backbone, "model": asdict(model_config), "weights_digest": weights_digest(encoder)}
        (folder / SPEC_FILE).write_text(json.dumps(spec, indent=2))
        mlflow.log_artifacts(str(folder), ENCODER_DIR)


def encoder_params(model_config: BackboneConfig) -> dict[str, object]:
    """The sizes the encoder was really built with (the -1 defaults resolved), as encoder_<name> params."""
    return {f"encoder_{key}": value for key, value in asdict(model_config).items()}


def download_encoder(run_id: str, dst: Path) -> tuple[dict, Path]:
    """(spec, weights path) of a run's encoder artifact."""
    local = Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=ENCODER_DIR, dst_path=str(dst)))
    spec_path, weights_path = local / SPEC_FILE, local / WEIGHTS_FILE
    if not spec_path.exists() or not weights_path.exists():
        raise UpstreamError(
            f"run {run_id} has no {ENCODER_DIR}/{SPEC_FILE} and {ENCODER_DIR}/{WEIGHTS_FILE}; "
            "pass a pretrain run that finished (its encoder artefact is logged last)"
        )
    return json.loads(spec_path.read_text()), weights_path


def weights_digest(model: keras.Model) -> str:
    """A SHA-256 over the weights, to show in the UI that two models start from the same numbers."""
    digest = hashlib.sha256()
    for array in model.get_weights():
        digest.update(np.ascontiguousarray(array, dtype=np.float32).tobytes())
    return digest.hexdigest()[:16]
