"""Typed configuration: the one source of truth for every default.

Each step's parameters are a frozen dataclass validated by pydantic (checks.validated): the
field annotations coerce and constrain, a bad value raises ConfigError naming the field. The
MLproject file, the typer CLI and the Optuna study files take their parameter names and
defaults from these classes through params.py (a test checks that MLproject agrees). New
fields need a default, so runs logged by an older version still load.
"""

from __future__ import annotations

from dataclasses import field, replace
from typing import Annotated, ClassVar

from pydantic import Field

from ecg_mlflow.checks import check_choice, comma_separated, one_of, validated, whole_number
from ecg_mlflow.data.adaptation import ADAPTATIONS
from ecg_mlflow.data.context import CONTEXT_KINDS
from ecg_mlflow.data.databases import DATABASES
from ecg_mlflow.data.spec import (
    Count,
    DataConfig,
    Dataset,
    Fraction,
    Int,
    Split,
    check_adapt,
    check_context,
    check_inter_split,
)
from ecg_mlflow.errors import ConfigError
from ecg_mlflow.models.catalog import BACKBONES as BACKBONE_CATALOG
from ecg_mlflow.models.catalog import CONTEXT_JOINS, BackboneConfig
from ecg_mlflow.models.features import FEATURE_MODELS
from ecg_mlflow.models.schedules import LR_SCHEDULES
from ecg_mlflow.profiles import PATIENTWISE, PROFILES, Profile
from ecg_mlflow.transforms import TRANSFORM_NAMES, TransformConfig

# Self-supervised pretraining reads this dataset's training split (the paper: MIT-BIH beats).
PRETRAIN_DATASET = "mit"
CONTEXTS: tuple[str, ...] = tuple(CONTEXT_KINDS)  # beside each beat: none (the paper), rr, rr_template
CLASS_WEIGHTS: tuple[str, ...] = ("none", "balanced")
INITS: tuple[str, ...] = ("pretrained", "scratch")
# Declared in models/catalog.py; choices are read when checked (a backbone registered later is valid too).
BACKBONES: tuple[str, ...] = tuple(BACKBONE_CATALOG)
BACKBONE_DEFAULTS: dict[str, BackboneConfig] = {name: b.defaults for name, b in BACKBONE_CATALOG.items()}
DEFAULT_ENSEMBLE_MEMBERS: tuple[str, ...] = ("mlp", "cnn", "lstm")
DEFAULT_HEAD_WEIGHTS: tuple[float, ...] = (1.0,) * len(TRANSFORM_NAMES)
UNSET = -1  # "use the backbone's default" in MLproject/CLI numeric parameters

# Field types: the annotation is the check.
Backbone = Annotated[str, one_of(lambda: BACKBONE_CATALOG)]
Backbones = Annotated[tuple[Backbone, ...], Field(min_length=1), comma_separated]
Context = Annotated[str, one_of(lambda: CONTEXTS)]
ClassWeight = Annotated[str, one_of(lambda: CLASS_WEIGHTS)]
Adapt = Annotated[str, one_of(lambda: ADAPTATIONS)]
ContextJoin = Annotated[str, one_of(lambda: CONTEXT_JOINS)]
LrSchedule = Annotated[str, one_of(lambda: LR_SCHEDULES)]
Share = Annotated[float, Field(gt=0.0, le=1.0)]
Epochs = Annotated[int, Field(ge=1), whole_number]
BatchSize = Annotated[int, Field(ge=1), whole_number]
LearningRate = Annotated[float, Field(gt=0.0, le=1.0)]
Patience = Count
Strings = Annotated[tuple[str, ...], comma_separated]


def backbone_config(backbone: str, **overrides: object) -> BackboneConfig:
    """The backbone's defaults with overrides; an override of UNSET (or None) keeps the default."""
    check_choice("backbone", backbone, BACKBONE_CATALOG)
    changes = {k: v for k, v in overrides.items() if v is not None and not is_unset(v)}
    return replace(BACKBONE_CATALOG[backbone].defaults, **changes)


def is_unset(value: object) -> bool:
    """UNSET as MLproject and the CLI pass it (-1, "-1", "-1.0")."""
    try:
        return float(value) == UNSET  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


@validated
class PretrainConfig:
    """The self-supervised step: recognise which of 8 transforms was applied."""

    backbone: Backbone = "cnn"
    epochs: Epochs = 5
    batch_size: BatchSize = 64
    learning_rate: LearningRate = 1e-3
    seed: Int = 0
    rep_val_fraction: Fraction = 0.2  # the paper's 4:1 split of the representation set
    transforms: TransformConfig = field(default_factory=TransformConfig)
    head_weights: Annotated[
        tuple[Annotated[float, Field(ge=0.0)], ...],
        Field(min_length=len(TRANSFORM_NAMES), max_length=len(TRANSFORM_NAMES)),
        comma_separated,
    ] = DEFAULT_HEAD_WEIGHTS
    model: BackboneConfig | None = None  # None: the backbone's defaults
    unlabelled: Strings = ()  # more records, labels never read: mitdb:DS2, svdb, svdb:800+802, a folder
    exclude_records: Strings = ()  # training records left out (a cross-validation's held-out fold)
    data: DataConfig = field(default_factory=DataConfig)

    def __post_init__(self) -> None:
        if self.data.dataset != PRETRAIN_DATASET:
            raise ConfigError(f"pretraining uses MIT-BIH beats (dataset={PRETRAIN_DATASET!r}), as in the paper")
        if self.model is None:
            object.__setattr__(self, "model", BACKBONE_CATALOG[self.backbone].defaults)


@validated
class TransferConfig:
    """A supervised classifier, from pretrained weights or from scratch.

    model=None: inherit the pretrained encoder's sizes (init='pretrained') or take the backbone's
    defaults (init='scratch'); the step resolves it.
    """

    backbone: Backbone = "cnn"
    pretrain_run_id: str = ""
    pretrain_model: str = ""
    init: Annotated[str, one_of(lambda: INITS)] = "pretrained"
    freeze: bool = False
    epochs: Epochs = 20
    batch_size: BatchSize = 64
    learning_rate: LearningRate = 1e-3
    lr_schedule: LrSchedule = "constant"
    label_fraction: Share = 1.0
    patience: Patience = 5  # 0: no early stopping
    min_epochs: Patience = 8
    seed: Int = 0
    context: Context = "none"
    class_weight: ClassWeight = "none"
    adapt: Adapt = "none"
    context_join: ContextJoin = "wide_deep"
    model: BackboneConfig | None = None
    data: DataConfig = field(default_factory=DataConfig)

    def __post_init__(self) -> None:
        check_context(self.context, self.data.source)
        check_adapt(self.adapt, self.context, self.data.source)
        if self.pretrain_run_id and self.pretrain_model:
            raise ConfigError("give pretrain_run_id or pretrain_model, not both")
        if self.init == "scratch" and (self.pretrain_run_id or self.pretrain_model):
            raise ConfigError("init='scratch' takes no pretrain_run_id/pretrain_model; use init='pretrained'")


@validated
class CrossValConfig(TransferConfig):
    """Patient-wise K-fold cross-validation over the training records (split=inter): the score every choice
    of the patient-wise protocol is made on; the K fold models averaged are the final model, tested once."""

    folds: Annotated[int, Field(ge=2, le=22), whole_number] = 5
    # Pretrain anew in every fold, its held-out records left out: inductive pretraining under CV.
    fold_pretraining: bool = False
    pretrain_epochs: Epochs = 5
    unlabelled: Strings = ()  # more records for each fold's pretraining, labels never read

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.data.split != "inter":
            raise ConfigError(f"cross-validation is by patient: split='inter', not {self.data.split!r}")
        if self.fold_pretraining and (self.init != "pretrained" or self.pretrain_run_id or self.pretrain_model):
            raise ConfigError(
                "fold_pretraining=true pretrains in every fold: give init='pretrained' and no pretrain run"
            )
        if self.unlabelled and not self.fold_pretraining:
            raise ConfigError(
                "unlabelled is for each fold's pretraining: set fold_pretraining=true (or pretrain once "
                "with `pretrain --unlabelled` and pass its run)"
            )


@validated
class FeaturesConfig:
    """A scikit-learn model on the context numbers alone (no beat samples): the baseline deep models must beat."""

    estimator: Annotated[str, one_of(lambda: FEATURE_MODELS)] = "logistic"
    context: Annotated[str, one_of(lambda: tuple(k for k in CONTEXTS if k != "none"))] = "rr_template"
    class_weight: ClassWeight = "balanced"
    adapt: Adapt = "none"
    folds: Annotated[int, Field(ge=0, le=22), whole_number] = 0  # 0: select on the split's validation part
    seed: Int = 0
    data: DataConfig = field(default_factory=DataConfig)

    def __post_init__(self) -> None:
        check_context(self.context, self.data.source)
        if ADAPTATIONS[self.adapt].recording:
            raise ConfigError(
                f"adapt={self.adapt!r} changes a network for each recording, and a features model has none: use "
                f"adapt={', '.join(repr(a) for a, declared in ADAPTATIONS.items() if not declared.recording)}"
            )
        if self.folds == 1 or (self.folds and self.data.split != "inter"):
            raise ConfigError(
                f"folds={self.folds}: cross-validation is by patient, K >= 2 folds with split='inter'; or folds=0"
            )


@validated
class PatientwiseConfig:
    """Choose on patient-wise CV alone the model for new patients, test it once, register it, evaluate it outside."""

    candidates: Strings = ()  # run IDs of finished crossval / features runs that share their folds
    dataset: Dataset = "mit"
    external: Annotated[tuple[Annotated[str, one_of(lambda: DATABASES)], ...], comma_separated] = ("svdb",)
    data_dir: str = ""
    cache_dir: str = ""


@validated
class EnsembleConfig:
    """Average the members' softmax/sigmoid outputs, then train the whole again."""

    members: Backbones = DEFAULT_ENSEMBLE_MEMBERS
    run_ids: Strings = ()
    epochs: Epochs = 20
    batch_size: BatchSize = 64
    learning_rate: LearningRate = 1e-4
    patience: Patience = 5
    min_epochs: Patience = 8
    seed: Int = 0
    context: Context = "none"
    class_weight: ClassWeight = "none"
    adapt: Adapt = "none"
    data: DataConfig = field(default_factory=DataConfig)

    def __post_init__(self) -> None:
        check_context(self.context, self.data.source)
        check_adapt(self.adapt, self.context, self.data.source)
        if self.run_ids and len(self.run_ids) != len(self.members):
            raise ConfigError(
                f"run_ids has {len(self.run_ids)} entries but members has {len(self.members)}; "
                "give one run ID per member"
            )


PROTOCOL = "protocol"  # a chain's context / class weight: the split's protocol's own (below)


@validated
class StudyScope:
    """What a multi-run command covers; the `main` chain and a label-efficiency study share it."""

    dataset: Dataset = "mit"
    profile: Annotated[str, one_of(lambda: PROFILES)] = "fast"
    split: Split = "intra"
    context: Annotated[str, one_of(lambda: (*CONTEXTS, PROTOCOL))] = PROTOCOL
    class_weight: Annotated[str, one_of(lambda: (*CLASS_WEIGHTS, PROTOCOL))] = PROTOCOL
    data_dir: str = ""
    cache_dir: str = ""
    max_beats: Annotated[int, Field(ge=UNSET), whole_number] = UNSET  # UNSET: the profile's
    epochs: Annotated[int, Field(ge=UNSET), whole_number] = UNSET  # UNSET: the profile's

    def __post_init__(self) -> None:
        check_inter_split(self.dataset, self.split)
        if self.epochs == 0:
            raise ConfigError("epochs=0: give 1 or more epochs for every step, or -1 for the profile's")

    def chosen(self, name: str) -> str:
        """context or class_weight as given, or for `protocol` the split's own: none on the paper's split,
        what patient-wise cross-validation chose on the inter-patient split (profiles.PATIENTWISE)."""
        value = getattr(self, name)
        if value != PROTOCOL:
            return value
        return getattr(PATIENTWISE, name) if self.split == "inter" else "none"

    @property
    def settings(self) -> Profile:
        """The profile, with max_beats and every step's epochs overridden where the config sets them."""
        profile = PROFILES[self.profile]
        if self.max_beats != UNSET:
            profile = replace(profile, max_beats=self.max_beats)
        return profile if self.epochs == UNSET else profile.with_epochs(self.epochs)


@validated
class MainConfig(StudyScope):
    """The whole study for one dataset: pretrain -> transfer (+ scratch baselines) -> ensemble."""

    backbones: Backbones = DEFAULT_ENSEMBLE_MEMBERS
    seed: Int = 0


ALL_BACKBONES = "all"


@validated
class LabelEfficiencyConfig(StudyScope):
    """Test macro-F1 against the share of training labels, pretrained vs scratch: does pretraining pay?"""

    profile: Annotated[str, one_of(lambda: PROFILES)] = "paper"
    # One backbone, several (comma-separated) or `all` the registered ones.
    backbone: Annotated[
        tuple[Annotated[str, one_of(lambda: (*BACKBONE_CATALOG, ALL_BACKBONES))], ...],
        Field(min_length=1),
        comma_separated,
    ] = ("cnn",)
    fractions: Annotated[tuple[Share, ...], Field(min_length=1), comma_separated] = (
        0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0,
    )  # fmt: skip
    inits: Annotated[tuple[Annotated[str, one_of(lambda: INITS)], ...], Field(min_length=1), comma_separated] = INITS
    seeds: Annotated[tuple[Int, ...], Field(min_length=1), comma_separated] = (0, 1, 2)

    @property
    def backbones(self) -> tuple[str, ...]:
        """The backbones the study covers, `all` read from the registry."""
        return tuple(BACKBONE_CATALOG) if ALL_BACKBONES in self.backbone else self.backbone


@validated
class EvaluateConfig:
    """A trained classifier on every beat of a database: cross-database (or whole-database) evaluation."""

    positional: ClassVar[tuple[str, ...]] = ("model_uri",)

    model_uri: str = ""
    database: Annotated[str, one_of(lambda: DATABASES)] = "mitdb"
    data_dir: str = ""
    cache_dir: str = ""
    records: Strings = ()
    download: bool = True

    def __post_init__(self) -> None:
        if not self.model_uri:
            raise ConfigError("model_uri is required: a models:/name@alias, models:/name/version or runs:/ URI")


@validated
class ClassifyConfig:
    """A trained classifier run over one whole WFDB record: every beat found, cut and labelled."""

    positional: ClassVar[tuple[str, ...]] = ("record",)

    record: str = ""
    model: str = ""
    out: str = ""
    annotator: str = "atr"
    strip_seconds: Annotated[float, Field(gt=0.0, le=3600.0)] = 20.0
    log_run: bool = False

    def __post_init__(self) -> None:
        if not self.record:
            raise ConfigError("record is required: the path of a WFDB record without extension (e.g. data/mitdb/100)")
        if not self.model:
            raise ConfigError("model is required: a models:/name@alias, models:/name/version or runs:/ URI")
