"""A PNG of example beats per class: the quickest check that the extraction looks right."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ecg_mlflow.data.beats import SAMPLING_RATE
from ecg_mlflow.data.dataset import BeatDataset


def plot_class_examples(ds: BeatDataset, out: Path, per_class: int = 5, seed: int = 0) -> Path:
    """One panel per class with up to `per_class` random training beats, saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(seed)
    n = len(ds.class_names)
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 2.8), sharey=True, squeeze=False)
    t = np.arange(ds.train.x.shape[1]) / SAMPLING_RATE
    for label, (ax, name) in enumerate(zip(axes[0], ds.class_names, strict=True)):
        rows = np.flatnonzero(ds.train.y == label)
        for row in rng.permutation(rows)[:per_class]:
            ax.plot(t, ds.train.x[row], lw=0.8)
        ax.set_title(f"{name} (n={len(rows)})")
        ax.set_xlabel("s")
    axes[0][0].set_ylabel("normalised amplitude")
    fig.suptitle(ds.name)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
