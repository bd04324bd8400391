"""Prep: the raw-data contract, explicit cleaning, feature and label tables, the split."""
