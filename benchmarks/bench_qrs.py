"""Benchmark: QRS detectors against the MIT-BIH reference beats (Se, +P, F1, timing error, speed), also at 128/257 Hz.

taskset -c 1 env OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_qrs.py --data-dir ../shared/data --minutes 10 \
    --out qrs.json

Every record's MLII lead (V5 in 102 and 104, as in the dataset build) is compared with its beat
annotations (the AAMI beat symbols; rhythm, noise and flutter-wave marks are not beats): a detection
within +-50 ms of a beat is a true positive (one-to-one, ecg_mlflow.data.qrs.match_peaks). Figures
are gross (pooled over records). Each library detector runs once per record; its raw output and the
snapped output (ecg_mlflow.data.qrs.DETECTORS = library + snap_to_r_peak) are both scored, the
snapped one timed as detection + snap. neurokit2 is measured when importable (it is not a project
dependency: pip install --target /tmp/nk2 neurokit2 pywavelets, then PYTHONPATH=/tmp/nk2).
At 128 and 257 Hz (SVDB, INCART) the signal is resampled with resample_poly, the reference peaks are
scaled to that rate, and the project's detectors (DETECTORS) run on it; resampling is not timed.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import platform
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import wfdb
from scipy.signal import resample_poly

from ecg_mlflow.data.qrs import (
    DEFAULT_DETECTOR,
    DETECTORS,
    LIBRARY_DETECTORS,
    clean_signal,
    match_peaks,
    snap_to_r_peak,
)
from ecg_mlflow.data.records import choose_lead
from ecg_mlflow.data.spec import resolve_data_dir

TOLERANCE_S = 0.05
MIT_FS = 360
# The MIT-BIH beat symbols (ecg_mlflow.data.aami.SYMBOL_TO_AAMI); rhythm, noise, '!' flutter waves are not beats.
BEAT_SYMBOLS = frozenset(("N", "L", "R", "e", "j", "A", "a", "J", "S", "V", "E", "F", "/", "f", "Q"))
Detector = Callable[[np.ndarray, float], np.ndarray]


@dataclass
class Record:
    name: str
    lead: str
    signal: np.ndarray
    beats: np.ndarray  # reference beat sample indices at MIT_FS


@dataclass
class Score:
    """Pooled counts and times of one detector at one rate; per-record rows for the worst-record list."""

    tp: int = 0
    fn: int = 0
    fp: int = 0
    abs_error_s: float = 0.0
    wall_s: float = 0.0
    cpu_s: float = 0.0
    signal_s: float = 0.0
    records: list[dict] = field(default_factory=list)

    def add(self, record: str, reference: np.ndarray, detected: np.ndarray, fs: float, n: int, wall: float, cpu: float):
        ref_idx, det_idx = match_peaks(reference, detected, TOLERANCE_S * fs)
        tp = len(ref_idx)
        fn, fp = len(reference) - tp, len(detected) - tp
        error = float(np.abs(reference[ref_idx] - detected[det_idx]).sum()) / fs
        self.tp, self.fn, self.fp = self.tp + tp, self.fn + fn, self.fp + fp
        self.abs_error_s += error
        self.wall_s, self.cpu_s, self.signal_s = self.wall_s + wall, self.cpu_s + cpu, self.signal_s + n / fs
        self.records.append({"record": record, "tp": tp, "fn": fn, "fp": fp, **rates(tp, fn, fp)})

    def summary(self) -> dict:
        hours = self.signal_s / 3600
        worst = sorted(self.records, key=lambda r: (r["f1"], r["record"]))[:3]
        return {
            **rates(self.tp, self.fn, self.fp),
            "tp": self.tp,
            "fn": self.fn,
            "fp": self.fp,
            "timing_error_ms": 1000 * self.abs_error_s / self.tp if self.tp else float("nan"),
            "wall_s_per_hour": self.wall_s / hours,
            "cpu_s_per_hour": self.cpu_s / hours,
            "hours": hours,
            "worst3": [{"record": r["record"], "f1": r["f1"]} for r in worst],
            "per_record": self.records,
        }


def rates(tp: int, fn: int, fp: int) -> dict[str, float]:
    """Sensitivity, positive predictivity and F1 (0 when undefined)."""
    return {
        "sensitivity": tp / (tp + fn) if tp + fn else 0.0,
        "positive_predictivity": tp / (tp + fp) if tp + fp else 0.0,
        "f1": 2 * tp / (2 * tp + fn + fp) if tp + fn + fp else 0.0,
    }


def load_records(mitdb: Path, minutes: float, names: list[str] | None) -> list[Record]:
    """The preferred lead and the reference beats of each record, cut to its first `minutes` (0 = whole)."""
    if not names:
        listing = mitdb / "RECORDS"
        names = listing.read_text().split() if listing.is_file() else sorted(p.stem for p in mitdb.glob("*.hea"))
    records = []
    for name in names:
        header = wfdb.rdheader(str(mitdb / name))
        lead = choose_lead(header.sig_name)
        sampto = min(header.sig_len, round(minutes * 60 * header.fs)) if minutes > 0 else header.sig_len
        signal = wfdb.rdrecord(str(mitdb / name), channels=[lead], sampto=sampto).p_signal[:, 0]
        ann = wfdb.rdann(str(mitdb / name), "atr", sampto=sampto)
        beats = np.array([s for s, sym in zip(ann.sample, ann.symbol, strict=True) if sym in BEAT_SYMBOLS])
        records.append(Record(name, header.sig_name[lead], clean_signal(signal), beats.astype(np.int64)))
    return records


def neurokit_detectors() -> dict[str, Detector]:
    """neurokit2's ecg_clean + ecg_peaks with matching methods, when neurokit2 is importable."""
    try:
        import neurokit2 as nk
    except ImportError:
        return {}

    def make(method: str) -> Detector:
        def detect(signal: np.ndarray, fs: float) -> np.ndarray:
            sink = io.StringIO()
            with warnings.catch_warnings(), contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                warnings.simplefilter("ignore")
                cleaned = nk.ecg_clean(signal, sampling_rate=fs, method=method)
                _, info = nk.ecg_peaks(cleaned, sampling_rate=fs, method=method)
            return np.unique(np.asarray(info["ECG_R_Peaks"], dtype=np.int64))

        return detect

    return {f"nk2-{m}": make(m) for m in ("neurokit", "pantompkins1985")}


def timed(fn: Callable[..., np.ndarray], *args: object) -> tuple[np.ndarray, float, float]:
    """fn(*args), its wall-clock and its CPU seconds (CPU time is not inflated by other jobs on the core)."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn(*args)
    return out, time.perf_counter() - wall, time.process_time() - cpu


def run(records: list[Record], rates_hz: list[int], use_neurokit: bool) -> dict[str, dict]:
    library = {**LIBRARY_DETECTORS, **(neurokit_detectors() if use_neurokit else {})}
    scores: dict[tuple[str, int], Score] = {}
    for rec in records:
        n = len(rec.signal)
        for name, detect in library.items():
            raw, wall, cpu = timed(detect, rec.signal, MIT_FS)
            snapped, s_wall, s_cpu = timed(snap_to_r_peak, rec.signal, raw, MIT_FS)
            scores.setdefault((f"{name}-raw", MIT_FS), Score()).add(rec.name, rec.beats, raw, MIT_FS, n, wall, cpu)
            label = name if name in DETECTORS else f"{name}+snap"
            scores.setdefault((label, MIT_FS), Score()).add(
                rec.name, rec.beats, snapped, MIT_FS, n, wall + s_wall, cpu + s_cpu
            )
        for fs in rates_hz:
            g = math.gcd(MIT_FS, fs)
            signal = resample_poly(rec.signal, fs // g, MIT_FS // g)
            beats = np.rint(rec.beats * fs / MIT_FS).astype(np.int64)
            for name, detect in DETECTORS.items():
                peaks, wall, cpu = timed(detect, signal, fs)
                scores.setdefault((name, fs), Score()).add(rec.name, beats, peaks, fs, len(signal), wall, cpu)
        print(f"  {rec.name}", end="", flush=True, file=sys.stderr)
    print(file=sys.stderr)
    return {f"{name}@{fs}": {"detector": name, "fs": fs, **s.summary()} for (name, fs), s in scores.items()}


def markdown(results: dict[str, dict]) -> str:
    lines = [
        "| detector | fs (Hz) | Se | +P | F1 | TP / FN / FP | timing error (ms) | s per hour (wall) | s per hour (CPU) "
        "| worst 3 records (F1) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results.values():
        worst = ", ".join(f"{w['record']} ({w['f1']:.4f})" for w in r["worst3"])
        lines.append(
            f"| {r['detector']} | {r['fs']} | {r['sensitivity']:.6f} | {r['positive_predictivity']:.6f} | "
            f"{r['f1']:.6f} | {r['tp']} / {r['fn']} / {r['fp']} | {r['timing_error_ms']:.3f} | "
            f"{r['wall_s_per_hour']:.3f} | {r['cpu_s_per_hour']:.3f} | {worst} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default="", help="DATA_DIR holding mitdb/ (default $ECG_DATA_DIR or ./data)")
    parser.add_argument("--minutes", type=float, default=10.0, help="first N minutes of each record; 0 = whole")
    parser.add_argument("--records", default="", help="comma-separated record names (default: all in mitdb/)")
    parser.add_argument("--rates", default="128,257", help="extra sampling rates to resample to (comma-separated)")
    parser.add_argument("--no-neurokit", action="store_true", help="skip neurokit2 even when it is importable")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)

    mitdb = resolve_data_dir(args.data_dir or None) / "mitdb"
    start = time.perf_counter()
    records = load_records(mitdb, args.minutes, [r for r in args.records.split(",") if r])
    rates_hz = [int(r) for r in args.rates.split(",") if r]
    results = run(records, rates_hz, use_neurokit=not args.no_neurokit)
    wall = time.perf_counter() - start

    try:
        import neurokit2

        nk_version = neurokit2.__version__
    except ImportError:
        nk_version = None
    meta = {
        "records": len(records),
        "minutes_per_record": args.minutes or "whole",
        "hours_at_360hz": sum(len(r.signal) for r in records) / MIT_FS / 3600,
        "beats": int(sum(len(r.beats) for r in records)),
        "tolerance_s": TOLERANCE_S,
        "default_detector": DEFAULT_DETECTOR,
        "total_wall_s": wall,
        "cpu_affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "python": platform.python_version(),
        "wfdb": wfdb.__version__,
        "numpy": np.__version__,
        "neurokit2": nk_version,
    }
    print(
        f"{meta['records']} records x {meta['minutes_per_record']} min ({meta['hours_at_360hz']:.3f} h, "
        f"{meta['beats']} beats), +-{TOLERANCE_S * 1000:.0f} ms window, total {wall:.1f} s\n"
    )
    print(markdown(results))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
