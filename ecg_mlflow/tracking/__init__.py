"""MLflow helpers: dataset inputs, model registry, upstream-run checks."""
