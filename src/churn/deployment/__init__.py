"""Deployment: the servable MLflow model, batch scoring and the inference log."""
