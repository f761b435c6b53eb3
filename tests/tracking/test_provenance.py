"""Reuse only what is provably the same: code digest, uncommitted changes and data digest, on real runs.

The package under test is a copy in a temporary git repository (PROVENANCE.PACKAGE_DIR points at it), so
the tests commit and edit it for real; the runs are real transfer runs in a sqlite store.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import mlflow
import pytest
from mlflow.utils.mlflow_tags import MLFLOW_PROJECT_ENTRY_POINT

from ecg_mlflow.config import DataConfig, TransferConfig
from ecg_mlflow.steps.children import expected_data_digest, find_finished_run
from ecg_mlflow.steps.transfer import run_transfer
from ecg_mlflow.tracking import provenance
from ecg_mlflow.tracking.provenance import CODE_DIGEST_TAG, DATA_DIGEST_TAG, UNCOMMITTED_TAG, code_state

PARAMS = {"backbone": "mlp", "init": "scratch", "epochs": "1", "batch_size": "32", "max_beats": "80"}


def git(folder: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=folder, check=True, capture_output=True)


@pytest.fixture
def package_copy(tmp_path, monkeypatch) -> Path:
    """The package's sources, committed in a fresh git repository; code_state() reads this copy."""
    package = tmp_path / "repo" / "ecg_mlflow"
    shutil.copytree(provenance.PACKAGE_DIR, package, ignore=shutil.ignore_patterns("__pycache__"))
    git(package.parent, "init", "-q")
    git(package.parent, "-c", "user.name=t", "-c", "user.email=t@t", "add", ".")
    git(package.parent, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "package")
    monkeypatch.setattr(provenance, "PACKAGE_DIR", package)
    provenance._code_state.cache_clear()
    yield package
    provenance._code_state.cache_clear()


def edit(package: Path) -> None:
    with (package / "config.py").open("a") as handle:
        handle.write("\n# an edit nobody committed\n")
    provenance._code_state.cache_clear()


def transfer_run(data_dir: Path) -> mlflow.entities.Run:
    """A finished transfer run, tagged with its entry point as `mlflow run -e transfer` tags it."""
    data = DataConfig(data_dir=str(data_dir), max_beats=80)
    result = run_transfer(TransferConfig(backbone="mlp", init="scratch", epochs=1, batch_size=32, data=data), verbose=0)
    mlflow.MlflowClient().set_tag(result.run_id, MLFLOW_PROJECT_ENTRY_POINT, "transfer")
    return mlflow.get_run(result.run_id)


def find(params: dict[str, str]) -> mlflow.entities.Run | None:
    experiment = mlflow.get_experiment_by_name("provenance").experiment_id
    data = expected_data_digest("transfer", params)
    return find_finished_run(experiment, "transfer", params, code_state().digest, data)


def test_code_digest_follows_the_files_and_git_their_commit(package_copy) -> None:
    committed = code_state()
    assert not committed.uncommitted
    edit(package_copy)
    edited = code_state()
    assert edited.uncommitted and edited.digest != committed.digest
    git(package_copy.parent, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "edit")
    provenance._code_state.cache_clear()
    assert code_state() == provenance.CodeState(edited.digest, False)


def test_outside_a_git_checkout_only_the_digest_speaks(tmp_path) -> None:
    package = tmp_path / "ecg_mlflow"
    package.mkdir()
    (package / "a.py").write_text("x = 1\n")
    assert not provenance.uncommitted_changes(package)
    first = provenance.code_digest(package)
    (package / "a.py").write_text("x = 2\n")
    assert provenance.code_digest(package) != first


def test_a_committed_run_is_reused_an_uncommitted_edit_is_not(package_copy, tracking_store, tmp_path, synthetic_mitdb):
    params = {**PARAMS, "data_dir": str(synthetic_mitdb)}
    with tracking_store(tmp_path, synthetic_mitdb, "provenance"):
        run = transfer_run(synthetic_mitdb)
        assert run.data.tags[UNCOMMITTED_TAG] == "false" and run.data.tags[CODE_DIGEST_TAG] == code_state().digest
        assert find(params).info.run_id == run.info.run_id
        edit(package_copy)
        assert find(params) is None, "an uncommitted edit of the package must not reuse the old run"
        dirty = transfer_run(synthetic_mitdb)
        assert dirty.data.tags[UNCOMMITTED_TAG] == "true"
        assert find(params) is None, "a run made from uncommitted code is never reused"


def test_a_changed_record_file_is_not_reused(package_copy, tracking_store, tmp_path, synthetic_mitdb):
    data_dir = tmp_path / "data"
    shutil.copytree(synthetic_mitdb, data_dir)
    params = {**PARAMS, "data_dir": str(data_dir)}
    with tracking_store(tmp_path, data_dir, "provenance"):
        run = transfer_run(data_dir)
        assert run.data.tags[DATA_DIGEST_TAG] == expected_data_digest("transfer", params)
        assert find(params).info.run_id == run.info.run_id
        signal = next((data_dir / "mitdb").glob("*.dat"))
        content = bytearray(signal.read_bytes())
        content[100:110] = bytes(10)  # the same size, other samples
        signal.write_bytes(bytes(content))
        assert find(params) is None, "a changed record under the same path must not reuse the old run"
