"""Registry versions keyed by the model's DVC md5: lookup, idempotent registration, and
the lock that serialises registry read-modify-write sequences."""

from __future__ import annotations

import fcntl
import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from churn.config import Params
from churn.core import tracking
from churn.errors import ChurnError
from churn.io import content_md5, read_json
from churn.registry.checkout import CheckoutModel, ensure_locked
from churn.servable import runs
from churn.servable.identity import serving_key

if TYPE_CHECKING:  # pragma: no cover
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

CHAMPION = "champion"
CHALLENGER = "challenger"
TAG_VERDICT = "gate.verdict"
TAG_REASONS = "gate.reasons"
TAG_COMPARISON = "gate.comparison"
TAG_CHAMPION_AT_GATE = "gate.compared_with"
TAG_LAST_CHECK = "gate.last_check.verdict"
TAG_LAST_CHECK_REASONS = "gate.last_check.reasons"
TAG_LAST_CHECK_AT = "gate.last_check.at"
# What a gate record was decided under, so promotion can tell a current record from a stale one.
TAG_GATE_PARAMS = "gate.params_md5"
TAG_LAST_CHECK_PARAMS = "gate.last_check.params_md5"
TAG_LAST_CHECK_COMPARED_WITH = "gate.last_check.compared_with"
TAG_ROLLBACK_BLOCKED = "rollback.blocked"
# A version whose registration never completed (MLflow status other than READY): never
# found, served or promoted again; `churn challenge` registers a fresh one instead.
TAG_INVALID = "registration.invalid"
MAX_TAG_CHARS = 5000  # MLflow's limit for a tag value
LOCK_DIR = Path.home() / ".cache" / "churn" / "locks"


def lock_path(tracking_uri: str) -> Path:
    if tracking_uri.startswith("sqlite:///"):
        database = Path(tracking_uri.removeprefix("sqlite:///")).resolve()
        return database.with_name(database.name + ".registry.lock")
    digest = hashlib.md5(tracking_uri.encode()).hexdigest()[:16]
    return LOCK_DIR / f"registry-{digest}.lock"


@contextmanager
def registry_lock(tracking_uri: str) -> Iterator[None]:
    """Registration, promotion and rollback read, then write: MLflow has no transactions
    across calls, so two promotions racing could each read the old champion and both record
    it as "previous". An exclusive lock makes the sequence atomic for every process on this
    machine; for a shared server, CI serialises promotions with a concurrency group."""
    path = lock_path(tracking_uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def gate_params_md5(params: Params) -> str:
    """Everything a gate decision depends on besides the model and the champion: the data
    contract, the absolute gates, the decision threshold and the comparison rules."""
    return content_md5(
        {
            "dataset": params.dataset.model_dump(mode="json"),
            "validate": params.validation.model_dump(mode="json"),
            "decision_threshold": params.train.decision_threshold,
            "comparison": {metric: rule.model_dump(mode="json") for metric, rule in params.registry.comparison.items()},
        }
    )


def client(params: Params) -> MlflowClient:
    tracking.connect(params)
    from mlflow import MlflowClient

    return MlflowClient()


def find_version(mlflow_client: MlflowClient, params: Params, model_md5: str) -> ModelVersion | None:
    """The registry version holding this model as served under the current params (the
    same md5, contract and threshold), or None."""
    name = params.registry.model_name
    key = serving_key(params, model_md5)
    try:
        found = mlflow_client.search_model_versions(
            f"name = '{name}' and tags.`{tracking.TAG_SERVING_KEY}` = '{key}'"
        )
    except Exception as exc:
        raise ChurnError(f"cannot search the model registry: {exc.__class__.__name__}: {exc}") from None
    usable = sorted(
        (v for v in found if (v.tags or {}).get(TAG_INVALID) != "true"), key=lambda v: int(v.version)
    )
    return usable[0] if usable else None


def state(version: ModelVersion) -> str:
    """What a version found by `find_version` is: "gated" (it carries the record of a
    gate run), or "incomplete" (created, but the command died before the gate record was
    written; the next `churn challenge` completes it)."""
    status = str(getattr(version, "status", "READY") or "READY")
    if status != "READY":
        return f"incomplete (registration {status})"
    return "gated" if (version.tags or {}).get(TAG_VERDICT) else "incomplete"


def mark_invalid(mlflow_client: MlflowClient, name: str, version: ModelVersion, reason: str) -> None:
    mlflow_client.set_model_version_tag(name, str(version.version), TAG_INVALID, "true")
    mlflow_client.update_model_version(name, str(version.version), description=f"Invalid: {reason}")


def alias_version(mlflow_client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    """The version an alias points to; None when the model or the alias does not exist.

    Any other failure (server down, broken store) raises: "no champion" must never be
    confused with "cannot tell".
    """
    from mlflow.exceptions import MlflowException

    try:
        return mlflow_client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        message = str(exc)
        # Only MLflow's own "no such alias / model" answers mean absence (a bare 404 from a
        # proxy must not read as "no champion"). MLflow codes a missing alias
        # INVALID_PARAMETER_VALUE and a missing model RESOURCE_DOES_NOT_EXIST; over REST the
        # code also prefixes the message.
        missing_alias = exc.error_code == "INVALID_PARAMETER_VALUE" and f"alias {alias} not found" in message
        missing_model = exc.error_code == "RESOURCE_DOES_NOT_EXIST" and f"name={name} not found" in message
        if missing_alias or missing_model:
            return None
        raise ChurnError(f"cannot read alias @{alias} of {name}: {message}") from None


def clear_challenger(mlflow_client: MlflowClient, name: str, version: str) -> None:
    """Drop @challenger if it points at `version` (promoted, or no longer accepted)."""
    challenger = alias_version(mlflow_client, name, CHALLENGER)
    if challenger is not None and str(challenger.version) == str(version):
        mlflow_client.delete_registered_model_alias(name, CHALLENGER)


@contextmanager
def registry_errors(action: str) -> Iterator[None]:
    """MLflow failures inside a registry command become a short ChurnError."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as exc:
        raise ChurnError(f"{action} failed in the model registry: {exc}") from None


def tag_text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= MAX_TAG_CHARS else text[: MAX_TAG_CHARS - 3] + "..."


def lineage_tags(params: Params, model: CheckoutModel) -> dict[str, str]:
    return {
        tracking.TAG_MODEL_MD5: model.model_md5,
        tracking.TAG_SERVING_KEY: serving_key(params, model.model_md5),
        tracking.TAG_RAW_MD5: model.raw_md5,
        "dvc.train_md5": model.train_md5,
        "dvc.validation_md5": model.validation_md5,
        tracking.TAG_PARAMS_HASH: tracking.params_hash(params),
        tracking.TAG_GIT_COMMIT: tracking.git_commit(),
    }


def register(params: Params, model: CheckoutModel, mlflow_client: MlflowClient) -> ModelVersion:
    """Return the version for this model, creating it only if none exists (idempotent).

    Call under the registry lock: the check and the creation must not interleave with
    another registration of the same model.
    """
    name = params.registry.model_name
    existing = find_version(mlflow_client, params, model.model_md5)
    if existing is not None:
        return existing
    import mlflow

    run = runs.find_servable_run(params, model.model_md5)
    model_uri = run.data.tags.get(tracking.TAG_MODEL_URI) if run is not None else None
    if model_uri is None:
        model_uri = log_from_checkout(params, model)
    return mlflow.register_model(model_uri, name, tags=lineage_tags(params, model))


def log_from_checkout(params: Params, model: CheckoutModel) -> str:
    """Log the DVC-tracked model file, with its lineage, where this store has no run for it
    (trained on a laptop, registered on a new team server). Returns the logged model URI."""
    from churn.core.splits import raw_example, read_split

    paths = params.paths
    for path, expected in (
        (paths.model, model.model_md5),
        (paths.train_set, model.train_md5),
        (paths.validation_set, model.validation_md5),
        (paths.raw, model.raw_md5),
    ):
        ensure_locked(path, expected)
    verdict = read_json(paths.verdict) or {}
    metrics = {f"validation_{k}": v for k, v in (verdict.get("validation_metrics") or {}).items()}
    train, validation = read_split(paths.train_set, params.dataset), read_split(paths.validation_set, params.dataset)
    run_id = runs.log_training_run(
        params,
        model_bytes=paths.model.read_bytes(),
        input_example=raw_example(paths.raw, params.dataset),
        metrics=metrics,
        datasets=[
            runs.LoggedDataset("train", train, str(paths.train_set), model.train_md5, "training"),
            runs.LoggedDataset("validation", validation, str(paths.validation_set), model.validation_md5, "validation"),
        ],
        model_md5=model.model_md5,
        raw_md5=model.raw_md5,
        run_name="registered-from-checkout",
        extra_tags={"logged_from": "dvc checkout (no training run in this tracking store)"},
    )
    import mlflow

    return mlflow.get_run(run_id).data.tags[tracking.TAG_MODEL_URI]


