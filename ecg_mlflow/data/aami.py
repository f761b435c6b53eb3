"""MIT-BIH beat symbols -> the five AAMI classes of the Kaggle heartbeat set."""

from __future__ import annotations

AAMI_CLASSES: tuple[str, ...] = ("N", "S", "V", "F", "Q")

# N = normal and bundle-branch block, S = supraventricular ectopic, V = ventricular ectopic,
# F = fusion, Q = paced / fusion of paced and normal / unclassifiable.
SYMBOL_TO_AAMI: dict[str, str] = {
    **dict.fromkeys(("N", "L", "R", "e", "j"), "N"),
    **dict.fromkeys(("A", "a", "J", "S"), "S"),
    **dict.fromkeys(("V", "E"), "V"),
    "F": "F",
    **dict.fromkeys(("/", "f", "Q"), "Q"),
    # Symbols MIT-BIH does not use but other PhysioNet beat databases (INCART, SVDB) do:
    # unspecified bundle-branch-block and supraventricular escape beats are N (as the escape
    # beats e and j are), an R-on-T premature ventricular contraction is V.
    **dict.fromkeys(("B", "n"), "N"),
    "r": "V",
}

# Every annotation that marks a QRS complex, labelled or not: the R-R intervals are timed on these.
QRS_SYMBOLS: frozenset[str] = frozenset(SYMBOL_TO_AAMI) | {"?"}
