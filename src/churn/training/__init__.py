"""Training: the scikit-learn pipeline, its deterministic file format, MLflow tracking."""
