"""MLflow side effects around the DVC graph: runs are keyed by the content hashes DVC records.

Nothing here writes a DVC-tracked file, so run ids and timestamps never reach `dvc.lock`.
mlflow is imported inside the functions: it is slow to import and only training needs it.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import pandas as pd

from churn.config import Params
from churn.errors import ChurnError

# Tags that tie a run to content: registry lookups and the summary search by these.
TAG_MODEL_MD5 = "dvc.model_md5"
TAG_RAW_MD5 = "dvc.raw_md5"
TAG_PARAMS_HASH = "params_hash"
TAG_GIT_COMMIT = "git_commit"
TAG_SERVING_KEY = "serving_key"  # model md5 + contract + threshold: what the servable computes
TAG_MODEL_URI = "model_uri"  # the logged model's models:/ URI, for registration
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


def tracking_uri(params: Params) -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or params.tracking.uri


def connect(params: Params):
    """Point mlflow at the configured store, failing fast with a fix when it is unreachable."""
    uri = tracking_uri(params)
    if uri.startswith(("http://", "https://")):
        _check_server(uri)
    # Stage logs stay readable: no progress bars or INFO chatter from MLflow itself.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    import mlflow

    mlflow.set_tracking_uri(uri)
    try:
        mlflow.set_experiment(params.tracking.experiment)
    except Exception as exc:  # any backend failure: bad DB file, permissions, server error
        raise ChurnError(
            f"cannot use the MLflow tracking store {uri}: {exc.__class__.__name__}: {exc}. "
            "Fix MLFLOW_TRACKING_URI (or tracking.uri in params.yaml)."
        ) from None
    return mlflow


def _check_server(uri: str, timeout: float = 5.0) -> None:
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout) as response:
            if response.status == 200:
                return
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ChurnError(
            f"MLflow tracking server {uri} is unreachable ({reason}): start it, or unset "
            "MLFLOW_TRACKING_URI to use the local SQLite store."
        ) from None
    raise ChurnError(f"MLflow tracking server {uri} is not healthy: check its logs.")


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def params_hash(params: Params) -> str:
    """Hash of the sections that define the model (paths and tracking excluded)."""
    relevant = params.model_dump(mode="json", by_alias=True, include={"dataset", "prep", "train"})
    return hashlib.md5(json.dumps(relevant, sort_keys=True).encode()).hexdigest()


def serving_key(params: Params, model_md5: str) -> str:
    """Identity of the servable model: the DVC md5 of the pipeline plus what the pyfunc
    wraps around it (data contract and decision threshold). Two registry versions differ
    exactly when they could score a record differently."""
    servable = {
        "model_md5": model_md5,
        "dataset": params.dataset.model_dump(mode="json"),
        "decision_threshold": params.train.decision_threshold,
    }
    return hashlib.md5(json.dumps(servable, sort_keys=True).encode()).hexdigest()


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
    metrics: dict[str, float],
    datasets: list[LoggedDataset],
    model_md5: str,
    raw_md5: str,
    run_name: str | None = None,
    extra_tags: dict[str, str] | None = None,
) -> str:
    """One run: params, metrics, dataset inputs, the servable model; returns its run id."""
    mlflow = connect(params)
    from churn.deployment.pyfunc import log_churn_model

    commit = git_commit()
    tags = {
        TAG_MODEL_MD5: model_md5,
        TAG_SERVING_KEY: serving_key(params, model_md5),
        TAG_RAW_MD5: raw_md5,
        TAG_PARAMS_HASH: params_hash(params),
        TAG_GIT_COMMIT: commit,
        "mlflow.source.git.commit": commit,
        **{f"dvc.{d.name}_md5": d.md5 for d in datasets},
        **(extra_tags or {}),
    }
    try:
        with mlflow.start_run(run_name=run_name, tags=tags) as run:
            mlflow.log_params(run_params(params, {d.name: len(d.frame) for d in datasets}))
            mlflow.log_metrics(metrics)
            for dataset in datasets:
                mlflow.log_input(
                    mlflow.data.from_pandas(
                        dataset.frame,
                        source=dataset.path,
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
            return run.info.run_id
    except ChurnError:
        raise
    except Exception as exc:
        raise ChurnError(
            f"logging the training run to MLflow ({tracking_uri(params)}) failed: "
            f"{exc.__class__.__name__}: {exc}"
        ) from None


def find_run_for_model(params: Params, model_md5: str, *, servable: bool = False):
    """The newest run that logged the model with this md5, or None. With `servable`, only a
    run whose logged pyfunc wraps it with the current contract and threshold."""
    mlflow = connect(params)
    tag, value = (TAG_SERVING_KEY, serving_key(params, model_md5)) if servable else (TAG_MODEL_MD5, model_md5)
    runs = mlflow.search_runs(
        experiment_names=[params.tracking.experiment],
        filter_string=f"tags.`{tag}` = '{value}'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
        output_format="list",
    )
    return runs[0] if runs else None
