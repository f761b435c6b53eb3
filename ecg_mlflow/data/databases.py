"""Every ECG database the suite reads, declared once.

A `Database` says where its records live (the PhysioNet slug is also the folder under DATA_DIR),
what a valid record looks like (sampling rate, number of signals), which lead the beats are cut
from, where R peaks come from (reference beat annotations, or a QRS detector when there are none),
how beats are labelled (annotation symbols -> AAMI classes, or one diagnosis per record from its
header), and which splits it supports (de Chazal's DS1/DS2 for MIT-BIH). The data builder, the
download command, the config choices, the `evaluate` step and the CLI all read this table, so a
new database costs one `register_database(Database(...))`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ecg_mlflow.checks import declare
from ecg_mlflow.data.aami import AAMI_CLASSES, SYMBOL_TO_AAMI
from ecg_mlflow.data.errors import DataError

RecordLabel = Callable[[Sequence[str]], "int | None"]

# Lead names that are not ECG (multi-signal PhysioNet records): never chosen as the beat lead.
NON_ECG_LEADS = frozenset({"resp", "abp", "art", "pap", "cvp", "pleth", "spo2", "bp", "eeg", "emg", "eog", "edr"})

# de Chazal et al. 2004; the paced records 102 104 107 217 are in neither set.
MIT_DS1: tuple[str, ...] = tuple(
    "101 106 108 109 112 114 115 116 118 119 122 124 201 203 205 207 208 209 215 220 223 230".split()  # noqa: SIM905
)
MIT_DS2: tuple[str, ...] = tuple(
    "100 103 105 111 113 117 121 123 200 202 210 212 213 214 219 221 222 228 231 232 233 234".split()  # noqa: SIM905
)
MIT_PACED: tuple[str, ...] = ("102", "104", "107", "217")


@dataclass(frozen=True)
class InterPatientSplit:
    """Records that train (and hold out validation records) and records that only test."""

    train_records: tuple[str, ...]
    test_records: tuple[str, ...]
    reference: str


@dataclass(frozen=True)
class KaggleFiles:
    """A training dataset's CSVs in the Kaggle heartbeat set (Kachuee et al. 2018), under DATA_DIR/kaggle/."""

    train: tuple[str, ...]
    test: tuple[str, ...] = ()  # files that fix the test set; none: split like the PhysioNet beats
    labels: Mapping[str, int] = field(default_factory=dict)  # a file whose rows are all one class (PTB)


@dataclass(frozen=True)
class Database:
    """One PhysioNet (or PhysioNet-style) database: what its records are and how beats are labelled.

    fs and n_signals are what every record's header must say (None: any), so a header that
    claims 250 Hz for an MIT-BIH record is refused instead of yielding wrong beats.
    """

    name: str  # PhysioNet slug and folder under DATA_DIR ("" = DATA_DIR itself, for a user's folder)
    title: str
    fs: int | None
    n_signals: int | None
    leads: tuple[str, ...]  # preferred beat leads, in order; then MLII, then the first ECG lead
    class_names: tuple[str, ...]
    beat_annotator: str | None = "atr"  # reference beat annotations; None: R peaks are detected
    symbol_classes: Mapping[str, str] = field(default_factory=dict)  # annotation symbol -> class name
    record_label: RecordLabel | None = None  # header comments -> class index (one label per record)
    dataset: str | None = None  # the short name training steps use ("mit"); None: evaluation only
    inter_split: InterPatientSplit | None = None
    headline_classes: tuple[str, ...] = ()  # macro-F1 over these is logged too (AAMI EC57: N, S, V)
    nested_records: bool = False  # records in sub-folders (ptbdb: patientNNN/sNNNN_re)
    skip_unannotated: bool = False  # records without the annotator file are skipped (nstdb's noise records)
    citation: str = ""
    # The paper's test accuracy for a training dataset (its Tables 1 and 2): {init: {backbone: accuracy}};
    # `main` prints it beside ours. Empty: the paper did not train on this database.
    paper_accuracy: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    folder: str | None = None  # folder under DATA_DIR; None: the name; "": DATA_DIR itself
    downloadable: bool = True  # on PhysioNet under its name
    kaggle: KaggleFiles | None = None  # its beats in the Kaggle CSVs (source=kaggle), if any

    @property
    def directory(self) -> str:
        """The records' folder relative to DATA_DIR."""
        return self.name if self.folder is None else self.folder

    @property
    def record_suffixes(self) -> tuple[str, ...]:
        """The files every record needs."""
        return (".hea", ".dat") if self.beat_annotator is None else (".hea", ".dat", f".{self.beat_annotator}")

    def class_index(self, symbols: Sequence[str]) -> list[int]:
        """Class index per annotation symbol; -1 for non-beat or unmapped annotations."""
        index = {name: i for i, name in enumerate(self.class_names)}
        return [index.get(self.symbol_classes.get(str(s), ""), -1) for s in symbols]


DATABASES: dict[str, Database] = {}


def register_database(database: Database) -> Database:
    """Add a database to the table every other place reads; a name may be declared once."""
    if database.beat_annotator is None and database.record_label is None:
        raise ValueError(f"database {database.name!r} needs beat annotations or a per-record label")
    return declare(DATABASES, database, "database")


def get_database(name: str) -> Database:
    """A database by PhysioNet slug ("mitdb") or by training name ("mit"); DataError naming the choices."""
    if name in DATABASES:
        return DATABASES[name]
    for database in DATABASES.values():
        if database.dataset == name:
            return database
    raise DataError(f"unknown database {name!r}: choose one of {', '.join(DATABASES)}")


def training_datasets() -> dict[str, Database]:
    """{short name: database} of the databases a model can be trained on ("mit", "ptb")."""
    return {db.dataset: db for db in DATABASES.values() if db.dataset}


def ptb_diagnosis(comments: Sequence[str]) -> int | None:
    """Label from the header's 'Reason for admission' comment: 0 healthy, 1 MI, None = other (dropped)."""
    labels = {"healthy control": 0, "myocardial infarction": 1}
    for comment in comments:
        key, _, value = comment.partition(":")
        if key.strip().lower() == "reason for admission":
            return labels.get(value.strip().lower())
    return None


def beat_database(
    name: str, title: str, fs: int | None, n_signals: int | None, leads: tuple[str, ...], **extra: Any
) -> Database:
    """A database with reference beat annotations (.atr) labelled with the AAMI classes: the common case."""
    return Database(
        name=name,
        title=title,
        fs=fs,
        n_signals=n_signals,
        leads=leads,
        class_names=AAMI_CLASSES,
        symbol_classes=SYMBOL_TO_AAMI,
        headline_classes=("N", "S", "V"),
        **extra,
    )


register_database(
    beat_database(
        "mitdb",
        "MIT-BIH Arrhythmia Database",
        fs=360,
        n_signals=2,
        leads=("MLII",),
        dataset="mit",
        kaggle=KaggleFiles(train=("mitbih_train.csv",), test=("mitbih_test.csv",)),
        inter_split=InterPatientSplit(MIT_DS1, MIT_DS2, "de Chazal et al. 2004 (DS1 -> DS2; paced records left out)"),
        citation="Moody GB, Mark RG. The impact of the MIT-BIH Arrhythmia Database. IEEE Eng in Med and Biol "
        "20(3):45-50 (2001)",
        paper_accuracy={
            "scratch": {"mlp": 0.9038, "cnn": 0.9228, "lstm": 0.8725},
            "pretrained": {"mlp": 0.8718, "cnn": 0.9269, "lstm": 0.9216, "ensemble": 0.9301},
        },
    )
)
register_database(
    Database(
        name="ptbdb",
        title="PTB Diagnostic ECG Database",
        fs=1000,
        n_signals=15,
        leads=("ii", "i"),
        class_names=("normal", "mi"),
        beat_annotator=None,
        record_label=ptb_diagnosis,
        dataset="ptb",
        kaggle=KaggleFiles(
            train=("ptbdb_normal.csv", "ptbdb_abnormal.csv"), labels={"ptbdb_normal.csv": 0, "ptbdb_abnormal.csv": 1}
        ),
        nested_records=True,
        citation="Bousseljot R, Kreiseler D, Schnabel A. Biomedizinische Technik 40 (1995)",
        paper_accuracy={
            "scratch": {"mlp": 0.9168, "cnn": 0.9746, "lstm": 0.8385},
            "pretrained": {"mlp": 0.8914, "cnn": 0.9801, "lstm": 0.9704, "ensemble": 0.9849},
        },
    )
)
register_database(
    beat_database(
        "svdb",
        "MIT-BIH Supraventricular Arrhythmia Database",
        fs=128,
        n_signals=2,
        leads=("ECG1",),
        citation="Greenwald SD. Improved detection and classification of arrhythmias in noise-stressed ECGs (1990)",
    )
)
register_database(
    beat_database(
        "incartdb",
        "St Petersburg INCART 12-lead Arrhythmia Database",
        fs=257,
        n_signals=12,
        leads=("II",),
        citation="St Petersburg Institute of Cardiological Technics 12-lead Arrhythmia Database, PhysioNet (2008)",
    )
)
register_database(
    beat_database(
        "nstdb",
        "MIT-BIH Noise Stress Test Database",
        fs=360,
        n_signals=2,
        leads=("MLII",),
        skip_unannotated=True,
        citation="Moody GB, Muldrow WE, Mark RG. A noise stress test for arrhythmia detectors. Computers in "
        "Cardiology 11:381-384 (1984)",
    )
)
register_database(
    beat_database(
        "wfdb",
        "any folder of WFDB records with reference beat annotations (.atr)",
        fs=None,
        n_signals=None,
        leads=("MLII",),
        skip_unannotated=True,
        folder="",
        downloadable=False,
    )
)
