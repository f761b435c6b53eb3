"""Benchmark: one model on the same patients recorded at other sampling rates (SVDB's 128 Hz, INCART's 257 Hz).

No SVDB or INCART data is available here, so this asks the part of the cross-database question that can
be asked on real beats: the MIT-BIH test records (DS2 by default) are resampled to each rate, written as
WFDB records (signal and reference annotations) into a temporary folder outside the project, and
evaluated through the real `evaluate` step (`database=wfdb`, the generic any-rate folder) beside the
native 360 Hz records. A model that has learned beats, not the 360 Hz sampling grid, scores the same.

.venv/bin/python benchmarks/bench_cross_rate.py models:/ecg-mit-cnn@scratch --data-dir ../shared/data \
    --rates 128,257 --out bench_cross_rate.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import wfdb
from scipy.signal import resample_poly

from ecg_mlflow.config import EvaluateConfig
from ecg_mlflow.data.databases import MIT_DS2
from ecg_mlflow.data.spec import resolve_data_dir

COLUMNS = ("test_accuracy", "test_macro_f1_nsv", "test_se_S", "test_ppv_S", "test_se_V", "test_ppv_V")


def write_resampled(mitdb: Path, record: str, rate: int, out_dir: Path) -> None:
    """Record `record` of mitdb at `rate` Hz: every signal resampled, annotation times scaled."""
    source = wfdb.rdrecord(str(mitdb / record))
    fs = int(source.fs)
    g = np.gcd(fs, rate)
    signal = resample_poly(source.p_signal, rate // g, fs // g, axis=0)
    wfdb.wrsamp(
        record,
        fs=rate,
        units=source.units,
        sig_name=source.sig_name,
        p_signal=signal,
        fmt=["16"] * signal.shape[1],
        write_dir=str(out_dir),
    )
    ann = wfdb.rdann(str(mitdb / record), "atr")
    samples = np.clip(np.rint(np.asarray(ann.sample) * rate / fs).astype(np.int64), 0, len(signal) - 1)
    wfdb.wrann(record, "atr", samples, symbol=list(ann.symbol), write_dir=str(out_dir))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_uri")
    parser.add_argument("--data-dir", default="")
    parser.add_argument("--rates", default="128,257")
    parser.add_argument("--records", default=",".join(MIT_DS2))
    parser.add_argument("--experiment", default="bench-cross-rate")
    parser.add_argument("--out", default="")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import mlflow

    from ecg_mlflow.steps.evaluate import run_evaluate

    mlflow.set_experiment(args.experiment)
    records = tuple(args.records.split(","))
    data_dir = resolve_data_dir(args.data_dir or None)
    rows = []
    native = run_evaluate(
        EvaluateConfig(model_uri=args.model_uri, database="mitdb", data_dir=str(data_dir), records=records)
    )
    rows.append({"rate": 360, "database": "mitdb", "run_id": native.run_id, "metrics": native.metrics})
    with tempfile.TemporaryDirectory(prefix="cross-rate-") as tmp:
        for rate in (int(r) for r in args.rates.split(",")):
            folder = Path(tmp) / str(rate)
            folder.mkdir()
            for record in records:
                write_resampled(data_dir / "mitdb", record, rate, folder)
            (folder / "RECORDS").write_text("\n".join(records) + "\n")
            result = run_evaluate(
                EvaluateConfig(
                    model_uri=args.model_uri, database="wfdb", data_dir=str(folder), cache_dir=tmp, download=False
                )
            )
            rows.append({"rate": rate, "database": "wfdb", "run_id": result.run_id, "metrics": result.metrics})
    lines = ["| rate | evaluated as | " + " | ".join(COLUMNS) + " | run |", "| --- " * (len(COLUMNS) + 3) + "|"]
    for row in rows:
        cells = " | ".join(f"{100 * row['metrics'].get(c, float('nan')):.1f}" for c in COLUMNS)
        lines.append(f"| {row['rate']} Hz | {row['database']} | {cells} | {row['run_id'][:8]} |")
    table = "\n".join(lines) + "\n"
    print(table)
    if args.out:
        Path(args.out).write_text(json.dumps({"argv": argv, "rows": rows, "table": table}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
