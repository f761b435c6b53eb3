"""What every step returns to its caller (the CLI, the `main` chain, a tuning trial)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class StepResult:
    run_id: str
    metrics: dict[str, float] = field(default_factory=dict)
    model_uri: str = ""
    registered_version: str = ""
    text: str = ""  # what the command prints after the figures (a summary, a table)
