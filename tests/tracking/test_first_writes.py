"""Several workers making the same first write at once (issue 29): the experiment-kind tag of a fresh experiment,
tagged by every worker's first run. Real stores, real processes released together by a barrier."""

from __future__ import annotations

import multiprocessing

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from ecg_mlflow.tracking import server
from ecg_mlflow.tracking.first_writes import is_duplicate_key, write_once
from ecg_mlflow.tracking.runs import CLASSIC_ML, EXPERIMENT_KIND_TAG, mark_classic_ml

WORKERS, ROUNDS = 6, 12


def _tag_together(uri: str, experiment_ids: list[str], barrier, errors, tag) -> None:
    mlflow.set_tracking_uri(uri)
    for experiment_id in experiment_ids:
        barrier.wait(timeout=60)
        try:
            tag(experiment_id)
        except Exception as error:  # reported to the test, which fails on any
            errors.put(f"{type(error).__name__}: {str(error)[:300]}")


def _raw_tag(experiment_id: str) -> None:
    """What mark_classic_ml did before issue 29: look, then write, with nothing for the loser of a race."""
    client = MlflowClient()
    if EXPERIMENT_KIND_TAG not in client.get_experiment(experiment_id).tags:
        client.set_experiment_tag(experiment_id, EXPERIMENT_KIND_TAG, CLASSIC_ML)


def _race(uri: str, tag) -> list[str]:
    mlflow.set_tracking_uri(uri)
    ids = [MlflowClient().create_experiment(f"race-{tag.__name__}-{n}-{id(uri)}") for n in range(ROUNDS)]
    context = multiprocessing.get_context("spawn")
    barrier, errors = context.Barrier(WORKERS), context.Queue()
    workers = [context.Process(target=_tag_together, args=(uri, ids, barrier, errors, tag)) for _ in range(WORKERS)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
    found = []
    while not errors.empty():
        found.append(errors.get())
    assert all(worker.exitcode == 0 for worker in workers)
    assert all(MlflowClient().get_experiment(i).tags[EXPERIMENT_KIND_TAG] == CLASSIC_ML for i in ids)
    return found


def _stores(kind: str, tmp_path, request) -> str:
    if kind == "sqlite":
        uri = f"sqlite:///{tmp_path}/mlflow.db"
        MlflowClient(uri).search_experiments()  # the schema, made once before the workers start
        return uri
    exports = request.getfixturevalue("team_server")
    if kind == "server":
        return exports["MLFLOW_TRACKING_URI"]
    return exports["ECG_OPTUNA_STORAGE"].rsplit("/", 1)[0] + "/mlflow"  # the server's own database, directly


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", "postgresql", "server"])
def test_every_worker_tags_a_fresh_experiment_at_once_without_an_error(kind, tmp_path, request) -> None:
    uri = _stores(kind, tmp_path, request)
    try:
        assert _race(uri, mark_classic_ml) == []
    finally:
        mlflow.set_tracking_uri(None)


def test_a_duplicate_key_is_written_again_other_errors_are_raised_at_once() -> None:
    calls: list[str] = []

    def write(outcomes: list[Exception | None]) -> str:
        calls.append("write")
        if (error := outcomes.pop(0)) is not None:
            raise error
        return "written"

    duplicate = MlflowException("RestException: BAD_REQUEST: (psycopg.errors.UniqueViolation) duplicate key value")
    assert write_once(write, [duplicate, None]) == "written" and len(calls) == 2
    with pytest.raises(MlflowException, match="no such experiment"):
        write_once(write, [MlflowException("no such experiment")])
    assert len(calls) == 3
    assert is_duplicate_key(duplicate) and not is_duplicate_key(ValueError("duplicate key"))


if __name__ == "__main__":
    # The control behind docs/tuning.md's figures: the same barrier on the look-then-write that mark_classic_ml did
    # before issue 29, and on write_once, for each store (a fresh team server for PostgreSQL and the server).
    #   .venv/bin/python tests/tracking/test_first_writes.py
    import shutil
    import tempfile
    from pathlib import Path

    folder = Path(tempfile.mkdtemp(prefix="ecg-race-"))
    try:
        server.start(folder)
        lines = server.export_lines(folder).splitlines()
        exports = dict(line.removeprefix("export ").split("=", 1) for line in lines)
        stores = {
            "sqlite": f"sqlite:///{folder}/mlflow.db",
            "postgresql": exports["ECG_OPTUNA_STORAGE"].rsplit("/", 1)[0] + "/mlflow",
            "server": exports["MLFLOW_TRACKING_URI"],
        }
        MlflowClient(stores["sqlite"]).search_experiments()
        for kind, uri in stores.items():
            for tag in (_raw_tag, mark_classic_ml):
                print(f"{kind:<11} {tag.__name__:<16} {len(_race(uri, tag))} errors in {ROUNDS} rounds of {WORKERS}")
    finally:
        server.stop(folder)
        shutil.rmtree(folder, ignore_errors=True)
