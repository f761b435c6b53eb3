"""Benchmark: build all MIT-BIH records into a fresh cache; wall time, beats/s, class totals, peak RSS.

.venv/bin/python benchmarks/bench_data.py --data-dir ../shared/data --workers 2 --out bench_data.json
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

from ecg_mlflow.config import DataConfig
from ecg_mlflow.data.dataset import SPLIT_NAMES, load_dataset
from ecg_mlflow.data.spec import resolve_data_dir

KAGGLE_TOTALS = {"N": 90589, "S": 2779, "V": 7236, "F": 803, "Q": 8039}


def peak_rss_mb() -> float:
    """Peak resident memory of this process and its (finished) worker processes, in MiB (Linux: KiB units)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def run(data_dir: str, workers: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-cache-") as cache_dir:
        config = DataConfig(data_dir=str(resolve_data_dir(data_dir or None)), cache_dir=cache_dir)
        start = time.perf_counter()
        ds = load_dataset(config, workers=workers)
        wall = time.perf_counter() - start
    counts = ds.class_counts()
    totals = {name: sum(counts[s][name] for s in SPLIT_NAMES) for name in ds.class_names}
    beats = sum(totals.values())
    return {
        "records": len(ds.manifest["records"]["train"]),
        "workers": workers,
        "wall_s": round(wall, 2),
        "beats": beats,
        "beats_per_s": round(beats / wall, 1),
        "class_totals": totals,
        "kaggle_totals": KAGGLE_TOTALS,
        "relative_difference": {k: round((totals[k] - v) / v, 5) for k, v in KAGGLE_TOTALS.items()},
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "digest": ds.digest,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default="", help="DATA_DIR holding mitdb/ (default $ECG_DATA_DIR or ./data)")
    parser.add_argument("--workers", type=int, default=2, help="processes reading records")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    result = run(args.data_dir, args.workers)
    print(
        f"{result['records']} records, {result['beats']} beats in {result['wall_s']} s "
        f"({result['beats_per_s']} beats/s, {result['workers']} workers), peak RSS {result['peak_rss_mb']} MiB"
    )
    print(
        "class totals: "
        + ", ".join(f"{k} {v} ({result['relative_difference'][k]:+.2%})" for k, v in result["class_totals"].items())
    )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
