"""`reports/monitoring.html`: one self-contained page over the monitor's tables.

Trend plots (matplotlib PNGs embedded as base64): drift per column against its threshold,
mean probability and predicted positive rate, realised and estimated ROC AUC side by
side, rows per window. The latest window's evidently drift report (baseline vs that
window) is written beside it for drill-down and linked and framed from the page.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

import pandas as pd

from churn.config import Params
from churn.io import write_text
from churn.monitoring.tables import BASELINE, INSUFFICIENT, TABLE

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:24px auto;max-width:1180px;color:#222}
h1{font-size:1.5em;margin-bottom:4px} h2{font-size:1.15em;margin-top:28px;border-bottom:1px solid #ddd}
.meta{color:#555;font-size:.92em} .warn{background:#fff4e5;border-left:4px solid #f0a020;padding:6px 10px;margin:4px 0}
.verdict{padding:8px 12px;border-radius:4px;display:inline-block;font-weight:600}
.retrain{background:#fde2e1;color:#a40000} .ok{background:#e3f4e1;color:#1e6b12} .unknown{background:#eee;color:#444}
img{max-width:100%;border:1px solid #eee;margin:6px 0}
table{border-collapse:collapse;font-size:.88em} td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}
th{background:#f6f6f6} td:first-child,th:first-child{text-align:left}
iframe{width:100%;height:900px;border:1px solid #ccc}
"""


def write(
    params: Params,
    profile: pd.DataFrame,
    drift: pd.DataFrame,
    *,
    baseline_source: str | None,
    baseline_roc_auc: float | None,
    baseline_positive_rate: float | None,
    warnings: list[str],
    verdict: dict[str, Any] | None = None,
    drill_down: Path | None = None,
) -> Path:
    settings = params.monitor
    granularity = settings.retrain.granularity
    table = profile[
        (profile["column_name"] == TABLE) & (profile["granularity"] == granularity) & profile["slice_key"].isna()
    ].sort_values("window_start")
    versions = table.dropna(subset=["model_version"])
    version = None
    if len(versions):
        version = str(versions.sort_values(["window_start", "count"]).iloc[-1]["model_version"])
    windows = table[table["model_version"].isna() | (table["model_version"] == version)]
    columns_drift = drift[
        (drift["drift_type"] == BASELINE) & (drift["granularity"] == granularity) & drift["slice_key"].isna()
        & (drift["model_version"] == version)
    ]
    figures = [
        ("Drift against the baseline, per column", _drift_figure(columns_drift, params)),
        ("Mean probability and predicted positive rate", _rates_figure(windows, baseline_positive_rate)),
        ("ROC AUC: realised (labelled rows) and estimated (CBPE, no labels)", _auc_figure(windows, baseline_roc_auc)),
        ("Rows per window", _rows_figure(windows, settings.min_rows)),
    ]
    body = [f"<h1>Churn model monitoring</h1><p class='meta'>{_meta(params, version, baseline_source, windows)}</p>"]
    body.append(_verdict_html(verdict))
    body += [f"<div class='warn'>{html.escape(w)}</div>" for w in warnings]
    for title, png in figures:
        body.append(f"<h2>{html.escape(title)}</h2>")
        body.append(f"<img alt='{html.escape(title)}' src='data:image/png;base64,{png}'>")
    body.append("<h2>Latest window</h2>" + _latest_table(windows, columns_drift))
    if drill_down is not None and drill_down.is_file():
        relative = Path(_relative(drill_down, settings.paths.dashboard))
        body.append(
            f"<h2>Drill-down: evidently report, baseline vs the latest window</h2>"
            f"<p><a href='{html.escape(str(relative))}'>open {html.escape(relative.name)}</a></p>"
            f"<iframe title='evidently drift report' src='{html.escape(str(relative))}'></iframe>"
        )
    page = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Churn model monitoring</title>"
        f"<style>{_STYLE}</style></head><body>{''.join(body)}</body></html>\n"
    )
    write_text(settings.paths.dashboard, page)
    return settings.paths.dashboard


def _relative(target: Path, page: Path) -> str:
    import os

    return os.path.relpath(target.resolve(), page.resolve().parent)


def _meta(params: Params, version: str | None, source: str | None, windows: pd.DataFrame) -> str:
    span = ""
    if len(windows):
        span = f"{windows['window_start'].min():%Y-%m-%d} to {windows['window_end'].max():%Y-%m-%d}, "
    return html.escape(
        f"{params.registry.model_name} version {version or '?'}; {span}{params.monitor.retrain.granularity!r} windows; "
        f"baseline: {source or 'none'}"
    )


def _verdict_html(verdict: dict[str, Any] | None) -> str:
    if verdict is None:
        return "<p class='meta'>Retraining rule not checked in this run (churn monitor --check).</p>"
    status = verdict.get("status", "")
    css = {"retrain": "retrain", "ok": "ok"}.get(status, "unknown")
    reasons = "".join(f"<li>{html.escape(r)}</li>" for r in verdict.get("reasons", []))
    return f"<p><span class='verdict {css}'>retraining rule: {html.escape(status)}</span></p><ul>{reasons}</ul>"


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> str:
    plt = _plt()
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})
    finally:
        plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _drift_figure(drift: pd.DataFrame, params: Params) -> str:
    plt = _plt()
    settings = params.monitor.drift
    numeric = [*params.dataset.numeric, "churn_probability"]
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.2))
    panels = [
        (axes[0], drift[drift["column_name"].isin(numeric)], "wasserstein_distance", settings.wasserstein,
         "numeric columns: Wasserstein (normed)"),
        (axes[1], drift[~drift["column_name"].isin(numeric)], "js_distance", settings.jensenshannon,
         "categorical columns: Jensen-Shannon distance"),
    ]
    for ax, part, metric, threshold, title in panels:
        for column, rows in part.groupby("column_name"):
            rows = rows.sort_values("window_start")
            ax.plot(rows["window_start"], rows[metric], marker=".", linewidth=1, label=column)
        ax.axhline(threshold, color="#c00000", linestyle="--", linewidth=1.2, label=f"threshold {threshold}")
        ax.set_title(title, fontsize=10)
        ax.tick_params(axis="x", labelrotation=30, labelsize=8)
        if len(part):
            # Below the plot: twenty columns' names would hide the lines.
            ax.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.2), frameon=False)
        else:
            ax.text(0.5, 0.5, "no drift computed (no baseline?)", ha="center", transform=ax.transAxes)
    return _png(fig)


def _rates_figure(windows: pd.DataFrame, baseline_rate: float | None) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(13, 3.4))
    rows = windows[windows["count"].fillna(0) > 0]
    ax.plot(rows["window_start"], rows["mean_probability"], marker="o", label="mean probability")
    ax.plot(rows["window_start"], rows["predicted_positive_rate"], marker="s", label="predicted positive rate")
    if "label_rate" in rows:
        ax.plot(rows["window_start"], rows["label_rate"], marker="^", linestyle=":", label="label rate (labelled rows)")
    if baseline_rate is not None:
        ax.axhline(baseline_rate, color="#777", linestyle="--", label=f"baseline positive rate {baseline_rate:.3f}")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8, loc="upper left")
    ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    return _png(fig)


def _auc_figure(windows: pd.DataFrame, baseline_auc: float | None) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(13, 3.4))
    rows = windows[windows["count"].fillna(0) > 0]
    ax.plot(rows["window_start"], rows["roc_auc"], marker="o", label="realised ROC AUC")
    ax.plot(rows["window_start"], rows["estimated_roc_auc"], marker="x", linestyle="--", label="estimated ROC AUC (CBPE)")
    if baseline_auc is not None:
        ax.axhline(baseline_auc, color="#777", linestyle=":", label=f"baseline {baseline_auc:.3f}")
    ax.set_ylim(0.5, 1)
    ax.legend(fontsize=8, loc="lower left")
    ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    return _png(fig)


def _rows_figure(windows: pd.DataFrame, min_rows: int) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(13, 3.0))
    counts = windows.groupby("window_start")["count"].sum()
    colours = ["#c00000" if c < min_rows else "#1f77b4" for c in counts]
    ax.bar(counts.index, counts.to_numpy(), width=0.8 * _width(counts.index), color=colours)
    ax.axhline(min_rows, color="#c00000", linestyle="--", linewidth=1, label=f"min rows {min_rows} (red: {INSUFFICIENT})")
    ax.legend(fontsize=8)
    ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    return _png(fig)


def _width(index: pd.Index) -> float:
    if len(index) < 2:
        return 0.8
    return float(pd.Series(index).diff().dropna().min() / pd.Timedelta(days=1))


def _latest_table(windows: pd.DataFrame, drift: pd.DataFrame) -> str:
    rows = windows[windows["count"].fillna(0) > 0]
    if rows.empty:
        return "<p>No window with rows.</p>"
    latest = rows.iloc[-1]
    facts = [
        ("window", f"{latest['window_start']:%Y-%m-%d %H:%M} to {latest['window_end']:%Y-%m-%d %H:%M} UTC"),
        ("rows", f"{int(latest['count'])} ({latest['status']})"),
        ("mean probability", _f(latest["mean_probability"])),
        ("predicted positive rate", _f(latest["predicted_positive_rate"])),
        ("labelled share", _f(latest["labelled_share"])),
        ("realised ROC AUC", _f(latest["roc_auc"])),
        ("estimated ROC AUC", _f(latest["estimated_roc_auc"])),
        ("note", latest["note"] or ""),
    ]
    out = "<table>" + "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in facts)
    out += "</table>"
    part = drift[drift["window_start"] == latest["window_start"]].sort_values(["drifted", "column_name"], ascending=[False, True])
    if len(part):
        header = "<tr><th>column</th><th>method</th><th>score</th><th>threshold</th><th>status</th></tr>"
        body = ""
        for _, row in part.iterrows():
            score = row["p_value"] if row["method"] in ("ks", "chisquare") else (
                row["wasserstein_distance"] if row["method"] == "wasserstein" else row["js_distance"])
            body += (
                f"<tr><td>{html.escape(row['column_name'])}</td><td>{html.escape(str(row['method']))}</td>"
                f"<td>{_f(score)}</td><td>{_f(row['threshold'])}</td><td>{html.escape(str(row['status']))}</td></tr>"
            )
        out += f"<h3>Drift against the baseline</h3><table>{header}{body}</table>"
    return out


def _f(value: Any) -> str:
    return "" if value is None or pd.isna(value) else f"{float(value):.4f}"
