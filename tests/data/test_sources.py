"""A source of beats is one declaration: the data path, the config checks and the cache key follow."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ecg_mlflow.config import TransferConfig
from ecg_mlflow.data.beats import BEAT_LENGTH, BeatTable
from ecg_mlflow.data.databases import Database
from ecg_mlflow.data.dataset import load_dataset
from ecg_mlflow.data.errors import DataError
from ecg_mlflow.data.sources import SOURCES, Source, register_source
from ecg_mlflow.data.spec import DataConfig
from ecg_mlflow.errors import ConfigError


def _toy_file(database: Database, data_dir: Path) -> list[Path]:
    path = Path(data_dir) / "toy" / f"{database.name}.npz"
    if not path.is_file():
        raise DataError(f"{path} is missing: write the toy beats first")
    return [path]


def _toy_read(database: Database, data_dir: Path, *, input_kind: str, progress: bool, workers: int) -> BeatTable:
    with np.load(_toy_file(database, data_dir)[0]) as npz:
        return BeatTable.isolated(npz["x"], npz["y"])


@pytest.fixture
def toy_source():
    source = register_source(
        Source(
            name="toy",
            help="beats from a numpy file",
            timing=False,
            provides=lambda database: database.dataset == "mit",
            files=_toy_file,
            read=_toy_read,
            cache_key=lambda database: {"toy": 1},
            fixes_test=lambda database: False,
        )
    )
    yield source
    del SOURCES[source.name]


def test_a_declared_source_builds_a_dataset_through_the_same_stages(toy_source, tmp_path) -> None:
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(5), 40)
    (tmp_path / "data" / "toy").mkdir(parents=True)
    np.savez(tmp_path / "data" / "toy" / "mitdb.npz", x=rng.random((len(y), BEAT_LENGTH)).astype(np.float32), y=y)
    config = DataConfig(source="toy", data_dir=str(tmp_path / "data"), cache_dir=str(tmp_path / "cache"))
    ds = load_dataset(config)
    assert len(ds.train.y) + len(ds.val.y) + len(ds.test.y) == len(y)
    assert ds.class_counts()["test"] == dict.fromkeys(ds.class_names, 8)  # 20 %, stratified
    assert ds.manifest["parameters"]["toy"] == 1 and ds.manifest["source"] == "toy"
    assert load_dataset(config).digest == ds.digest  # read back from the cache


def test_a_source_without_timing_refuses_what_needs_it(toy_source, tmp_path) -> None:
    with pytest.raises(ConfigError, match="context='rr' needs beat timing, which source='toy'"):
        TransferConfig(context="rr", data=DataConfig(source="toy"))
    with pytest.raises(ConfigError, match="source='toy' holds no ptb beats"):
        DataConfig(source="toy", dataset="ptb")
    with pytest.raises(DataError, match=r"toy/mitdb\.npz is missing"):
        load_dataset(DataConfig(source="toy", data_dir=str(tmp_path), cache_dir=str(tmp_path / "c")))
