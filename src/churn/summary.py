"""The closing summary of `make run`: what came out, and where to look next."""

from __future__ import annotations

from churn.config import Params
from churn.errors import ChurnError
from churn.io import md5_file, read_json

KEY_METRICS = ("roc_auc", "pr_auc", "f1", "recall", "precision", "log_loss")


def mlflow_run_line(params: Params) -> str:
    from churn.core import tracking

    try:
        run = tracking.find_run_for_model(params, md5_file(params.paths.model))
    except (ChurnError, OSError) as exc:
        return f"MLflow run: unavailable ({exc})"
    if run is None:
        return (
            "MLflow run: none recorded for this model (its stage was restored from the DVC cache); "
            "`dvc repro --force train` logs one"
        )
    uri = tracking.tracking_uri(params)
    if tracking.is_server(uri):
        return f"MLflow run: {tracking.run_link(params, run)}"
    # MLflow's UI opens on its GenAI overview; the run's own page is what people want here.
    page = f"http://127.0.0.1:5000/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}"
    return f"MLflow run: {run.info.run_id} (experiment {tracking.experiment_name(params)!r}, {uri}); in the UI: {page}"


def mlflow_ui_line(uri: str) -> str:
    """Where to look at runs: a server is opened as it is; a local store needs `mlflow ui`."""
    from churn.core import tracking

    if tracking.is_server(uri):
        return f"  MLflow UI:     {uri.rstrip('/')}  (the team server; sign in as MLFLOW_TRACKING_USERNAME)"
    return f"  MLflow UI:     .venv/bin/mlflow ui --backend-store-uri {uri}  (then open the run page above)"


def _tracking_uri(params: Params) -> str:
    from churn.core.tracking import tracking_uri

    return tracking_uri(params)


def render(params: Params) -> str:
    from churn.core.verdict import read_verdict

    paths = params.paths
    lines = ["", "== churn pipeline summary =="]
    metrics = read_json(paths.test_metrics)
    if metrics:
        lines.append("test metrics: " + ", ".join(f"{k} {metrics[k]:.4f}" for k in KEY_METRICS if k in metrics))
    else:
        lines.append(f"test metrics: missing ({paths.test_metrics}); run `dvc repro`")
    passed, reasons = read_verdict(paths.verdict, paths.model, params)
    lines.append(f"gate verdict: {'passed' if passed else 'rejected'}")
    lines += [f"  - {reason}" for reason in reasons]
    drift = read_json(paths.drift_metrics)
    if drift:
        lines.append(
            f"train-vs-test drift: {drift['columns_drifted']} of {drift['columns_total']} columns drifted"
        )
    lines.append(mlflow_run_line(params))
    lines += [
        "",
        "next:",
        mlflow_ui_line(_tracking_uri(params)),
        f"  drift report:  {paths.drift_report_html}"
        + ("" if paths.drift_report_html.is_file() else "  (not in this checkout: `churn drift-report` writes it)"),
        f"  verdict:       {paths.verdict}",
        "  plots:         .venv/bin/dvc plots show  (writes dvc_plots/index.html)",
        "  metrics:       .venv/bin/dvc metrics show",
    ]
    return "\n".join(lines)
