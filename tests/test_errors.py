"""One base class for the errors a user can fix, and one exit code per kind."""

from __future__ import annotations

import pytest
import typer

from ecg_mlflow.cli.errors import reported_errors
from ecg_mlflow.config import ConfigError
from ecg_mlflow.data.errors import DataError
from ecg_mlflow.errors import UsageError, UserError
from ecg_mlflow.models.backbones import WeightsMismatchError
from ecg_mlflow.steps.children import ChildRunError
from ecg_mlflow.tracking.upstream import UpstreamError
from ecg_mlflow.tuning.objective import ObjectiveError
from ecg_mlflow.tuning.report import StudyNotFoundError
from ecg_mlflow.tuning.runner import TuningError
from ecg_mlflow.tuning.spec import StudySpecError
from ecg_mlflow.tuning.storage import StorageError

INPUT_ERRORS = (
    DataError,
    UpstreamError,
    WeightsMismatchError,
    ChildRunError,
    StorageError,
    StudyNotFoundError,
    TuningError,
    ObjectiveError,
)
USAGE_ERRORS = (ConfigError, StudySpecError)


@pytest.mark.parametrize("error", INPUT_ERRORS + USAGE_ERRORS)
def test_every_error_a_user_can_fix_is_a_user_error_with_its_exit_code(error, capsys) -> None:
    assert issubclass(error, UserError)
    expected = 2 if issubclass(error, UsageError) else 1
    with pytest.raises(typer.Exit) as leaving, reported_errors():
        raise error("record 100: the thing that is wrong; what to do")
    assert leaving.value.exit_code == expected
    assert capsys.readouterr().err.strip() == "error: record 100: the thing that is wrong; what to do"


def test_a_bare_value_error_is_a_bug_and_keeps_its_traceback() -> None:
    with pytest.raises(ValueError, match="bug"), reported_errors():
        raise ValueError("bug")
