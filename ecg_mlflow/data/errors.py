"""The one exception type the data layer raises for problems a user can fix."""

from __future__ import annotations

from ecg_mlflow.errors import UserError


class DataError(UserError, ValueError):
    """Missing or malformed input data; the message says what is wrong and how to fix it."""
