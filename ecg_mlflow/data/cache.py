"""Atomic, parameter-keyed cache of built datasets: arrays.npz + manifest.json per key.

The raw data directory may be read-only, so built datasets live in data.spec.resolve_cache_dir().
A build is written into a temporary sibling directory and renamed into place, so an interrupted
build never leaves a half-written entry that a later run would trust; the temporary folder of a
build whose process has died (killed mid-write) is removed by the next write.

Inputs are keyed by their content (sha256), so an edited record of the same size is rebuilt, not
reused. Hashing all 48 MIT-BIH records every time would cost about a second, so each file's
hash is remembered in INPUT_HASHES_FILE beside the entries, keyed by its size and modification
time, and only files that changed are read again.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ecg_mlflow.processes import pid_is_dead

ARRAYS_FILE = "arrays.npz"
MANIFEST_FILE = "manifest.json"
INPUT_HASHES_FILE = "input-sha256.json"
TMP_PREFIX = ".tmp-"
CACHE_FORMAT = 1


def stable_hash(value: Any, length: int = 16) -> str:
    """Short sha256 hex of a JSON-able value with sorted keys (same parameters -> same key)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def array_checksums(arrays: dict[str, np.ndarray]) -> dict[str, str]:
    """sha256 of each array's bytes, dtype and shape: what the manifest promises was stored."""
    sums = {}
    for name, array in sorted(arrays.items()):
        h = hashlib.sha256(f"{array.dtype.str}{array.shape}".encode())
        h.update(np.ascontiguousarray(array).tobytes())
        sums[name] = h.hexdigest()
    return sums


def file_sha256(path: Path) -> str:
    """sha256 hex of a file's bytes; hashlib reads it in blocks, so a large record never sits whole in memory."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def content_digests(files: list[Path], cache_dir: Path) -> dict[str, str]:
    """{absolute path: sha256} of the files, reading only those whose size or mtime changed since last time."""
    memo_path = Path(cache_dir) / INPUT_HASHES_FILE
    try:
        memo = json.loads(memo_path.read_text())
    except (OSError, ValueError):
        memo = {}
    digests, changed = {}, False
    for path in files:
        stat = Path(path).stat()
        key = str(Path(path).resolve())
        known = memo.get(key)
        if not (isinstance(known, list) and known[:2] == [stat.st_size, stat.st_mtime_ns]):
            known = [stat.st_size, stat.st_mtime_ns, file_sha256(Path(path))]
            memo[key], changed = known, True
        digests[key] = known[2]
    if changed:
        write_atomically(memo_path, json.dumps(memo, sort_keys=True))
    return digests


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text` in one step: a reader sees the old content or the new, never part of it. The
    file is 0600 from its creation (mkstemp), so a secret written this way is never readable by others."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{path.name}-{os.getpid()}-", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def remove_stale_temporaries(folder: Path, prefix: str = TMP_PREFIX) -> list[Path]:
    """Remove the temporary files and folders ('<prefix><name>-<pid>-<random>') of writers whose process is gone."""
    removed = []
    for path in Path(folder).glob(f"{prefix}*"):
        pid = _owner_pid(path.name, prefix)
        if pid is None or pid == os.getpid() or not pid_is_dead(pid):
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def _owner_pid(name: str, prefix: str) -> int | None:
    """The writer's process ID, the field before the random suffix in '<prefix><name>-<pid>-<random>'."""
    parts = name.removeprefix(prefix).split("-")
    return int(parts[-2]) if len(parts) >= 3 and parts[-2].isdigit() else None


def read_entry(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
    """The cached arrays and manifest, or None when absent or not matching its checksums (then rebuild)."""
    manifest_path, arrays_path = path / MANIFEST_FILE, path / ARRAYS_FILE
    if not (manifest_path.is_file() and arrays_path.is_file()):
        return None
    try:
        manifest = json.loads(manifest_path.read_text())
        with np.load(arrays_path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except (OSError, ValueError, json.JSONDecodeError):
        return None
    if manifest.get("checksums") != array_checksums(arrays):
        return None
    return arrays, manifest


def write_entry(path: Path, arrays: dict[str, np.ndarray], manifest: dict[str, Any]) -> dict[str, Any]:
    """Write arrays + manifest (with checksums) to a temp dir, then rename it to `path` in one step."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    manifest = {**manifest, "checksums": array_checksums(arrays), "cache_format": CACHE_FORMAT}
    remove_stale_temporaries(path.parent)
    tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{path.name}-{os.getpid()}-", dir=path.parent))
    try:
        np.savez_compressed(tmp / ARRAYS_FILE, **arrays)
        (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True))
        if path.exists():  # a stale or corrupt entry; a concurrent builder's identical one is fine to replace
            shutil.rmtree(path, ignore_errors=True)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def read_or_build(
    cache_dir: Path,
    name: str,
    params: dict[str, Any],
    build: Callable[[], tuple[dict[str, np.ndarray], dict[str, Any]]],
    rebuild: bool = False,
) -> tuple[dict[str, np.ndarray], dict[str, Any], str]:
    """(arrays, manifest, digest) of the entry `params` key: built and written (atomically) when absent,
    corrupt or `rebuild`. The digest covers the stored arrays and the parameters: what a run records as its data."""
    path = Path(cache_dir) / f"{name}-{stable_hash(params)}"
    cached = None if rebuild else read_entry(path)
    if cached is None:
        arrays, manifest = build()
        cached = arrays, write_entry(path, arrays, manifest)
    arrays, manifest = cached
    digest = stable_hash({"checksums": manifest["checksums"], "parameters": params})
    return arrays, {**manifest, "cache_dir": str(path)}, digest
