"""Morphology relative to the patient's own beats: how unlike its neighbours and its record a beat looks.

Inter-patient classification fails on shapes: a ventricular beat of one patient can look like a
normal beat of another. What carries over between patients is how a beat differs from *that
patient's* usual beat. Each beat is compared with two templates built without labels (so they
exist at test time too): the element-wise median of every beat of its record, and the median
of its LOCAL_BEATS neighbours on each side. Comparisons use the first COMPARE_SAMPLES samples
(0.48 s at 125 Hz from the R peak: QRS end, ST segment and T wave) of the cut beats.

  corr_record   Pearson correlation with the record template
  dist_record   RMS difference from the record template
  corr_local    Pearson correlation with the local template
  dist_local    RMS difference from the local template
  energy_ratio  energy of the beat / energy of the record template
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

TEMPLATE_FEATURES: tuple[str, ...] = ("corr_record", "dist_record", "corr_local", "dist_local", "energy_ratio")
LOCAL_BEATS = 10
COMPARE_SAMPLES = 60


def template_features(beats: np.ndarray) -> np.ndarray:
    """(n, len(TEMPLATE_FEATURES)) float32 for the (n, length) beats of one record, in time order."""
    beats = np.asarray(beats, dtype=np.float64)
    n = len(beats)
    if n == 0:
        return np.zeros((0, len(TEMPLATE_FEATURES)), dtype=np.float32)
    head = beats[:, :COMPARE_SAMPLES]
    record = np.median(head, axis=0, keepdims=True)
    padded = np.pad(head, ((LOCAL_BEATS, LOCAL_BEATS), (0, 0)), mode="edge")
    local = np.median(sliding_window_view(padded, 2 * LOCAL_BEATS + 1, axis=0), axis=-1)
    energy = np.sum(record**2)
    features = np.column_stack(
        [
            row_correlation(head, record),
            _rms(head - record),
            row_correlation(head, local),
            _rms(head - local),
            np.sum(head**2, axis=1) / energy if energy > 0 else np.ones(n),
        ]
    )
    return features.astype(np.float32)


def row_correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise Pearson correlation; 0 where either row is flat."""
    a = a - a.mean(axis=1, keepdims=True)
    b = np.broadcast_to(b - b.mean(axis=1, keepdims=True), a.shape)
    norm = np.sqrt(np.sum(a**2, axis=1) * np.sum(b**2, axis=1))
    return np.where(norm > 0, np.sum(a * b, axis=1) / np.where(norm > 0, norm, 1.0), 0.0)


def _rms(diff: np.ndarray) -> np.ndarray:
    return np.sqrt(np.mean(diff**2, axis=1))
