"""Data sources: the seeded simulator of the raw customer snapshot."""
