"""The beat every source produces and every model sees: BEAT_LENGTH samples at SAMPLING_RATE Hz.

Signals come to that rate by polyphase resampling (`resample_signal`), which every input kind shares.

`BeatTable` is the one thing the first stage of the data path (records -> beats and context)
hands to the next (splits): every source, PhysioNet records or Kaggle CSVs, returns one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from scipy.signal import resample_poly

BEAT_LENGTH = 187
SAMPLING_RATE = 125
ARRAY_KINDS: tuple[str, ...] = ("x", "y", "records", "positions", "context")


def resample_signal(signal: np.ndarray, fs_in: int, fs_out: int = SAMPLING_RATE) -> np.ndarray:
    """Polyphase (anti-aliased, zero-phase) resampling, so R peaks stay where they were."""
    if fs_in == fs_out:
        return np.asarray(signal, dtype=np.float64)
    g = math.gcd(int(fs_in), int(fs_out))
    return resample_poly(np.asarray(signal, dtype=np.float64), fs_out // g, fs_in // g)


def resample_positions(positions: np.ndarray, fs_in: int, fs_out: int = SAMPLING_RATE) -> np.ndarray:
    """Sample indices at fs_in -> the nearest index at fs_out."""
    return np.rint(np.asarray(positions, dtype=np.float64) * fs_out / fs_in).astype(np.int64)


@dataclass(frozen=True)
class BeatTable:
    """Every beat of a source, in record order, with where it came from.

    Isolated beats (the Kaggle CSVs) have no record (""), no position (-1) and no context
    columns (shape (n, 0)); `test_rows` are the rows whose files fix the test set, if any.
    """

    x: np.ndarray  # float32 (n, 187)
    y: np.ndarray  # int64 (n,)
    records: np.ndarray  # str (n,)
    positions: np.ndarray  # int64 (n,): the R peak's sample at the record's own rate
    context: np.ndarray  # float32 (n, k): data/context.py columns
    leads: dict[str, str] = field(default_factory=dict)  # record -> the lead its beats were cut from
    rates: dict[str, int] = field(default_factory=dict)  # record -> its sampling rate
    test_rows: np.ndarray | None = None

    @classmethod
    def isolated(cls, x: np.ndarray, y: np.ndarray, test_rows: np.ndarray | None = None) -> BeatTable:
        """Beats with no record, no position and no rhythm context."""
        n = len(y)
        empty = np.zeros((n, 0), np.float32)
        return cls(x, y, np.full(n, ""), np.full(n, -1, np.int64), empty, test_rows=test_rows)

    def take(self, rows: np.ndarray) -> BeatTable:
        """The beats of `rows` (the test rows, which index the whole table, are not carried over)."""
        return replace(self, **{kind: getattr(self, kind)[rows] for kind in ARRAY_KINDS}, test_rows=None)

    def arrays(self, suffix: str = "") -> dict[str, np.ndarray]:
        """{kind + suffix: array} for each of ARRAY_KINDS: what the cache stores (`from_arrays` reads it back)."""
        return {f"{kind}{suffix}": getattr(self, kind) for kind in ARRAY_KINDS}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], suffix: str = "") -> BeatTable:
        return cls(*(arrays[f"{kind}{suffix}"] for kind in ARRAY_KINDS))

    @classmethod
    def concat(cls, tables: Sequence[BeatTable]) -> BeatTable:
        """The tables one after another, the records' leads and rates merged."""
        columns = (np.concatenate([getattr(t, kind) for t in tables]) for kind in ARRAY_KINDS)
        leads = {r: lead for t in tables for r, lead in t.leads.items()}
        return cls(*columns, leads=leads, rates={r: fs for t in tables for r, fs in t.rates.items()})

    @property
    def has_records(self) -> bool:
        """Whether beats carry the record they came from (what patient-wise splits need)."""
        return bool(len(self.records)) and bool(np.any(self.records != ""))
