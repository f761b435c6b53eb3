"""`ecg-mlflow data ...`: build, inspect, download and plot the beat datasets."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from ecg_mlflow.cli.errors import reported_errors
from ecg_mlflow.config import DataConfig
from ecg_mlflow.data.databases import DATABASES
from ecg_mlflow.params import PARAMETER_HELP

app = typer.Typer(help="Build, inspect, download and plot the beat datasets.", no_args_is_help=True)

DEFAULTS = DataConfig()
DOWNLOADABLE = tuple(name for name, db in DATABASES.items() if db.downloadable)
DatasetArg = Annotated[str, typer.Argument(help=PARAMETER_HELP["dataset"])]
SourceOpt = Annotated[str, typer.Option(help=PARAMETER_HELP["source"] + ".")]
SplitOpt = Annotated[str, typer.Option(help="intra (random beats, the paper) or inter (de Chazal DS1/DS2, mit only).")]
DataDirOpt = Annotated[
    str, typer.Option(help="Data folder (mitdb/, ptbdb/, kaggle/); default $ECG_DATA_DIR or ./data.")
]
CacheDirOpt = Annotated[str, typer.Option(help="Built-dataset cache; default $ECG_CACHE_DIR or ~/.cache/ecg-mlflow.")]
SeedOpt = Annotated[int, typer.Option(help="Seed of the random splits.")]
TestFracOpt = Annotated[float, typer.Option(help="Test share for random splits.")]
ValFracOpt = Annotated[float, typer.Option(help="Validation share of the training part.")]


@contextmanager
def _clear_errors() -> Iterator[None]:
    """A UserError -> one line on stderr and its exit code (cli/errors.py), no traceback."""
    with reported_errors():
        yield


def _config(dataset: str, source: str, split: str, data_dir: str, cache_dir: str, **extra: Any) -> DataConfig:
    return DataConfig(dataset=dataset, source=source, split=split, data_dir=data_dir, cache_dir=cache_dir, **extra)


def _load(config: DataConfig, **kwargs: Any):
    from ecg_mlflow.data.dataset import load_dataset

    return load_dataset(config, progress=True, **kwargs)


@app.command()
def build(
    dataset: DatasetArg,
    source: SourceOpt = DEFAULTS.source,
    split: SplitOpt = DEFAULTS.split,
    data_dir: DataDirOpt = DEFAULTS.data_dir,
    cache_dir: CacheDirOpt = DEFAULTS.cache_dir,
    split_seed: SeedOpt = DEFAULTS.split_seed,
    test_fraction: TestFracOpt = DEFAULTS.test_fraction,
    val_fraction: ValFracOpt = DEFAULTS.val_fraction,
    workers: Annotated[int, typer.Option(help="Processes for reading records.")] = 1,
    rebuild: Annotated[bool, typer.Option(help="Rebuild even when cached.")] = False,
) -> None:
    """Build the dataset's beats and splits once and cache them."""
    with _clear_errors():
        config = _config(
            dataset, source, split, data_dir, cache_dir,
            split_seed=split_seed, test_fraction=test_fraction, val_fraction=val_fraction,
        )  # fmt: skip
        ds = _load(config, workers=workers, rebuild=rebuild)
    typer.echo(f"{ds.name}: digest {ds.digest}, cached in {ds.manifest['cache_dir']}")
    _print_counts(ds.class_counts(), typer.echo)


@app.command()
def info(
    dataset: DatasetArg,
    split: SplitOpt = DEFAULTS.split,
    source: SourceOpt = DEFAULTS.source,
    data_dir: DataDirOpt = DEFAULTS.data_dir,
    cache_dir: CacheDirOpt = DEFAULTS.cache_dir,
    split_seed: SeedOpt = DEFAULTS.split_seed,
    as_json: Annotated[bool, typer.Option("--json", help="Only a JSON object of class counts per split.")] = False,
) -> None:
    """Class counts per split (builds the dataset first when it is not cached)."""
    with _clear_errors():
        ds = _load(_config(dataset, source, split, data_dir, cache_dir, split_seed=split_seed))
    if as_json:
        typer.echo(json.dumps(ds.class_counts()))
        return
    typer.echo(f"{ds.name} (digest {ds.digest})")
    _print_counts(ds.class_counts(), typer.echo)


def _print_counts(counts: dict[str, dict[str, int]], echo: Callable[[str], None]) -> None:
    names = list(next(iter(counts.values())))
    echo("split  " + "".join(f"{n:>9}" for n in names) + f"{'total':>9}")
    for split, row in counts.items():
        echo(f"{split:<7}" + "".join(f"{row[n]:>9}" for n in names) + f"{sum(row.values()):>9}")


@app.command()
def download(
    database: Annotated[str, typer.Argument(help=f"One of {', '.join(DOWNLOADABLE)}.")],
    data_dir: Annotated[str, typer.Option(help="Where DATA_DIR/<database>/ is created.")] = DEFAULTS.data_dir,
    source: Annotated[str, typer.Option(help="A local mirror folder instead of physionet.org.")] = "",
) -> None:
    """Download a PhysioNet database with wfdb, every file checked against SHA256SUMS.txt."""
    from ecg_mlflow.data.download import download_database, local_fetcher
    from ecg_mlflow.data.spec import resolve_data_dir
    from ecg_mlflow.progress import bar

    with _clear_errors(), bar(f"downloading {database}") as update:
        target = download_database(
            database,
            resolve_data_dir(data_dir or None),
            fetch=local_fetcher(Path(source)) if source else None,
            on_file=lambda name: update(advance=1, description=f"{database} {name}"),
        )
    typer.echo(f"{database}: verified files in {target}")


@app.command()
def plot(
    dataset: DatasetArg,
    out: Annotated[Path, typer.Option(help="PNG file to write.")],
    split: SplitOpt = DEFAULTS.split,
    source: SourceOpt = DEFAULTS.source,
    data_dir: DataDirOpt = DEFAULTS.data_dir,
    cache_dir: CacheDirOpt = DEFAULTS.cache_dir,
    per_class: Annotated[int, typer.Option(help="Beats drawn per class.")] = 5,
) -> None:
    """A PNG of example training beats per class."""
    from ecg_mlflow.data.plots import plot_class_examples

    with _clear_errors():
        ds = _load(_config(dataset, source, split, data_dir, cache_dir))
    typer.echo(f"wrote {plot_class_examples(ds, out, per_class=per_class)}")
