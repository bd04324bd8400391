"""`churn report --base <ref>`: one Markdown report of what a change does, for review.

Sections: verdict, params, metrics, data, drift between the base and head training data,
plots (PNG) and links. A section with nothing to show says so in one line. The base's
outputs are read from git (metrics, plot data) and from the DVC cache or remote (data),
never recomputed.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from churn import progress
from churn.config import Params
from churn.errors import ChurnError
from churn.io import read_json, write_json, write_text
from churn.markdown import table as markdown_table
from churn.reporting import dvc_queries as dq
from churn.reporting import figures

DRIFT_HTML = "drift_base_vs_head.html"
DRIFT_SUMMARY_METRICS = ("share_drifted", "columns_drifted")


@dataclass(frozen=True)
class ReportResult:
    markdown: Path
    images: list[Path]
    drift: dict[str, Any] | None
    verdict: str


def build(params: Params, base: str) -> ReportResult:
    base_commit = dq.resolve(base)
    settings = params.report
    assets = settings.assets_dir
    assets.mkdir(parents=True, exist_ok=True)

    paths = params.paths
    base_files = dq.BaseFiles(
        base,
        rebuild_paths=[str(p) for p in (paths.raw, paths.feature_table, paths.label_table, paths.train_set,
                                        paths.validation_set, paths.test_set)],
        probe=str(paths.train_set),
    )
    verdict_lines, verdict = verdict_section(params)
    with progress.phase("drift between the base and head training data (evidently)") as drifting:
        drift_lines, drift = drift_section(params, base_files)
        drifting.done(f"{drift['columns_drifted']} of {drift['columns_total']} columns drifted" if drift else "not computed")
    if base_files.note:
        drift_lines = [f"_{base_files.note}_", "", *drift_lines]
    with progress.phase("plots") as plotting:
        plot_lines, images = plots_section(params, base, assets)
        plotting.done(f"{len(images)} images in {assets}")
    with progress.phase(f"params, metrics and data against {base} (dvc diff)"):
        params_lines = params_section(base)
        metrics_lines = metrics_section(params, base)
        data_lines = data_section(base, base_files)
    sections = [
        (f"## Churn pipeline report: `{_short(_head())}` vs `{base}` (`{base_commit[:8]}`)", []),
        ("### Verdict", verdict_lines),
        ("### Params", params_lines),
        ("### Metrics", metrics_lines),
        ("### Data", data_lines),
        ("### Drift between the base and head training data", drift_lines),
        ("### Plots", plot_lines),
        ("### Links", links_section(params)),
        ("", [configuration_note(params)]),
    ]
    lines: list[str] = []
    for title, body in sections:
        lines += [title, *body, ""] if title else [*body, ""]
    write_text(settings.markdown, "\n".join(lines).rstrip() + "\n")
    return ReportResult(settings.markdown, images, drift, verdict)


def _head() -> str:
    return dq._run("git", "rev-parse", "HEAD").stdout.strip() or "workspace"


def _short(commit: str) -> str:
    return commit[:8]


def verdict_section(params: Params) -> tuple[list[str], str]:
    from churn.core.verdict import read_verdict

    passed, reasons = read_verdict(params.paths.verdict, params.paths.model, params)
    challenge = read_json(params.paths.challenge)
    current = challenge if challenge and challenge.get("model_md5") == _verdict_md5(params) else None
    if current is not None:
        passed = current["verdict"] == "passed"
        reasons = current["reasons"]
    verdict = "passed" if passed else "rejected"
    lines = [f"**Gate: {verdict.upper()}** " + ("✅" if passed else "❌")]
    lines += [f"- {reason}" for reason in reasons]
    if current is None:
        lines.append("_Champion comparison not run for this model (`churn challenge`); absolute gates only._")
    elif current.get("note"):
        lines.append(f"_{current['note']}_")
    if current and current.get("comparison"):
        table = pd.DataFrame(current["comparison"])
        table["passed"] = table["passed"].map({True: "✅", False: "❌"})
        lines += ["", f"Candidate vs champion v{current['champion_version']} (candidate's validation set):", "", markdown_table(table)]
    lines += evidence_lines(read_json(params.paths.verdict) or {})
    return lines, verdict


EVIDENCE_KINDS = ("leakage", "baseline", "slice", "fairness")


def evidence_rows(checks: list[dict[str, Any]]) -> list[dict[str, str]]:
    """One row per family of checks (`single_feature_auc`, `slice_roc_auc`, ...): every
    failing check, or else the one closest to its threshold, with how many there are."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for check in checks:
        if check.get("kind") in EVIDENCE_KINDS:
            groups.setdefault((check["kind"], check["name"].split(".")[0]), []).append(check)
    rows = []
    for (kind, _family), members in sorted(groups.items(), key=lambda item: EVIDENCE_KINDS.index(item[0][0])):
        failing = [c for c in members if not c["passed"]]
        shown = failing or [min(members, key=lambda c: abs(c["threshold"] - c["value"]))]
        for check in shown:
            rows.append({
                "kind": kind,
                "check": f"`{check['name']}`",
                "value": f"{check['value']:.4f}",
                "rule": f"{check['op']} {check['threshold']:g}",
                "passed": "✅" if check["passed"] else "❌",
                "of": f"{len(members) - len(failing)}/{len(members)} passed",
                "note": check.get("note", ""),
            })
    return rows


def evidence_lines(verdict: dict[str, Any]) -> list[str]:
    rows = evidence_rows(verdict.get("checks") or [])
    if not rows:
        return ["", "_No leakage, baseline, slice or fairness checks in this verdict._"]
    baseline = verdict.get("baseline") or {}
    scores = ", ".join(f"{name} {auc:.4f}" for name, auc in sorted((baseline.get("roc_auc") or {}).items()))
    lines = ["", "Evidence (validation set; per family the failing checks, or the closest to its threshold):", "",
             markdown_table(pd.DataFrame(rows))]
    if scores:
        lines += ["", f"Validation ROC AUC: candidate {baseline.get('candidate_roc_auc', 0):.4f}; baselines {scores}."]
    small = [s["slice"] for s in verdict.get("slices") or [] if not s.get("scored")]
    if small:
        lines += ["", "Slices too small to score: " + ", ".join(f"`{s}`" for s in small) + "."]
    return lines


def _verdict_md5(params: Params) -> str | None:
    data = read_json(params.paths.verdict) or {}
    return data.get("model_md5")


def params_section(base: str) -> list[str]:
    changes, markdown = dq.params_diff(base)
    return [markdown] if changes else ["No params changed."]


def metrics_section(params: Params, base: str) -> list[str]:
    diff = dq.metrics_diff(base)
    rows = []
    drift_file = str(params.paths.drift_metrics)
    for file, metrics in sorted(diff.items()):
        if file == str(params.report.drift_metrics):
            continue
        for name, values in sorted(metrics.items()):
            # Of the train-vs-test drift numbers, the summary is news; per-column scores are noise here.
            if file == drift_file and name not in DRIFT_SUMMARY_METRICS:
                continue
            old, new = values.get("old"), values.get("new")
            if not isinstance(new, (int, float)) or isinstance(new, bool):
                continue
            delta = values.get("diff")
            if delta is None and isinstance(old, (int, float)):
                delta = new - old
            limit = params.report.highlight.get(name)
            moved = delta is not None and limit is not None and abs(delta) > limit
            rows.append(
                {
                    "file": file,
                    "metric": f"**{name}**" if moved else name,
                    "base": _fmt(old),
                    "head": _fmt(new),
                    "delta": _delta_text(name, delta, moved),
                }
            )
    if not rows:
        return ["No metrics to compare."]
    if all(row["delta"] in ("+0.0000", "-0.0000") for row in rows):
        return ["No metric changed."]
    note = (
        "Bold: moved by more than `report.highlight` in params.yaml; "
        "✅ better, 🔻 worse for that metric (lower is better for "
        + ", ".join(f"`{m}`" for m in sorted(LOWER_IS_BETTER))
        + ")."
    )
    return [markdown_table(pd.DataFrame(rows)), "", note]


def data_section(base: str, base_files: dq.BaseFiles) -> list[str]:
    diff = dq.data_diff(base)
    rows = []
    for change in ("added", "deleted", "modified", "renamed"):
        for entry in diff.get(change, []):
            path = entry["path"] if isinstance(entry.get("path"), str) else entry["path"]["new"]
            if path.endswith("/"):
                continue
            tabular = path.endswith((".csv", ".parquet"))
            before = dq.row_count(path, base_files.read(path)) if tabular and change != "added" else None
            after = dq.row_count(path, Path(path).read_bytes()) if tabular and change != "deleted" and Path(path).is_file() else None
            rows.append({"path": path, "change": change, "rows (base)": _count(path, before, change == "added"),
                         "rows (head)": _count(path, after, change == "deleted")})
    if not rows:
        return ["No DVC-tracked data changed."]
    return [markdown_table(pd.DataFrame(rows))]


def _count(path: str, value: int | None, absent: bool) -> str:
    if absent or not path.endswith((".csv", ".parquet")):
        return "–"
    return f"{value:,}" if value is not None else "unavailable (not in cache or remote)"


def drift_section(params: Params, base_files: dq.BaseFiles) -> tuple[list[str], dict[str, Any] | None]:
    from churn.monitoring.drift import compare

    dataset, settings = params.dataset, params.report
    from churn.core.splits import read_split

    head_train = read_split(params.paths.train_set, dataset)
    base_train = base_files.read_parquet(params.paths.train_set)
    if base_train is None:
        return [f"Base training data unavailable for `{base_files.base}`: drift not computed. A shared DVC "
                "remote (`DVC_REMOTE_URL` in CI) makes it available."], None
    missing = [c for c in dataset.feature_columns if c not in base_train.columns]
    if missing:
        return [f"The base training data has other columns ({missing} missing): drift not computed."], None
    columns = dict(numeric=list(dataset.numeric), categorical=list(dataset.categorical))
    sample = settings.drift_sample_size
    comparison = compare(base_train, head_train, sample_size=sample, seed=params.evaluate.drift.seed,
                         drift_share=params.evaluate.drift.drift_share, **columns)
    drift = comparison.summary
    write_json(settings.drift_metrics, {k: v for k, v in drift.items() if k != "columns"} | {
        "columns": {c: {"score": e["score"], "drifted": e["drifted"]} for c, e in drift["columns"].items()}
    })
    comparison.write_html(settings.assets_dir / DRIFT_HTML)
    ranked = sorted(drift["columns"].items(), key=lambda item: (not item[1]["drifted"], -_severity(item[1])))
    drifted = [name for name, entry in ranked if entry["drifted"]]
    table = pd.DataFrame(
        [{"column": name, "method": e["method"], "score": f"{e['score']:.4f}", "threshold": e["threshold"],
          "drifted": "⚠️ yes" if e["drifted"] else "no"} for name, e in ranked[: settings.top_drifted]]
    )
    lines = [
        f"**{drift['columns_drifted']} of {drift['columns_total']} columns drifted** "
        f"(share {drift['share_drifted']:.0%}; dataset drift {'detected' if drift['dataset_drift'] else 'not detected'}). "
        f"evidently compared {drift['reference_rows']:,} base rows with {drift['current_rows']:,} head rows "
        f"(sample size cap {sample:,} per side).",
        "",
        reading(drift, drifted),
        "",
        f"Top {min(settings.top_drifted, len(ranked))} columns:",
        "",
        markdown_table(table),
    ]
    return lines, drift


def _severity(entry: dict[str, Any]) -> float:
    # p-values drift when small, distances when large: rank both as "how far past the line".
    score, threshold = entry["score"] or 0.0, entry["threshold"] or 0.0
    return (threshold - score) if "p_value" in entry["method"] else (score - threshold)


def reading(drift: dict[str, Any], drifted: list[str]) -> str:
    if not drifted:
        return "Reading: the head training data is distributed like the base's; no column drifted."
    names = ", ".join(f"`{c}`" for c in drifted[:5]) + (" and more" if len(drifted) > 5 else "")
    strength = "most of the table" if drift["dataset_drift"] else "a few columns"
    return f"Reading: the training data moved in {strength} ({names}); check that the change is intended before merging."


def plots_section(params: Params, base: str, assets: Path) -> tuple[list[str], list[Path]]:
    plots_dir = params.paths.plots_dir

    def pair(name: str) -> tuple[pd.DataFrame | None, pd.DataFrame]:
        old = dq.git_show(plots_dir / name, base)
        head = plots_dir / name
        if not head.is_file():
            raise ChurnError(f"{head} not found: run `dvc repro` before `churn report`.")
        return (pd.read_csv(io.BytesIO(old)) if old else None), pd.read_csv(head)

    images = [
        figures.curve(assets / "roc.png", *pair("roc.csv"), x="fpr", y="tpr", title="ROC", diagonal=True),
        figures.curve(assets / "precision_recall.png", *pair("precision_recall.csv"), x="recall", y="precision",
                      title="Precision-recall", diagonal=False),
        figures.confusion(assets / "confusion.png", *pair("confusion.csv")),
    ]
    return [" ".join(f"![{image.stem}]({image.as_posix()})" for image in images)], images


def links_section(params: Params) -> list[str]:
    from churn.core import tracking
    from churn.io import md5_file

    lines = []
    try:
        run = tracking.find_run_for_model(params, md5_file(params.paths.model))
    except (ChurnError, OSError) as exc:
        run = None
        lines.append(f"- MLflow: unavailable ({exc})")
    if run is not None:
        lines.append(f"- MLflow run: {tracking.run_link(params, run)}")
    elif not lines:
        lines.append("- MLflow run: none recorded for this model in this tracking store")
    challenge = read_json(params.paths.challenge) or {}
    if challenge.get("version"):
        lines.append(f"- Model version: `{challenge['registered_model']}` v{challenge['version']}")
    if challenge.get("model_card") and challenge.get("model_md5") == _verdict_md5(params):
        lines.append(f"- Model card: `{challenge['model_card']}` (copy: `{params.paths.model_card}` in the workflow artifacts)")
    else:
        lines.append("- Model card: written when `churn challenge` registers the model")
    lines.append(f"- Full drift report (HTML): `{params.report.assets_dir / DRIFT_HTML}` in the workflow artifacts")
    return lines


def configuration_note(params: Params) -> str:
    from churn.core.tracking import tracking_uri

    uri = tracking_uri(params)
    if uri.startswith(("http://", "https://", "databricks")):
        mlflow_note = f"MLflow: team tracking server `{uri}`."
    else:
        mlflow_note = (
            f"MLflow: local store `{uri}` (no team `MLFLOW_TRACKING_URI` configured): runs and registry "
            "entries of this job stay on its machine and reach no team registry."
        )
    remote = dq.default_remote_url()
    in_repo = remote is not None and "://" not in remote and Path(remote).resolve().is_relative_to(Path.cwd().resolve())
    if remote is None or in_repo:
        dvc_note = "DVC: no shared remote configured (only the in-repo local one): data and run-cache are not shared."
    else:
        dvc_note = f"DVC: remote `{remote}`."
    return f"_{mlflow_note} {dvc_note}_"


# Metrics whose improvement is a decrease; every other metric improves by rising.
LOWER_IS_BETTER = frozenset({"log_loss", "brier", "share_drifted", "columns_drifted"})


def _delta_text(metric: str, delta: float | None, moved: bool) -> str:
    """The delta, and for a highlighted move whether it is better or worse for that metric."""
    if delta is None:
        return "new"
    if not moved:
        return f"{delta:+.4f}"
    better = (delta < 0) if metric in LOWER_IS_BETTER else (delta > 0)
    return f"**{delta:+.4f}** {'✅ better' if better else '🔻 worse'}"


def _fmt(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "–"
