"""The MLflow connection and the content keys runs are found by (the md5s DVC records).

Nothing here writes a DVC-tracked file, so run ids and timestamps never reach `dvc.lock`.
mlflow is imported inside the functions: it is slow to import and not every command needs it.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from types import ModuleType
from typing import TYPE_CHECKING

from churn.config import Params
from churn.core.preload import in_background
from churn.errors import ChurnError
from churn.io import content_md5
from churn.tools import run_tool

if TYPE_CHECKING:
    from mlflow.entities import Run

# Tags that tie a run to content: registry lookups and the summary search by these.
TAG_MODEL_MD5 = "dvc.model_md5"
TAG_RAW_MD5 = "dvc.raw_md5"
TAG_PARAMS_HASH = "params_hash"
TAG_GIT_COMMIT = "git_commit"
TAG_SERVING_KEY = "serving_key"  # model md5 + contract + threshold: what the servable computes
TAG_MODEL_URI = "model_uri"  # the logged model's models:/ URI, for registration
# Who ran a training run, so a later train can tell a run whose process died (kill -9,
# a lost machine) from one still running.
TAG_HOST = "churn.host"
TAG_PID = "churn.pid"
TAG_ORPHANED = "churn.orphaned"
# What opening a sqlite:// or postgresql:// store imports (most of `connect`'s time after
# MLflow itself).
SQL_STORE_MODULES = ("mlflow.store.tracking.sqlalchemy_store", "mlflow.store.model_registry.sqlalchemy_store")
# MLflow's own HTTP defaults (7 retries, backoff factor 2, 120 s timeout) take about four
# minutes to give up on a dead tracking server. These bound a call to at most 3 attempts
# of 9 s plus about 3 s of backoff, so a command fails within ~30 s with its usual
# message. A value the user exported wins.
HTTP_LIMITS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "9",
}


def tracking_uri(params: Params) -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or params.tracking.uri


def experiment_name(params: Params) -> str:
    """MLflow's own MLFLOW_EXPERIMENT_NAME overrides tracking.experiment: CI points pull
    requests at an experiment of their own, so main never registers a run a PR logged."""
    return os.environ.get("MLFLOW_EXPERIMENT_NAME") or params.tracking.experiment


def _quiet_and_bounded() -> None:
    """The environment MLflow must see before it is imported (it reads some at import)."""
    for variable, value in HTTP_LIMITS.items():
        os.environ.setdefault(variable, value)
    # Stage logs stay readable: no progress bars or INFO chatter from MLflow itself.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")


def preload(params: Params, *first: str) -> None:
    """On a second thread, import `first` (what the stage needs sooner), then MLflow and the
    SQL store a database URI opens: for a stage that connects only after its data work
    (`churn.core.preload`)."""
    _quiet_and_bounded()
    stores = () if is_server(tracking_uri(params)) else SQL_STORE_MODULES
    in_background(*first, "mlflow", "mlflow.pyfunc", *stores)


def is_server(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


def connect(params: Params) -> ModuleType:
    """Point mlflow at the configured store, failing fast with a fix when it is unreachable."""
    uri = tracking_uri(params)
    _quiet_and_bounded()
    if is_server(uri):
        _check_server(uri)
    import mlflow

    mlflow.set_tracking_uri(uri)
    try:
        mlflow.set_experiment(experiment_name(params))
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
    result = run_tool(["git", "rev-parse", "HEAD"], timeout=10, missing_ok=True)
    return result.stdout.strip() if result is not None and result.returncode == 0 else "unknown"


def params_hash(params: Params) -> str:
    """Hash of the sections that define the model (paths and tracking excluded)."""
    return content_md5(params.model_dump(mode="json", by_alias=True, include={"dataset", "prep", "train"}))


def find_run_for_model(params: Params, model_md5: str) -> Run | None:
    """The newest run that logged the model with this md5, or None."""
    return find_run(params, TAG_MODEL_MD5, model_md5)


def find_run(params: Params, tag: str, value: str) -> Run | None:
    """The newest run of the experiment whose `tag` equals `value`, or None."""
    mlflow = connect(params)
    runs = mlflow.search_runs(
        experiment_names=[experiment_name(params)],
        filter_string=f"tags.`{tag}` = '{value}'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
        output_format="list",
    )
    return runs[0] if runs else None


def run_link(params: Params, run: Run) -> str:
    """Where a person opens the run: the server's page, or the local UI command."""
    uri = tracking_uri(params)
    if is_server(uri):
        return f"{uri.rstrip('/')}/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}"
    return f"run {run.info.run_id} in {uri}"
