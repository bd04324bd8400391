"""One MLflow run that carries the servable model: what training (and registering a model
trained elsewhere) logs. Runs are keyed by the DVC md5s and the serving key."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING, Any

import pandas as pd

from churn.config import Params
from churn.core import tracking
from churn.core.tracking import (
    TAG_GIT_COMMIT,
    TAG_HOST,
    TAG_MODEL_MD5,
    TAG_MODEL_URI,
    TAG_ORPHANED,
    TAG_PARAMS_HASH,
    TAG_PID,
    TAG_RAW_MD5,
    TAG_SERVING_KEY,
    connect,
    experiment_name,
    git_commit,
    params_hash,
    tracking_uri,
)
from churn.errors import ChurnError
from churn.servable.identity import serving_key

if TYPE_CHECKING:
    from mlflow.entities import Run

MODEL_NAME_IN_RUN = "model"
# Exact versions of what the logged model needs, so MLflow need not infer them (slow).
SERVING_PACKAGES = ("mlflow", "scikit-learn", "skops", "pandas", "numpy", "pyarrow", "pandera", "pydantic", "ruamel.yaml")


@dataclass(frozen=True)
class LoggedDataset:
    name: str
    frame: pd.DataFrame
    path: str
    md5: str
    context: str




def run_params(params: Params, rows: dict[str, int]) -> dict[str, Any]:
    train = params.train
    logged: dict[str, Any] = {
        "dataset": params.dataset.name,
        "family": train.family,
        "seed": train.seed,
        "decision_threshold": train.decision_threshold,
        "split_seed": params.prep.split.seed,
        "test_size": params.prep.split.test_size,
        "validation_size": params.prep.split.validation_size,
        "n_features": len(params.dataset.feature_columns),
    }
    logged.update({f"model.{key}": value for key, value in train.model_params.items()})
    logged.update({f"rows.{name}": count for name, count in rows.items()})
    return logged


def log_training_run(
    params: Params,
    *,
    model_bytes: bytes,
    input_example: pd.DataFrame,
    metrics: dict[str, float] | Callable[[], dict[str, float]],
    datasets: list[LoggedDataset],
    model_md5: str,
    raw_md5: str,
    run_name: str | None = None,
    extra_tags: dict[str, str] | None = None,
) -> str:
    """One run: params, dataset inputs, the servable model, metrics; returns its run id.

    `metrics` may be a callable, called last, inside the run: training logs the run while
    it scores its sets for them. If it raises, the run ends FAILED and the error is raised."""
    mlflow = connect(params)
    from churn.servable.lineage import parquet_dataset
    from churn.servable.pyfunc import log_churn_model

    commit = git_commit()
    tags = {
        TAG_MODEL_MD5: model_md5,
        TAG_SERVING_KEY: serving_key(params, model_md5),
        TAG_RAW_MD5: raw_md5,
        TAG_PARAMS_HASH: params_hash(params),
        TAG_GIT_COMMIT: commit,
        "mlflow.source.git.commit": commit,
        **{f"dvc.{d.name}_md5": d.md5 for d in datasets},
        TAG_HOST: socket.gethostname(),
        TAG_PID: str(os.getpid()),
        **(extra_tags or {}),
    }
    try:
        fail_orphaned_runs(params, tags)
        with mlflow.start_run(run_name=run_name, tags=tags) as run:
            mlflow.log_params(run_params(params, {d.name: len(d.frame) for d in datasets}))
            for dataset in datasets:
                # Schema declared from the Parquet file: from_pandas would walk every value.
                mlflow.log_input(
                    parquet_dataset(
                        dataset.frame,
                        path=dataset.path,
                        name=dataset.name,
                        digest=dataset.md5,
                        targets=params.dataset.label_column,
                    ),
                    context=dataset.context,
                )
            info = log_churn_model(
                model_bytes=model_bytes,
                dataset=params.dataset,
                threshold=params.train.decision_threshold,
                input_example=input_example,
                pip_requirements=[f"{p}=={metadata.version(p)}" for p in SERVING_PACKAGES],
                name=MODEL_NAME_IN_RUN,
            )
            mlflow.set_tag(TAG_MODEL_URI, info.model_uri)
            mlflow.log_metrics(metrics() if callable(metrics) else metrics)
            run_id: str = run.info.run_id
            return run_id
    except ChurnError:
        raise
    except Exception as exc:
        raise ChurnError(
            f"logging the training run to MLflow ({tracking_uri(params)}) failed: "
            f"{exc.__class__.__name__}: {exc}"
        ) from None


def _process_is_gone(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (ValueError, OverflowError):
        return True  # not a pid this code wrote
    except PermissionError:
        return False  # alive, someone else's
    return False


def fail_orphaned_runs(params: Params, tags: dict[str, str]) -> list[str]:
    """Mark FAILED the RUNNING runs of the same params and data whose process is gone.

    A `kill -9` of `churn train` leaves its run RUNNING forever. Only runs started on this
    host are judged (a pid means nothing elsewhere), and only when that process no longer
    exists, so a concurrent train of the same model is never touched. Returns their ids.
    """
    import mlflow
    from mlflow import MlflowClient

    # Same params and data: the params hash and the DVC md5 of the raw, train and
    # validation data (not the model's: a killed run may not have got that far).
    same = [TAG_PARAMS_HASH, *sorted(k for k in tags if k.startswith("dvc.") and k != TAG_MODEL_MD5)]
    conditions = ["attributes.status = 'RUNNING'", f"tags.`{TAG_HOST}` = '{tags[TAG_HOST]}'"]
    conditions += [f"tags.`{key}` = '{tags[key]}'" for key in same]
    runs = mlflow.search_runs(
        experiment_names=[experiment_name(params)],
        filter_string=" and ".join(conditions),
        output_format="list",
    )
    client, failed = MlflowClient(), []
    for run in runs:
        pid = run.data.tags.get(TAG_PID, "")
        if pid == str(os.getpid()) or not _process_is_gone(pid):
            continue
        client.set_tag(run.info.run_id, TAG_ORPHANED, f"its process {pid} ended without finishing the run")
        client.set_terminated(run.info.run_id, status="FAILED")
        failed.append(run.info.run_id)
    return failed


def find_servable_run(params: Params, model_md5: str) -> Run | None:
    """The newest run whose logged pyfunc wraps this model with the current contract,
    threshold and serving code, or None."""
    return tracking.find_run(params, TAG_SERVING_KEY, serving_key(params, model_md5))
