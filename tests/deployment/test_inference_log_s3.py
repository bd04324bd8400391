"""The inference log on a real S3 server: same rows, same guarantees as on local disk."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pandas as pd
import pytest

from churn.config import parse_params
from churn.deployment.inference_log import attach_labels, read_labels, read_log
from churn.errors import ChurnError
from tests.conftest import PARAMS_FILE
from tests.deployment import test_inference_log as local_log
from tests.deployment.test_inference_log import PART, T0, log_it, scored

# The local log's fixtures: the same model and customers, logged to S3 instead.
model = local_log.model
customers = local_log.customers


@pytest.fixture
def root(s3) -> str:
    """A fresh prefix per test in the session's bucket."""
    return f"s3://{s3.bucket}/log-{uuid.uuid4().hex[:8]}"


def prefix(root: str) -> str:
    return root.split("/", 3)[3] + "/"


def test_append_writes_one_object_per_batch_and_reads_back_like_local(s3, root, tmp_path, model, dataset, customers):
    first, second = scored(model, dataset, customers.head(5)), scored(model, dataset, customers.iloc[5:12], with_label=False)
    written = log_it(root, first, dataset)
    assert isinstance(written, str) and written.startswith(f"{root}/date=2026-11-26/")
    assert len(read_log(root, dataset=dataset)) == 5  # the reader sees the first file at once
    log_it(root, second, dataset, at=T0 + timedelta(days=1))
    keys = s3.keys(prefix(root))
    assert [key.split("/")[-2] for key in keys] == ["date=2026-11-26", "date=2026-11-27"]
    assert all(PART.match(key.split("/")[-1]) for key in keys)

    # The same batches in a local log read back identically: one format, two stores.
    log_it(tmp_path, first, dataset)
    log_it(tmp_path, second, dataset, at=T0 + timedelta(days=1))
    remote, local = read_log(root, dataset=dataset), read_log(tmp_path, dataset=dataset)
    pd.testing.assert_frame_equal(remote, local)
    assert len(read_log(root, start=T0.date() + timedelta(days=1))) == 7


def test_labels_on_s3_join_by_id_without_touching_the_log(s3, root, model, dataset, customers):
    log_it(root, scored(model, dataset, customers.head(4), with_label=False), dataset)
    before = s3.keys(prefix(root))
    ids, label = customers[dataset.id_column], dataset.label_column
    labels = pd.DataFrame({dataset.id_column: ids.iloc[:2], label: [dataset.positive_label, dataset.negative_label]})
    assert attach_labels(root, labels, dataset=dataset, labelled_at=T0 + timedelta(days=30)) == 2
    after = s3.keys(prefix(root))
    assert set(before) < set(after) and next(k for k in after if k not in before).startswith(prefix(root) + "labels/date=")
    assert len(read_labels(root, dataset=dataset)) == 2
    joined = read_log(root, dataset=dataset, with_labels=True).set_index(dataset.id_column)
    assert joined.loc[ids.iloc[0], label] == dataset.positive_label
    assert joined.loc[ids.iloc[2], label] is None


def test_a_foreign_prefix_and_a_damaged_object_are_named(s3, root, model, dataset, customers):
    log_it(root, scored(model, dataset, customers.head(3)), dataset)
    s3.client().put_object(Bucket=s3.bucket, Key=prefix(root) + "date=yesterday/x.parquet", Body=b"x")
    with pytest.raises(ChurnError, match=r"date=yesterday"):
        read_log(root)
    other = f"s3://{s3.bucket}/damaged-{uuid.uuid4().hex[:8]}"
    s3.client().put_object(Bucket=s3.bucket, Key=prefix(other) + "date=2026-11-26/part-bad.parquet", Body=b"not parquet")
    with pytest.raises(ChurnError, match=r"part-bad.parquet"):
        read_log(other)


def test_a_missing_bucket_fails_with_the_fix_and_writes_nothing(s3, model, dataset, customers):
    root = f"s3://no-such-bucket-{uuid.uuid4().hex[:8]}/log"
    with pytest.raises(ChurnError, match=r"no-such-bucket.*bucket exists"):
        log_it(root, scored(model, dataset, customers.head(3)), dataset)
    assert s3.keys() == s3.keys()  # the server still answers
    assert not [b for b in s3.client().list_buckets()["Buckets"] if b["Name"].startswith("no-such-bucket")]


def test_wrong_credentials_fail_with_the_fix(s3, root, model, dataset, customers, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret-key")
    import fsspec

    fsspec.get_filesystem_class("s3").clear_instance_cache()  # a cached client would still hold the right key
    try:
        with pytest.raises(ChurnError, match=r"credentials"):
            log_it(root, scored(model, dataset, customers.head(3)), dataset)
    finally:
        fsspec.get_filesystem_class("s3").clear_instance_cache()
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3.env["AWS_SECRET_ACCESS_KEY"])
    assert s3.keys(prefix(root)) == []


def test_params_accept_an_s3_inference_log_and_reject_unknown_schemes():
    import yaml

    raw = yaml.safe_load(PARAMS_FILE.read_text())
    raw["paths"]["inference_log"] = "s3://team-bucket/churn/inference_log/"
    assert parse_params(raw).paths.inference_log == "s3://team-bucket/churn/inference_log"
    raw["paths"]["inference_log"] = "sx3://team-bucket/log"
    with pytest.raises(ChurnError, match=r"paths.inference_log.*unknown storage scheme 'sx3'"):
        parse_params(raw)
