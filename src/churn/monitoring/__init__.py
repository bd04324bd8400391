"""Monitoring: data-drift numbers and reports between a reference and a current feature set."""
