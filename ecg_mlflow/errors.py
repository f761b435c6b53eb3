"""The errors a user can fix, and the exit code the command line gives each kind.

Every command catches UserError (and nothing broader): it prints the message on one line and
exits with the error's `exit_code`. Anything else is a bug and keeps its traceback.
  1  the input cannot be used: data, an upstream run or model, a storage, a failed child run
  2  a parameter or a study file is wrong (as click/typer do for a bad option)
  130  interrupted (Ctrl-C, SIGTERM)
"""

from __future__ import annotations

from typing import ClassVar


class UserError(Exception):
    """A problem the user can fix; the message names the thing and what to do."""

    exit_code: ClassVar[int] = 1


class UsageError(UserError):
    """A parameter value or a study file that cannot be used; the message names the field."""

    exit_code: ClassVar[int] = 2


EXIT_INTERRUPTED = 130


class ConfigError(UsageError, ValueError):
    """A parameter value that cannot be used; the message names the parameter."""
