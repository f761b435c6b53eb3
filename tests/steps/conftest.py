"""A temporary sqlite tracking store per test module, pointed at the synthetic MIT-BIH records."""

from __future__ import annotations

import mlflow
import pytest


@pytest.fixture(scope="module")
def tracked(tmp_path_factory, synthetic_mitdb):
    """Real MLflow on a temporary sqlite file; ECG_DATA_DIR at the synthetic records."""
    tmp = tmp_path_factory.mktemp("tracking")
    uri = f"sqlite:///{tmp}/mlflow.db"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.setenv("ECG_DATA_DIR", str(synthetic_mitdb))
        patch.delenv("MLFLOW_RUN_ID", raising=False)
        mlflow.set_tracking_uri(uri)
        yield uri
        mlflow.set_tracking_uri(None)
