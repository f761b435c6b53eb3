"""The crossval step in-process on synthetic DS1/DS2 records: folds as nested runs without test figures,
the averaged model tested once, registered and served."""

from __future__ import annotations

import mlflow
import numpy as np
import pytest
import wfdb
from mlflow.tracking import MlflowClient

from ecg_mlflow.config import ClassifyConfig, CrossValConfig, DataConfig, PretrainConfig, TransferConfig
from ecg_mlflow.data.adaptation import ADAPTATIONS
from ecg_mlflow.data.context import CONTEXT_KINDS
from ecg_mlflow.data.inputs import INPUT_KINDS
from ecg_mlflow.errors import ConfigError
from ecg_mlflow.models.test_time import MIN_BEATS
from ecg_mlflow.steps.classify import classify_record
from ecg_mlflow.steps.crossval import run_crossval
from ecg_mlflow.steps.pretrain import run_pretrain
from ecg_mlflow.steps.transfer import run_transfer
from ecg_mlflow.tracking.classifiers import load_served
from ecg_mlflow.tracking.upstream import UpstreamError

DS1_RECORDS = ("101", "106", "108", "109", "112", "114")  # tests/conftest.py PATIENTWISE_DS1
DS2_RECORDS = ("100", "103")


@pytest.fixture(scope="module")
def crossval(tmp_path_factory, synthetic_patientwise_mitdb, tracking_store):
    """One 3-fold cross-validation of the MLP with rhythm context, on a real sqlite tracking store."""
    folder = tmp_path_factory.mktemp("cv_tracking")
    with tracking_store(folder, synthetic_patientwise_mitdb, "crossval"):
        config = CrossValConfig(
            backbone="mlp",
            init="scratch",
            epochs=2,
            min_epochs=0,
            batch_size=16,
            context="rr",
            class_weight="balanced",
            folds=3,
            data=DataConfig(split="inter"),
        )
        yield run_crossval(config, verbose=0)


def _folds(parent_id: str) -> list:
    client = MlflowClient()
    experiment = client.get_run(parent_id).info.experiment_id
    return client.search_runs([experiment], filter_string=f"tags.mlflow.parentRunId = '{parent_id}'")


def test_each_fold_is_a_nested_run_holding_out_whole_records_once(crossval) -> None:
    folds = _folds(crossval.run_id)
    assert len(folds) == 3 and all(f.info.status == "FINISHED" for f in folds)
    assert {f.data.tags["ecg_mlflow.step"] for f in folds} == {"crossval_fold"}
    held = [set(f.data.params["val_records"].split(",")) for f in folds]
    assert set().union(*held) == set(DS1_RECORDS)  # every training record held out once ...
    assert sum(len(h) for h in held) == len(DS1_RECORDS)  # ... and in one fold only
    assert not set().union(*held) & set(DS2_RECORDS)  # the test records never


def test_folds_compute_no_test_figures_only_the_averaged_model_does(crossval) -> None:
    for fold in _folds(crossval.run_id):
        assert "val_macro_f1_nsv_selected" in fold.data.metrics
        assert not [name for name in fold.data.metrics if name.startswith("test_")]
    parent = MlflowClient().get_run(crossval.run_id)
    assert parent.data.tags["ecg_mlflow.step"] == "crossval" and parent.info.status == "FINISHED"
    assert "test_macro_f1_nsv" in parent.data.metrics and "test_se_S" in parent.data.metrics


def test_the_cv_score_is_the_mean_of_the_folds_with_its_spread(crossval) -> None:
    scores = [f.data.metrics["val_macro_f1_nsv_selected"] for f in _folds(crossval.run_id)]
    metrics = MlflowClient().get_run(crossval.run_id).data.metrics
    assert metrics["cv_macro_f1_nsv_mean"] == pytest.approx(np.mean(scores))
    assert metrics["cv_macro_f1_nsv_std"] == pytest.approx(np.std(scores))
    assert 0.0 <= metrics["cv_oof_macro_f1_nsv"] <= 1.0


def test_every_held_out_recording_gets_its_row_beside_the_average(crossval, tmp_path) -> None:
    """The out-of-fold answers per recording (crossval/per_record.csv), summarised as cv_records_* metrics; the
    fold networks are kept in the fold runs, so a recording can be scored again without training."""
    import pandas as pd

    from ecg_mlflow.steps.folds import load_fold_models

    metrics = MlflowClient().get_run(crossval.run_id).data.metrics
    path = mlflow.artifacts.download_artifacts(
        run_id=crossval.run_id, artifact_path="crossval/per_record.csv", dst_path=str(tmp_path)
    )
    table = pd.read_csv(path, dtype={"record": str})
    assert set(table["record"]) == set(DS1_RECORDS) and metrics["cv_records"] == len(DS1_RECORDS)
    assert metrics["cv_records_n_se_below_80"] == (table.loc[table["n_N"] > 0, "se_N"] < 0.8).sum()
    assert metrics["cv_records_n_se_worst"] == pytest.approx(table.loc[table["n_N"] > 0, "se_N"].min())
    assert len(load_fold_models(crossval.run_id)) == 3


def test_the_averaged_model_is_registered_and_serves_labels(crossval) -> None:
    version = MlflowClient().get_model_version_by_alias("ecg-mit-mlp-cv", "scratch")
    assert version.run_id == crossval.run_id
    served = mlflow.pyfunc.load_model("models:/ecg-mit-mlp-cv@scratch")
    beats = np.random.default_rng(0).random((4, 187)).astype(np.float32)
    rhythm = np.ones((4, len(CONTEXT_KINDS["rr"])), dtype=np.float32)
    table = served.predict({"beat": beats, "rhythm": rhythm})
    assert list(table.columns) == ["label", "p_N", "p_S", "p_V", "p_F", "p_Q"]
    assert np.allclose(table.filter(like="p_").sum(axis=1), 1.0, atol=1e-4)
    keras_model = served.unwrap_python_model().keras_model
    assert len([layer for layer in keras_model.layers if layer.name.startswith("member_")]) == 3


def test_cross_validation_is_by_patient_only() -> None:
    with pytest.raises(ConfigError, match="split='inter'"):
        CrossValConfig(data=DataConfig(split="intra"))


@pytest.mark.slow  # a pretraining in each of 3 folds
def test_fold_pretraining_leaves_each_folds_held_out_records_out(crossval) -> None:
    """Inductive pretraining under CV: every fold pretrains anew without its held-out records; unlabelled
    signal of the test records (DS2 100, 103) makes the final model's pretraining transductive."""
    config = CrossValConfig(
        backbone="mlp",
        init="pretrained",
        fold_pretraining=True,
        pretrain_epochs=1,
        unlabelled=("mitdb:100+103",),
        epochs=1,
        min_epochs=0,
        batch_size=16,
        context="rr",
        folds=3,
        data=DataConfig(split="inter"),
    )
    result = run_crossval(config, register=False, verbose=0)
    client = MlflowClient()
    parent = client.get_run(result.run_id)
    assert parent.data.tags["ecg_mlflow.pretraining_saw_held_out"] == "false"
    assert parent.data.tags["ecg_mlflow.pretraining_protocol"] == "transductive"
    for fold in _folds(result.run_id):
        (pretraining,) = client.search_runs(
            [parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{fold.info.run_id}'"
        )
        assert pretraining.data.tags["ecg_mlflow.step"] == "pretrain"
        held_out = set(fold.data.params["val_records"].split(","))
        seen = set(pretraining.data.params["pretrain_records"].split(","))
        assert (
            held_out
            and not held_out & seen
            and pretraining.data.params["exclude_records"] == ",".join(sorted(held_out))
        )
        assert fold.data.tags["ecg_mlflow.upstream_run_id"] == pretraining.info.run_id


def test_fold_pretraining_needs_a_pretrained_init() -> None:
    with pytest.raises(ConfigError, match="fold_pretraining=true pretrains in every fold"):
        CrossValConfig(init="scratch", fold_pretraining=True, data=DataConfig(split="inter"))
    with pytest.raises(ConfigError, match="unlabelled is for each fold's pretraining"):
        CrossValConfig(unlabelled=("svdb",), data=DataConfig(split="inter"))


# Every adaptation on every `make test` would cost minutes: the quick suite keeps none and one that trains the
# network per recording; the slow suite (CI's make test-all) runs them all.
QUICK_ADAPTATIONS = ("none", "self_train")


@pytest.mark.parametrize(
    "adapt", [a if a in QUICK_ADAPTATIONS else pytest.param(a, marks=pytest.mark.slow) for a in sorted(ADAPTATIONS)]
)
def test_every_adaptation_leaves_a_model_that_serves_and_classifies_a_record(
    crossval, adapt, tmp_path, record_writer
) -> None:
    """A transfer run with each adaptation (on the CNN with normalisation layers, which every adaptation can
    change); its served model labels every beat of a new record (classify), adapted to it when it adapts."""
    served = _adapted_network(adapt, "rr")
    assert len(served.context_names) == len(CONTEXT_KINDS["rr"]) * (1 if ADAPTATIONS[adapt].derive is None else 2)
    assert served.adapt == adapt and bool(served.adapter) == (ADAPTATIONS[adapt].recording is not None)
    record_writer(tmp_path, "new", ["MLII", "V1"], seconds=60.0, seed=9)
    table = classify_record(ClassifyConfig(record=str(tmp_path / "new"), model="runs:/unused/model"), served).table
    assert len(table) > MIN_BEATS and set(table["label"]) <= {"N", "S", "V", "F", "Q"}
    assert table["adapted"].all() if served.adapter else "adapted" not in table


@pytest.mark.slow  # a pretraining and a transfer per input kind
@pytest.mark.parametrize("kind", sorted(INPUT_KINDS))
def test_every_input_kind_pretrains_transfers_and_classifies_a_record(crossval, kind, tmp_path, record_writer) -> None:
    """Pretraining works on each input kind; the classifier from it serves beats cut the same way."""
    data = DataConfig(split="inter", input=kind)
    pretrained = run_pretrain(
        PretrainConfig(backbone="mlp", epochs=1, batch_size=32, data=data), register=False, verbose=0
    )
    result = run_transfer(
        TransferConfig(
            backbone="mlp", pretrain_run_id=pretrained.run_id, epochs=1, min_epochs=0, batch_size=16, data=data
        ),
        register=False,
        verbose=0,
    )
    served = load_served(result.model_uri)
    assert served.input_kind == kind
    record_writer(tmp_path, "new", ["MLII", "V1"], seconds=30.0, seed=9)
    table = classify_record(ClassifyConfig(record=str(tmp_path / "new"), model=result.model_uri), served).table
    assert len(table) > 20


def test_a_pretrained_encoder_must_have_seen_the_same_input_kind(crossval) -> None:
    window = DataConfig(split="inter", input="window")
    pretrained = run_pretrain(PretrainConfig(backbone="mlp", epochs=1, data=window), register=False, verbose=0)
    with pytest.raises(UpstreamError, match="input=window, but this step needs input=kachuee"):
        run_transfer(
            TransferConfig(backbone="mlp", pretrain_run_id=pretrained.run_id, epochs=1, data=DataConfig(split="inter")),
            register=False,
            verbose=0,
        )


@pytest.mark.parametrize(
    "adapt",
    [
        a if a == "dominant" else pytest.param(a, marks=pytest.mark.slow)
        for a in sorted(ADAPTATIONS)
        if ADAPTATIONS[a].recording
    ],
)
def test_adaptation_reads_no_label(crossval, adapt, tmp_path, record_writer) -> None:
    """The annotations of the adapted record scrambled (same beats, other symbols): identical answers."""
    served = _adapted_network(adapt, "rr_template")
    record_writer(tmp_path, "new", ["MLII", "V1"], seconds=60.0, seed=11)
    classify = ClassifyConfig(record=str(tmp_path / "new"), model="runs:/unused/model")
    before = classify_record(classify, served).table
    annotation = wfdb.rdann(str(tmp_path / "new"), "atr")
    beats = np.isin(annotation.symbol, ["N", "A", "V", "F", "Q", "L", "R"])
    symbols = np.asarray(annotation.symbol, dtype=object)
    symbols[beats] = np.random.default_rng(0).permutation(symbols[beats])
    assert (symbols != np.asarray(annotation.symbol, dtype=object)).any()
    wfdb.wrann("new", "atr", annotation.sample, list(symbols), aux_note=annotation.aux_note, write_dir=str(tmp_path))
    after = classify_record(classify, served).table
    probabilities = [c for c in before.columns if c.startswith("p_")]
    assert before["adapted"].all() and len(before) > MIN_BEATS
    np.testing.assert_array_equal(before["sample"], after["sample"])
    np.testing.assert_allclose(before[probabilities], after[probabilities], atol=1e-6)
    assert (before["reference"] != after["reference"]).any()  # the labels did change


def _adapted_network(adapt: str, context: str):
    """One quick transfer of the CNN with normalisation layers (every adaptation can change it), as served."""
    config = TransferConfig(
        backbone="cnn_bn", epochs=1, min_epochs=0, batch_size=16, context=context, adapt=adapt,
        data=DataConfig(split="inter"),
    )  # fmt: skip
    return load_served(run_transfer(config, register=False, verbose=0).model_uri)
