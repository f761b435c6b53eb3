"""Benchmark: a profile's supervised schedule against another's, on the validation split only.

A profile (profiles.PROFILES) is a choice: `fast` gives the LSTM fewer epochs at a higher, annealed rate so
`make study` fits in minutes. Whether that costs accuracy is a comparison, so it is made as every comparison
here is: under the sealed test split (data/sealed.py), on the best validation macro-F1 of each run, with
no test figure computed. One `transfer` run per profile, backbone and seed (init=scratch, all beats of the
intra split, the profile's epochs, batch, patience, learning rate and schedule); rows whose settings are the
same in both profiles are run once.

.venv/bin/python benchmarks/bench_profiles.py --profiles fast,paper --backbones lstm --seeds 0 --out profiles.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from ecg_mlflow.config import DataConfig, TransferConfig
from ecg_mlflow.profiles import PROFILES

FIGURES = ("best_val_macro_f1", "val_macro_f1_selected", "val_macro_f1_nsv_selected", "best_epoch")


def schedule(profile: str, backbone: str, seed: int, data_dir: str) -> TransferConfig:
    """The supervised step `main` runs for `backbone` from scratch under `profile`."""
    chosen = PROFILES[profile]
    return TransferConfig(
        backbone=backbone,
        init="scratch",
        seed=seed,
        epochs=chosen.epochs("transfer", backbone),
        batch_size=chosen.batch_size,
        patience=chosen.patience,
        min_epochs=chosen.min_epochs,
        data=DataConfig(max_beats=chosen.max_beats, data_dir=data_dir),
        **chosen.optimiser(backbone),
    )


def run(config: TransferConfig) -> dict[str, Any]:
    from ecg_mlflow.data.sealed import sealed_test_split
    from ecg_mlflow.steps.transfer import run_transfer

    start = time.perf_counter()
    with sealed_test_split("a comparison of profiles"):
        result = run_transfer(config, register=False, verbose=0)
    assert not any(name.startswith("test") for name in result.metrics), "a comparison computed a test figure"
    figures = {name: result.metrics.get(name, float("nan")) for name in FIGURES}
    return {"run_id": result.run_id, "seconds": round(time.perf_counter() - start, 1), **figures}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", default="fast,paper")
    parser.add_argument("--backbones", default="lstm")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--data-dir", default="")
    parser.add_argument("--out", default="")
    args = parser.parse_args(argv)
    profiles = args.profiles.split(",")
    rows: list[dict[str, Any]] = []
    done: dict[str, dict[str, Any]] = {}
    for backbone in args.backbones.split(","):
        for seed in map(int, args.seeds.split(",")):
            for profile in profiles:
                config = schedule(profile, backbone, seed, args.data_dir)
                key = repr(config)  # the same settings in two profiles: one run
                done[key] = done.get(key) or run(config)
                rows.append({"profile": profile, "backbone": backbone, "seed": seed, **done[key]})
                print(json.dumps(rows[-1]), flush=True)
                if args.out:
                    Path(args.out).write_text(json.dumps(rows, indent=1))
    print("| backbone | seed | " + " | ".join(f"{p} best val macro-F1 (epoch)" for p in profiles) + " | gap |")
    print("| --- | --- | " + " | ".join("---" for _ in profiles) + " | --- |")
    for backbone in args.backbones.split(","):
        for seed in map(int, args.seeds.split(",")):
            mine = [r for r in rows if r["backbone"] == backbone and r["seed"] == seed]
            cells = [f"{r['best_val_macro_f1']:.3f} ({r['best_epoch']:.0f})" for r in mine]
            gap = mine[0]["best_val_macro_f1"] - mine[-1]["best_val_macro_f1"]
            print(f"| {backbone} | {seed} | " + " | ".join(cells) + f" | {gap:+.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
