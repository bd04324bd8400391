"""Shared pieces the lifecycle phases import downward: the data contract and cleaning (prep
and serving), the split readers, the model-file format and the classification metrics.

Nothing here imports a phase package (prep, training, validation, ...), so the arrows only
point down.
"""
