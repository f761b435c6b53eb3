"""No orphan runs: real signals to real child processes running a step's run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from ecg_mlflow.tracking.runs import ENV_BUILD_GRACE_S, PROCESS_TAG, REAPED_TAG, step_run

CHILD = textwrap.dedent(
    """
    import sys, time, mlflow
    from ecg_mlflow.tracking.runs import step_run
    mlflow.set_tracking_uri(sys.argv[1])
    mlflow.set_experiment("signals")
    with step_run("transfer", {"seconds": 120}, run_name="sleeper") as run:
        print(run.info.run_id, flush=True)
        time.sleep(120)
    """
)


@pytest.fixture
def tracking(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    mlflow.set_tracking_uri(uri)
    yield uri
    mlflow.set_tracking_uri(None)


def _start(uri: str) -> tuple[subprocess.Popen, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, uri],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        # SIGINT as in a terminal, even when the tests run as a background job (SIGINT ignored).
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    run_id = child.stdout.readline().strip()
    assert run_id, child.stderr.read()
    return child, run_id


def _status(run_id: str) -> str:
    return MlflowClient().get_run(run_id).info.status


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_step_ends_its_run_killed_and_says_so(tracking, signum) -> None:
    child, run_id = _start(tracking)
    assert _status(run_id) == "RUNNING"
    child.send_signal(signum)
    _, stderr = child.communicate(timeout=60)
    assert child.returncode != 0
    assert _status(run_id) == "KILLED"
    assert f"interrupted: transfer run {run_id} marked KILLED" in stderr


def test_a_run_left_by_a_killed_process_is_reaped_and_a_live_one_is_not(tracking) -> None:
    dead, dead_run = _start(tracking)
    dead.send_signal(signal.SIGKILL)
    dead.wait(timeout=60)
    assert _status(dead_run) == "RUNNING"  # SIGKILL: nothing could be said
    live, live_run = _start(tracking)
    try:
        mlflow.set_experiment("signals")
        with step_run("transfer", {"seconds": 0}) as run:  # the next step in the experiment reaps
            pass
        assert _status(run.info.run_id) == "FINISHED"
        assert _status(dead_run) == "KILLED"
        assert "is gone" in MlflowClient().get_run(dead_run).data.tags[REAPED_TAG]
        assert _status(live_run) == "RUNNING"  # a live process's run is never touched
        assert MlflowClient().get_run(live_run).data.tags[PROCESS_TAG].split(":")[1] == str(live.pid)
    finally:
        live.send_signal(signal.SIGTERM)
        live.communicate(timeout=60)
    assert _status(live_run) == "KILLED"


def test_a_run_of_another_host_is_never_reaped(tracking) -> None:
    mlflow.set_experiment("signals")
    client = MlflowClient()
    other = client.create_run(client.get_experiment_by_name("signals").experiment_id)
    client.set_tag(other.info.run_id, PROCESS_TAG, "another-host:1:123")
    with step_run("transfer", {}):
        time.sleep(0.01)
    assert _status(other.info.run_id) == "RUNNING"


def test_a_run_left_by_a_failed_environment_build_is_marked_failed_after_the_grace(tracking) -> None:
    mlflow.set_experiment("signals")
    client = MlflowClient()
    experiment_id = client.get_experiment_by_name("signals").experiment_id
    hour_ago_ms = int((time.time() - ENV_BUILD_GRACE_S - 60) * 1000)
    env = {"mlflow.project.env": "virtualenv"}
    failed_build = client.create_run(experiment_id, start_time=hour_ago_ms, tags=env)
    building = client.create_run(experiment_id, tags=env)  # may still be installing packages
    manual = client.create_run(experiment_id, start_time=hour_ago_ms)  # someone's own run: not ours to end
    with step_run("transfer", {}):
        time.sleep(0.01)
    assert _status(failed_build.info.run_id) == "FAILED"
    assert "environment failed" in client.get_run(failed_build.info.run_id).data.tags[REAPED_TAG]
    assert _status(building.info.run_id) == "RUNNING" and _status(manual.info.run_id) == "RUNNING"


def test_a_run_made_by_mlflow_run_gets_a_readable_name_and_a_classic_ml_experiment(tracking, monkeypatch) -> None:
    client = MlflowClient()
    experiment_id = client.create_experiment("adopted")
    made = client.create_run(experiment_id)  # what `mlflow run` does before starting the step
    monkeypatch.setenv("MLFLOW_RUN_ID", made.info.run_id)
    with step_run("transfer", {"backbone": "cnn", "init": "pretrained"}, run_name="transfer-cnn-pretrained") as run:
        assert run.info.run_id == made.info.run_id
    adopted = client.get_run(made.info.run_id)
    assert adopted.info.run_name == "transfer-cnn-pretrained" and adopted.info.status == "FINISHED"
    assert adopted.data.tags["backbone"] == "cnn" and adopted.data.tags["init"] == "pretrained"
    assert client.get_experiment(experiment_id).tags["mlflow.experimentKind"] == "custom_model_development"
