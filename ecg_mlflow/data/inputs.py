"""What the network sees of each beat, declared once: the input kinds.

The 187-sample Kachuee beat starts at the R peak, is min-max normalised per 10 s and padded with
zeros. It therefore loses three things: the P wave before the R peak (the mark of an atrial, S,
beat), the amplitude, and the neighbouring beats. The other kinds keep them, and every kind is 187
samples long, so every backbone, every pretrained encoder and every transform works on each
unchanged:

- `kachuee`: the paper's beat (physionet.beats_from_signal).
- `window`: a fixed window from 0.5 s before the R peak to 1.0 s after, 125 Hz, in mV, less the
  window's median (the baseline).
- `window_record`: the `window`, divided by the recording's own typical QRS amplitude (the median over its
  beats of the peak-to-peak of the QRS samples), so a beat reads "as tall as this patient's usual beat",
  whatever the recorder's gain, the lead's placement or the patient's build. No label is read.
- `three_beats`: a fixed window from 1.5 s before to 1.5 s after (at rest rates the previous beat,
  this one and the next), 62.5 Hz, mV less the median.
- `two_leads`: the 1.5-s window of the beat lead and of the record's second ECG lead side by side,
  94 + 93 samples at 62.5 Hz; a record with one lead repeats it.

A kind is one `register_input_kind(InputKind(...))`; `DataConfig.input`, the dataset cache, the
pretraining set (labelled and unlabelled beats), the served model (`input` in its labels), `evaluate`
and `classify` read this table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.signal import resample_poly

from ecg_mlflow.checks import declare
from ecg_mlflow.data.beats import BEAT_LENGTH, SAMPLING_RATE, resample_signal

# (leads (n_samples, k) in physical units, the rate, R peaks at that rate) -> inputs (n_peaks, 187) float32
Cutter = Callable[[np.ndarray, int, np.ndarray], np.ndarray]
DEFAULT_INPUT = "kachuee"


@dataclass(frozen=True)
class InputKind:
    name: str
    description: str
    cut: Cutter | None  # None: the paper's Kachuee beat, cut by the data builder itself
    leads: int = 1  # leads it reads: the beat lead, then the second ECG lead


INPUT_KINDS: dict[str, InputKind] = {}


def register_input_kind(kind: InputKind) -> InputKind:
    return declare(INPUT_KINDS, kind, "input kind")


def at_rate(lead: np.ndarray, fs: int, rate: int = SAMPLING_RATE, halve: bool = False) -> np.ndarray:
    """One lead at 125 Hz (62.5 with `halve`), polyphase resampled, so R peaks stay where they were."""
    signal = resample_signal(np.nan_to_num(np.asarray(lead, dtype=np.float64)), fs, rate)
    return resample_poly(signal, 1, 2) if halve else signal


def windows(signal: np.ndarray, centres: np.ndarray, before: int, length: int) -> np.ndarray:
    """`length` samples from `before` ahead of each centre (edge values past the ends), less each window's median."""
    index = np.clip(
        np.asarray(centres, dtype=np.int64)[:, None] - before + np.arange(length)[None, :], 0, len(signal) - 1
    )
    cut = signal[index] if len(signal) else np.zeros((len(centres), length))
    return (cut - np.median(cut, axis=1, keepdims=True)).astype(np.float32)


def _peaks_at(peaks: np.ndarray, fs: int, rate: float) -> np.ndarray:
    return np.rint(np.asarray(peaks, dtype=np.float64) * rate / fs).astype(np.int64)


def fixed_window(leads: np.ndarray, fs: int, peaks: np.ndarray) -> np.ndarray:
    """0.5 s before to 1.0 s after the R peak at 125 Hz (62 + 125 samples): P wave, QRS and T wave."""
    return windows(at_rate(leads[:, 0], fs), _peaks_at(peaks, fs, SAMPLING_RATE), 62, BEAT_LENGTH)


QRS_SAMPLES = slice(62 - 12, 62 + 13)  # 0.1 s either side of the R peak in a `window` (125 Hz, R at sample 62)
MIN_AMPLITUDE_MV = 1e-3  # a flat recording keeps its units rather than dividing by zero


def record_amplitude(beats: np.ndarray) -> float:
    """The recording's typical QRS amplitude: the median over its beats of each QRS's peak-to-peak (mV)."""
    if len(beats) == 0:
        return 1.0
    qrs = beats[:, QRS_SAMPLES]
    return max(float(np.median(qrs.max(axis=1) - qrs.min(axis=1))), MIN_AMPLITUDE_MV)


def record_scaled_window(leads: np.ndarray, fs: int, peaks: np.ndarray) -> np.ndarray:
    """The `window`, in units of the recording's own typical QRS amplitude (record_amplitude)."""
    beats = fixed_window(leads, fs, peaks)
    return (beats / record_amplitude(beats)).astype(np.float32)


def three_beats(leads: np.ndarray, fs: int, peaks: np.ndarray) -> np.ndarray:
    """1.5 s either side of the R peak at 62.5 Hz: the neighbours' timing and shape beside the beat's."""
    return windows(at_rate(leads[:, 0], fs, halve=True), _peaks_at(peaks, fs, SAMPLING_RATE / 2), 93, BEAT_LENGTH)


def two_leads(leads: np.ndarray, fs: int, peaks: np.ndarray) -> np.ndarray:
    """The 1.5-s window of both leads at 62.5 Hz, 94 + 93 samples; the beat lead twice when there is one lead."""
    centres = _peaks_at(peaks, fs, SAMPLING_RATE / 2)
    second = leads[:, 1] if leads.shape[1] > 1 else leads[:, 0]
    first = windows(at_rate(leads[:, 0], fs, halve=True), centres, 31, 94)
    other = windows(at_rate(second, fs, halve=True), centres, 31, BEAT_LENGTH - 94)
    return np.concatenate([first, other], axis=1)


register_input_kind(InputKind("kachuee", "the paper's beat: from the R peak, 1.2 x median R-R, [0, 1], padded", None))
register_input_kind(InputKind("window", "-0.5 s to +1.0 s around the R peak, 125 Hz, mV", fixed_window))
register_input_kind(
    InputKind(
        "window_record",
        "the window in units of the recording's typical QRS amplitude (median peak-to-peak)",
        record_scaled_window,
    )
)
register_input_kind(InputKind("three_beats", "-1.5 s to +1.5 s around the R peak, 62.5 Hz, mV", three_beats))
register_input_kind(InputKind("two_leads", "-0.5 s to +1.0 s of both leads, 62.5 Hz, mV", two_leads, leads=2))
