"""Customer-churn pipeline: prep -> train -> validate -> evaluate, versioned with DVC."""

__version__ = "0.1.0"
