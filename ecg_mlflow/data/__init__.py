"""PhysioNet/Kaggle -> beats -> splits -> cached dataset. Entry point: dataset.load_dataset."""

from ecg_mlflow.data.errors import DataError

__all__ = ["DataError"]
