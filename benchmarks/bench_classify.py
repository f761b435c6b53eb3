"""Benchmark: `classify` on a whole 30-minute two-lead MIT-BIH record, CNN and the 3-member ensemble.

    .venv/bin/python benchmarks/bench_classify.py --data-dir ../shared/data --record 100 --repeats 3

Times read (header, signal, R peaks), segment (beats and rhythm context) and classify (predict)
for the R peaks taken from the record's annotations and found by the QRS detector (the record's
.hea/.dat copied to a temporary folder without its .atr). Models are the project's CNN and the
MLP+CNN+LSTM ensemble built untrained (speed does not depend on the weights), wrapped as served;
loading TensorFlow and the model is reported apart. Median of --repeats after one warm-up run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from ecg_mlflow.config import BACKBONE_DEFAULTS, ClassifyConfig
from ecg_mlflow.data.spec import resolve_data_dir
from ecg_mlflow.models.backbones import build_encoder
from ecg_mlflow.models.classifier import build_classifier, build_ensemble
from ecg_mlflow.models.served import BeatClassifier
from ecg_mlflow.steps.classify import classify_record

CLASSES = ["N", "S", "V", "F", "Q"]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="")
    parser.add_argument("--record", default="100")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    source = resolve_data_dir(args.data_dir or None) / "mitdb" / args.record
    start = time.perf_counter()
    members = [build_classifier(build_encoder(b, BACKBONE_DEFAULTS[b]), 5) for b in ("mlp", "cnn", "lstm")]
    models = {
        "cnn": BeatClassifier.around(members[1], CLASSES, []),
        "ensemble": BeatClassifier.around(build_ensemble(members, 5), CLASSES, []),
    }
    print(f"building the models (TensorFlow loaded before): {time.perf_counter() - start:.1f} s")
    with tempfile.TemporaryDirectory(prefix="bench-classify-") as tmp:
        for suffix in (".hea", ".dat"):
            shutil.copy(source.with_suffix(suffix), Path(tmp) / f"{args.record}{suffix}")
        records = {"annotations": source, "detector": Path(tmp) / args.record}
        print("| model | R peaks | beats | read s | segment s | classify s | total s |")
        print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
        for name, classifier in models.items():
            for peaks, record in records.items():
                config = ClassifyConfig(record=str(record), model="bench")
                classify_record(config, classifier)  # warm-up: graph tracing
                runs = [classify_record(config, classifier) for _ in range(args.repeats)]
                phase = {k: statistics.median(r.seconds[k] for r in runs) for k in ("read", "segment", "classify")}
                total = statistics.median(sum(r.seconds.values()) for r in runs)
                print(
                    f"| {name} | {peaks} | {len(runs[0].table)} | {phase['read']:.2f} | {phase['segment']:.2f} "
                    f"| {phase['classify']:.2f} | {total:.2f} |",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
