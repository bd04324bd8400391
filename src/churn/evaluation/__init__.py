"""Evaluation: test-set metrics, plot data and the data-drift summary."""
