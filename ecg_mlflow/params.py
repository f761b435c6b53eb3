"""The flat view of the configs: the parameter names MLproject, the CLI, MLflow params and study files use.

Field names are unique across a config and its nested configs (data, transforms, backbone
sizes), so a config flattens to {name: value} without prefixes and builds back from it.
Values may be strings (MLproject, the CLI): the configs' pydantic annotations coerce them.
"""

from __future__ import annotations

from dataclasses import MISSING, Field, asdict, fields
from typing import Any

from ecg_mlflow.config import UNSET, DataConfig, TransformConfig, backbone_config, is_unset
from ecg_mlflow.data.adaptation import ADAPTATIONS
from ecg_mlflow.data.databases import DATABASES, training_datasets
from ecg_mlflow.data.inputs import INPUT_KINDS
from ecg_mlflow.data.sources import SOURCES
from ecg_mlflow.errors import ConfigError
from ecg_mlflow.models.catalog import BACKBONES, BackboneConfig

_NESTED: dict[str, type] = {"transforms": TransformConfig, "data": DataConfig}
BACKBONE_SIZES: tuple[str, ...] = tuple(f.name for f in fields(BackboneConfig))


def _is_backbone(f: Field) -> bool:
    """The `model` field of a training config: backbone sizes, flattened to units, depth, ... ."""
    return f.name == "model" and "BackboneConfig" in str(f.type)


def flatten_config(config: Any) -> dict[str, Any]:
    """Nested config -> flat {name: value}, as logged to MLflow params (tuples as "a,b,c")."""
    flat: dict[str, Any] = {}
    for key, value in asdict(config).items():
        if isinstance(value, dict):
            flat.update(value)
        elif key == "model" and value is None:
            flat.update(dict.fromkeys(BACKBONE_SIZES, UNSET))
        else:
            flat[key] = value
    return {
        k: ",".join(str(v) for v in value) if isinstance(value, tuple | list) else value for k, value in flat.items()
    }


def parameter_names(config_cls: type) -> set[str]:
    """Every flat parameter name a step config accepts (the MLproject/CLI/study names)."""
    return set(parameter_defaults(config_cls))


def config_from_params(config_cls: type, params: dict[str, Any]) -> Any:
    """Flat {name: value} (MLproject, CLI, an Optuna trial) -> a validated step config.

    Unknown names raise ConfigError naming them; backbone sizes left at UNSET/None take the
    backbone's default (or, in a transfer, the pretrained encoder's).
    """
    unknown = set(params) - parameter_names(config_cls)
    if unknown:
        raise ConfigError(f"unknown parameter(s) for {config_cls.__name__}: {', '.join(sorted(unknown))}")
    top: dict[str, Any] = {}
    for f in fields(config_cls):
        if f.name in _NESTED:
            nested = _NESTED[f.name]
            top[f.name] = nested(**{g.name: params[g.name] for g in fields(nested) if g.name in params})
        elif _is_backbone(f):
            sizes = {k: params[k] for k in BACKBONE_SIZES if k in params and not is_unset(params[k])}
            if sizes:  # else the step's own default (backbone defaults, or inherited from upstream)
                top["model"] = backbone_config(
                    str(params.get("backbone", field_default(config_cls, "backbone"))), **sizes
                )
        elif f.name in params:
            top[f.name] = params[f.name]
    return config_cls(**top)


def field_default(config_cls: type, name: str) -> Any:
    """A config field's default value."""
    f = next(f for f in fields(config_cls) if f.name == name)
    return f.default if f.default_factory is MISSING else f.default_factory()


def parameter_defaults(config_cls: type) -> dict[str, tuple[str, Any]]:
    """{flat name: (kind, default)} with kind in int/float/str/bool; what the CLI and MLproject expose.

    Backbone size parameters default to UNSET (-1): the backbone's own default, or the
    pretrained encoder's sizes in a transfer step. Tuples are exposed as "a,b,c" strings.
    """
    out: dict[str, tuple[str, Any]] = {}
    for f in fields(config_cls):
        if f.name in _NESTED:
            out.update(parameter_defaults(_NESTED[f.name]))
        elif _is_backbone(f):
            sizes = BackboneConfig.__pydantic_fields__  # type: ignore[attr-defined]
            out.update({name: (sizes[name].annotation.__name__, UNSET) for name in BACKBONE_SIZES})
        else:
            out[f.name] = _kind_and_default(field_default(config_cls, f.name))
    return out


def _kind_and_default(default: Any) -> tuple[str, Any]:
    """MLproject's parameter type from the default's (bool before int: a bool is an int)."""
    if isinstance(default, tuple):
        return "str", ",".join(str(v) for v in default)
    return next((name for kind, name in _KINDS if isinstance(default, kind)), "str"), default


_KINDS = ((bool, "bool"), (int, "int"), (float, "float"))


PARAMETER_HELP: dict[str, str] = {
    "dataset": " or ".join(
        f"{name} ({db.title}: {', '.join(db.class_names)})" for name, db in training_datasets().items()
    ),
    "source": " or ".join(f"{name} ({source.help})" for name, source in SOURCES.items()),
    "split": "intra: stratified random beat split (the paper); inter: patient-wise, de Chazal DS1/DS2 (MIT only)",
    "data_dir": "folder with mitdb/, ptbdb/ or kaggle/ (default: $ECG_DATA_DIR, then ./data)",
    "cache_dir": "built-dataset cache (default: $ECG_CACHE_DIR, then ~/.cache/ecg-mlflow)",
    "test_fraction": "share of beats held out as the test split (intra split)",
    "val_fraction": "share of the training part held out for validation (inter: whole records) / model selection",
    "split_seed": "seed of the train/val/test split",
    "max_beats": "cap on training beats for quick runs (0 = all)",
    "backbone": " | ".join(BACKBONES),
    "epochs": "training epochs",
    "batch_size": "mini-batch size",
    "learning_rate": "Adam learning rate",
    "seed": "seed of weights, transforms and shuffling: the same seed repeats the run",
    "rep_val_fraction": "share of the representation set's beats used for validation (the paper's 4:1)",
    "noise_std": "Gaussian noise standard deviation (beats are in [0, 1])",
    "shuffle_segments": "number of segments the shuffle transform cuts a beat into",
    "stretch_factor": "time stretch factor",
    "squeeze_factor": "time squeeze factor",
    "scale_factor": "amplitude scale factor",
    "head_weights": "8 comma-separated loss weights, one per transform head",
    "units": "MLP width / CNN, ResNet filters / LSTM units (-1: backbone default or inherited)",
    "depth": "MLP layers / CNN blocks / ResNet blocks / LSTM layers (-1: default or inherited)",
    "dense_units": "hidden Dense width after the feature extractor (-1: default or inherited)",
    "dropout": "dropout rate (-1: default or inherited)",
    "kernel_size": "Conv1D kernel size (-1: default or inherited)",
    "pretrain_run_id": "pretrain run to transfer from (default: the registry alias)",
    "pretrain_model": "models:/ URI of a pretrained model (default: models:/ecg-ssl-<backbone>@current)",
    "init": "pretrained (transfer) or scratch (the supervised baseline)",
    "freeze": "true: keep the encoder fixed; false: fine-tune it (the paper)",
    "lr_schedule": "constant (the paper), or cosine: anneal the rate to 0 over the epoch budget (short schedules)",
    "label_fraction": "stratified fraction of the training labels to use (label efficiency)",
    "patience": "early-stopping patience on validation macro-F1 (0 = train all epochs)",
    "min_epochs": "early stopping never ends a run before this many epochs (slow starters such as the LSTM)",
    "context": "second input beside each beat: none (the paper), rr (R-R intervals), rr_template (+ patient template)",
    "class_weight": "none, or balanced: loss weights inverse to class frequency (rare S, F beats)",
    "folds": "patient-wise cross-validation folds over the training records (whole records, class mix balanced)",
    "estimator": "features model on the context numbers alone: logistic (regression) or boosting (boosted trees)",
    "FeaturesConfig.folds": "0: fit on the training part, select on its validation part; K >= 2: K-fold "
    "patient-wise CV over the training records (split=inter), then fit on them all",
    "FeaturesConfig.context": "the numbers the model sees: rr (R-R intervals) or rr_template (+ likeness to the "
    "patient's own beats)",
    "unlabelled": "more ECG for self-supervision, labels never read: comma-separated mitdb:DS2, svdb, svdb:800+802 "
    "or folders of WFDB records (transductive when it holds the patients to be classified)",
    "exclude_records": "comma-separated training records left out of pretraining (a cross-validation fold's)",
    "fold_pretraining": "true: pretrain anew in every fold without its held-out records (inductive pretraining "
    "under cross-validation); false: one upstream encoder for all folds",
    "pretrain_epochs": "epochs of each fold's pretraining (fold_pretraining=true)",
    "context_join": "how the context numbers join the beat's features: wide_deep (also straight to the head) or "
    "deep (through one Dense layer only)",
    "adapt": f"label-free adaptation to each recording (data/adaptation.py): {', '.join(ADAPTATIONS)}",
    "candidates": "comma-separated run IDs of finished crossval or features runs sharing their folds (main fills them)",
    "external": "comma-separated databases to evaluate the chosen model on, where DATA_DIR has their records",
    "StudyScope.context": "none, rr, rr_template, or protocol: none on the paper's split (intra), what patient-wise "
    "CV chose on the inter split",
    "StudyScope.class_weight": "none, balanced, or protocol: none on the paper's split, what patient-wise CV chose on "
    "the inter split",
    "input": f"what the network sees of a beat (data/inputs.py): {', '.join(INPUT_KINDS)}",
    "members": "comma-separated member backbones of the ensemble",
    "run_ids": "comma-separated transfer run IDs, one per member (default: registry aliases)",
    "model_uri": "classifier to evaluate: models:/ecg-mit-cnn@current, models:/<name>/<version>, runs:/<id>/model",
    "database": f"database to evaluate on: {', '.join(DATABASES)} (wfdb: the records in --data-dir itself)",
    "records": "comma-separated record names to evaluate on (default: every annotated record)",
    "download": "download the database with wfdb when its folder is missing or empty",
    "profile": "fast (all beats, about 20 min on 2 cores), paper (5/20/20 epochs, batch 64), quick (a demo)",
    "backbones": "comma-separated backbones to pretrain, transfer and ensemble",
    "LabelEfficiencyConfig.backbone": f"{' | '.join(BACKBONES)}, several comma-separated, or all",
    "StudyScope.epochs": "epochs of every step: pretraining, supervised and ensemble (-1: the profile's)",
    "fractions": "comma-separated shares of the training labels (stratified: every class keeps a beat)",
    "inits": "comma-separated initialisations to compare: pretrained, scratch",
    "seeds": "comma-separated seeds: each draws its own label subset and initialisation",
    "record": "WFDB record to classify: its path without extension (any rate and leads)",
    "model": "classifier: models:/ecg-mit-cnn@current, models:/<name>/<version>, runs:/<id>/model",
    "out": "folder for the annotations, beats CSV and ECG strip (default: ./<record>-classified)",
    "annotator": "beat annotation file to take R peaks from when the record has one (else they are detected)",
    "strip_seconds": "seconds of ECG drawn with the labels in the PNG strip",
    "log_run": "also log the outputs as an MLflow run (experiment ecg-classify); always under `mlflow run`",
}


def parameter_help(config_cls: type, name: str) -> str:
    """The help text of a config's parameter: `Class.name` where a config (or a base) words it its own way."""
    for cls in config_cls.__mro__:
        if f"{cls.__name__}.{name}" in PARAMETER_HELP:
            return PARAMETER_HELP[f"{cls.__name__}.{name}"]
    return PARAMETER_HELP.get(name, "")
