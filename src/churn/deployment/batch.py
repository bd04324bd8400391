"""Batch scoring (`churn predict`): raw records in, scores out, every row accounted for.

The registered model scores with its own contract and cleaning (`ChurnModel.score`), the
same code path `mlflow models serve` uses. Rows that break the contract are neither scored
nor dropped: they go to `<output stem>.rejected.csv` with their reasons. Scored rows are
appended to the inference log. Problems of the table itself (a missing column, no rows,
an unreadable file, no model) raise ChurnError before anything is written.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from churn import progress
from churn.config import Params, is_url
from churn.deployment import inference_log
from churn.deployment.outputs import no_scores, written_tables
from churn.deployment.records import open_records, whole_file_facts
from churn.deployment.stream import DEFAULT_BATCH_ROWS, ParquetParts, ScoringPool, score_stream
from churn.errors import ChurnError
from churn.io import output_set, temporary_sibling, write_csv
from churn.storage import Folder
from churn.timestamps import aware_utc, refuse_future

if TYPE_CHECKING:  # MLflow is imported where a model is loaded, after the scoring workers start
    from churn.servable.pyfunc import ChurnModel

DEFAULT_ALIAS = "champion"
REJECTED_SUFFIX = ".rejected.csv"
PROMOTE_FIX = "promote a model first: churn promote"
STORE_FIX = "check MLFLOW_TRACKING_URI (or tracking.uri in params.yaml)"

# What the fork server of the scoring workers imports before it forks them: the shaping
# of the written rows, and the loading of the model's archive and its scoring.
_WORKER_MODULES = ("churn.deployment.outputs", "churn.core.model_file", "skops.io", "churn.core.predict")

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


def load_scorer(model_uri: str, *, defer_pipeline: bool = False) -> tuple[ChurnModel, str]:
    """The registered ChurnModel behind `model_uri`, and the registry version it resolved to.

    An alias is resolved to its version first and that exact version is loaded, so the
    version reported is the one that scored even if the alias moves meanwhile.
    `defer_pipeline`: leave the fitted pipeline in its archive (`ChurnModel.model` is then its
    path), for worker processes to load. A model logged before the setting existed loads
    its pipeline all the same (MLflow warns that it ignored the setting).
    """
    import mlflow.pyfunc
    from mlflow import MlflowClient

    from churn.servable.pyfunc import DEFER_PIPELINE, ChurnModel

    by_alias, by_version = _BY_ALIAS.match(model_uri), _BY_VERSION.match(model_uri)
    if not (by_alias or by_version):
        raise ChurnError(
            f"{model_uri} is not a registry URI: use models:/<name>@<alias> or models:/<name>/<version>"
        )
    try:
        client = MlflowClient()
        if by_alias:
            found = client.get_model_version_by_alias(by_alias["name"], by_alias["alias"])
        elif by_version:
            found = client.get_model_version(by_version["name"], by_version["version"])
    except Exception as exc:
        if _is_missing(exc):
            raise ChurnError(f"{model_uri} does not exist in the model registry ({exc}): {PROMOTE_FIX}") from None
        raise ChurnError(
            f"cannot read {model_uri} from the model registry ({exc.__class__.__name__}: {exc}): {STORE_FIX}"
        ) from None
    version = str(found.version)
    try:
        loaded = mlflow.pyfunc.load_model(
            f"models:/{found.name}/{version}", model_config={DEFER_PIPELINE: True} if defer_pipeline else None
        )
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


def _log_failed(log_root: str | Path, output_path: Path, exc: Exception) -> ChurnError:
    fix = (
        "fix the object store's address, credentials or bucket"
        if is_url(str(log_root))
        else "fix the log directory's permissions or space"
    )
    return ChurnError(
        f"appending the scores to the inference log {log_root} failed ({exc}), so they were not "
        f"written to {output_path} either (nothing was logged, no score file was changed): {fix} "
        "and rerun"
    )


@contextmanager
def _staging(folder: Folder, name: str) -> Iterator[Path]:
    """A local file to stream the log rows to before `Folder.put_file`: a hidden sibling of
    the log file on local disk (the move is then a rename; readers skip dot files), a
    temporary directory's file for an object store (then one upload)."""
    if not folder.remote:
        with temporary_sibling(Path(folder.root) / name) as tmp:
            yield tmp
        return
    with tempfile.TemporaryDirectory(prefix="churn-log-") as directory:
        yield Path(directory) / name


def rejected_path_for(output: str | Path) -> Path:
    output = Path(output)
    return output.with_name(output.stem + REJECTED_SUFFIX)


def predict(
    params: Params,
    input_path: str | Path,
    output_path: str | Path,
    *,
    alias: str | None = None,
    version: str | int | None = None,
    log_root: str | Path | None = None,
    now: datetime | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
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
    scored_at = aware_utc(datetime.now(UTC) if now is None else now, "now")
    # `now` is the time the batch stands for (`churn predict --as-of`): a replay or backfill
    # may be in the past, never in the future.
    refuse_future(scored_at, "the batch's time (--as-of)")
    model_uri = resolve_model_uri(params, alias, version)
    log_root = params.paths.inference_log if log_root is None else log_root

    # Everything that can fail for the table as a whole fails before the first write; the
    # first batch answers for the table (a missing column, no rows) before anything is moved
    # into place.
    records = open_records(input_path)
    with ExitStack() as stack:
        # Before the model loads: worker processes for a large input start meanwhile.
        pool = stack.enter_context(ScoringPool(records.rows, preload=_WORKER_MODULES))
        with progress.phase(f"loading {model_uri}"):
            connect(params)
            # Worker processes load the pipeline themselves, while this one reads the input.
            scorer, model_version = load_scorer(model_uri, defer_pipeline=pool.processes)
        dataset = scorer.dataset  # the contract the model was trained with
        with progress.phase(f"reading {input_path}") as step:
            # One pass over the id column: repeated ids and the row count, for the whole file.
            facts = whole_file_facts(records, dataset)
            if facts.rows is not None:
                step.done(f"{facts.rows:,} rows")
        # The log file's place through churn.storage (local or object store); its rows are
        # streamed to a local staging file and put in place whole, before the scores.
        log_dir, log_name = inference_log.new_log_file(log_root, scored_at)
        log_file: Path | str | None = None
        rejected_file = rejected_path_for(output_path)
        output_tmp = stack.enter_context(temporary_sibling(output_path))
        try:  # e.g. a file where the log's directory should be
            log_tmp = stack.enter_context(_staging(log_dir, log_name))
        except OSError as exc:
            raise _log_failed(log_root, output_path, exc) from None
        scores, logged = ParquetParts(output_tmp), ParquetParts(log_tmp)

        def write(tables: tuple[pa.Table, pa.Table]) -> None:
            scores.write(tables[0])
            logged.write(tables[1])

        try:
            with progress.task("scoring", total=facts.rows, unit="rows") as scoring:
                totals = score_stream(
                    scorer.record_scorer(), records, source=str(input_path), batch_rows=batch_rows,
                    on_scored=write, on_rows=scoring.advance, facts=facts, pool=pool,
                    shape=partial(
                        written_tables, dataset=dataset, model_version=model_version, model_uri=model_uri,
                        scored_at=scored_at,
                    ),
                )
            scores.close(lambda: no_scores(dataset, model_version, scored_at))
            logged.close(None)
        except BaseException:
            scores.abort()
            logged.abort()
            raise
        rejected = totals.rejected
        # The log entry first: scores never stand without it.
        if totals.scored_rows:
            try:
                log_file = log_dir.put_file(log_name, log_tmp)
            except (OSError, ChurnError) as exc:
                raise _log_failed(log_root, output_path, exc) from None
        try:
            # The score file and its rejected rows land together or not at all (main's output set).
            with output_set() as out:
                if len(rejected):
                    write_csv(out.path(rejected_file), rejected)
                os.replace(output_tmp, out.path(output_path))
            if not len(rejected):
                # A rejected file from an earlier run of the same output would describe other data.
                rejected_file.unlink(missing_ok=True)
        except OSError as exc:
            done = f"the batch was logged to {log_file}, but" if log_file else "nothing was logged, and"
            raise ChurnError(
                f"cannot write the scores to {output_path} ({exc}): {done} the score file was not changed"
            ) from None
    return PredictResult(
        output=output_path,
        scored_rows=totals.scored_rows,
        rejected_rows=len(rejected),
        rejected_path=rejected_file if len(rejected) else None,
        log_file=log_file,
        model_uri=model_uri,
        model_version=model_version,
    )
