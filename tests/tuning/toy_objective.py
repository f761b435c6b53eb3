"""A small real objective for the storage / parallel-worker / crash tests (no training).

Value = a smooth function of learning_rate and dropout; three "epochs" are reported through the
same PruningReporter the Keras callback uses. Environment knobs (set by the tests):
  TOY_SLEEP        seconds per epoch (default 0)
  TOY_HANG_TRIAL   trial number that writes TOY_MARKER_DIR/hang-<n> and then sleeps forever
  TOY_FAIL         "1": every trial raises
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

from ecg_mlflow.tuning.objective import TrialContext

EPOCHS = 3


def evaluate(ctx: TrialContext) -> float:
    if os.environ.get("TOY_FAIL") == "1":
        raise RuntimeError("toy objective failed on purpose")
    lr = float(ctx.values.get("learning_rate", 1e-3))
    dropout = float(ctx.values.get("dropout", 0.1))
    target = 1.0 - abs(math.log10(lr) + 3.0) / 4.0 - abs(dropout - 0.2)
    hang = os.environ.get("TOY_HANG_TRIAL")
    for epoch in range(EPOCHS):
        if hang is not None and int(hang) == ctx.trial.number and epoch == 1:
            marker = Path(os.environ["TOY_MARKER_DIR"]) / f"hang-{ctx.trial.number}"
            marker.write_text(str(os.getpid()))
            while True:
                time.sleep(1)
        time.sleep(float(os.environ.get("TOY_SLEEP", "0")))
        ctx.reporter.report(epoch, {"val_macro_f1": target * (epoch + 1) / EPOCHS, "loss": 1.0})
    ctx.info["toy"] = "yes"
    return target
