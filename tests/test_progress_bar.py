"""The package's one progress bar: drawn on a terminal's stderr, silent elsewhere."""

from __future__ import annotations

import contextlib

import pytest

from ecg_mlflow.cli.steps import progress_bar
from ecg_mlflow.progress import bar


@pytest.fixture(autouse=True)
def plain_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """rich lets TTY_COMPATIBLE, FORCE_COLOR and TERM=dumb override what a terminal is: none of them here."""
    for name in ("TTY_COMPATIBLE", "FORCE_COLOR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TERM", "xterm")


def work(enabled: bool = True) -> None:
    with bar("building mitdb beats", 3, enabled=enabled) as update:
        for record in ("100", "101", "102"):
            update(advance=1, description=f"building mitdb beats {record}")


def test_no_bar_when_stderr_is_not_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    work()
    assert capsys.readouterr() == ("", "")


def test_a_bar_on_stderr_on_a_terminal_unless_disabled(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    work()
    out, err = capsys.readouterr()
    assert out == "" and "building mitdb beats 102" in err and "3/3" in err
    work(enabled=False)
    assert capsys.readouterr() == ("", "")


def test_a_step_commands_bar_opens_at_the_first_beats_and_closes_when_done_or_failed(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    cursor_back = "\x1b[?25h"  # a stopped rich bar gives the terminal its cursor back
    with contextlib.ExitStack() as stack:
        on_progress = progress_bar("classify: beats", stack)
        assert capsys.readouterr().err == ""  # nothing drawn before the first beats
        on_progress(5, 10)
        on_progress(10, 10)
        err = capsys.readouterr().err
        assert "classify: beats" in err and "10/10" in err and cursor_back in err  # stopped when done
    with pytest.raises(RuntimeError), contextlib.ExitStack() as stack:
        progress_bar("classify: beats", stack)(5, 10)
        assert cursor_back not in capsys.readouterr().err
        raise RuntimeError("the model failed")
    assert cursor_back in capsys.readouterr().err  # stopped with the failed step, before its error is printed
