"""churn.monitoring.baseline: the champion's training set through its lineage tags, or a file."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from churn.io import md5_file, write_parquet
from churn.monitoring import baseline
from churn.monitoring.baseline import BaselineMissing, dvc_cached

from .conftest import THRESHOLD


def test_dvc_cached_prefers_a_matching_workspace_file_then_the_cache(tmp_path):
    workspace = tmp_path / "train.parquet"
    workspace.write_bytes(b"current")
    old = b"the version the champion was trained on"
    import hashlib

    md5 = hashlib.md5(old).hexdigest()
    cache = tmp_path / "cache"
    assert dvc_cached(workspace, md5_file(workspace), cache) == workspace
    assert dvc_cached(workspace, md5, cache) is None
    (cache / md5[:2]).mkdir(parents=True)
    (cache / md5[:2] / md5[2:]).write_bytes(old)
    assert dvc_cached(workspace, md5, cache) == cache / md5[:2] / md5[2:]


@pytest.fixture
def champion(monkeypatch, tmp_path, params, fitted):
    """A fake registry whose @champion carries lineage tags, and the real fitted model behind it."""
    model, features, labels = fitted
    monkeypatch.chdir(tmp_path)
    train = features.assign(**{params.dataset.label_column: labels.to_numpy()})
    validation = train.sample(1000, random_state=1)
    write_parquet("train.parquet", train)
    write_parquet("validation.parquet", validation)
    tags = {"dvc.train_md5": md5_file("train.parquet"), "dvc.validation_md5": md5_file("validation.parquet")}
    version = SimpleNamespace(version="7", tags=tags)
    scorer = SimpleNamespace(model=model, threshold=THRESHOLD, dataset=params.dataset)
    import churn.deployment.batch as batch
    import churn.registry.versions as versions

    monkeypatch.setattr(versions, "client", lambda p: object())
    monkeypatch.setattr(versions, "alias_version", lambda c, name, alias: version if alias == "champion" else None)
    monkeypatch.setattr(batch, "load_scorer", lambda uri: (scorer, "7") if uri.endswith("/7") else None)
    paths = params.paths.model_copy(update={"train_set": tmp_path / "train.parquet",
                                            "validation_set": tmp_path / "validation.parquet"})
    return params.model_copy(update={"paths": paths}), version


def test_champion_baseline_through_lineage_tags(champion):
    params, _ = champion
    found = baseline.from_champion(params)
    assert "v7 (@champion)" in found.source and found.reference.model_version == "7"
    assert len(found.frame) == len(pd.read_parquet("train.parquet"))
    assert {"churn_probability", "churn_prediction"} <= set(found.frame.columns)
    assert len(found.reference.label) == 1000 and set(np.unique(found.reference.label)) == {0.0, 1.0}


def test_champion_training_set_from_the_dvc_cache_when_the_workspace_moved_on(champion, tmp_path):
    params, version = champion
    md5 = version.tags["dvc.train_md5"]
    cached = tmp_path / ".dvc/cache/files/md5" / md5[:2] / md5[2:]
    cached.parent.mkdir(parents=True)
    (tmp_path / "train.parquet").rename(cached)
    write_parquet("train.parquet", pd.read_parquet(cached).head(10))  # a newer training set
    assert len(baseline.from_champion(params).frame) == len(pd.read_parquet(cached))


def test_champion_training_set_nowhere_is_baseline_missing(champion, tmp_path):
    params, _ = champion
    (tmp_path / "train.parquet").unlink()
    with pytest.raises(BaselineMissing, match=r"neither .*train\.parquet nor in the DVC cache"):
        baseline.from_champion(params)


def test_no_champion_is_baseline_missing(champion, monkeypatch):
    params, _ = champion
    import churn.registry.versions as versions

    monkeypatch.setattr(versions, "alias_version", lambda c, name, alias: None)
    with pytest.raises(BaselineMissing, match="no @champion"):
        baseline.from_champion(params)


def test_missing_lineage_tag_is_baseline_missing(champion):
    params, version = champion
    version.tags.pop("dvc.train_md5")
    with pytest.raises(BaselineMissing, match=r"carries no dvc\.train_md5"):
        baseline.from_champion(params)


def test_file_baseline_needs_the_features(tmp_path, params):
    path = tmp_path / "b.parquet"
    write_parquet(path, pd.DataFrame({"tenure": [1.0]}))
    with pytest.raises(BaselineMissing, match="lacks feature columns"):
        baseline.from_file(path, params.dataset)
