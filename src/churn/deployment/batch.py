"""Batch scoring (`churn predict`): raw records in, scores out, every row accounted for.

The registered model scores with its own contract and cleaning (`ChurnModel.score`), the
same code path `mlflow models serve` uses. Rows that break the contract are neither scored
nor dropped: they go to `<output stem>.rejected.csv` with their reasons. Scored rows are
appended to the inference log. Problems of the table itself (a missing column, no rows,
an unreadable file, no model) raise ChurnError before anything is written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import pandas as pd

from churn import progress
from churn.config import Params, is_url
from churn.deployment import inference_log
from churn.servable.pyfunc import ChurnModel
from churn.servable.scoring import PREDICTION, PROBABILITY
from churn.errors import ChurnError
from churn.io import output_set, write_csv, write_parquet
from churn.timestamps import aware_utc, refuse_future

DEFAULT_ALIAS = "champion"
REJECTED_SUFFIX = ".rejected.csv"
PROMOTE_FIX = "promote a model first: churn promote"
STORE_FIX = "check MLFLOW_TRACKING_URI (or tracking.uri in params.yaml)"

_ALIAS = re.compile(r"^[A-Za-z0-9_\-]+$")
_BY_ALIAS = re.compile(r"^models:/(?P<name>[^/@]+)@(?P<alias>[^/@]+)$")
_BY_VERSION = re.compile(r"^models:/(?P<name>[^/@]+)/(?P<version>\d+)$")


@dataclass(frozen=True)
class PredictResult:
    output: Path
    scored_rows: int
    rejected_rows: int
    rejected_path: Path | None
    log_file: Path | str | None  # a URL when the log is in an object store
    model_uri: str
    model_version: str


def read_records(path: str | Path) -> pd.DataFrame:
    """Records to score from a .csv (read as text: types are the contract's job) or .parquet."""
    from churn.core.contract import read_raw_csv

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise ChurnError(f"cannot read records from {path}: pass a .csv or .parquet file")
    if not path.is_file():
        raise ChurnError(f"input {path} not found: pass the path of an existing {suffix} file of records")
    if path.stat().st_size == 0:
        raise ChurnError(f"input {path} is empty (0 bytes): pass a file with a header and records")
    if suffix == ".csv":
        return read_raw_csv(path)
    try:
        return pd.read_parquet(path, engine="pyarrow")
    except Exception as exc:  # ArrowInvalid, OSError: not a Parquet file
        raise ChurnError(
            f"input {path} is not a readable Parquet file ({exc.__class__.__name__}: {exc}): "
            "pass a valid .parquet or a .csv"
        ) from None


def resolve_model_uri(params: Params, alias: str | None = None, version: str | int | None = None) -> str:
    """models:/<registry.model_name>@<alias, default champion>, or models:/<name>/<version>."""
    name = params.registry.model_name
    if alias is not None and version is not None:
        raise ChurnError("pass either an alias or a version, not both")
    if version is not None:
        text = str(version).strip()
        if not text.isdigit() or int(text) < 1:
            raise ChurnError(f"model version must be a positive integer, got {version!r}")
        return f"models:/{name}/{int(text)}"
    alias = DEFAULT_ALIAS if alias is None else alias.strip().lstrip("@")
    if not _ALIAS.match(alias):
        raise ChurnError(f"{alias!r} is not a registry alias (letters, digits, _ and -)")
    return f"models:/{name}@{alias}"


def _is_missing(exc: Exception) -> bool:
    code = getattr(exc, "error_code", "")
    message = str(exc).lower()
    return code == "RESOURCE_DOES_NOT_EXIST" or "not found" in message or "does not exist" in message


def load_scorer(model_uri: str) -> tuple[ChurnModel, str]:
    """The registered ChurnModel behind `model_uri`, and the registry version it resolved to.

    An alias is resolved to its version first and that exact version is loaded, so the
    version reported is the one that scored even if the alias moves meanwhile.
    """
    import mlflow.pyfunc
    from mlflow import MlflowClient

    by_alias, by_version = _BY_ALIAS.match(model_uri), _BY_VERSION.match(model_uri)
    if not (by_alias or by_version):
        raise ChurnError(
            f"{model_uri} is not a registry URI: use models:/<name>@<alias> or models:/<name>/<version>"
        )
    try:
        client = MlflowClient()
        if by_alias:
            found = client.get_model_version_by_alias(by_alias["name"], by_alias["alias"])
        else:
            found = client.get_model_version(by_version["name"], by_version["version"])
    except Exception as exc:
        if _is_missing(exc):
            raise ChurnError(f"{model_uri} does not exist in the model registry ({exc}): {PROMOTE_FIX}") from None
        raise ChurnError(
            f"cannot read {model_uri} from the model registry ({exc.__class__.__name__}: {exc}): {STORE_FIX}"
        ) from None
    version = str(found.version)
    try:
        loaded = mlflow.pyfunc.load_model(f"models:/{found.name}/{version}")
        scorer = loaded.unwrap_python_model()
    except Exception as exc:
        raise ChurnError(
            f"cannot load {model_uri} (version {version}): {exc.__class__.__name__}: {exc}. "
            f"{STORE_FIX}; if the artifacts are gone, register and promote a model again"
        ) from None
    if not isinstance(scorer, ChurnModel):
        raise ChurnError(
            f"{model_uri} (version {version}) is a {type(scorer).__name__}, not a churn model this "
            f"project logged: {PROMOTE_FIX}"
        )
    return scorer, version


def rejected_path_for(output: str | Path) -> Path:
    output = Path(output)
    return output.with_name(output.stem + REJECTED_SUFFIX)


def write_scores_then_log(
    output_path: Path,
    output: pd.DataFrame,
    rejected: pd.DataFrame,
    append_to_log: Callable[[], Path | None],
    log_root: Path,
) -> Path | None:
    """Scores and the inference log stay consistent: the scores (and rejected rows) are
    written to temporary files, the batch is appended to the log, and only then are the
    files moved into place. If the append fails, no score file appears (an earlier one at
    the same path is left as it was) and the error says so."""
    rejected_file = rejected_path_for(output_path)
    log_file: Path | None = None
    logged = False
    try:
        with output_set() as out:
            write_parquet(out.path(output_path), output)
            if len(rejected):
                write_csv(out.path(rejected_file), rejected)
            try:
                log_file = append_to_log()
                logged = True
            except (OSError, ChurnError) as exc:
                fix = (
                    "fix the object store's address, credentials or bucket"
                    if is_url(log_root)
                    else "fix the log directory's permissions or space"
                )
                raise ChurnError(
                    f"appending the scores to the inference log {log_root} failed ({exc}), so they were "
                    f"not written to {output_path} either (nothing was logged, no score file was "
                    f"changed): {fix} and rerun"
                ) from None
    except OSError as exc:
        done = f"the batch was logged to {log_file}, but" if logged else "nothing was logged, and"
        raise ChurnError(f"cannot write the scores to {output_path} ({exc}): {done} no score file was changed") from None
    if not len(rejected):
        # A rejected file from an earlier run of the same output would describe other data.
        rejected_file.unlink(missing_ok=True)
    return log_file


def predict(
    params: Params,
    input_path: str | Path,
    output_path: str | Path,
    *,
    alias: str | None = None,
    version: str | int | None = None,
    log_root: str | Path | None = None,
    now: datetime | None = None,
) -> PredictResult:
    """Score a file of raw records with a registered model; see the module docstring.

    `now` stamps the batch (scored_at, and so the log's date partition): default the
    clock; a past time replays or backfills a batch; a future time is refused.
    """
    from churn.core.tracking import connect

    input_path, output_path = Path(input_path), Path(output_path)
    if output_path.suffix.lower() != ".parquet":
        raise ChurnError(f"output {output_path} must be a .parquet file")
    if output_path.resolve() == input_path.resolve():
        raise ChurnError(f"output {output_path} would overwrite the input: choose another path")
    scored_at = aware_utc(datetime.now(timezone.utc) if now is None else now, "now")
    # `now` is the time the batch stands for (`churn predict --as-of`): a replay or backfill
    # may be in the past, never in the future.
    refuse_future(scored_at, "the batch's time (--as-of)")
    model_uri = resolve_model_uri(params, alias, version)
    log_root = params.paths.inference_log if log_root is None else log_root

    # Everything that can fail for the table as a whole fails here, before any write.
    with progress.phase(f"reading {input_path}") as step:
        records = read_records(input_path)
        step.done(f"{len(records):,} rows")
    with progress.phase(f"loading {model_uri}"):
        connect(params)
        scorer, model_version = load_scorer(model_uri)
    dataset = scorer.dataset  # the contract the model was trained with
    with progress.task("scoring", total=len(records), unit="rows") as scoring:
        batch = scorer.score(records, source=str(input_path))
        scoring.advance(len(records))
    scored, rejected = batch.scored, batch.rejected
    if len(scored) + len(rejected) != len(records):
        raise ChurnError(
            f"scoring accounted for {len(scored) + len(rejected)} of {len(records)} rows of "
            f"{input_path}: nothing was written (a bug in churn.servable.scoring)"
        )

    output = scored[dataset.key_columns].reset_index(drop=True).copy()
    output[dataset.id_column] = output[dataset.id_column].astype(str)
    output[PROBABILITY] = scored[PROBABILITY].to_numpy(dtype="float64")
    output[PREDICTION] = scored[PREDICTION].to_numpy(dtype="int64")
    output[inference_log.MODEL_VERSION] = model_version
    output[inference_log.SCORED_AT] = pd.Series(pd.Timestamp(scored_at), index=output.index).astype(
        "datetime64[ns, UTC]"
    )
    if dataset.label_column in scored.columns:
        label = scored[dataset.label_column].reset_index(drop=True)
        output[dataset.label_column] = label.astype(object).where(label.notna(), None).astype("string")
    log_file = write_scores_then_log(
        output_path,
        output,
        rejected,
        lambda: inference_log.append(
            log_root,
            scored,
            dataset=dataset,
            model_version=model_version,
            model_uri=model_uri,
            scored_at=scored_at,
        ),
        log_root,
    )
    rejected_file = rejected_path_for(output_path)
    return PredictResult(
        output=output_path,
        scored_rows=len(scored),
        rejected_rows=len(rejected),
        rejected_path=rejected_file if len(rejected) else None,
        log_file=log_file,
        model_uri=model_uri,
        model_version=model_version,
    )
