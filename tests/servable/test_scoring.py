"""churn.servable.scoring: a pipeline handed over as its archive's path."""

from __future__ import annotations

import os

from sklearn.linear_model import LogisticRegression

from churn.core.model_file import model_to_bytes
from churn.servable.scoring import fitted


def _archive(path, c: float):
    model = LogisticRegression(C=c).fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
    path.write_bytes(model_to_bytes(model))
    return model


def test_an_archive_path_is_loaded_once_and_again_when_the_file_changes(tmp_path):
    path = tmp_path / "model.skops"
    _archive(path, 1.0)
    first = fitted(str(path))
    assert isinstance(first, LogisticRegression) and first.C == 1.0
    assert fitted(str(path)) is first and fitted(path) is first
    _archive(path, 2.5)  # another archive at the same path
    os.utime(path, ns=(0, 12345))  # a different modification time, whatever the clock's resolution
    assert fitted(str(path)).C == 2.5


def test_a_pipeline_is_its_own_fitted_model():
    model = LogisticRegression()
    assert fitted(model) is model
