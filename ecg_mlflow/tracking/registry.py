"""Model Registry names and aliases: how a downstream step finds upstream models.

Naming (documented in README):
  ecg-ssl-<backbone>           self-supervised encoders (pretrain)
  ecg-<dataset>-<backbone>     supervised classifiers (transfer)
  ecg-<dataset>-<backbone>-cv  the fold models of a patient-wise cross-validation, averaged (crossval)
  ecg-<dataset>-features-<estimator>  a scikit-learn model on the context numbers alone (features)
  ecg-<dataset>-ensemble       averaged ensembles
  ecg-<dataset>-patientwise    the model for new patients, chosen on cross-validation (patientwise, main --split inter)
Each step points the alias `current` at the version it registers (transfer runs
from scratch point `scratch` instead), so `models:/ecg-ssl-cnn@current` is always
the newest finished pretraining of the CNN.
"""

from __future__ import annotations

import mlflow
from mlflow.entities.model_registry import ModelVersion
from mlflow.tracking import MlflowClient

from ecg_mlflow.tracking.first_writes import write_once

CURRENT_ALIAS = "current"
SCRATCH_ALIAS = "scratch"


def ssl_model_name(backbone: str) -> str:
    return f"ecg-ssl-{backbone}"


def classifier_model_name(dataset: str, backbone: str) -> str:
    return f"ecg-{dataset}-{backbone}"


def crossval_model_name(dataset: str, backbone: str) -> str:
    """The fold models of a patient-wise cross-validation, averaged (steps/crossval.py)."""
    return f"ecg-{dataset}-{backbone}-cv"


def features_model_name(dataset: str, estimator: str) -> str:
    """A scikit-learn model on the context numbers alone (steps/features.py)."""
    return f"ecg-{dataset}-features-{estimator}"


def patientwise_model_name(dataset: str) -> str:
    """The model for new patients, chosen on patient-wise cross-validation (steps/patientwise.py)."""
    return f"ecg-{dataset}-patientwise"


def ensemble_model_name(dataset: str) -> str:
    return f"ecg-{dataset}-ensemble"


def registered_model_description(name: str) -> str:
    """What a registered model holds and what its aliases mean, shown on its page in the UI."""
    kind = name.removeprefix("ecg-")
    if kind.startswith("ssl-"):
        return (
            f"Self-supervised {kind.removeprefix('ssl-')} encoders: 8 binary heads recognise which transform was "
            f"applied to a beat. Alias {CURRENT_ALIAS}: the newest pretraining; transfer starts from it."
        )
    dataset, _, backbone = kind.partition("-")
    if backbone == "patientwise":
        return (
            f"The {dataset} classifier to take to a new patient: the model patient-wise cross-validation chose, tested "
            f"once on the test records and on external databases. Alias {CURRENT_ALIAS}: the newest."
        )
    if backbone.startswith("features-"):
        return (
            f"{backbone.removeprefix('features-')} models for {dataset} on the context numbers alone (no beat "
            "samples): "
            f"the baseline the networks must beat. Alias {CURRENT_ALIAS}: the newest."
        )
    if backbone.endswith("-cv"):
        return (
            f"{backbone.removesuffix('-cv')} classifiers for {dataset} from a patient-wise cross-validation: the "
            f"fold models averaged. Alias {CURRENT_ALIAS}: the newest from a pretrained encoder; alias "
            f"{SCRATCH_ALIAS}: the newest from scratch."
        )
    if backbone == "ensemble":
        return f"Averaging ensembles of {dataset} classifiers, trained again. Alias {CURRENT_ALIAS}: the newest."
    return (
        f"{backbone} classifiers for {dataset}. Alias {CURRENT_ALIAS}: the newest from a pretrained encoder; "
        f"alias {SCRATCH_ALIAS}: the newest from scratch. Each version's description gives its split, context "
        "and test figures."
    )


def alias_uri(name: str, alias: str = CURRENT_ALIAS) -> str:
    return f"models:/{name}@{alias}"


def register_with_alias(model_uri: str, name: str, alias: str, tags: dict[str, str] | None = None) -> ModelVersion:
    """Register `model_uri` as a new version of `name` and move `alias` to it; describe the model once."""
    version = mlflow.register_model(model_uri, name, tags=tags)
    client = MlflowClient()
    write_once(client.set_registered_model_alias, name, alias, version.version)  # two runs registering at once
    if not client.get_registered_model(name).description:
        client.update_registered_model(name, description=registered_model_description(name))
    return version
