"""Hyperparameter search around the graph (`churn tune`): never a DVC stage."""
