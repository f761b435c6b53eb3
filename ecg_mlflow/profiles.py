"""How much of the study a multi-run command runs: epochs, batch size and beats per profile."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from ecg_mlflow.checks import validated

Positive = Annotated[int, Field(ge=1)]
Count = Annotated[int, Field(ge=0)]


@validated
class Profile:
    """How much of the study the `main` chain (and a label-efficiency study) runs."""

    pretrain_epochs: Positive
    transfer_epochs: Positive
    ensemble_epochs: Positive
    batch_size: Positive
    max_beats: Count  # 0: all beats
    patience: Count
    min_epochs: Count = 8


PROFILES: dict[str, Profile] = {
    # A demo on 2 CPU cores in minutes: a few thousand beats, a few epochs (what the tests run).
    "quick": Profile(
        pretrain_epochs=1, transfer_epochs=3, ensemble_epochs=2, batch_size=64, max_beats=3000, patience=0, min_epochs=0
    ),
    # All beats, meant for about 20 minutes on 2 cores (`make study`): 1 pretraining epoch, few
    # supervised epochs at batch 128. Measured: ~25-30 min, up to 0.08 macro-F1 below `paper`
    # (docs/results.md); per-backbone epochs would fix both.
    "fast": Profile(
        pretrain_epochs=1, transfer_epochs=6, ensemble_epochs=3, batch_size=128, max_beats=0, patience=3, min_epochs=4
    ),
    # The paper's protocol: 5 pretrain epochs, 20 transfer epochs, 20 ensemble epochs, batch 64, all beats.
    "paper": Profile(pretrain_epochs=5, transfer_epochs=20, ensemble_epochs=20, batch_size=64, max_beats=0, patience=5),
}
