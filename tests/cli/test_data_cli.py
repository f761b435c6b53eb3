"""`ecg-mlflow data ...` through typer's CliRunner."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from ecg_mlflow.cli import app

runner = CliRunner()


def test_every_data_command_has_help() -> None:
    for command in ("build", "info", "download", "plot"):
        result = runner.invoke(app, ["data", command, "--help"])
        assert result.exit_code == 0 and "Usage" in result.output


def test_build_then_info_json(synthetic_mitdb, tmp_path) -> None:
    args = ["--data-dir", str(synthetic_mitdb), "--cache-dir", str(tmp_path)]
    built = runner.invoke(app, ["data", "build", "mit", *args])
    assert built.exit_code == 0, built.output
    assert "mit-physionet-intra" in built.output
    result = runner.invoke(app, ["data", "info", "mit", "--json", *args])
    assert result.exit_code == 0, result.output
    counts = json.loads(result.stdout)
    assert set(counts) == {"train", "val", "test"} and set(counts["train"]) == {"N", "S", "V", "F", "Q"}
    assert sum(sum(c.values()) for c in counts.values()) == 364


def test_info_inter_split(synthetic_mitdb, tmp_path) -> None:
    args = ["--data-dir", str(synthetic_mitdb), "--cache-dir", str(tmp_path), "--split", "inter", "--json"]
    counts = json.loads(runner.invoke(app, ["data", "info", "mit", *args]).stdout)
    assert sum(counts["test"].values()) == 146  # records 100 and 103


def test_missing_data_is_a_clear_error_without_traceback(tmp_path) -> None:
    result = runner.invoke(app, ["data", "info", "mit", "--data-dir", str(tmp_path), "--cache-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "ecg-mlflow data download mitdb" in result.stderr
    assert "Traceback" not in result.output


def test_bad_parameter_is_a_clear_error(synthetic_mitdb, tmp_path) -> None:
    # a bad parameter is a usage error (exit 2), as in every command
    result = runner.invoke(app, ["data", "build", "ptb", "--split", "inter", "--data-dir", str(synthetic_mitdb)])
    assert (
        result.exit_code == 2 and "split='inter'" in result.stderr
    )  # a bad parameter: usage error, as in every command


def test_plot_writes_a_png(synthetic_mitdb, tmp_path) -> None:
    out = tmp_path / "beats.png"
    args = ["--data-dir", str(synthetic_mitdb), "--cache-dir", str(tmp_path / "c"), "--out", str(out)]
    result = runner.invoke(app, ["data", "plot", "mit", *args])
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_download_from_a_local_mirror_with_bad_checksum(synthetic_mitdb, tmp_path) -> None:
    mirror = synthetic_mitdb / "mitdb"
    (tmp_path / "src").mkdir()
    for p in mirror.iterdir():
        (tmp_path / "src" / p.name).write_bytes(p.read_bytes())
    (tmp_path / "src" / "SHA256SUMS.txt").write_text("00  100.dat\n")
    result = runner.invoke(
        app, ["data", "download", "mitdb", "--data-dir", str(tmp_path / "d"), "--source", str(tmp_path / "src")]
    )
    assert result.exit_code == 1 and "checksum mismatch" in result.stderr
