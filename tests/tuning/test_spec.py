"""Study files: the shipped studies load; unknown names and bad ranges are rejected naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ecg_mlflow.config import TRANSFORM_NAMES, CrossValConfig, PretrainConfig, TransferConfig
from ecg_mlflow.params import parameter_names
from ecg_mlflow.tuning.spec import StudySpecError, parse_study
from ecg_mlflow.tuning.study_files import load_study_file, parse_set

STUDIES = Path(__file__).resolve().parents[2] / "studies"
BACKBONE_KNOBS = {"learning_rate", "batch_size", "dropout", "units", "freeze"}


def study(**overrides):
    raw = {
        "name": "t",
        "steps": ["pretrain", "transfer"],
        "fixed": {"backbone": "cnn"},
        "search_space": {"learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}},
    }
    raw.update(overrides)
    return raw


def test_every_study_file_loads_and_is_seeded_tpe_on_validation_macro_f1():
    names = {p.stem for p in STUDIES.glob("*.yaml")}
    assert {"mlp", "cnn", "lstm", "resnet", "transforms"} <= names
    for path in STUDIES.glob("*.yaml"):
        spec = load_study_file(path)
        assert spec.name == path.stem
        # the patient-wise studies select on macro-F1 over N, S, V of the held-out records (a CV trial: the mean over
        # folds, monitored fold by fold)
        if spec.steps == ("crossval",):
            assert spec.metric == "cv_macro_f1_nsv_mean" and spec.monitor == "val_macro_f1_nsv_selected"
        else:
            assert spec.metric in ("best_val_macro_f1", "val_macro_f1_nsv_selected") and spec.monitor == "val_macro_f1"
        assert spec.direction == "maximize"
        assert spec.sampler.type == "tpe" and isinstance(spec.sampler.seed, int)
        assert spec.pruner.type != "none"
        spec.configs({})  # the fixed values build valid step configs


@pytest.mark.parametrize("backbone", ["mlp", "cnn", "lstm", "resnet"])
def test_backbone_studies_tune_the_backbone(backbone):
    spec = load_study_file(STUDIES / f"{backbone}.yaml")
    names = {key.split(".")[-1] for key in spec.search_space}
    assert names >= BACKBONE_KNOBS
    if backbone in ("cnn", "resnet"):
        assert "kernel_size" in names
    assert spec.fixed["backbone"] == backbone
    # Size parameters reach both steps: the transfer step loads the pretrained encoder.
    params = spec.step_params({"units": 16})
    assert params["pretrain"]["units"] == params["transfer"]["units"] == 16


def test_transforms_study_tunes_magnitudes_and_head_weights():
    spec = load_study_file(STUDIES / "transforms.yaml")
    expected = {"noise_std", "shuffle_segments", "stretch_factor", "squeeze_factor", "scale_factor"}
    assert expected <= set(spec.search_space)
    assert {f"head_weights.{t}" for t in TRANSFORM_NAMES} <= set(spec.search_space)
    values = {f"head_weights.{t}": float(i + 1) for i, t in enumerate(TRANSFORM_NAMES)}
    configs = spec.configs({**values, "noise_std": 0.1})
    assert configs["pretrain"].head_weights == tuple(float(i + 1) for i in range(8))
    assert configs["pretrain"].transforms.noise_std == 0.1
    assert "noise_std" not in spec.step_params({})["transfer"]


def test_parameter_names_come_from_the_configs():
    names = parameter_names(TransferConfig) | parameter_names(PretrainConfig) | parameter_names(CrossValConfig)
    for path in STUDIES.glob("*.yaml"):
        raw = yaml.safe_load(path.read_text())
        for key in [*raw.get("fixed", {}), *raw.get("search_space", {})]:
            bare = key.split(".", 1)[1] if key.split(".")[0] in ("pretrain", "transfer") else key
            assert bare.split(".")[0] in names, key


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"search_space": {"learning_rat": {"type": "float", "low": 0.1, "high": 0.2}}}, "learning_rat"),
        ({"fixed": {"backbone": "cnn", "epoch": 1}}, "epoch"),
        ({"colour": "red"}, "colour"),
        ({"search_space": {"dropout": {"type": "float", "low": 0.5, "high": 0.1}}}, "search_space.dropout"),
        ({"search_space": {"learning_rate": {"type": "float", "low": 0, "high": 0.1, "log": True}}}, "learning_rate"),
        ({"search_space": {"noise_std": {"type": "float", "low": 0.1, "high": 1.5}}}, "search_space.noise_std"),
        ({"search_space": {"dropout": {"type": "float", "low": 0.0, "high": 0.95}}}, "search_space.dropout"),
        ({"search_space": {"units": {"type": "float", "low": 8, "high": 64}}}, "search_space.units"),
        ({"search_space": {"units": {"type": "int", "low": 0, "high": 64}}}, "search_space.units"),
        ({"search_space": {"freeze": {"type": "int", "low": 0, "high": 1}}}, "search_space.freeze"),
        ({"search_space": {"batch_size": {"type": "categorical", "choices": []}}}, "search_space.batch_size"),
        ({"search_space": {"backbone": {"type": "categorical", "choices": ["cnn", "gru"]}}}, "search_space.backbone"),
        ({"search_space": {"dropout": {"type": "float", "low": 0.0, "high": 0.5, "lo": 1}}}, "search_space.dropout.lo"),
        ({"search_space": {"transfer.noise_std": {"type": "float", "low": 0.1, "high": 0.2}}}, "transfer.noise_std"),
        ({"search_space": {"head_weights.blur": {"type": "float", "low": 0.1, "high": 2}}}, "head_weights.blur"),
        ({"search_space": {"pretrain_run_id": ["a", "b"]}}, "pretrain_run_id"),
        ({"objective": {"metric": "test_macro_f1"}}, "objective.metric"),
        ({"objective": {"direction": "up"}}, "objective.direction"),
        ({"sampler": {"type": "tpe", "sed": 1}}, "sampler.sed"),
        ({"sampler": {"type": "cmaes"}}, "sampler.type"),
        ({"pruner": {"type": "median", "n_warmup_steps": "x"}}, "pruner"),
        ({"steps": ["transfer", "pretrain"]}, "steps"),
        ({"fixed": {"backbone": "cnn", "squeeze_factor": 1.5}}, "fixed.squeeze_factor"),
    ],
)
def test_bad_study_is_rejected_naming_the_key(change, message):
    with pytest.raises(StudySpecError, match=message.replace(".", r"\.")):
        parse_study(study(**change), source="studies/t.yaml")


def test_message_names_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(study(search_space={"nois_std": {"type": "float", "low": 0.1, "high": 0.2}})))
    with pytest.raises(StudySpecError, match=r"bad\.yaml: .*nois_std"):
        load_study_file(path)


def test_yaml_exponent_without_dot_is_a_number():
    spec = parse_study(yaml.safe_load("search_space: {learning_rate: {type: float, low: 1e-4, high: 1e-2, log: true}}"))
    assert spec.search_space["learning_rate"].low == pytest.approx(1e-4)


def test_set_fixes_a_parameter_and_beats_scoped_file_values():
    raw = study(fixed={"backbone": "cnn", "transfer.epochs": 20, "pretrain.epochs": 5})
    spec = parse_study(raw, overrides=parse_set(["epochs=1", "learning_rate=0.003", "max_beats=300"]))
    assert "learning_rate" not in spec.search_space
    params = spec.step_params({})
    assert params["pretrain"]["epochs"] == params["transfer"]["epochs"] == 1
    assert params["transfer"]["learning_rate"] == 0.003 and params["transfer"]["max_beats"] == 300
    with pytest.raises(StudySpecError, match="--set epochz"):
        parse_study(raw, overrides=parse_set(["epochz=1"]))
    with pytest.raises(StudySpecError, match="--set"):
        parse_set(["epochs"])
    with pytest.raises(StudySpecError, match=r"fixed\.epochs"):
        parse_study(raw, overrides=parse_set(["epochs=0"]))


def test_scoped_values_win_and_dataset_goes_to_transfer_only():
    spec = parse_study(study(fixed={"backbone": "cnn", "epochs": 3, "transfer.epochs": 7, "dataset": "ptb"}))
    params = spec.step_params({})
    assert params["pretrain"]["epochs"] == 3 and params["transfer"]["epochs"] == 7
    assert params["transfer"]["dataset"] == "ptb" and "dataset" not in params["pretrain"]
    spec.configs({})  # pretraining stays on MIT-BIH


def test_a_cross_validation_study_sends_every_value_to_its_one_step():
    spec = load_study_file(STUDIES / "cnn-patientwise.yaml")
    params = spec.step_params({"adapt": "prior", "units": 12})
    assert set(params) == {"crossval"} and params["crossval"]["adapt"] == "prior"
    assert params["crossval"]["units"] == 12 and params["crossval"]["folds"] == 5
    assert spec.configs({})["crossval"].data.split == "inter"


def test_suggest_covers_every_type():
    import optuna

    spec = load_study_file(STUDIES / "cnn.yaml")
    study_ = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study_.ask()
    values = spec.suggest(trial)
    configs = spec.configs(values)
    assert configs["transfer"].model.kernel_size % 2 == 1
    assert configs["transfer"].batch_size in (32, 64, 128, 256)
    assert isinstance(configs["transfer"].freeze, bool)


def test_a_study_file_builds_on_its_base(tmp_path) -> None:
    from ecg_mlflow.tuning.spec import StudySpecError
    from ecg_mlflow.tuning.study_files import load_study_file

    (tmp_path / "base.yaml").write_text(
        "name: base\nsteps: [pretrain, transfer]\nfixed: {backbone: cnn, pretrain.epochs: 5, patience: 5}\n"
        "search_space:\n  dropout: {type: float, low: 0.0, high: 0.5}\n  units: {type: int, low: 8, high: 64}\n"
        "  depth: {type: int, low: 2, high: 4}\n"
    )
    (tmp_path / "child.yaml").write_text(
        "base: base.yaml\nsteps: [transfer]\nfixed: {pretrain.epochs: null, units: 16}\n"
        "search_space: {depth: null, context: {type: categorical, choices: [rr, rr_template]}}\n"
    )
    spec = load_study_file(tmp_path / "child.yaml")
    assert spec.name == "child" and spec.steps == ("transfer",)  # the name is the file's own
    assert spec.fixed == {"backbone": "cnn", "patience": 5, "units": 16}  # units fixed here leaves the space
    assert set(spec.search_space) == {"dropout", "context"}  # depth dropped by null
    (tmp_path / "loop.yaml").write_text("base: loop.yaml\n")
    with pytest.raises(StudySpecError, match="leads back to itself"):
        load_study_file(tmp_path / "loop.yaml")
    (tmp_path / "orphan.yaml").write_text("base: missing.yaml\n")
    with pytest.raises(StudySpecError, match=r"missing\.yaml: no such study file"):
        load_study_file(tmp_path / "orphan.yaml")
