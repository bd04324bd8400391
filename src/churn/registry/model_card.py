"""A model card per registered version: what the model is for, what it was trained on, how
well it does overall and per slice, how fair it is, and the checks it passed.

Written from the DVC outputs of the checkout being registered (verdict, test metrics, slice
table, prep report) as Markdown, logged as an artifact of the version's run, linked from
the version's description and tag, and kept locally at paths.model_card for the PR report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from churn.config import Params
from churn.io import md5_file, read_json, write_text
from churn.markdown import table as markdown_table

TAG_MODEL_CARD = "model_card"
ARTIFACT_DIR = "model_card"
MAX_DESCRIPTION_CHARS = 5000  # MLflow stores a version description in 5000 characters
METRICS = ("roc_auc", "pr_auc", "f1", "precision", "recall", "accuracy", "log_loss", "brier")
UNAVAILABLE = "unavailable (run `dvc repro`)"


def _fmt(value: Any) -> str:
    if value is None or value == "":
        return "–"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def _md5(path: Path) -> str:
    try:
        return md5_file(path)
    except OSError:
        return "missing"


def lineage(params: Params) -> list[str]:
    paths = params.paths
    prep = read_json(paths.prep_report) or {}
    split = prep.get("split_rows", {})
    rows = [
        {"data": "raw snapshot", "path": str(paths.raw), "md5": _md5(paths.raw), "rows": prep.get("raw_rows")},
        {"data": "training set", "path": str(paths.train_set), "md5": _md5(paths.train_set), "rows": split.get("train")},
        {"data": "validation set", "path": str(paths.validation_set), "md5": _md5(paths.validation_set), "rows": split.get("validation")},
        {"data": "test set", "path": str(paths.test_set), "md5": _md5(paths.test_set), "rows": split.get("test")},
        {"data": "model", "path": str(paths.model), "md5": _md5(paths.model), "rows": None},
    ]
    lines = [markdown_table(pd.DataFrame([{k: _fmt(v) for k, v in r.items()} for r in rows]))]
    if "positive_rate" in prep:
        lines += ["", f"Churn rate in the labelled data: {prep['positive_rate']:.1%}."]
    lines += ["", period(params)]
    return lines


def period(params: Params) -> str:
    column = params.dataset.timestamp_column
    if column:
        try:
            times = pd.read_parquet(params.paths.train_set, columns=[column])[column]
            return f"Period (training set `{column}`): {times.min()} to {times.max()}."
        except (OSError, KeyError, ValueError):
            return f"Period: `{column}` could not be read from the training set."
    meta = _snapshot_meta(params)
    made = f" The snapshot's recorded origin: {meta}." if meta else ""
    return f"Period: not recorded (no `dataset.timestamp_column`); the raw md5 identifies the snapshot.{made}"


def _snapshot_meta(params: Params) -> str:
    dvc_file = params.paths.raw.with_name(params.paths.raw.name + ".dvc")
    try:
        meta = (yaml.safe_load(dvc_file.read_text()) or {}).get("meta")
    except (OSError, yaml.YAMLError):
        return ""
    return ", ".join(f"{k} {v}" for k, v in sorted(meta.items())) if isinstance(meta, dict) else ""


def metrics_table(verdict: dict[str, Any], test: dict[str, Any]) -> str:
    validation = verdict.get("validation_metrics") or {}
    rows = [{"metric": m, "validation": _fmt(validation.get(m)), "test": _fmt(test.get(m))} for m in METRICS]
    return markdown_table(pd.DataFrame(rows))


def slices_table(params: Params) -> list[str]:
    path = params.paths.plots_dir / "slices.csv"
    try:
        table = pd.read_csv(path, keep_default_na=False)
    except (OSError, ValueError, pd.errors.EmptyDataError):
        return [f"Per-slice test metrics: {UNAVAILABLE}."]
    if table.empty:
        return ["No slices configured (`validate.slices`)."]
    shown = pd.DataFrame({
        "slice": table["slice"],
        "rows": table["rows"],
        "churn rate": table["positive_rate"].map(_fmt),
        "ROC AUC": [_fmt(v) if s in (True, "True") else "too small" for v, s in zip(table["roc_auc"], table["scored"], strict=True)],
        "recall": table["recall"].map(_fmt),
        "precision": table["precision"].map(_fmt),
    })
    return [markdown_table(shown)]


def fairness_lines(verdict: dict[str, Any], slice_summary: dict[str, Any]) -> list[str]:
    rows = []
    for result in verdict.get("fairness") or []:
        differences = result.get("differences") or {}
        rows.append({
            "protected attribute": result["attribute"],
            "groups compared": ", ".join(result.get("groups") or []) or "–",
            "statistical parity diff.": _fmt(differences.get("statistical_parity_difference")),
            "equal opportunity diff.": _fmt(differences.get("equal_opportunity_difference")),
            "predictive parity diff.": _fmt(differences.get("predictive_parity_difference")),
        })
    if not rows:
        return ["No protected attributes configured (`validate.fairness.protected`)."]
    lines = ["Validation set (gated):", "", markdown_table(pd.DataFrame(rows))]
    test = {k: v for k, v in slice_summary.items() if k.startswith("max_") and v is not None}
    if test:
        lines += ["", "Test set, largest difference over the attributes: "
                  + ", ".join(f"{k.removeprefix('max_').replace('_', ' ')} {v:.4f}" for k, v in sorted(test.items())) + "."]
    return lines


def checks_table(verdict: dict[str, Any], kinds: tuple[str, ...]) -> str:
    rows = [
        {"check": c["name"], "value": _fmt(c["value"]), "rule": f"{c['op']} {c['threshold']:g}",
         "passed": "yes" if c["passed"] else "**no**", "note": c.get("note", "")}
        for c in verdict.get("checks", []) if c.get("kind") in kinds
    ]
    return markdown_table(pd.DataFrame(rows)) if rows else "No such checks configured."


def leakage_lines(verdict: dict[str, Any]) -> list[str]:
    aucs = (verdict.get("leakage") or {}).get("single_feature_auc") or {}
    ranked = sorted(((v, k) for k, v in aucs.items() if v is not None), reverse=True)[:5]
    lines = []
    if ranked:
        lines.append("Strongest single features (training-set ROC AUC alone): "
                     + ", ".join(f"`{k}` {v:.3f}" for v, k in ranked) + ".")
        lines.append("")
    failing = [c for c in verdict.get("checks", []) if c.get("kind") == "leakage" and not c["passed"]]
    ceiling = [c for c in verdict.get("checks", []) if c["name"] == "validation_roc_auc_ceiling"]
    if ceiling:
        lines.append(f"Validation ROC AUC {ceiling[0]['value']:.4f} against the too-good-to-be-true ceiling "
                     f"{ceiling[0]['threshold']:g}.")
    lines.append("No leakage check failed." if not failing else
                 "Failed: " + "; ".join(f"`{c['name']}` = {c['value']:g} ({c.get('note', '')})" for c in failing))
    return lines


def limitations(params: Params, verdict: dict[str, Any]) -> list[str]:
    items = [
        "Scores are calibrated to the churn rate of the training snapshot; a different base rate "
        "(another market, a later period) shifts them. Watch the drift report and the inference log.",
        f"The decision threshold {params.train.decision_threshold:g} trades recall for precision for "
        "retention outreach; it is not a fairness-neutral choice.",
        "Correlational: a feature's importance says nothing about what causes churn or which offer prevents it.",
    ]
    small = [s["slice"] for s in verdict.get("slices") or [] if not s.get("scored")]
    if small:
        items.append("Not scored for lack of rows (no evidence either way): " + ", ".join(f"`{s}`" for s in small) + ".")
    left_out = [f"`{r['attribute']}={g}`" for r in verdict.get("fairness") or [] for g in r.get("left_out") or {}]
    if left_out:
        items.append("Left out of the fairness comparison (too few rows): " + ", ".join(left_out) + ".")
    if not params.validation.fairness.protected:
        items.append("No protected attributes were checked for fairness.")
    return [f"- {item}" for item in items]


def render(params: Params, version: str | None = None) -> str:
    paths, dataset = params.paths, params.dataset
    verdict = read_json(paths.verdict) or {}
    test = read_json(paths.test_metrics) or {}
    slice_summary = read_json(paths.slice_metrics) or {}
    title = f"{params.registry.model_name} v{version}" if version else params.registry.model_name
    hyperparameters = ", ".join(f"{k}={v}" for k, v in sorted(params.train.model_params.items())) or "defaults"
    outcome = verdict.get("verdict", "missing")
    sections = [
        f"# Model card: {title}",
        "",
        f"- Model: scikit-learn `{params.train.family}` ({hyperparameters}), seed {params.train.seed}, "
        f"decision threshold {params.train.decision_threshold:g}",
        f"- Model md5 (DVC): `{_md5(paths.model)}`",
        f"- Gate verdict: **{outcome}**" + "".join(f"\n  - {r}" for r in verdict.get("reasons") or []),
        "",
        "## Intended use",
        "",
        f"Rank current customers of `{dataset.name}` by their probability to churn, so that a retention team "
        f"can contact the most likely leavers first. {dataset.description}".rstrip(),
        "Not for decisions about individuals without a human in the loop (pricing, credit, service denial), "
        "and not for a population other than the one in the training snapshot.",
        "",
        "## Training data (lineage)",
        "",
        *lineage(params),
        "",
        "## Metrics",
        "",
        metrics_table(verdict, test),
        "",
        "## Metrics per slice (test set)",
        "",
        *slices_table(params),
        "",
        "## Fairness",
        "",
        *fairness_lines(verdict, slice_summary),
        "",
        "## Leakage checks",
        "",
        *leakage_lines(verdict),
        "",
        "## Baseline checks",
        "",
        checks_table(verdict, ("baseline",)),
        "",
        "## Known limitations",
        "",
        *limitations(params, verdict),
    ]
    return "\n".join(sections).rstrip() + "\n"


def attach(params: Params, mlflow_client: Any, version: Any) -> str:
    """Card for a newly registered version: local file, run artifact, tag and description.
    Returns where the card is (the artifact URI, or the local path when the version has no
    run to hold it)."""
    name, number = params.registry.model_name, str(version.version)
    text = render(params, number)
    write_text(params.paths.model_card, text)
    location = str(params.paths.model_card)
    run_id = getattr(version, "run_id", None)
    if run_id:
        artifact = f"{ARTIFACT_DIR}/{name}-v{number}.md"
        mlflow_client.log_text(run_id, text, artifact)
        location = f"runs:/{run_id}/{artifact}"
    mlflow_client.set_model_version_tag(name, number, TAG_MODEL_CARD, location)
    current = mlflow_client.get_model_version(name, number).description or ""
    card = f"\n\n---\n\n{text}"
    link = f"\n\nModel card: `{location}`"
    description = current + (card if len(current + card) <= MAX_DESCRIPTION_CHARS else link)
    mlflow_client.update_model_version(name, number, description=description)
    return location

