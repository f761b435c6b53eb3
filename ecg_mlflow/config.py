"""Typed configuration: the one source of truth for every default.

The MLproject file, the typer CLI and the Optuna study files all take their
defaults and parameter names from these dataclasses (a test checks that
MLproject agrees), so a default changed here changes everywhere.
"""

from __future__ import annotations

import os
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, ClassVar

from ecg_mlflow.checks import check_choice as _check_choice
from ecg_mlflow.checks import check_range as _check_range
from ecg_mlflow.data.context import CONTEXT_KINDS
from ecg_mlflow.data.databases import DATABASES, training_datasets
from ecg_mlflow.errors import ConfigError
from ecg_mlflow.models.catalog import BACKBONES as BACKBONE_CATALOG
from ecg_mlflow.models.catalog import BackboneConfig
from ecg_mlflow.transforms import TRANSFORM_NAMES

DATASETS: tuple[str, ...] = tuple(training_datasets())
SPLITS: tuple[str, ...] = ("intra", "inter")
SOURCES: tuple[str, ...] = ("physionet", "kaggle")
CLASS_NAMES: dict[str, tuple[str, ...]] = {name: db.class_names for name, db in training_datasets().items()}
# Self-supervised pretraining reads this dataset's training split (the paper: MIT-BIH beats).
PRETRAIN_DATASET = "mit"
# Context beside each beat (data/context.py): none (the paper), rr (R-R features), rr_template (+ likeness
# to the patient's own beats).
CONTEXTS: tuple[str, ...] = tuple(CONTEXT_KINDS)
CLASS_WEIGHTS: tuple[str, ...] = ("none", "balanced")
SOURCES_WITH_TIMING: tuple[str, ...] = ("physionet",)  # the Kaggle CSVs are isolated beats: no R-R, no record
BEAT_LENGTH = 187
SAMPLING_RATE = 125

ENV_DATA_DIR = "ECG_DATA_DIR"
ENV_CACHE_DIR = "ECG_CACHE_DIR"


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """--data-dir wins, then $ECG_DATA_DIR, then ./data."""
    if data_dir:
        return Path(data_dir).expanduser()
    env = os.environ.get(ENV_DATA_DIR)
    return Path(env).expanduser() if env else Path("data")


def resolve_cache_dir(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The built-dataset cache lives apart from the raw data, which may be read-only."""
    if cache_dir:
        return Path(cache_dir).expanduser()
    env = os.environ.get(ENV_CACHE_DIR)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "ecg-mlflow"


@dataclass(frozen=True)
class DataConfig:
    """Which beats a step trains and tests on."""

    dataset: str = "mit"
    source: str = "physionet"
    split: str = "intra"
    data_dir: str = ""
    cache_dir: str = ""
    test_fraction: float = 0.2
    val_fraction: float = 0.1
    split_seed: int = 42
    max_beats: int = 0

    def __post_init__(self) -> None:
        _check_choice("dataset", self.dataset, DATASETS)
        _check_choice("source", self.source, SOURCES)
        _check_choice("split", self.split, SPLITS)
        if self.split == "inter" and training_datasets()[self.dataset].inter_split is None:
            raise ConfigError(
                f"split='inter' is not defined for {self.dataset} (no patient-wise record sets are declared); "
                "use split='intra'"
            )
        _check_range("test_fraction", self.test_fraction, 0.0, 0.9, low_open=True)
        _check_range("val_fraction", self.val_fraction, 0.0, 0.9, low_open=True)
        if self.max_beats < 0:
            raise ConfigError(f"max_beats={self.max_beats} must be >= 0 (0 = all beats)")

    @property
    def class_names(self) -> tuple[str, ...]:
        return CLASS_NAMES[self.dataset]


@dataclass(frozen=True)
class TransformConfig:
    """Magnitudes of the 8 self-supervised transforms; the paper's values are the defaults.

    noise_std is relative to the beat's [0, 1] range; 0.05 keeps the QRS visible while
    being clearly detectable, and 4 shuffle segments cut a 187-sample beat roughly
    at P, QRS, ST and T.
    """

    noise_std: float = 0.05
    shuffle_segments: int = 4
    stretch_factor: float = 2.0
    squeeze_factor: float = 0.5
    scale_factor: float = 0.1

    def __post_init__(self) -> None:
        _check_range("noise_std", self.noise_std, 0.0, 1.0, low_open=True)
        if not 2 <= self.shuffle_segments <= 32:
            raise ConfigError(f"shuffle_segments={self.shuffle_segments} must lie in [2, 32]")
        _check_range("stretch_factor", self.stretch_factor, 1.0, 8.0, low_open=True)
        _check_range("squeeze_factor", self.squeeze_factor, 0.05, 1.0)
        if self.squeeze_factor >= 1.0:
            raise ConfigError(f"squeeze_factor={self.squeeze_factor} must be < 1")
        _check_range("scale_factor", self.scale_factor, 0.0, 1.0, low_open=True)
        if self.scale_factor >= 1.0:
            raise ConfigError(f"scale_factor={self.scale_factor} must be < 1")


# Backbones are declared in models/catalog.py; the configs read their names and default sizes.
# (Checks read the catalog when they run, so a backbone registered later is a valid choice too.)
BACKBONES: tuple[str, ...] = tuple(BACKBONE_CATALOG)
BACKBONE_DEFAULTS: dict[str, BackboneConfig] = {name: b.defaults for name, b in BACKBONE_CATALOG.items()}


def _check_backbone(name: str, value: str) -> None:
    _check_choice(name, value, tuple(BACKBONE_CATALOG))


# "use the backbone's default" in MLproject/CLI numeric parameters.
UNSET = -1


def backbone_config(backbone: str, **overrides: Any) -> BackboneConfig:
    """The backbone's defaults with overrides; an override of UNSET (or None) keeps the default."""
    _check_backbone("backbone", backbone)
    known = {f.name for f in fields(BackboneConfig)}
    unknown = set(overrides) - known
    if unknown:
        raise ConfigError(f"unknown backbone parameter(s): {', '.join(sorted(unknown))}")
    changes = {k: v for k, v in overrides.items() if v is not None and v != UNSET}
    return replace(BACKBONE_CATALOG[backbone].defaults, **changes)


DEFAULT_HEAD_WEIGHTS: tuple[float, ...] = (1.0,) * len(TRANSFORM_NAMES)


@dataclass(frozen=True)
class PretrainConfig:
    """The self-supervised step: recognise which of 8 transforms was applied."""

    backbone: str = "cnn"
    epochs: int = 5
    batch_size: int = 64
    learning_rate: float = 1e-3
    seed: int = 0
    rep_val_fraction: float = 0.2  # the paper's 4:1 split of the representation set
    transforms: TransformConfig = field(default_factory=TransformConfig)
    head_weights: tuple[float, ...] = DEFAULT_HEAD_WEIGHTS
    model: BackboneConfig | None = None
    data: DataConfig = field(default_factory=DataConfig)

    def __post_init__(self) -> None:
        _check_backbone("backbone", self.backbone)
        _check_training(self.epochs, self.batch_size, self.learning_rate)
        if len(self.head_weights) != len(TRANSFORM_NAMES) or min(self.head_weights) < 0:
            raise ConfigError(
                f"head_weights needs {len(TRANSFORM_NAMES)} non-negative numbers, got {self.head_weights}"
            )
        if self.data.dataset != PRETRAIN_DATASET:
            raise ConfigError(f"pretraining uses MIT-BIH beats (dataset={PRETRAIN_DATASET!r}), as in the paper")
        if self.model is None:
            object.__setattr__(self, "model", BACKBONE_CATALOG[self.backbone].defaults)


@dataclass(frozen=True)
class TransferConfig:
    """A supervised classifier, from pretrained weights or from scratch."""

    backbone: str = "cnn"
    pretrain_run_id: str = ""
    pretrain_model: str = ""
    init: str = "pretrained"
    freeze: bool = False
    epochs: int = 20
    batch_size: int = 64
    learning_rate: float = 1e-3
    label_fraction: float = 1.0
    patience: int = 5
    min_epochs: int = 8
    seed: int = 0
    context: str = "none"
    class_weight: str = "none"
    model: BackboneConfig | None = None
    data: DataConfig = field(default_factory=DataConfig)

    def __post_init__(self) -> None:
        _check_backbone("backbone", self.backbone)
        _check_choice("init", self.init, ("pretrained", "scratch"))
        _check_context(self.context, self.data)
        _check_choice("class_weight", self.class_weight, CLASS_WEIGHTS)
        _check_training(self.epochs, self.batch_size, self.learning_rate)
        _check_range("label_fraction", self.label_fraction, 0.0, 1.0, low_open=True)
        if self.pretrain_run_id and self.pretrain_model:
            raise ConfigError("give pretrain_run_id or pretrain_model, not both")
        if self.init == "scratch" and (self.pretrain_run_id or self.pretrain_model):
            raise ConfigError("init='scratch' takes no pretrain_run_id/pretrain_model; use init='pretrained'")
        _check_stopping(self.patience, self.min_epochs)
        # model=None: inherit the pretrained encoder's sizes (init='pretrained') or
        # take the backbone's defaults (init='scratch'); resolved by the step.


DEFAULT_ENSEMBLE_MEMBERS: tuple[str, ...] = ("mlp", "cnn", "lstm")


@dataclass(frozen=True)
class EnsembleConfig:
    """Average the members' softmax/sigmoid outputs, then train the whole again."""

    members: tuple[str, ...] = DEFAULT_ENSEMBLE_MEMBERS
    run_ids: tuple[str, ...] = ()
    epochs: int = 20
    batch_size: int = 64
    learning_rate: float = 1e-4
    patience: int = 5
    min_epochs: int = 8
    seed: int = 0
    context: str = "none"
    class_weight: str = "none"
    data: DataConfig = field(default_factory=DataConfig)

    def __post_init__(self) -> None:
        _check_context(self.context, self.data)
        _check_choice("class_weight", self.class_weight, CLASS_WEIGHTS)
        if not self.members:
            raise ConfigError("members needs at least one backbone")
        for member in self.members:
            _check_backbone("members", member)
        if self.run_ids and len(self.run_ids) != len(self.members):
            raise ConfigError(
                f"run_ids has {len(self.run_ids)} entries but members has {len(self.members)}; "
                "give one run ID per member"
            )
        _check_training(self.epochs, self.batch_size, self.learning_rate)
        _check_stopping(self.patience, self.min_epochs)


def _check_stopping(patience: int, min_epochs: int) -> None:
    if patience < 0:
        raise ConfigError(f"patience={patience} must be >= 0 (0 = no early stopping)")
    if min_epochs < 0:
        raise ConfigError(f"min_epochs={min_epochs} must be >= 0")


def _check_context(context: str, data: DataConfig) -> None:
    _check_choice("context", context, CONTEXTS)
    if context != "none" and data.source not in SOURCES_WITH_TIMING:
        raise ConfigError(
            f"context={context!r} needs beat timing, which source={data.source!r} does not have (isolated beats "
            f"with no R peaks or records); use source={SOURCES_WITH_TIMING[0]!r}, or context='none'"
        )


def _check_training(epochs: int, batch_size: int, learning_rate: float) -> None:
    if epochs < 1:
        raise ConfigError(f"epochs={epochs} must be >= 1")
    if batch_size < 1:
        raise ConfigError(f"batch_size={batch_size} must be >= 1")
    _check_range("learning_rate", learning_rate, 0.0, 1.0, low_open=True)


def flatten_config(config: Any) -> dict[str, Any]:
    """Nested dataclass -> flat {name: value}, as logged to MLflow params.

    Field names are unique across the nested configs, so no prefixes are needed
    and the flat names are exactly the MLproject/CLI parameter names.
    """
    flat = _flatten(asdict(config))
    if "model" in flat and flat["model"] is None:
        flat.pop("model")
        flat.update({g.name: UNSET for g in fields(BackboneConfig)})
    return flat


def _flatten(values: dict[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(_flatten(value))
        elif isinstance(value, tuple | list):
            flat[key] = ",".join(str(v) for v in value)
        else:
            flat[key] = value
    return flat


_NESTED = {"transforms": TransformConfig, "data": DataConfig}


def _is_backbone(f: Any) -> bool:
    """The `model` field of a training config: backbone sizes, flattened to units, depth, ... ."""
    return f.name == "model" and "BackboneConfig" in str(f.type)


def parameter_names(config_cls: type) -> set[str]:
    """Every flat parameter name a step config accepts (the MLproject/CLI/study names)."""
    names: set[str] = set()
    for f in fields(config_cls):
        if f.name in _NESTED:
            names |= {g.name for g in fields(_NESTED[f.name])}
        elif _is_backbone(f):
            names |= {g.name for g in fields(BackboneConfig)}
        else:
            names.add(f.name)
    return names


def config_from_params(config_cls: type, params: dict[str, Any]) -> Any:
    """Flat {name: value} (MLproject, CLI, an Optuna trial) -> a validated step config.

    Unknown names raise ConfigError naming them; backbone size parameters left at
    UNSET/None take the backbone's default; tuple fields accept "a,b,c" strings.
    """
    unknown = set(params) - parameter_names(config_cls)
    if unknown:
        raise ConfigError(f"unknown parameter(s) for {config_cls.__name__}: {', '.join(sorted(unknown))}")
    top: dict[str, Any] = {}
    for f in fields(config_cls):
        if f.name in _NESTED:
            sub = {g.name: params[g.name] for g in fields(_NESTED[f.name]) if g.name in params}
            top[f.name] = _NESTED[f.name](**{k: _coerce(_NESTED[f.name], k, v) for k, v in sub.items()})
        elif _is_backbone(f):
            sizes = {g.name: params.get(g.name) for g in fields(BackboneConfig)}
            if all(v is None or _is_unset(v) for v in sizes.values()):
                continue  # the step's own default (backbone defaults, or inherited from upstream)
            backbone = params.get("backbone", _default(config_cls, "backbone"))
            top["model"] = backbone_config(
                str(backbone), **{k: _coerce(BackboneConfig, k, v) for k, v in sizes.items() if v is not None}
            )
        elif f.name in params:
            top[f.name] = _coerce(config_cls, f.name, params[f.name])
    return config_cls(**top)


def _is_unset(value: Any) -> bool:
    try:
        return float(value) == UNSET
    except (TypeError, ValueError):
        return False


def _default(config_cls: type, name: str) -> Any:
    for f in fields(config_cls):
        if f.name == name:
            return f.default
    raise KeyError(name)


def _as_int(value: Any) -> int:
    as_float = float(value)
    if as_float != int(as_float):
        raise ValueError(value)
    return int(as_float)


def _coerce(config_cls: type, name: str, value: Any) -> Any:
    """Strings from MLproject/CLI into the field's declared type."""
    hints = {f.name: f.type for f in fields(config_cls)}
    kind = str(hints[name])
    try:
        if kind.startswith("tuple"):
            items = value.split(",") if isinstance(value, str) else list(value)
            items = [
                i.strip() if isinstance(i, str) else i for i in items if not (isinstance(i, str) and not i.strip())
            ]
            if "float" in kind:
                return tuple(float(i) for i in items)
            if "int" in kind:
                return tuple(_as_int(i) for i in items)
            return tuple(str(i) for i in items)
        if kind == "bool":
            if isinstance(value, str):
                lowered = value.strip().lower()
                if lowered not in {"true", "false", "1", "0", "yes", "no"}:
                    raise ValueError(value)
                return lowered in {"true", "1", "yes"}
            return bool(value)
        if kind == "int":
            return _as_int(value)
        if kind == "float":
            return float(value)
        return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}={value!r} is not a valid {kind}") from None


PARAMETER_HELP: dict[str, str] = {
    "dataset": " or ".join(
        f"{name} ({db.title}: {', '.join(db.class_names)})" for name, db in training_datasets().items()
    ),
    "source": "physionet (build beats from WFDB records) or kaggle (import the Kaggle CSVs)",
    "split": "intra: stratified random beat split (the paper); inter: patient-wise, de Chazal DS1/DS2 (MIT only)",
    "data_dir": "folder with mitdb/, ptbdb/ or kaggle/ (default: $ECG_DATA_DIR, then ./data)",
    "cache_dir": "built-dataset cache (default: $ECG_CACHE_DIR, then ~/.cache/ecg-mlflow)",
    "test_fraction": "share of beats held out as the test split (intra split)",
    "val_fraction": "share of the training part held out for validation (inter: whole records) / model selection",
    "split_seed": "seed of the train/val/test split",
    "max_beats": "cap on training beats for quick runs (0 = all)",
    "backbone": "mlp | cnn | lstm | resnet",
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
    "label_fraction": "stratified fraction of the training labels to use (label efficiency)",
    "patience": "early-stopping patience on validation macro-F1 (0 = train all epochs)",
    "min_epochs": "early stopping never ends a run before this many epochs (slow starters such as the LSTM)",
    "context": "second input beside each beat: none (the paper), rr (R-R intervals), rr_template (+ patient template)",
    "class_weight": "none, or balanced: loss weights inverse to class frequency (rare S, F beats)",
    "members": "comma-separated member backbones of the ensemble",
    "run_ids": "comma-separated transfer run IDs, one per member (default: registry aliases)",
}


def parameter_defaults(config_cls: type) -> dict[str, tuple[str, Any]]:
    """{flat name: (kind, default)} with kind in int/float/str/bool; what the CLI and MLproject expose.

    Backbone size parameters default to UNSET (-1): the backbone's own default, or
    the pretrained encoder's sizes in a transfer step.
    """
    out: dict[str, tuple[str, Any]] = {}
    for f in fields(config_cls):
        if f.name in _NESTED:
            nested = _NESTED[f.name]()
            for g in fields(nested):
                out[g.name] = _kind_and_default(str(g.type), getattr(nested, g.name))
        elif _is_backbone(f):
            for g in fields(BackboneConfig):
                out[g.name] = (str(g.type), UNSET)
        else:
            default = f.default if f.default_factory is MISSING else f.default_factory()  # type: ignore[misc]
            out[f.name] = _kind_and_default(str(f.type), default)
    return out


def _kind_and_default(kind: str, default: Any) -> tuple[str, Any]:
    if kind.startswith("tuple"):
        return "str", ",".join(str(v) for v in default)
    return kind, default


@dataclass(frozen=True)
class Profile:
    """How much of the study the `main` chain (and a label-efficiency study) runs."""

    pretrain_epochs: int
    transfer_epochs: int
    ensemble_epochs: int
    batch_size: int
    max_beats: int  # 0: all beats
    patience: int
    min_epochs: int = 8


PROFILES: dict[str, Profile] = {
    # A demo on 2 CPU cores in minutes: a few thousand beats, a few epochs (what the tests run).
    "quick": Profile(
        pretrain_epochs=1, transfer_epochs=3, ensemble_epochs=2, batch_size=64, max_beats=3000, patience=0, min_epochs=0
    ),
    # All beats, meant for about 20 minutes on 2 cores (`make study`): 1 pretraining epoch, few
    # supervised epochs at batch 128. Measured: ~25-30 min, up to 0.08 macro-F1 below `paper`
    # (docs/results.md); per-backbone epochs would fix both.
    "fast": Profile(
        pretrain_epochs=1, transfer_epochs=6, ensemble_epochs=3, batch_size=128, max_beats=0, patience=3, min_epochs=4
    ),
    # The paper's protocol: 5 pretrain epochs, 20 transfer epochs, 20 ensemble epochs, batch 64, all beats.
    "paper": Profile(pretrain_epochs=5, transfer_epochs=20, ensemble_epochs=20, batch_size=64, max_beats=0, patience=5),
}


@dataclass(frozen=True)
class StudyScope:
    """What a multi-run command covers: dataset, profile, backbones, split, context, data.

    The `main` chain and a label-efficiency study share these fields and their checks.
    """

    dataset: str = "mit"
    profile: str = "fast"
    backbones: tuple[str, ...] = DEFAULT_ENSEMBLE_MEMBERS
    split: str = "intra"
    context: str = "none"
    class_weight: str = "none"
    data_dir: str = ""
    cache_dir: str = ""
    max_beats: int = UNSET

    def __post_init__(self) -> None:
        _check_choice("dataset", self.dataset, DATASETS)
        _check_choice("profile", self.profile, tuple(PROFILES))
        _check_choice("split", self.split, SPLITS)
        _check_choice("context", self.context, CONTEXTS)
        _check_choice("class_weight", self.class_weight, CLASS_WEIGHTS)
        if self.split == "inter" and training_datasets()[self.dataset].inter_split is None:
            raise ConfigError(f"split='inter' is not defined for {self.dataset}; use split='intra'")
        for backbone in self.backbones:
            _check_backbone("backbones", backbone)

    @property
    def settings(self) -> Profile:
        """The profile, with max_beats overridden when the config sets it."""
        profile = PROFILES[self.profile]
        return profile if self.max_beats == UNSET else replace(profile, max_beats=self.max_beats)


@dataclass(frozen=True)
class MainConfig(StudyScope):
    """The whole study for one dataset: pretrain -> transfer (+ scratch baselines) -> ensemble."""

    seed: int = 0


INITS: tuple[str, ...] = ("pretrained", "scratch")


@dataclass(frozen=True)
class LabelEfficiencyConfig(StudyScope):
    """Test macro-F1 against the share of training labels, pretrained vs scratch: does pretraining pay?"""

    profile: str = "paper"
    backbones: tuple[str, ...] = ("cnn",)
    fractions: tuple[float, ...] = (0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)
    inits: tuple[str, ...] = INITS
    seeds: tuple[int, ...] = (0, 1, 2)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.fractions or not self.inits or not self.seeds:
            raise ConfigError("fractions, inits and seeds each need at least one value")
        for fraction in self.fractions:
            _check_range("fractions", fraction, 0.0, 1.0, low_open=True)
        for init in self.inits:
            _check_choice("inits", init, INITS)


@dataclass(frozen=True)
class EvaluateConfig:
    """A trained classifier on every beat of a database: cross-database (or whole-database) evaluation."""

    positional: ClassVar[tuple[str, ...]] = ("model_uri",)

    model_uri: str = ""
    database: str = "mitdb"
    data_dir: str = ""
    cache_dir: str = ""
    records: tuple[str, ...] = ()
    download: bool = True

    def __post_init__(self) -> None:
        if not self.model_uri:
            raise ConfigError("model_uri is required: a models:/name@alias, models:/name/version or runs:/ URI")
        _check_choice("database", self.database, tuple(DATABASES))


@dataclass(frozen=True)
class ClassifyConfig:
    """A trained classifier run over one whole WFDB record: every beat found, cut and labelled."""

    positional: ClassVar[tuple[str, ...]] = ("record",)

    record: str = ""
    model: str = ""
    out: str = ""
    annotator: str = "atr"
    strip_seconds: float = 20.0
    log_run: bool = False

    def __post_init__(self) -> None:
        if not self.record:
            raise ConfigError("record is required: the path of a WFDB record without extension (e.g. data/mitdb/100)")
        if not self.model:
            raise ConfigError("model is required: a models:/name@alias, models:/name/version or runs:/ URI")
        _check_range("strip_seconds", self.strip_seconds, 0.0, 3600.0, low_open=True)


PARAMETER_HELP.update(
    {
        "model_uri": "classifier to evaluate: models:/ecg-mit-cnn@current, models:/<name>/<version>, runs:/<id>/model",
        "database": f"database to evaluate on: {', '.join(DATABASES)} (wfdb: the records in --data-dir itself)",
        "records": "comma-separated record names to evaluate on (default: every annotated record)",
        "download": "download the database with wfdb when its folder is missing or empty",
        "profile": "fast (all beats, 1/6/3 epochs, batch 128), paper (5/20/20 epochs, batch 64), quick (a demo)",
        "backbones": "comma-separated backbones to pretrain, transfer and ensemble",
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
)
