"""The paper's LSTM learns on real beats: it beats the majority-class answer within a few epochs."""

from __future__ import annotations

import numpy as np
import pytest

from ecg_mlflow.config import BACKBONE_DEFAULTS, DataConfig
from ecg_mlflow.data.dataset import load_dataset
from ecg_mlflow.data.splits import stratified_sample
from ecg_mlflow.evaluation import macro_f1
from ecg_mlflow.models.backbones import build_encoder
from ecg_mlflow.models.classifier import build_classifier, compile_classifier, predict_proba
from ecg_mlflow.steps.supervised import majority_macro_f1
from ecg_mlflow.steps.training import seed_everything

pytestmark = [pytest.mark.slow, pytest.mark.realdata]


def test_the_paper_lstm_beats_the_majority_answer_on_real_beats(real_data_dir, tmp_path) -> None:
    ds = load_dataset(DataConfig(data_dir=str(real_data_dir), cache_dir=str(tmp_path)), workers=2)
    rows = stratified_sample(ds.train.y, 8000, seed=0)
    val = stratified_sample(ds.val.y, 3000, seed=0)
    seed_everything(0)
    model = build_classifier(build_encoder("lstm", BACKBONE_DEFAULTS["lstm"]), 5)
    compile_classifier(model, 5, 1e-3, steps_per_execution=32)
    model.fit(ds.train.x[rows][:, :, None], ds.train.y[rows], batch_size=64, epochs=6, verbose=0)
    score = macro_f1(ds.val.y[val], predict_proba(model, ds.val.x[val], 5))
    majority = majority_macro_f1(ds.val.y[val], int(np.bincount(ds.train.y).argmax()), 5)
    assert score > majority + 0.15, (score, majority)
