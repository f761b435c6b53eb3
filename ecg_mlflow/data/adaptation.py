"""Label-free adaptation to each recording, declared once: the context a record adds, and the model's own update.

A model trained on 22 patients meets a new patient whose heart rate, rhythm variability and beat
shapes are his own. AdaBN (Li et al. 2016, "Revisiting batch normalization for practical domain
adaptation") re-estimates normalisation statistics on the new domain, with no labels. Here the
domain is the record, so the statistics are the record's own.

- `none`: the context numbers as they are (normalised with the training beats' statistics inside
  the model).
- `record_norm`: besides each context number, the same number standardised with its own record's
  mean and sd (`<name>_record_z`). The record is every beat it holds in the split, which is the whole
  record on the patient-wise split. A pre-R-R of 0.6 s then reads as ordinary in a patient in atrial
  fibrillation and as premature in a patient in sinus rhythm.

The others change the trained model itself for each recording before it labels the recording's
beats (test-time adaptation, models/test_time.py): `recording` names the function, imported only
when a model meets a recording, so this table stays free of Keras.

- `prior`: the recording's class priors re-estimated by EM on the model's own probabilities.
- `adabn`: normalisation statistics re-estimated on the recording (needs a backbone with them: cnn_bn).
- `tent`: adabn, then the normalisation's scale and shift trained to make the answers confident.
- `self_train`: the model fine-tuned on its own most confident answers, class by class.
- `dominant`: self_train where the recording's dominant morphology at a regular rhythm is called N.
- `ssl`: the encoder fine-tuned on the paper's 8 transforms of the recording's beats.

The derived columns are named, so a served model lists them (`context_names`), and `evaluate` and
`classify` compute them from the record they read: `context_matrix` below. Adding an adaptation means
one `register_adaptation(Adaptation(...))`; the `adapt` choice of every step reads this table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ecg_mlflow.checks import declare
from ecg_mlflow.data.errors import DataError

# (context (n, k), its column names, the record of each row) -> (extra columns (n, j), their names)
Derive = Callable[[np.ndarray, tuple[str, ...], np.ndarray], tuple[np.ndarray, tuple[str, ...]]]
RECORD_Z = "_record_z"
MIN_SD = 1e-3  # a column that is constant in a record (one beat) stands at 0, not at infinity


@dataclass(frozen=True)
class Adaptation:
    name: str
    description: str
    derive: Derive | None = None  # None: no extra columns
    recording: str | None = None  # "module:function" adapting a trained model to one recording (models/test_time)
    needs_context: bool = False  # whether it reads the context numbers (config checks a step gives some)


ADAPTATIONS: dict[str, Adaptation] = {}


def register_adaptation(adaptation: Adaptation) -> Adaptation:
    return declare(ADAPTATIONS, adaptation, "adaptation")


def record_standardised(
    context: np.ndarray, names: tuple[str, ...], records: np.ndarray
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Each column standardised within its record: (value - record mean) / record sd."""
    context = np.asarray(context, dtype=np.float64)
    out = np.zeros_like(context)
    for record in np.unique(records):
        rows = records == record
        mean, sd = context[rows].mean(axis=0), np.maximum(context[rows].std(axis=0), MIN_SD)
        out[rows] = (context[rows] - mean) / sd
    return out.astype(np.float32), tuple(f"{name}{RECORD_Z}" for name in names)


register_adaptation(Adaptation("none", "the context numbers as they are"))
register_adaptation(
    Adaptation(
        "record_norm",
        "each context number also standardised within its record",
        record_standardised,
        needs_context=True,
    )
)
_TEST_TIME = "ecg_mlflow.models.test_time"
for _name, _description in {
    "prior": "the recording's class priors re-estimated by EM (Saerens et al. 2002)",
    "adabn": "normalisation statistics of the recording (Li et al. 2016; backbone cnn_bn)",
    "tent": "adabn, then entropy minimisation on the normalisation's scale and shift (Wang et al. 2021)",
    "self_train": "fine-tuned on its own confident answers, class-wise thresholds (Zou et al. 2018)",
    "dominant": "self_train with the recording's dominant morphology at a regular rhythm called N",
    "ssl": "the encoder fine-tuned on the paper's 8 transforms of the recording's beats (Sun et al. 2020)",
}.items():
    register_adaptation(Adaptation(_name, _description, recording=f"{_TEST_TIME}:{_name}"))


def adapt_context(
    adapt: str, context: np.ndarray | None, names: tuple[str, ...], records: np.ndarray
) -> tuple[np.ndarray | None, tuple[str, ...]]:
    """The context with the adaptation's columns appended, and all the names; nothing to adapt without context."""
    adaptation = ADAPTATIONS[adapt]
    if context is None or adaptation.derive is None:
        return context, names
    extra, extra_names = adaptation.derive(context, names, np.asarray(records))
    return np.column_stack([context, extra]).astype(np.float32), (*names, *extra_names)


def context_matrix(
    context: np.ndarray, names: tuple[str, ...], records: np.ndarray, wanted: tuple[str, ...]
) -> np.ndarray:
    """The `wanted` columns (stored ones, and those an adaptation derives from them) for beats read afresh."""
    derived: dict[str, np.ndarray] = {}
    for adaptation in ADAPTATIONS.values():
        if adaptation.derive is not None and any(w not in names for w in wanted):
            extra, extra_names = adaptation.derive(context, names, np.asarray(records))
            derived.update(zip(extra_names, extra.T, strict=True))
    columns = []
    for name in wanted:
        if name in names:
            columns.append(np.asarray(context[:, names.index(name)], dtype=np.float32))
        elif name in derived:
            columns.append(derived[name].astype(np.float32))
        else:
            raise DataError(f"the model takes the context {name!r}, which this version does not compute")
    return np.column_stack(columns) if columns else np.zeros((len(context), 0), np.float32)
