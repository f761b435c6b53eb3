"""The Optuna storage through a ServerWatch (tuning/resilient_storage.py), on the team server's PostgreSQL."""

from __future__ import annotations

import time
import uuid

import optuna
import pytest
import sqlalchemy
from optuna.trial import TrialState

from ecg_mlflow.tracking import server
from ecg_mlflow.tuning.resilient_storage import ResilientStorage
from ecg_mlflow.tuning.storage import open_storage

GRACE = 2


def _outage_that_ends_now(watch) -> None:
    """A real refused connection, once, through the watch: the storage was away and is back."""
    engine = sqlalchemy.create_engine(f"postgresql+psycopg://u:p@127.0.0.1:{server.free_port()}/db")
    attempts: list[int] = []

    def query() -> None:
        attempts.append(1)
        if len(attempts) == 1:
            with engine.connect():
                pass

    watch.call(query)


@pytest.mark.slow
def test_no_trial_is_stale_within_a_grace_period_of_an_outage(team_server) -> None:
    handle = open_storage(team_server["ECG_OPTUNA_STORAGE"], heartbeat_interval=1, grace_period=GRACE, outage_limit=30)
    assert isinstance(handle.storage, ResilientStorage)
    study = optuna.create_study(study_name=f"stale-{uuid.uuid4().hex[:8]}", storage=handle.storage)
    trial = study.ask()
    handle.storage.record_heartbeat(trial._trial_id)
    time.sleep(GRACE + 1.5)  # its heartbeat is older than the grace period: Optuna's rule calls it stale
    assert handle.storage._get_stale_trial_ids(study._study_id) == [trial._trial_id]

    _outage_that_ends_now(handle.watch)  # its worker may have been waiting out the same outage
    assert handle.storage._get_stale_trial_ids(study._study_id) == []
    optuna.storages.fail_stale_trials(study)
    assert study.trials[0].state == TrialState.RUNNING

    time.sleep(GRACE + 0.5)  # a grace period after the outage, a silent trial is stale again
    assert handle.storage._get_stale_trial_ids(study._study_id) == [trial._trial_id]
    assert len(handle.watch.outages) == 1


@pytest.mark.slow
def test_a_restarted_postgresql_gives_every_running_trial_a_grace_period(own_team_server) -> None:
    """This worker made no call while the database was down (it never saw the outage): the database's own start
    time tells that every worker's heartbeat may just be late."""
    folder, exports = own_team_server
    handle = open_storage(exports["ECG_OPTUNA_STORAGE"], heartbeat_interval=1, grace_period=GRACE, outage_limit=30)
    study = optuna.create_study(study_name="restarted", storage=handle.storage)
    trial = study.ask()
    handle.storage.record_heartbeat(trial._trial_id)
    time.sleep(GRACE + 1.5)
    assert handle.storage._get_stale_trial_ids(study._study_id) == [trial._trial_id]

    state, user = server.read_state(folder), server.service_user()
    server.stop_postgres(folder, user)
    server.start_postgres(folder, state.host, state.pg_port, user)
    assert handle.storage._get_stale_trial_ids(study._study_id) == [] and not handle.watch.outages
    time.sleep(GRACE + 0.5)
    assert handle.storage._get_stale_trial_ids(study._study_id) == [trial._trial_id]
