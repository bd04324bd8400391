"""Test metrics onto the training run, so its MLflow page shows train, validation and test.

A side effect beside the DVC graph: it never changes a DVC output, and it never fails the
stage. When there is no training run for this model in the store (the train stage was
restored from the DVC cache on another machine) or the store cannot be reached, the stage
log says so and the metrics stay only in the DVC metrics files. A restored evaluate stage
(DVC run-cache) logs nothing either: it did not run.
"""

from __future__ import annotations

import logging

from churn.config import Params
from churn.errors import ChurnError

log = logging.getLogger(__name__)


def log_test_metrics(params: Params, model_md5: str, metrics: dict[str, float | int | None]) -> str | None:
    """Log `metrics` (names as given) to the training run of `model_md5`. Returns the run id,
    or None after writing the reason to the stage log."""
    from churn.core import tracking

    values = {name: float(value) for name, value in metrics.items() if value is not None}
    try:
        run = tracking.find_run_for_model(params, model_md5)
        if run is None:
            log.warning(
                "no MLflow run for model %s in %s: test metrics not logged to MLflow (the DVC metrics "
                "files have them; the model's training run is in another tracking store or was never logged)",
                model_md5, tracking.tracking_uri(params),
            )
            return None
        import mlflow

        mlflow.MlflowClient().log_batch(
            run.info.run_id, metrics=[mlflow.entities.Metric(k, v, _now_ms(), 0) for k, v in sorted(values.items())]
        )
    except ChurnError as exc:
        log.warning("test metrics not logged to MLflow: %s", exc)
        return None
    except Exception as exc:  # a store failure must not fail a stage whose outputs are fine
        log.warning("test metrics not logged to MLflow: %s: %s", exc.__class__.__name__, exc)
        return None
    log.info("logged %d test metrics to MLflow run %s", len(values), run.info.run_id)
    return str(run.info.run_id)


def _now_ms() -> int:
    import time

    return int(time.time() * 1000)
