"""The 8 self-supervised transforms of the paper, vectorised over a batch of beats.

Beats are Kaggle-format: float32 (n, 187), values in [0, 1], trailing zero padding.
Every transform works on the unpadded part of each beat (its length is the index of
its last non-zero sample + 1) and pads/crops the result back to the input width, so
the padding itself never tells the network which transform was applied.

Random transforms (noise, shuffle) draw from the Generator they are given, so calling
again with the same Generator gives fresh draws (new augmentations each epoch) while a
freshly seeded Generator reproduces them exactly.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
from pydantic import Field

from ecg_mlflow.checks import validated, whole_number
from ecg_mlflow.data.errors import DataError
from ecg_mlflow.errors import ConfigError

# Beats per chunk in build_representation_set: bounds the temporaries to a few MB.
_CHUNK = 8192


@validated
class TransformConfig:
    """Magnitudes of the 8 self-supervised transforms; the paper's values are the defaults.

    noise_std is relative to the beat's [0, 1] range; 0.05 keeps the QRS visible while
    being clearly detectable, and 4 shuffle segments cut a 187-sample beat roughly
    at P, QRS, ST and T.
    """

    noise_std: Annotated[float, Field(gt=0.0, le=1.0)] = 0.05
    shuffle_segments: Annotated[int, Field(ge=2, le=32), whole_number] = 4
    stretch_factor: Annotated[float, Field(gt=1.0, le=8.0)] = 2.0
    squeeze_factor: Annotated[float, Field(ge=0.05, lt=1.0)] = 0.5
    scale_factor: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.1


def transform_index(transform: int | str) -> int:
    """A transform by number (0-7) or name ("negation", ...) -> its number; ConfigError for anything else."""
    if isinstance(transform, str):
        if transform not in TRANSFORM_NAMES:
            raise ConfigError(f"unknown transform {transform!r}; expected one of {', '.join(TRANSFORM_NAMES)}")
        return TRANSFORM_NAMES.index(transform)
    try:
        index = operator.index(transform)
    except TypeError:
        index = -1
    if isinstance(transform, bool) or not 0 <= index < N_TRANSFORMS:
        choices = ", ".join(TRANSFORM_NAMES)
        raise ConfigError(f"transform={transform!r} must be a number in [0, {N_TRANSFORMS - 1}] or one of {choices}")
    return index


def beat_lengths(beats: np.ndarray) -> np.ndarray:
    """Length of each beat without its zero padding: index of the last non-zero sample + 1 (0 if all zero)."""
    beats = _as_batch(beats)
    nonzero = beats != 0
    last_from_end = np.argmax(nonzero[:, ::-1], axis=1)
    lengths = beats.shape[1] - last_from_end
    return np.where(nonzero.any(axis=1), lengths, 0).astype(np.int64)


def apply_transform(
    beats: np.ndarray, transform: int | str, config: TransformConfig, rng: np.random.Generator
) -> np.ndarray:
    """One transform applied to every beat; returns a new float32 array of the same shape."""
    beats = _as_batch(beats)
    fn = _TRANSFORMS[transform_index(transform)]
    out = np.empty(beats.shape, dtype=np.float32)
    for start in range(0, len(beats), _CHUNK):
        chunk = beats[start : start + _CHUNK]
        out[start : start + len(chunk)] = fn(chunk, beat_lengths(chunk), config, rng)
    return out


def build_representation_set(
    beats: np.ndarray,
    config: TransformConfig,
    rng: np.random.Generator,
    out: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Every beat in all 8 versions -> x (8n, width) float32 and y (8n, 8) float32 one-hot.

    Rows are interleaved by beat: rows 8i..8i+7 are beat i under transforms 0..7, so a
    split at a multiple of 8 keeps all versions of a beat on the same side (no leakage
    of a beat's shape between train and validation). Shuffle before training.
    Work is done in chunks into a preallocated output; pass ``out`` (from an earlier
    call) to regenerate the random transforms each epoch without reallocating.
    """
    beats = _as_batch(beats)
    n, width = beats.shape
    shape = (n * N_TRANSFORMS, width)
    if out is None:
        out = np.empty(shape, dtype=np.float32)
    elif out.shape != shape or out.dtype != np.float32:
        raise ValueError(f"out must be float32 {shape}, got {out.dtype} {out.shape}")
    by_beat = out.reshape(n, N_TRANSFORMS, width)
    for start in range(0, n, _CHUNK):
        chunk = beats[start : start + _CHUNK]
        lengths = beat_lengths(chunk)
        for index, fn in enumerate(_TRANSFORMS):
            by_beat[start : start + len(chunk), index] = fn(chunk, lengths, config, rng)
    return out, representation_labels(n)


def representation_labels(n_beats: int) -> np.ndarray:
    """The (8n, 8) one-hot labels matching build_representation_set's row order."""
    return np.tile(np.eye(N_TRANSFORMS, dtype=np.float32), (n_beats, 1))


def plot_transforms(beat: np.ndarray, config: TransformConfig, path: str | Path, seed: int = 0) -> Path:
    """The paper's Figure 1: one beat under each of the 8 transforms, 2x4 grid, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    beat = np.asarray(beat, dtype=np.float32).reshape(1, -1)
    rng = np.random.default_rng(seed)
    fig, axes = plt.subplots(2, 4, figsize=(14, 5.5), sharex=True, sharey=True)
    for index, ax in enumerate(axes.flat):
        ax.plot(apply_transform(beat, index, config, rng)[0], linewidth=1.0)
        ax.plot(beat[0], color="grey", linewidth=0.6, alpha=0.4)
        ax.set_title(f"{index}: {TRANSFORM_NAMES[index]}")
        ax.grid(alpha=0.3)
    fig.suptitle("Self-supervised transforms (grey: original beat)")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def synthetic_beats(n: int, rng: np.random.Generator, width: int = 187) -> np.ndarray:
    """Kaggle-like beats for tests, benchmarks and smoke runs without the data: float32 (n, width).

    Each starts near 1.0 at the R peak, has an S dip and a T wave, stays in (0, 1] up to a
    random length in [width // 3, width] and is zero after it, like the Kaggle CSVs.
    """
    t = np.arange(width, dtype=np.float32)[None, :]
    lengths = rng.integers(width // 3, width + 1, size=(n, 1))
    rr = lengths.astype(np.float32)
    t_peak = rr * rng.uniform(0.3, 0.5, size=(n, 1))
    t_amp = rng.uniform(0.1, 0.4, size=(n, 1))
    beats = (
        0.25
        + 0.75 * np.exp(-((t / rng.uniform(2.0, 4.0, size=(n, 1))) ** 2))
        - 0.2 * np.exp(-(((t - 6.0) / 2.5) ** 2))
        + t_amp * np.exp(-(((t - t_peak) / (0.08 * rr)) ** 2))
        + rng.normal(0.0, 0.01, size=(n, width))
    )
    beats = np.clip(beats, 0.01, 1.0).astype(np.float32)
    beats[t >= lengths] = 0.0
    return beats


# --- the transforms: (beats, lengths, config, rng) -> new (n, width) float32 ---------------


def _original(beats: np.ndarray, lengths: np.ndarray, config: TransformConfig, rng: np.random.Generator) -> np.ndarray:
    return beats.copy()


def _negation(beats: np.ndarray, lengths: np.ndarray, config: TransformConfig, rng: np.random.Generator) -> np.ndarray:
    out = np.negative(beats)
    out += 0.0  # -0.0 -> 0.0 in the padding
    return out


def _inversion(beats: np.ndarray, lengths: np.ndarray, config: TransformConfig, rng: np.random.Generator) -> np.ndarray:
    positions = _positions(beats.shape[1])
    source = lengths[:, None] - 1 - positions  # reverse within the unpadded part only
    return _gather(beats, source, positions < lengths[:, None])


def _noise(beats: np.ndarray, lengths: np.ndarray, config: TransformConfig, rng: np.random.Generator) -> np.ndarray:
    noise = rng.standard_normal(beats.shape, dtype=np.float32)
    noise *= np.float32(config.noise_std)
    noise *= _positions(beats.shape[1]) < lengths[:, None]  # padding stays zero
    noise += beats
    return noise


def _shuffle(beats: np.ndarray, lengths: np.ndarray, config: TransformConfig, rng: np.random.Generator) -> np.ndarray:
    n = len(beats)
    k = config.shuffle_segments
    bounds = (lengths[:, None] * np.arange(k + 1)[None, :]) // k  # (n, k+1) source segment edges
    seg_start, seg_len = bounds[:, :-1], np.diff(bounds, axis=1)
    order = _non_identity_permutations(n, k, rng)  # output segment m <- source segment order[:, m]
    out_len = np.take_along_axis(seg_len, order, axis=1)
    out_start = np.cumsum(out_len, axis=1) - out_len
    src_start = np.take_along_axis(seg_start, order, axis=1)
    positions = _positions(beats.shape[1])
    source = np.full(beats.shape, -1, dtype=np.int32)
    for m in range(k):
        offset = positions - out_start[:, m : m + 1]
        inside = (offset >= 0) & (offset < out_len[:, m : m + 1])
        np.copyto(source, (src_start[:, m : m + 1] + offset).astype(np.int32), where=inside)
    return _gather(beats, source, source >= 0)


def _stretch(beats: np.ndarray, lengths: np.ndarray, config: TransformConfig, rng: np.random.Generator) -> np.ndarray:
    return _resample(beats, lengths, config.stretch_factor)


def _squeeze(beats: np.ndarray, lengths: np.ndarray, config: TransformConfig, rng: np.random.Generator) -> np.ndarray:
    return _resample(beats, lengths, config.squeeze_factor)


def _scale(beats: np.ndarray, lengths: np.ndarray, config: TransformConfig, rng: np.random.Generator) -> np.ndarray:
    return beats * np.float32(config.scale_factor)


@dataclass(frozen=True)
class Transform:
    """One self-supervised task: a pretraining head is named after it and learns to recognise it."""

    name: str
    apply: Callable[[np.ndarray, np.ndarray, TransformConfig, np.random.Generator], np.ndarray]
    description: str
    magnitude: str | None = None  # the TransformConfig field that sets its strength (studies tune it)


# The ordered table every other place reads: the pretraining heads and their targets (models/ssl.py),
# Figure 1 (plot_transforms), the configs (TRANSFORM_NAMES, head_weights) and the studies. To add a
# transform: write `_name(beats, lengths, config, rng)` above, add its magnitude to TransformConfig if
# it has one, and append it here (appending keeps the index of every existing head).
TRANSFORMS: tuple[Transform, ...] = (
    Transform("original", _original, "the beat unchanged"),
    Transform("negation", _negation, "the beat multiplied by -1"),
    Transform("inversion", _inversion, "the beat reversed in time (within its unpadded part)"),
    Transform("noise", _noise, "Gaussian noise added", "noise_std"),
    Transform("shuffle", _shuffle, "the beat cut into segments, put back in another order", "shuffle_segments"),
    Transform("stretch", _stretch, "the beat resampled longer, then cropped", "stretch_factor"),
    Transform("squeeze", _squeeze, "the beat resampled shorter, then zero-padded", "squeeze_factor"),
    Transform("scale", _scale, "the amplitude multiplied by a factor", "scale_factor"),
)
TRANSFORM_NAMES: tuple[str, ...] = tuple(t.name for t in TRANSFORMS)
N_TRANSFORMS = len(TRANSFORMS)
_TRANSFORMS = tuple(t.apply for t in TRANSFORMS)


# --- helpers ------------------------------------------------------------------------------


def _as_batch(beats: np.ndarray) -> np.ndarray:
    """float32 (n, length) beats, length >= 1; DataError naming what is wrong with anything else."""
    try:
        beats = np.asarray(beats, dtype=np.float32)
    except (TypeError, ValueError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DataError(f"beats must be numbers: {reason}") from None
    if beats.ndim == 3 and beats.shape[2] == 1:
        beats = beats[:, :, 0]
    if beats.ndim != 2 or beats.shape[1] == 0:
        raise DataError(f"beats must be (n, length) or (n, length, 1) with length >= 1, got shape {beats.shape}")
    return beats


def _positions(width: int) -> np.ndarray:
    return np.arange(width, dtype=np.int32)[None, :]


def _gather(beats: np.ndarray, source: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """out[i, j] = beats[i, source[i, j]] where valid, else 0 (the padding)."""
    index = np.clip(source, 0, beats.shape[1] - 1)
    out = np.take_along_axis(beats, index, axis=1)
    out *= valid
    return out


def _non_identity_permutations(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """n random permutations of range(k), none of them the identity (redraw those that are)."""
    identity = np.arange(k)
    order = rng.permuted(np.broadcast_to(identity, (n, k)), axis=1)
    redraw = (order == identity).all(axis=1)
    while redraw.any():
        order[redraw] = rng.permuted(np.broadcast_to(identity, (int(redraw.sum()), k)), axis=1)
        redraw = (order == identity).all(axis=1)
    return order


def _resample(beats: np.ndarray, lengths: np.ndarray, factor: float) -> np.ndarray:
    """Linear interpolation of each unpadded beat to round(L * factor) samples, then crop/pad."""
    new_lengths = np.maximum(np.rint(lengths * factor).astype(np.int64), 1)
    new_lengths = np.where(lengths > 0, new_lengths, 0)
    positions = _positions(beats.shape[1])
    # Endpoints map to endpoints: output j <- source j * (L - 1) / (M - 1).
    step = (np.maximum(lengths, 1) - 1) / np.maximum(new_lengths - 1, 1)
    source = positions * step[:, None].astype(np.float32)
    low = np.floor(source).astype(np.int32)
    weight = source - low
    high = np.minimum(low + 1, np.maximum(lengths - 1, 0)[:, None].astype(np.int32))
    valid = positions < new_lengths[:, None]
    a = _gather(beats, low, valid)
    b = _gather(beats, high, valid)
    a *= 1.0 - weight
    b *= weight
    a += b
    return a
