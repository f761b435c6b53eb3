"""Keras models: encoders (backbones), the self-supervised model and the classifiers."""

from ecg_mlflow.models.backbones import as_model_input, build_encoder, transfer_encoder_weights
from ecg_mlflow.models.classifier import (
    build_classifier,
    build_ensemble,
    compile_classifier,
    encoder_of,
    predict_proba,
)
from ecg_mlflow.models.ssl import (
    build_ssl_model,
    compile_ssl_model,
    rename_ssl_history,
    ssl_metric_names,
    ssl_targets,
)

__all__ = [
    "as_model_input",
    "build_classifier",
    "build_encoder",
    "build_ensemble",
    "build_ssl_model",
    "compile_classifier",
    "compile_ssl_model",
    "encoder_of",
    "predict_proba",
    "rename_ssl_history",
    "ssl_metric_names",
    "ssl_targets",
    "transfer_encoder_weights",
]
