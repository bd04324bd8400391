"""The baseline the monitor compares windows with, and the labelled reference CBPE calibrates on.

Two sources (`monitor.baseline.source`):

* `champion` (default): the registry's @champion carries the md5s of the data it was
  trained on (`dvc.train_md5`, `dvc.validation_md5`, tagged at registration). The
  training set is the drift baseline; the validation set, scored by the champion, is the
  labelled reference. Each file is taken from the workspace when its md5 matches, else
  from the DVC cache (`.dvc/cache/files/md5/<2>/<30>`), which holds every version this
  clone has pulled or produced.
* `file`: a table of cleaned features you name. When it also holds `churn_probability`
  and the label, it is the labelled reference too.

A baseline that cannot be found is a `BaselineMissing` (a ChurnError) with the reason:
the monitor still profiles the log, but no drift or estimate is claimed and the
retraining check fails closed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from churn.config import Dataset, Params
from churn.errors import ChurnError
from churn.io import md5_file
from churn.servable.scoring import PREDICTION, PROBABILITY

TAG_TRAIN_MD5 = "dvc.train_md5"
TAG_VALIDATION_MD5 = "dvc.validation_md5"
CHAMPION = "champion"
DVC_CACHE = Path(".dvc/cache/files/md5")


class BaselineMissing(ChurnError):
    """No baseline: the message says why and how to provide one."""


@dataclass(frozen=True)
class Reference:
    """Labelled probabilities of the model the estimate is for (None: any version)."""

    probability: np.ndarray
    label: np.ndarray
    model_version: str | None


@dataclass(frozen=True)
class Baseline:
    frame: pd.DataFrame  # cleaned features, plus the probability and decision when known
    reference: Reference | None
    reference_note: str | None  # why there is no reference, when there is none
    source: str  # for people: where it came from
    key: str  # changes whenever the baseline does (md5s, version)


def load(params: Params) -> Baseline:
    settings = params.monitor.baseline
    if settings.source == "file":
        assert settings.file is not None  # the config requires it
        return from_file(settings.file, params.dataset)
    return from_champion(params)


def dvc_cached(path: Path, md5: str, cache: Path = DVC_CACHE) -> Path | None:
    """The file with this md5: the workspace copy if it matches, else the DVC cache entry."""
    if path.is_file() and md5_file(path) == md5:
        return path
    cached = cache / md5[:2] / md5[2:]
    return cached if cached.is_file() else None


def from_file(path: Path, dataset: Dataset) -> Baseline:
    frame = _read_table(path)
    _check_features(frame, dataset, str(path))
    reference, note = None, None
    label = dataset.label_column
    if PROBABILITY in frame.columns and label in frame.columns:
        labels = encode(frame[label], dataset)
        known = ~np.isnan(labels)
        reference = Reference(frame[PROBABILITY].to_numpy("float64")[known], labels[known], None)
    else:
        note = f"baseline file {path} has no {PROBABILITY} and {label} columns to calibrate the estimate on"
    return Baseline(_baseline_frame(frame, dataset), reference, note, f"file {path}", f"file:{md5_file(path)}")


def from_champion(params: Params) -> Baseline:
    from churn.deployment.batch import load_scorer
    from churn.registry.versions import alias_version, client, registry_errors

    name = params.registry.model_name
    with registry_errors("monitor"):
        version = alias_version(client(params), name, CHAMPION)
    if version is None:
        raise BaselineMissing(
            f"{name} has no @champion to take the baseline from: promote one (churn promote) "
            "or set monitor.baseline.source: file"
        )
    tags = dict(version.tags or {})
    where = f"{name} v{version.version} (@champion)"
    train_md5 = tags.get(TAG_TRAIN_MD5)
    if not train_md5:
        raise BaselineMissing(
            f"{where} carries no {TAG_TRAIN_MD5} tag, so its training set is unknown: "
            "register it with churn challenge, or set monitor.baseline.source: file"
        )
    train_path = dvc_cached(params.paths.train_set, train_md5)
    if train_path is None:
        raise BaselineMissing(
            f"the training set of {where} (md5 {train_md5}) is neither {params.paths.train_set} nor in the "
            f"DVC cache: check out the commit that trained it ({tags.get('git_commit', 'see its run')}) and "
            "`dvc pull`, or set monitor.baseline.source: file"
        )
    scorer, served = load_scorer(f"models:/{name}/{version.version}")
    model_columns = scorer.dataset.feature_columns
    train = _read_table(train_path)
    _check_features(train, scorer.dataset, f"training set {train_md5}")
    frame = _baseline_frame(train, params.dataset)
    frame[PROBABILITY] = scorer.model.predict_proba(train[model_columns])[:, 1]
    frame[PREDICTION] = (frame[PROBABILITY] >= scorer.threshold).astype("int64")

    reference, note = None, None
    validation_md5 = tags.get(TAG_VALIDATION_MD5)
    validation_path = dvc_cached(params.paths.validation_set, validation_md5) if validation_md5 else None
    if validation_path is None:
        note = (
            f"the validation set of {where} (md5 {validation_md5}) is neither {params.paths.validation_set} "
            "nor in the DVC cache: `dvc pull` it to estimate quality without labels"
        )
    else:
        validation = _read_table(validation_path)
        _check_features(validation, scorer.dataset, f"validation set {validation_md5}")
        labels = encode(validation[params.dataset.label_column], params.dataset)
        probability = scorer.model.predict_proba(validation[model_columns])[:, 1]
        known = ~np.isnan(labels)
        reference = Reference(probability[known], labels[known], served)
    return Baseline(
        frame, reference, note, f"{where}: training set {train_md5}",
        f"champion:{served}:{train_md5}:{validation_md5}",
    )


def encode(values: pd.Series, dataset: Dataset) -> np.ndarray:
    """Labels as 1.0 / 0.0 / NaN, from the dataset's text labels or from 0/1."""
    mapping: dict[object, float] = {"1": 1.0, "0": 0.0, 1: 1.0, 0: 0.0}
    mapping.update({dataset.positive_label: 1.0, dataset.negative_label: 0.0})
    # A dict lookup per distinct value (hash-based), not a Python call per row.
    encoded: np.ndarray = values.astype(object).map(mapping).to_numpy("float64")
    return encoded


def _read_table(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise BaselineMissing(f"baseline file {path} not found: set monitor.baseline.file to an existing table")
    try:
        if path.suffix.lower() == ".csv":
            return pd.read_csv(path)
        return pd.read_parquet(path)
    except Exception as exc:
        raise BaselineMissing(f"cannot read baseline file {path}: {exc.__class__.__name__}: {exc}") from None


def _check_features(frame: pd.DataFrame, dataset: Dataset, source: str) -> None:
    missing = [column for column in dataset.feature_columns if column not in frame.columns]
    if missing:
        raise BaselineMissing(f"baseline {source} lacks feature columns {missing}: it must hold cleaned features")
    if len(frame) == 0:
        raise BaselineMissing(f"baseline {source} has no rows")


def _baseline_frame(frame: pd.DataFrame, dataset: Dataset) -> pd.DataFrame:
    out = frame[[c for c in [*dataset.feature_columns, PROBABILITY, PREDICTION] if c in frame.columns]].copy()
    for column in dataset.numeric:
        out[column] = pd.to_numeric(out[column], errors="coerce").astype("float64")
    for column in dataset.categorical:
        out[column] = out[column].astype(object).where(out[column].notna(), None).map(
            lambda v: v if v is None else str(v)
        )
    return out.reset_index(drop=True)
