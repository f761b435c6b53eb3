"""Rhythm context per beat: R-R interval features from R-peak times.

A supraventricular beat looks like a normal one; what gives it away is that it comes early.
A 187-sample beat cut to 1.2 x the median R-R carries no timing, so each beat gets these
numbers beside it (de Chazal et al. 2004 use the first four; the ratios make them
patient-relative, which is what lets a model carry over to patients it has never seen):

  pre_rr      seconds since the previous R peak
  post_rr     seconds to the next R peak
  local_rr    mean pre_rr over the beat and its LOCAL_BEATS neighbours on each side
  mean_rr     mean pre_rr over the RUNNING_SECONDS before the beat (the record's running rhythm)
  pre_local   pre_rr / local_rr        (< 1: premature)
  post_local  post_rr / local_rr       (> 1: compensatory pause)
  pre_mean    pre_rr / mean_rr
  post_pre    post_rr / pre_rr

Times are taken at the record's own sampling rate, from every QRS of the record (labelled
or not), so a resampled record gives the same numbers. Intervals are capped at MAX_RR_SECONDS:
a longer one is a gap in the annotations (MIT-BIH 207's flutter episodes leave 100 s without a
beat label) or a pause, and either way "very long" is all a classifier needs to know.
"""

from __future__ import annotations

import numpy as np

RR_FEATURES: tuple[str, ...] = (
    "pre_rr",
    "post_rr",
    "local_rr",
    "mean_rr",
    "pre_local",
    "post_local",
    "pre_mean",
    "post_pre",
)
LOCAL_BEATS = 10
RUNNING_SECONDS = 300.0
DEFAULT_RR_SECONDS = 0.8  # 75 bpm: only for a record with a single beat, where no interval exists
MAX_RR_SECONDS = 3.0  # 20 bpm


def rr_features(peaks: np.ndarray, fs: float) -> np.ndarray:
    """(n, len(RR_FEATURES)) float32 features for R peaks given as sample indices at `fs`.

    The first beat has no previous interval and the last no next one: each borrows its
    neighbour's, so no beat is dropped and no value is missing.
    """
    if fs <= 0:
        raise ValueError(f"fs={fs} must be > 0")
    times = np.asarray(peaks, dtype=np.float64) / float(fs)
    n = len(times)
    if n == 0:
        return np.zeros((0, len(RR_FEATURES)), dtype=np.float32)
    if np.any(np.diff(times) <= 0):
        raise ValueError("R peaks must be strictly increasing")
    if n == 1:
        pre = post = np.array([DEFAULT_RR_SECONDS])
    else:
        intervals = np.minimum(np.diff(times), MAX_RR_SECONDS)
        pre = np.concatenate([intervals[:1], intervals])
        post = np.concatenate([intervals, intervals[-1:]])
    local = _centred_mean(pre, LOCAL_BEATS)
    running = _running_mean(times, pre, RUNNING_SECONDS)
    features = np.column_stack([pre, post, local, running, pre / local, post / local, pre / running, post / pre])
    return features.astype(np.float32)


def _centred_mean(values: np.ndarray, half_width: int) -> np.ndarray:
    """Mean of values[i - half_width : i + half_width + 1], clipped at the ends."""
    n = len(values)
    cumulative = np.concatenate([[0.0], np.cumsum(values)])
    low = np.clip(np.arange(n) - half_width, 0, n)
    high = np.clip(np.arange(n) + half_width + 1, 0, n)
    return (cumulative[high] - cumulative[low]) / (high - low)


def _running_mean(times: np.ndarray, values: np.ndarray, seconds: float) -> np.ndarray:
    """Mean of the values of beats in (t - seconds, t], causal: only the past and the beat itself."""
    cumulative = np.concatenate([[0.0], np.cumsum(values)])
    high = np.arange(1, len(times) + 1)
    low = np.searchsorted(times, times - seconds, side="right")
    return (cumulative[high] - cumulative[low]) / (high - low)
