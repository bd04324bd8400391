"""PNG figures for the review comment: base and head overlaid where that makes sense."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from churn.io import atomic_path

LABELS = ["no_churn", "churn"]


def _figure() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # no display on CI runners
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    # Atomic, and with a fixed PNG "Software" tag instead of a version-dependent one.
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    return path


def curve(
    path: Path, base: pd.DataFrame | None, head: pd.DataFrame, *, x: str, y: str, title: str, diagonal: bool
) -> Path:
    plt = _figure()
    fig, ax = plt.subplots(figsize=(4.6, 4.0))
    if base is not None:
        ax.plot(base[x], base[y], label="base", color="#999999", linestyle="--")
    ax.plot(head[x], head[y], label="head", color="#1f77b4")
    if diagonal:
        ax.plot([0, 1], [0, 1], color="#dddddd", linewidth=0.8)
    ax.set(xlabel=x, ylabel=y, title=title, xlim=(0, 1), ylim=(0, 1.02))
    ax.legend(loc="lower right" if diagonal else "upper right")
    try:
        return _save(fig, path)
    finally:
        plt.close(fig)


def confusion(path: Path, base: pd.DataFrame | None, head: pd.DataFrame) -> Path:
    plt = _figure()
    panels = ([("base", base)] if base is not None else []) + [("head", head)]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.0 * len(panels), 3.4), squeeze=False)
    fig.subplots_adjust(wspace=0.45)
    for ax, (name, frame) in zip(axes[0], panels, strict=True):
        counts = pd.crosstab(frame["actual"], frame["predicted"]).reindex(index=LABELS, columns=LABELS, fill_value=0)
        values = counts.to_numpy()
        ax.imshow(values, cmap="Blues", vmin=0)
        for i in range(2):
            for j in range(2):
                dark = values[i, j] > values.max() / 2
                ax.text(j, i, f"{values[i, j]:,}", ha="center", va="center", color="white" if dark else "black")
        ax.set_xticks([0, 1], LABELS)
        ax.set_yticks([0, 1], LABELS)
        ax.set(xlabel="predicted", ylabel="actual", title=f"confusion matrix ({name})")
    try:
        return _save(fig, path)
    finally:
        plt.close(fig)
