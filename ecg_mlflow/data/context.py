"""What a beat carries beside its samples, declared once: the stored context columns and the named kinds.

Every PhysioNet beat is cached with all CONTEXT_COLUMNS; a step's `context` parameter picks one
kind of CONTEXT_KINDS, and the classifier takes those columns as its second input.
"""

from __future__ import annotations

import numpy as np

from ecg_mlflow.data.errors import DataError
from ecg_mlflow.data.morphology import TEMPLATE_FEATURES, template_features
from ecg_mlflow.data.rhythm import RR_FEATURES, rr_features

CONTEXT_COLUMNS: tuple[str, ...] = RR_FEATURES + TEMPLATE_FEATURES
CONTEXT_KINDS: dict[str, tuple[str, ...]] = {
    "none": (),  # the paper: the beat alone
    "rr": RR_FEATURES,  # rhythm: R-R intervals and their ratios (data/rhythm.py)
    "rr_template": RR_FEATURES + TEMPLATE_FEATURES,  # + likeness to the patient's own beats (data/morphology.py)
}


def beat_context(qrs: np.ndarray, fs: float, labelled: np.ndarray, beats: np.ndarray) -> np.ndarray:
    """CONTEXT_COLUMNS for the labelled beats of one record: R-R from every QRS, templates from the cut beats."""
    rhythm = rr_features(qrs, fs)[labelled]
    return np.column_stack([rhythm, template_features(beats)]).astype(np.float32)


def select_context(context: np.ndarray, names: tuple[str, ...], kind: str) -> np.ndarray | None:
    """The columns of context `kind` (None for 'none'); DataError when the stored columns lack them."""
    if kind not in CONTEXT_KINDS:
        raise DataError(f"context={kind!r} is not one of {', '.join(CONTEXT_KINDS)}")
    wanted = CONTEXT_KINDS[kind]
    if not wanted:
        return None
    missing = [name for name in wanted if name not in names]
    if missing:
        raise DataError(f"the beats carry no {', '.join(missing)} context; rebuild the dataset with this version")
    return np.ascontiguousarray(context[:, [names.index(name) for name in wanted]])
