"""The typed configs: validation names the parameter, flat params round-trip, defaults are shared."""

from __future__ import annotations

import pytest

from ecg_mlflow.config import (
    BACKBONE_DEFAULTS,
    UNSET,
    ConfigError,
    DataConfig,
    EnsembleConfig,
    LabelEfficiencyConfig,
    MainConfig,
    PretrainConfig,
    TransferConfig,
)
from ecg_mlflow.params import (
    PARAMETER_HELP,
    config_from_params,
    flatten_config,
    parameter_defaults,
    parameter_help,
    parameter_names,
)

STEP_CONFIGS = (PretrainConfig, TransferConfig, EnsembleConfig, MainConfig)


@pytest.mark.parametrize("config_cls", STEP_CONFIGS)
def test_every_parameter_has_a_default_and_help(config_cls: type) -> None:
    defaults = parameter_defaults(config_cls)
    assert set(defaults) == parameter_names(config_cls)
    assert set(defaults) <= set(PARAMETER_HELP)


@pytest.mark.parametrize("config_cls", (PretrainConfig, TransferConfig, EnsembleConfig))
def test_defaults_round_trip_through_flat_params(config_cls: type) -> None:
    """What the CLI/MLproject pass by default builds the dataclass's own default config."""
    as_strings = {name: str(default) for name, (_, default) in parameter_defaults(config_cls).items()}
    assert config_from_params(config_cls, as_strings) == config_cls()


def test_flatten_then_rebuild_is_identity() -> None:
    config = TransferConfig(backbone="lstm", freeze=True, label_fraction=0.25, data=DataConfig(dataset="ptb"))
    flat = {k: str(v) for k, v in flatten_config(config).items()}
    assert config_from_params(TransferConfig, flat) == config


def test_backbone_sizes_left_unset_take_the_backbone_defaults() -> None:
    config = config_from_params(PretrainConfig, {"backbone": "resnet", "units": UNSET, "dropout": "0.3"})
    assert config.model.units == BACKBONE_DEFAULTS["resnet"].units
    assert config.model.dropout == pytest.approx(0.3)
    assert config_from_params(TransferConfig, {"backbone": "mlp"}).model is None  # inherited from upstream


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"bogus": 1}, "bogus"),
        ({"backbone": "transformer"}, "backbone"),
        ({"epochs": "0"}, "epochs"),
        ({"epochs": "2.5"}, "epochs"),
        ({"learning_rate": "fast"}, "learning_rate"),
        ({"freeze": "maybe"}, "freeze"),
        ({"label_fraction": "1.5"}, "label_fraction"),
        ({"dataset": "ptb", "split": "inter"}, "split"),
        ({"init": "scratch", "pretrain_run_id": "abc"}, "scratch"),
    ],
)
def test_bad_parameters_are_rejected_with_their_name(params: dict, named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        config_from_params(TransferConfig, params)


def test_pretraining_is_on_mit_only() -> None:
    with pytest.raises(ConfigError, match="MIT"):
        PretrainConfig(data=DataConfig(dataset="ptb"))


def test_ensemble_needs_one_run_id_per_member() -> None:
    with pytest.raises(ConfigError, match="one run ID per member"):
        config_from_params(EnsembleConfig, {"members": "mlp,cnn", "run_ids": "abc"})
    assert config_from_params(EnsembleConfig, {"members": "mlp,cnn", "run_ids": "a,b"}).run_ids == ("a", "b")


def test_chain_profile_sets_epochs_and_beats() -> None:
    quick = MainConfig(profile="quick")
    paper = MainConfig(profile="paper")
    assert (paper.settings.pretrain_epochs, paper.settings.transfer_epochs, paper.settings.ensemble_epochs) == (
        5,
        20,
        20,
    )
    assert paper.settings.batch_size == 64 and paper.settings.max_beats == 0
    assert quick.settings.max_beats > 0
    assert MainConfig(profile="quick", max_beats=123).settings.max_beats == 123
    assert MainConfig().profile == "fast" and MainConfig().settings.max_beats == 0  # make study: all beats


def test_context_without_beat_timing_and_undeclared_inter_splits_are_refused_up_front() -> None:
    from ecg_mlflow.config import ConfigError, DataConfig, MainConfig, TransferConfig

    with pytest.raises(ConfigError, match="context='rr' needs beat timing"):
        TransferConfig(context="rr", data=DataConfig(source="kaggle"))
    with pytest.raises(ConfigError, match="split='inter' is not defined for ptb"):
        MainConfig(dataset="ptb", split="inter")
    assert TransferConfig(context="rr_template", data=DataConfig(split="inter")).context == "rr_template"


@pytest.mark.parametrize("config_cls", (*STEP_CONFIGS, DataConfig))
def test_every_field_has_a_default_so_older_runs_still_rebuild_their_config(config_cls: type) -> None:
    """A run logged before a field existed has no param for it: building its config must still work."""
    from dataclasses import MISSING, fields

    assert all(f.default is not MISSING or f.default_factory is not MISSING for f in fields(config_cls))
    logged = {k: str(v) for k, v in flatten_config(config_cls()).items()}
    older = dict(list(logged.items())[: len(logged) // 2])  # as if the rest were added later
    assert config_from_params(config_cls, older) == config_cls()  # the missing half takes the defaults


def test_messages_name_the_field_and_say_what_is_wrong() -> None:
    with pytest.raises(ConfigError, match=r"^epochs=0: should be greater than or equal to 1$"):
        config_from_params(TransferConfig, {"epochs": "0"})
    with pytest.raises(ConfigError, match=r"^backbone='gru': is not one of mlp, cnn, cnn_bn, lstm, resnet"):
        TransferConfig(backbone="gru")
    with pytest.raises(ConfigError, match=r"^unknown parameter 'colour'$"):
        DataConfig(colour="red")


def test_integers_may_come_as_mlproject_floats_or_exponents() -> None:
    """MLproject declares ints as float, and YAML reads 2e4 as a string: both are whole numbers."""
    config = config_from_params(TransferConfig, {"epochs": "20.0", "max_beats": "1e4", "units": "32.0"})
    assert (config.epochs, config.data.max_beats, config.model.units) == (20, 10000, 32)
    with pytest.raises(ConfigError, match=r"max_beats='2\.5'"):
        config_from_params(TransferConfig, {"max_beats": "2.5"})


def test_a_profile_can_give_one_backbone_its_own_epochs_and_learning_rate() -> None:
    from ecg_mlflow.profiles import PROFILES, BackboneSchedule, Profile
    from ecg_mlflow.steps.children import chain_parameters

    capped = Profile(
        pretrain_epochs=2, transfer_epochs=20, ensemble_epochs=5, batch_size=64, max_beats=0, patience=5,
        per_backbone={"lstm": {"pretrain": 1, "transfer": 8, "learning_rate": "5e-3", "lr_schedule": "cosine"}},
    )  # fmt: skip
    assert capped.per_backbone["lstm"] == BackboneSchedule(1, 8, 5e-3, "cosine")
    assert (capped.epochs("pretrain", "lstm"), capped.epochs("transfer", "lstm")) == (1, 8)
    assert (capped.epochs("pretrain", "cnn"), capped.epochs("transfer", "cnn")) == (2, 20)
    assert capped.optimiser("lstm") == {"learning_rate": 5e-3, "lr_schedule": "cosine"}
    assert capped.optimiser("cnn") == {} == BackboneSchedule(1, 8).optimiser()
    for name, profile in PROFILES.items():
        config = MainConfig(profile=name)
        for backbone in config.backbones:
            params = chain_parameters(config, backbone)
            assert params["pretrain"]["epochs"] == profile.epochs("pretrain", backbone)
            assert params["transfer"]["epochs"] == profile.epochs("transfer", backbone)
            transfer = TransferConfig(**profile.optimiser(backbone))
            assert params["transfer"].get("lr_schedule", "constant") == transfer.lr_schedule
            assert params["transfer"].get("learning_rate", 1e-3) == transfer.learning_rate
    with pytest.raises(ConfigError, match="'gru'"):
        Profile(
            pretrain_epochs=1, transfer_epochs=1, ensemble_epochs=1, batch_size=8, max_beats=0, patience=0,
            per_backbone={"gru": {"pretrain": 1, "transfer": 1}},
        )  # fmt: skip
    with pytest.raises(ConfigError, match="lr_schedule"):
        BackboneSchedule(1, 1, lr_schedule="step")


def test_a_config_can_word_a_shared_parameter_its_own_way() -> None:
    assert parameter_help(LabelEfficiencyConfig, "backbone").endswith("or all")
    assert parameter_help(TransferConfig, "backbone") == PARAMETER_HELP["backbone"]
    assert "every step" in parameter_help(MainConfig, "epochs")  # from the StudyScope base
    assert parameter_help(TransferConfig, "epochs") == PARAMETER_HELP["epochs"]


def test_an_adaptation_to_each_recording_needs_recordings_and_a_network() -> None:
    from ecg_mlflow.config import FeaturesConfig, TransferConfig

    with pytest.raises(ConfigError, match="source='kaggle' holds isolated beats"):
        TransferConfig(backbone="cnn", adapt="self_train", data=DataConfig(source="kaggle"))
    with pytest.raises(ConfigError, match="a features model has none"):
        FeaturesConfig(adapt="tent")
    assert TransferConfig(backbone="cnn_bn", adapt="tent").adapt == "tent"
