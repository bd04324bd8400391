"""Validation: quality gates and data checks that decide whether a model may ship."""
