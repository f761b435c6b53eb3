"""What a run was made from: the package's code and the data, as digests that reuse compares.

`main` and label-efficiency sweeps reuse a FINISHED child run instead of training again. A git commit alone
cannot say the run is the same: an uncommitted edit to the package, or a changed record under the same
path, would silently give the old run. So every run carries
- CODE_DIGEST_TAG: the sha256 of the package's source files as they were when the run started, and
  UNCOMMITTED_TAG: whether they differed from the last commit (such a run is never reused, nor reuses);
- DATA_DIGEST_TAG: the content digest of the data it read (`data_digest`: the built dataset's own digest,
  which covers every input file's content, plus the unlabelled records' for a pretraining).
"""

from __future__ import annotations

import functools
import hashlib
import subprocess
from dataclasses import dataclass
from pathlib import Path

import mlflow

from ecg_mlflow.data.cache import stable_hash

CODE_DIGEST_TAG = "ecg_mlflow.code_digest"
UNCOMMITTED_TAG = "ecg_mlflow.code_uncommitted"
DATA_DIGEST_TAG = "ecg_mlflow.data_digest"
PACKAGE_DIR = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class CodeState:
    """The package's source as it is now: its digest, and whether it differs from the last commit."""

    digest: str
    uncommitted: bool


def code_digest(package_dir: Path = PACKAGE_DIR) -> str:
    """sha256 over every source file of the package (path and content), in a stable order."""
    total = hashlib.sha256()
    for path in sorted(package_dir.rglob("*.py")):
        with path.open("rb") as handle:
            file_hash = hashlib.file_digest(handle, "sha256").hexdigest()
        total.update(f"{path.relative_to(package_dir).as_posix()}\0{file_hash}\n".encode())
    return total.hexdigest()[:16]


def uncommitted_changes(package_dir: Path = PACKAGE_DIR) -> bool:
    """True when the package's files differ from the checkout's last commit (edited, added or deleted).

    An installed package outside a git checkout has no commit to differ from: False, and the code digest
    alone tells its runs apart.
    """
    try:
        status = subprocess.run(
            ["git", "status", "--porcelain", "--", "."],
            cwd=package_dir,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return bool(status.stdout.strip())


def code_state() -> CodeState:
    """The package's CodeState, read once per process (a run's code is what the process imported)."""
    return _code_state(PACKAGE_DIR)


@functools.cache
def _code_state(package_dir: Path) -> CodeState:
    return CodeState(code_digest(package_dir), uncommitted_changes(package_dir))


def tag_code_state() -> None:
    """CODE_DIGEST_TAG and UNCOMMITTED_TAG on the active run."""
    state = code_state()
    mlflow.set_tags({CODE_DIGEST_TAG: state.digest, UNCOMMITTED_TAG: str(state.uncommitted).lower()})


def data_digest(dataset_digest: str, unlabelled_key: str = "") -> str:
    """The digest of everything a step read as data: the built dataset's digest, plus the unlabelled
    records' cache key (their files' content) when a pretraining read any."""
    return stable_hash({"dataset": dataset_digest, "unlabelled": unlabelled_key})
