"""Atomic, parameter-keyed cache of built datasets: arrays.npz + manifest.json per key.

The raw data directory may be read-only, so built datasets live in config.resolve_cache_dir().
A build is written into a temporary sibling directory and renamed into place, so an interrupted
build never leaves a half-written entry that a later run would trust.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

ARRAYS_FILE = "arrays.npz"
MANIFEST_FILE = "manifest.json"
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


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def entry_dir(cache_dir: Path, name: str, key: str) -> Path:
    return Path(cache_dir) / f"{name}-{key}"


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
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{path.name}-", dir=path.parent))
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
