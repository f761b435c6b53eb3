"""Backbones are declared once (models/catalog.py): every other place reads the declaration."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import keras
import pytest
import yaml

from ecg_mlflow.config import PretrainConfig, TransferConfig, backbone_config
from ecg_mlflow.models.backbones import build_encoder
from ecg_mlflow.models.catalog import BACKBONES, Backbone, BackboneConfig, register_backbone
from ecg_mlflow.tuning.spec import parse_study

ROOT = Path(__file__).resolve().parents[2]
SIZES = set(BackboneConfig.__dataclass_fields__)


def tiny_gru_features(x: keras.KerasTensor, c: BackboneConfig) -> keras.KerasTensor:
    """A backbone a user adds: one GRU layer."""
    x = keras.layers.GRU(c.units, name="enc_gru1")(x)
    return keras.layers.Dense(c.dense_units, activation="relu", name="enc_dense1")(x)


@pytest.fixture
def tiny_gru() -> Iterator[Backbone]:
    declared = register_backbone(
        Backbone(
            "tiny_gru",
            "A test backbone.",
            BackboneConfig(units=8, depth=1, dense_units=4, dropout=0.0, kernel_size=1),
            f"{__name__}:tiny_gru_features",
            sizes=("units", "dense_units"),
        )
    )
    yield declared
    del BACKBONES["tiny_gru"]


@pytest.mark.parametrize("name", list(BACKBONES))
def test_every_declared_backbone_builds_from_its_defaults_and_has_its_study(name) -> None:
    backbone = BACKBONES[name]
    encoder = build_encoder(name, backbone.defaults)
    assert encoder.name == f"{name}_encoder" and len(encoder.output.shape) == 2
    assert all(layer.name.startswith(("enc_", "beat")) for layer in encoder.layers)
    study = parse_study(yaml.safe_load((ROOT / backbone.study).read_text()), source=backbone.study)
    assert study.fixed["backbone"] == name
    tuned_sizes = {key.split(".")[-1] for key in study.search_space} & SIZES
    assert tuned_sizes <= set(backbone.sizes), f"{backbone.study} tunes sizes {name} does not use"


def test_a_registered_backbone_is_a_choice_of_every_config_and_builds(tiny_gru) -> None:
    config = PretrainConfig(backbone="tiny_gru")
    assert config.model == tiny_gru.defaults and TransferConfig(backbone="tiny_gru", init="scratch")
    assert backbone_config("tiny_gru", units=16).units == 16
    assert build_encoder("tiny_gru", config.model).output.shape[-1] == 4


def test_a_backbone_is_declared_once_with_known_sizes() -> None:
    with pytest.raises(ValueError, match="declared twice"):
        register_backbone(BACKBONES["cnn"])
    with pytest.raises(ValueError, match="unknown sizes"):
        register_backbone(Backbone("x", "", BACKBONES["cnn"].defaults, "m:f", sizes=("width",)))
