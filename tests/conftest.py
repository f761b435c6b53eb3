"""Shared fixtures: synthetic WFDB databases and Kaggle CSVs written by the tests, and the real MIT-BIH dir."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pytest
import wfdb

MIT_FS = 360
PTB_FS = 1000
# Record name -> lead names: 114 has MLII as lead 1, 102 has no MLII (as in MIT-BIH).
SYNTHETIC_MIT_RECORDS: dict[str, list[str]] = {
    "100": ["MLII", "V5"],  # DS2
    "101": ["MLII", "V1"],  # DS1
    "102": ["V5", "V2"],  # paced, no MLII
    "103": ["MLII", "V2"],  # DS2
    "114": ["V5", "MLII"],  # DS1, MLII is lead 1
}
# Beat symbols cycled through each record: every AAMI class, plus a non-beat '+' rhythm mark.
SYMBOL_CYCLE = ["N", "N", "L", "A", "N", "V", "N", "F", "/", "N", "R", "Q", "N", "j", "E", "a", "f", "e", "J", "S"]


def synthetic_ecg(n: int, fs: int, peaks: np.ndarray, rng: np.random.Generator, amplitude: float = 1.0) -> np.ndarray:
    """A baseline with small noise, a narrow R spike at every peak and a broad T wave after it."""
    t = np.arange(n)
    signal = 0.02 * rng.standard_normal(n) + 0.05 * np.sin(2 * np.pi * 0.2 * t / fs)
    for p in peaks:
        signal += amplitude * np.exp(-0.5 * ((t - p) / (0.012 * fs)) ** 2)
        signal += 0.25 * amplitude * np.exp(-0.5 * ((t - p - 0.25 * fs) / (0.05 * fs)) ** 2)
    return signal


def beat_positions(seconds: float, fs: int, rng: np.random.Generator) -> np.ndarray:
    """R peaks about every 0.8 s (72 bpm) with jitter, starting after 0.5 s."""
    rr = rng.uniform(0.7, 0.9, size=int(seconds / 0.7) + 2)
    peaks = (0.5 + np.cumsum(rr)) * fs
    return peaks[peaks < (seconds - 0.5) * fs].astype(np.int64)


def write_mit_record(
    directory: Path, record: str, leads: list[str], seconds: float, seed: int, fs: int = MIT_FS, main_lead: str = "MLII"
) -> dict[str, int]:
    """One synthetic annotated record (.hea/.dat/.atr), MIT-BIH-like by default; returns the beat-symbol counts.

    `main_lead` carries the clear R spikes (MLII; II for INCART-like, ECG1 for SVDB-like records);
    the other leads are smaller and inverted.
    """
    rng = np.random.default_rng(seed)
    n = int(seconds * fs)
    peaks = beat_positions(seconds, fs, rng)
    main = synthetic_ecg(n, fs, peaks, rng)
    other = synthetic_ecg(n, fs, peaks, rng, amplitude=-0.5)
    columns = [main if name == main_lead else other for name in leads]
    if main_lead not in leads:
        columns[0] = main
    wfdb.wrsamp(
        record,
        fs=fs,
        units=["mV"] * len(leads),
        sig_name=leads,
        p_signal=np.column_stack(columns),
        fmt=["212"] * len(leads),
        adc_gain=[200.0] * len(leads),
        baseline=[1024] * len(leads),
        write_dir=str(directory),
    )
    symbols = [SYMBOL_CYCLE[i % len(SYMBOL_CYCLE)] for i in range(len(peaks))]
    samples = list(peaks)
    # A rhythm-change mark (not a beat) just after the first beat.
    samples.insert(1, int(peaks[0]) + 5)
    symbols.insert(1, "+")
    wfdb.wrann(record, "atr", np.array(samples), symbol=symbols, write_dir=str(directory))
    return {s: symbols.count(s) for s in set(symbols)}


@pytest.fixture(scope="session")
def synthetic_mitdb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DATA_DIR whose mitdb/ holds 5 short synthetic records (100 101 102 103 114) and a RECORDS file."""
    data_dir = tmp_path_factory.mktemp("synthetic_data")
    mitdb = data_dir / "mitdb"
    mitdb.mkdir()
    for i, (record, leads) in enumerate(SYNTHETIC_MIT_RECORDS.items()):
        write_mit_record(mitdb, record, leads, seconds=60.0, seed=i)
    (mitdb / "RECORDS").write_text("\n".join(SYNTHETIC_MIT_RECORDS) + "\n")
    return data_dir


# Enough DS1 records for patient-wise cross-validation (3 folds), and two DS2 records to test on.
PATIENTWISE_DS1: tuple[str, ...] = ("101", "106", "108", "109", "112", "114")
PATIENTWISE_DS2: tuple[str, ...] = ("100", "103")


@pytest.fixture(scope="session")
def synthetic_patientwise_mitdb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DATA_DIR whose mitdb/ holds 6 DS1 and 2 DS2 synthetic records (30 s each, every AAMI class)."""
    data_dir = tmp_path_factory.mktemp("patientwise_data")
    mitdb = data_dir / "mitdb"
    mitdb.mkdir()
    records = PATIENTWISE_DS1 + PATIENTWISE_DS2
    for i, record in enumerate(records):
        write_mit_record(mitdb, record, ["MLII", "V1"], seconds=30.0, seed=300 + i)
    (mitdb / "RECORDS").write_text("\n".join(records) + "\n")
    return data_dir


# PTB records carry 15 signals: the 12 standard leads and the 3 Frank leads.
@pytest.fixture
def record_writer():
    """write_mit_record, for tests that write records of their own layout (any rate, leads, main lead)."""
    return write_mit_record


INCART_LEADS = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]


@pytest.fixture(scope="session")
def synthetic_other_databases(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DATA_DIR with SVDB-like (128 Hz, ECG1/ECG2) and INCART-like (257 Hz, 12 leads) annotated records."""
    data_dir = tmp_path_factory.mktemp("synthetic_other")
    layouts = {
        "svdb": (["800", "801"], ["ECG1", "ECG2"], 128, "ECG1"),
        "incartdb": (["I01", "I02"], INCART_LEADS, 257, "II"),
    }
    for db, (records, leads, fs, main_lead) in layouts.items():
        folder = data_dir / db
        folder.mkdir()
        for i, record in enumerate(records):
            write_mit_record(folder, record, leads, seconds=60.0, seed=200 + i, fs=fs, main_lead=main_lead)
        (folder / "RECORDS").write_text("\n".join(records) + "\n")
    return data_dir


PTB_LEADS = ["i", "ii", "iii", "avr", "avl", "avf", "v1", "v2", "v3", "v4", "v5", "v6", "vx", "vy", "vz"]
SYNTHETIC_PTB_RECORDS: dict[str, str] = {
    "patient001/s0010_re": "Myocardial infarction",
    "patient001/s0014lre": "Myocardial infarction",
    "patient002/s0020_re": "Healthy control",
    "patient003/s0030_re": "Cardiomyopathy",  # neither class: dropped
    "patient004/s0040_re": "Healthy control",
}


def write_ptb_record(directory: Path, record: str, reason: str, seconds: float, seed: int) -> int:
    """One synthetic PTB-like record (1000 Hz, 15 leads, diagnosis in the header); returns #beats."""
    rng = np.random.default_rng(seed)
    n = int(seconds * PTB_FS)
    peaks = beat_positions(seconds, PTB_FS, rng)
    lead_ii = synthetic_ecg(n, PTB_FS, peaks, rng)
    gains = np.linspace(-0.5, 0.8, len(PTB_LEADS))
    gains[1] = 1.0
    signals = np.column_stack([g * lead_ii for g in gains])
    target = directory / Path(record).parent
    target.mkdir(parents=True, exist_ok=True)
    wfdb.wrsamp(
        Path(record).name,
        fs=PTB_FS,
        units=["mV"] * len(PTB_LEADS),
        sig_name=PTB_LEADS,
        p_signal=signals,
        fmt=["16"] * len(PTB_LEADS),
        adc_gain=[2000.0] * len(PTB_LEADS),
        baseline=[0] * len(PTB_LEADS),
        comments=["age: 60", "sex: male", f"Reason for admission: {reason}"],
        write_dir=str(target),
    )
    return len(peaks)


@pytest.fixture(scope="session")
def synthetic_ptbdb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DATA_DIR whose ptbdb/ holds synthetic records in PTB's patientNNN/sNNNNxxxx_re layout."""
    data_dir = tmp_path_factory.mktemp("synthetic_ptb")
    ptbdb = data_dir / "ptbdb"
    ptbdb.mkdir()
    for i, (record, reason) in enumerate(SYNTHETIC_PTB_RECORDS.items()):
        write_ptb_record(ptbdb, record, reason, seconds=30.0, seed=100 + i)
    (ptbdb / "RECORDS").write_text("\n".join(SYNTHETIC_PTB_RECORDS) + "\n")
    return data_dir


def kaggle_rows(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Kaggle-like rows: a decaying beat from ~1.0, trailing zeros, then the label column."""
    n = len(labels)
    t = np.arange(187)
    beats = np.exp(-t[None, :] / rng.uniform(10, 40, size=(n, 1))) * rng.uniform(0.9, 1.0, size=(n, 1))
    beats[:, 120:] = 0.0
    return np.column_stack([beats, labels])


@pytest.fixture
def kaggle_csv_dir(tmp_path: Path) -> Path:
    """DATA_DIR/kaggle with small mitbih_train/test and ptbdb_normal/abnormal CSVs (no header, as shipped)."""
    rng = np.random.default_rng(7)
    kaggle = tmp_path / "data" / "kaggle"
    kaggle.mkdir(parents=True)
    files = {
        "mitbih_train.csv": np.repeat(np.arange(5), [120, 30, 30, 20, 30]),
        "mitbih_test.csv": np.repeat(np.arange(5), [30, 8, 8, 5, 8]),
        "ptbdb_normal.csv": np.zeros(60),
        "ptbdb_abnormal.csv": np.ones(90),
    }
    for name, labels in files.items():
        np.savetxt(kaggle / name, kaggle_rows(labels.astype(float), rng), delimiter=",", fmt="%.18e")
    return kaggle


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """$ECG_DATA_DIR when it holds the MIT-BIH records, else the test is skipped."""
    env = os.environ.get("ECG_DATA_DIR")
    if not env or not (Path(env) / "mitdb" / "100.hea").is_file():
        pytest.skip("ECG_DATA_DIR not set or has no mitdb/: real MIT-BIH tests skipped")
    return Path(env)


@pytest.fixture(scope="session")
def session_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ecg_cache")


@pytest.fixture(autouse=True)
def _isolated_cache(monkeypatch: pytest.MonkeyPatch, session_cache_dir: Path) -> None:
    """No test writes built datasets to ~/.cache: ECG_CACHE_DIR is a per-session temp dir."""
    monkeypatch.setenv("ECG_CACHE_DIR", str(session_cache_dir))


@pytest.fixture(autouse=True)
def _isolated_mlflow_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No MLflow experiment or run leaks from one test into the next.

    mlflow.set_experiment writes MLFLOW_EXPERIMENT_ID into os.environ (for subprocesses) and
    keeps a module-global active experiment: a later test on a fresh tracking store would
    then point at an experiment that store does not have.
    """
    import mlflow
    import mlflow.tracking.fluent as fluent

    for name in ("MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID"):
        monkeypatch.delenv(name, raising=False)
    fluent._active_experiment_id = None
    yield
    while mlflow.active_run() is not None:
        mlflow.end_run()
    os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
    fluent._active_experiment_id = None


@contextlib.contextmanager
def started_team_server(prefix: str) -> Iterator[tuple[Path, dict[str, str]]]:
    """`ecg-mlflow server start` in a new folder: (the folder, its exported variables); stopped and removed after.
    Skips with the reason when PostgreSQL is not installed (.ci/run installs it)."""
    from ecg_mlflow.tracking import server
    from ecg_mlflow.tracking.server import ServerError

    try:
        server.postgres_bin()
    except ServerError as error:
        pytest.skip(str(error))
    # Not under pytest's temp root: another pytest session resets it to 0700, and under root
    # PostgreSQL runs as an unprivileged user who must reach the folder.
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        server.start(folder)
        yield (
            folder,
            dict(line.removeprefix("export ").split("=", 1) for line in server.export_lines(folder).splitlines()),
        )
    finally:
        server.stop(folder)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def own_team_server() -> Iterator[tuple[Path, dict[str, str]]]:
    """A team server of the test's own, for a test that stops or kills it: (its folder, its exported variables)."""
    with started_team_server("ecg-own-server-") as started:
        yield started


@pytest.fixture(scope="session")
def team_server() -> Iterator[dict[str, str]]:
    """A real PostgreSQL + MLflow tracking server (ecg-mlflow server start) for the session.

    Yields the exported variables: MLFLOW_TRACKING_URI (http, serving artefacts) and
    ECG_OPTUNA_STORAGE (postgresql+psycopg://).
    """
    with started_team_server("ecg-team-server-") as (_, exports):
        yield exports


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@contextlib.contextmanager
def _serve_model(model_uri: str, tracking_uri: str, folder: Path) -> Iterator[tuple[str, Path]]:
    port, log = _free_port(), folder / "server.log"
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"  # uvicorn
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri, "PATH": path}
    mlflow_cli = [sys.executable, "-m", "mlflow", "models", "serve", "-m", model_uri]
    with log.open("w") as out:
        server = subprocess.Popen(
            [*mlflow_cli, "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=5):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the model server did not come up:\n{log.read_text()[-3000:]}")
                time.sleep(1)
        yield f"http://127.0.0.1:{port}/invocations", log
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)


@pytest.fixture(scope="session")
def model_server():
    """`model_server(MODEL_URI, tracking_uri, folder)`: `mlflow models serve` on a free port of 127.0.0.1 as a
    context manager giving (invocations URL, server log); the server is stopped on exit."""
    return _serve_model


@pytest.fixture(scope="session")
def post_json():
    """`post_json(url, body)` -> (HTTP status, JSON answer), for errors too."""
    return _post


@contextlib.contextmanager
def _tracking_store(folder: Path, data_dir: Path, experiment: str) -> Iterator[str]:
    uri = f"sqlite:///{folder}/mlflow.db"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.setenv("ECG_DATA_DIR", str(data_dir))
        patch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)  # a module fixture runs before the per-test reset
        patch.delenv("MLFLOW_RUN_ID", raising=False)
        mlflow.set_tracking_uri(uri)
        mlflow.set_experiment(experiment)
        yield uri
        mlflow.set_tracking_uri(None)


@pytest.fixture(scope="session")
def tracking_store():
    """`with tracking_store(folder, data_dir, experiment) as uri:` real MLflow on a sqlite file in `folder`,
    ECG_DATA_DIR at `data_dir`, runs going to `experiment`: for module fixtures that run steps."""
    return _tracking_store


@pytest.fixture
def committed_package() -> None:
    """Skip a test that expects reuse while the package has uncommitted changes: reuse is off then by design
    (tracking/provenance.py); CI runs it on a clean clone."""
    from ecg_mlflow.tracking.provenance import code_state

    if code_state().uncommitted:
        pytest.skip("the package has uncommitted changes, so nothing is reused by design: commit to run this test")
