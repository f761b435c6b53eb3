"""Model Registry names and aliases: how a downstream step finds upstream models.

Naming (documented in README):
  ecg-ssl-<backbone>           self-supervised encoders (pretrain)
  ecg-<dataset>-<backbone>     supervised classifiers (transfer)
  ecg-<dataset>-ensemble       averaged ensembles
Each step points the alias `current` at the version it registers (transfer runs
from scratch point `scratch` instead), so `models:/ecg-ssl-cnn@current` is always
the newest finished pretraining of the CNN.
"""

from __future__ import annotations

import mlflow
from mlflow.entities.model_registry import ModelVersion
from mlflow.tracking import MlflowClient

CURRENT_ALIAS = "current"
SCRATCH_ALIAS = "scratch"


def ssl_model_name(backbone: str) -> str:
    return f"ecg-ssl-{backbone}"


def classifier_model_name(dataset: str, backbone: str) -> str:
    return f"ecg-{dataset}-{backbone}"


def ensemble_model_name(dataset: str) -> str:
    return f"ecg-{dataset}-ensemble"


def alias_uri(name: str, alias: str = CURRENT_ALIAS) -> str:
    return f"models:/{name}@{alias}"


def register_with_alias(model_uri: str, name: str, alias: str, tags: dict[str, str] | None = None) -> ModelVersion:
    """Register `model_uri` as a new version of `name` and move `alias` to it."""
    version = mlflow.register_model(model_uri, name, tags=tags)
    MlflowClient().set_registered_model_alias(name, alias, version.version)
    return version
