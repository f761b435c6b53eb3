"""ecg-mlflow: self-supervised ECG heartbeat classification as an MLflow project.

The package reads like the pipeline: data -> transforms -> models -> steps
(pretrain, transfer, ensemble, main) -> tracking -> tuning -> cli.
"""

__version__ = "0.1.0"
