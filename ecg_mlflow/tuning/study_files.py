"""Reading study files: YAML, the `base:` chain, and --set overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ecg_mlflow.tuning.names import StudySpecError
from ecg_mlflow.tuning.spec import StudySpec, parse_study


def load_study_file(path: str | Path, overrides: dict[str, Any] | None = None) -> StudySpec:
    """Read and validate studies/NAME.yaml (with its `base:` chain); StudySpecError names the file and key."""
    path = Path(path)
    raw = _read_with_base(path, seen=())
    return parse_study(raw, source=str(path), default_name=path.stem, overrides=overrides)


def parse_set(items: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """--set key=value ... -> {key: value}; values are read as YAML scalars (1, 0.5, true, cnn)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key or not key.isprintable():
            raise StudySpecError(f"--set {item!r}: expected key=value")
        try:
            parsed = yaml.safe_load(value) if value.strip() else ""
        except yaml.YAMLError:
            parsed = value
        if isinstance(parsed, list):
            parsed = ",".join(str(v) for v in parsed)
        elif parsed is not None and not isinstance(parsed, bool | int | float | str):
            parsed = value
        out[key] = value if parsed is None else parsed
    return out


def _read_yaml(path: Path) -> Any:
    """The YAML document of a study file; StudySpecError (one line) for a missing, unreadable or invalid file."""
    try:
        if not path.is_file():
            raise StudySpecError(f"{path}: no such study file")
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise StudySpecError(f"{path}: cannot read the study file ({exc.strerror or type(exc).__name__})") from None
    except UnicodeDecodeError as exc:
        raise StudySpecError(f"{path}: not a UTF-8 text file ({exc.reason} at byte {exc.start})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise StudySpecError(f"{path}: not valid YAML: {_yaml_problem(exc)}") from None
    except RecursionError:
        raise StudySpecError(f"{path}: not valid YAML: nested too deeply") from None


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """A YAML error on one line: what is wrong and where (PyYAML's own message quotes the line below it)."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem:
        where = f" (line {exc.problem_mark.line + 1}, column {exc.problem_mark.column + 1})" if exc.problem_mark else ""
        context = f"{exc.context}: " if exc.context else ""
        return " ".join(f"{context}{exc.problem}{where}".split())
    return " ".join(str(exc).split()) or type(exc).__name__


def _read_with_base(path: Path, seen: tuple[Path, ...]) -> Any:
    """A study file with `base: other.yaml` (relative to it) is that file with its own keys laid over.

    `fixed` and `search_space` merge key by key (a key fixed here leaves the base's search space and
    the other way round, since a parameter is either fixed or searched; `key: null` drops the base's
    key); other keys replace the base's; `name` is never inherited (the file's own, else its stem).
    """
    raw = _read_yaml(path)
    if not isinstance(raw, dict) or "base" not in raw:
        return raw
    if not isinstance(raw["base"], str) or not raw["base"].strip() or not raw["base"].isprintable():
        raise StudySpecError(f"{path}: base: {raw['base']!r} is not a file name; give another study file's path")
    base_path = (path.parent / raw["base"]).resolve()
    if base_path in seen or base_path == path.resolve():
        raise StudySpecError(f"{path}: base: {raw['base']} leads back to itself")
    base = _read_with_base(base_path, (*seen, path.resolve()))
    if not isinstance(base, dict):
        raise StudySpecError(f"{path}: base: {raw['base']} is not a study file")
    for where, document in ((path, raw), (base_path, base)):  # merged key by key: both must be mappings
        for key in ("fixed", "search_space"):
            if not isinstance(document.get(key) or {}, dict):
                kind = type(document[key]).__name__
                raise StudySpecError(f"{where}: {key}: expected a mapping of parameter names, got {kind}")
    merged = {k: v for k, v in base.items() if k != "name"}
    own = {k: v for k, v in raw.items() if k != "base"}
    fixed = {**(base.get("fixed") or {}), **(own.pop("fixed", None) or {})}
    space = {**(base.get("search_space") or {}), **(own.pop("search_space", None) or {})}
    own_fixed, own_space = set(raw.get("fixed") or {}), set(raw.get("search_space") or {})
    merged.update(own)
    merged["fixed"] = {k: v for k, v in fixed.items() if k not in own_space and v is not None}
    merged["search_space"] = {k: v for k, v in space.items() if k not in own_fixed and v is not None}
    return merged
