"""Optuna studies from studies/*.yaml, one nested MLflow run per trial (see docs/tuning.md).

spec       study file schema + validation against the step configs
storage    SQLite (default) / RDB / journal storages, worker identity and heartbeats
objective  one trial: pretrain + transfer, objective = validation macro-F1, Keras pruning callback
runner     the `tune run` worker: exact --n-trials across workers, crash recovery, MLflow runs
report     `tune list`, `tune show`, `tune best [--apply]`
"""
