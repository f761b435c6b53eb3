"""Every backbone declared once: its sizes, defaults, builder, and tuning study.

The configs (choices, defaults), the encoder builder (models/backbones.py), the studies and
the docs read BACKBONES. This module imports no Keras, so the CLI and the configs stay fast.

To add a backbone: write its builder in models/backbones.py (`def name_features(x, sizes)`,
layers named "enc_*" so pretrained weights match by name), declare it below with its default
sizes and the size parameters it uses, and add studies/<name>.yaml tuning those parameters.
Every step, the CLI choices, MLproject help and the tests (tests/models/test_catalog.py) follow.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import Field

from ecg_mlflow.checks import validated, whole_number

Size = Annotated[int, Field(ge=1), whole_number]


@validated
class BackboneConfig:
    """Size knobs shared by all backbones; what each means for a backbone is in its declaration.

    units: MLP layer width / CNN and ResNet filters / LSTM units.
    depth: MLP dense layers / CNN conv blocks / ResNet residual blocks / LSTM layers.
    dense_units: the hidden Dense layer(s) after the feature extractor.
    """

    units: Size
    depth: Size
    dense_units: Size
    dropout: Annotated[float, Field(ge=0.0, le=0.9)]
    kernel_size: Size


@dataclass(frozen=True)
class Backbone:
    """One encoder family: (input_length, 1) beats -> a flat feature vector."""

    name: str
    description: str
    defaults: BackboneConfig
    builder: str  # "module:function(x, BackboneConfig) -> features", imported when a model is built
    sizes: tuple[str, ...]  # the BackboneConfig fields this backbone uses (the others are ignored)

    @property
    def study(self) -> str:
        """Its tuning study, relative to the project root."""
        return f"studies/{self.name}.yaml"

    def load_builder(self) -> Callable[..., Any]:
        module, _, function = self.builder.partition(":")
        return getattr(importlib.import_module(module), function)


BACKBONES: dict[str, Backbone] = {}


def register_backbone(backbone: Backbone) -> Backbone:
    """Add a backbone to the table every other place reads; a name may be declared once."""
    if backbone.name in BACKBONES:
        raise ValueError(f"backbone {backbone.name!r} is declared twice")
    unknown = set(backbone.sizes) - set(BackboneConfig.__dataclass_fields__)
    if unknown:
        raise ValueError(f"backbone {backbone.name!r} declares unknown sizes {sorted(unknown)}")
    BACKBONES[backbone.name] = backbone
    return backbone


register_backbone(
    Backbone(
        "mlp",
        "The paper's MLP: 7 Dense layers with dropout and ReLU (the last is the task head).",
        BackboneConfig(units=256, depth=7, dense_units=64, dropout=0.2, kernel_size=1),
        "ecg_mlflow.models.backbones:mlp_features",
        sizes=("units", "depth", "dense_units", "dropout"),
    )
)
register_backbone(
    Backbone(
        "cnn",
        "The paper's CNN: 3 x (Conv1D + LeakyReLU + MaxPool1D), Flatten, Dense with LeakyReLU. 16 filters: "
        "32 costs 4x the compute and misses the 15-minute pretraining budget on 2 cores.",
        BackboneConfig(units=16, depth=3, dense_units=64, dropout=0.1, kernel_size=5),
        "ecg_mlflow.models.backbones:cnn_features",
        sizes=("units", "depth", "dense_units", "dropout", "kernel_size"),
    )
)
register_backbone(
    Backbone(
        "cnn_bn",
        "The paper's CNN with batch normalisation after each Conv1D: the normalisation statistics a recording can "
        "re-estimate without labels (adapt=adabn, tent: models/test_time.py).",
        BACKBONES["cnn"].defaults,
        "ecg_mlflow.models.backbones:cnn_bn_features",
        sizes=("units", "depth", "dense_units", "dropout", "kernel_size"),
    )
)
register_backbone(
    Backbone(
        "lstm",
        "The paper's LSTM(64), its first layer reading the beat backwards, then a Dense hidden layer with ReLU.",
        BackboneConfig(units=64, depth=1, dense_units=64, dropout=0.1, kernel_size=1),
        "ecg_mlflow.models.backbones:lstm_features",
        sizes=("units", "depth", "dense_units", "dropout"),
    )
)
register_backbone(
    Backbone(
        "resnet",
        "Kachuee et al. 2018: 5 residual blocks of two Conv1D(32, 5) with MaxPool1D(5, 2), Dense(32).",
        BackboneConfig(units=32, depth=5, dense_units=32, dropout=0.0, kernel_size=5),
        "ecg_mlflow.models.backbones:resnet_features",
        sizes=("units", "depth", "dense_units", "dropout", "kernel_size"),
    )
)


# How a classifier joins the context numbers to the beat's features (models/classifier.py build_classifier).
# Chosen on patient-wise CV (docs/results.md), not on a test split.
CONTEXT_JOINS: dict[str, str] = {
    "wide_deep": "the numbers and the beat's features through one Dense layer, and the numbers also straight "
    "to the head (a wide, linear path)",
    "deep": "the numbers and the beat's features through one Dense layer only",
}
